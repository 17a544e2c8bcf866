#!/usr/bin/env bash
# The project's test command (README: `npm test`). From nothing: sets up the machine, lints,
# runs the unit tests on the host, then the integration tests in a real device-mapper
# kernel (the host's when it has one and we are root, else the user-mode Linux sandbox),
# once with udev running and once without. Ends with one summary line.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/bootstrap.sh

results=.cache/test-results
rm -rf "$results"
mkdir -p "$results"

echo "== lint (eslint, clang-format) and type check of the tests"
npm run --silent lint
npx tsc -p tsconfig.test.json

echo "== unit tests (host, no root needed)"
status=0
node_modules/.bin/jest --selectProjects unit --json --outputFile="$results/unit.json" || status=1

# The integration suite, in the kernel that has device-mapper. The result file is written
# through the guest's view of the host file system (not /tmp, a tmpfs in the guest).
for udev in off on; do
  echo "== integration tests, udev $udev"
  node dist/sandbox/cli.js --kernel auto --udev "$udev" --timeout 1200 -- \
    env DEVMAPPER_REQUIRE_KERNEL=1 node_modules/.bin/jest --selectProjects integration --runInBand \
    --json --outputFile="$results/integration-udev-$udev.json" || status=1
done

node scripts/summarize-tests.js "$results"/*.json || status=1
exit $status
