#!/usr/bin/env bash
# The adversarial suite (README: `npm run test:reliability`; docs/reliability.md has a row per
# failure mode): the reliability files of the integration suite at the soak tier's sizes, in
# both udev modes (scripts/test-soak.sh, which sets up the machine first), then the addon
# under valgrind on the host (scripts/test-valgrind.sh). The same files run at their quick
# sizes in `npm test`.
set -euo pipefail
cd "$(dirname "$0")/.."

# One jest path pattern per failure mode family: bad input, udev failures, full pools, faulty
# disks, power cuts, damaged and interrupted image imports, crash points, mount propagation,
# the soak.
files=(
  test/integration/bad-input
  test/integration/udev-failures
  test/integration/deviceset-exhaustion
  test/integration/faulty-disks
  test/integration/full-pool-writers
  test/integration/power-cut
  test/integration/images
  test/integration/deviceset-crash
  test/integration/snapshotter-crash
  test/integration/driver-mount-propagation
  test/integration/soak-lifecycles
)
status=0
DEVMAPPER_TIER_RESULTS=.cache/reliability-results bash scripts/test-soak.sh "${files[@]}" || status=1
echo "== the addon under valgrind (host)"
bash scripts/test-valgrind.sh "${DEVMAPPER_VALGRIND_ROUNDS:-20}" || status=1
exit "$status"
