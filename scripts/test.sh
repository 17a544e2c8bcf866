#!/usr/bin/env bash
# The project's test command (README: `npm test`). From nothing: sets up the machine, lints,
# runs the unit tests on the host, then the integration tests in a real device-mapper
# kernel (the host's when it has one and we are root, else the user-mode Linux sandbox),
# once with udev running and once without; then the container's entry script in that kernel,
# the `dm` tests against the sanitizer build of the addon, and the packed package installed
# into an empty project. Prints how long each step took, and ends with one summary line.
set -euo pipefail
cd "$(dirname "$0")/.."

started=$SECONDS
status=0
failed_steps=()
fail_step() {
  status=1
  failed_steps+=("$1")
}
step_name=
step_started=0
timings=()
end_step() {
  if [ -n "$step_name" ]; then timings+=("$(printf '%5ds  %s' $((SECONDS - step_started)) "$step_name")"); fi
  step_name=
}
step() {
  end_step
  step_name=$1
  step_started=$SECONDS
  echo "== $1"
}

step "setup (scripts/bootstrap.sh)"
bash scripts/bootstrap.sh

results=.cache/test-results
rm -rf "$results"
mkdir -p "$results"

step "lint (eslint, clang-format, dockerfilelint, shellcheck), type check of the tests, binding.gyp = CMakeLists.txt, API docs"
npm run --silent lint
npx tsc -p tsconfig.test.json
bash scripts/check-native-build.sh
bash scripts/check-docs.sh

step "unit tests (host, no root needed)"
node_modules/.bin/jest --selectProjects unit --json --outputFile="$results/unit.json" || fail_step "unit tests"

# The integration suite, in the kernel that has device-mapper (scripts/integration.sh, the
# entry point the container uses too), once with udevd running and once without. Reports
# are written through the guest's view of the host file system (not /tmp, a tmpfs there).
# Random crash cycles (reliability row 8): 200 in all, split between the two udev modes.
# With udev on, every activation waits for udev's rules (processes started by udevd, slow in
# the sandbox kernel), so that run, the longer one, gets fewer cycles, a 20-layer chain
# instead of 50 and 2 concurrency rounds instead of 3; the udev-off run does the full sizes.
# In the sandbox each mode boots its own kernel, so the two runs go side by side (one core
# each); on a host kernel they share the kernel's udev state, so they run one after the other.
udev_on_sizes=(--env DEVMAPPER_CRASH_CYCLES=40 --env DEVMAPPER_LAYER_CHAIN=20 --env DEVMAPPER_CONCURRENCY_ROUNDS=2)
udev_off_sizes=(--env DEVMAPPER_CRASH_CYCLES=160)
run_integration() {
  local sizes=("${udev_off_sizes[@]}")
  if [ "$1" = on ]; then sizes=("${udev_on_sizes[@]}"); fi
  # CI=true: jest's plain reporter, since the output goes to a log (and the guest's console is a tty).
  bash scripts/integration.sh --udev "$1" --env CI=true "${sizes[@]}" --report "$results/integration-udev-$1.json"
}
if grep -qw device-mapper /proc/misc 2>/dev/null && [ "$(id -u)" = 0 ]; then
  for udev in off on; do
    step "integration tests, udev $udev (host kernel)"
    run_integration "$udev" || fail_step "integration, udev $udev"
  done
else
  step "integration tests, udev off and on, in two sandbox kernels side by side"
  pids=()
  for udev in off on; do
    run_integration "$udev" >"$results/integration-udev-$udev.log" 2>&1 &
    pids+=($!)
  done
  codes=()
  for pid in "${pids[@]}"; do
    code=0
    wait "$pid" || code=$?
    codes+=("$code")
  done
  for i in 0 1; do
    udev=$([ "$i" = 0 ] && echo off || echo on)
    echo "-- integration, udev $udev (exit ${codes[$i]}):"
    cat "$results/integration-udev-$udev.log"
    [ "${codes[$i]}" = 0 ] || fail_step "integration, udev $udev"
  done
fi

# docker/entrypoint.sh as the container runs it (host kernel path: module checks, its own
# udevd, both udev modes), here inside the device-mapper kernel, on the tests that check
# the thin targets, the udev mode and the udev links.
step "container entry script (docker/entrypoint.sh) in the device-mapper kernel"
node dist/sandbox/cli.js --kernel auto --udev off --timeout 900 -- \
  env DEVMAPPER_UDEV=both DEVMAPPER_RESULTS="$results/entrypoint" \
  bash docker/entrypoint.sh test/integration/addon-runtime -t 'udev sync|versions' || fail_step "container entry script"

step "dm-level integration tests against the sanitizer build of the addon (cmake-js)"
bash scripts/test-asan.sh --udev on || fail_step "sanitizer build"

step "package: npm pack, install into an empty project, types, missing libdevmapper-dev"
bash scripts/test-pack.sh || fail_step "package"

step "benchmark, smoke mode (tiny counts: it must run, its figures mean nothing)"
npm run --silent bench:smoke || fail_step "benchmark smoke"
end_step

echo "== time per step"
printf '%s\n' "${timings[@]}"
printf '%5ds  total\n' $((SECONDS - started))

# The jest reports of the unit and integration runs add up to the "total:" line; the steps
# that have no place in it (sanitizer build, package, entry script) are named when they fail.
FAILED_STEPS=${#failed_steps[@]} node scripts/summarize-tests.js "$results"/*.json || status=1
if [ ${#failed_steps[@]} -gt 0 ]; then
  list=$(printf ', %s' "${failed_steps[@]}")
  echo "failed steps: ${list#, }"
fi
exit $status
