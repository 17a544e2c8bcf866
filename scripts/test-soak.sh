#!/usr/bin/env bash
# The soak tier (README: `npm run test:soak`): sets up the machine, then runs every
# integration file at the full sizes, once with udev running and once without (the quick
# sizes are the test files' defaults, what `npm test` runs):
#   DEVMAPPER_CRASH_CYCLES=200        random crash cycles (SIGKILL at a crash point, reopen, check)
#   DEVMAPPER_LAYER_CHAIN=50          layers in the driver's chain
#   DEVMAPPER_CONCURRENCY=64          concurrent snapshot life cycles (DeviceSet and Driver) ...
#   DEVMAPPER_CONCURRENCY_ROUNDS=10   ... in this many rounds
#   DEVMAPPER_SOAK_LIFECYCLES=10000   container lifecycles in one process (soak-lifecycles)
#   DEVMAPPER_POWER_CUT_MARKS=200     flush points of the dm-log-writes replay checked, a seeded
#                                     sample (DEVMAPPER_POWER_CUT_SEED, printed; random when unset)
#   DEVMAPPER_FAULT_ROUNDS=5          each faulty disk under the pool, a fresh pool each round (and every fault)
#   DEVMAPPER_FULL_POOL_MATRIX=1      full pools with writers: ext4 and xfs, each no-space policy
#   DEVMAPPER_IMAGES_DISKS=200        root disks made from one imported image
#   DEVMAPPER_IMAGES_LAYER_KIB=4096   size of the big files in the image tests' layers
#   DEVMAPPER_REAPER_CYCLES=1000      mount cycles whose udev cookies go to the reaper (udev-reaper)
# Each size can be overridden from the environment, e.g.
#   DEVMAPPER_CRASH_CYCLES=1000 npm run test:soak
#   scripts/test-soak.sh [JEST PATH PATTERN...]   only those files (scripts/test-reliability.sh)
# Then containerd's conformance suite with udev on (npm test runs it with udev off). Lint,
# unit tests, the sanitizer build, the package and the benchmark are `npm test`'s.
# Prints how long each run took, and ends with the same summary line as `npm test`.
set -euo pipefail
cd "$(dirname "$0")/.."

sizes=(
  --env "DEVMAPPER_CRASH_CYCLES=${DEVMAPPER_CRASH_CYCLES:-200}"
  --env "DEVMAPPER_LAYER_CHAIN=${DEVMAPPER_LAYER_CHAIN:-50}"
  --env "DEVMAPPER_CONCURRENCY=${DEVMAPPER_CONCURRENCY:-64}"
  --env "DEVMAPPER_CONCURRENCY_ROUNDS=${DEVMAPPER_CONCURRENCY_ROUNDS:-10}"
  --env "DEVMAPPER_SOAK_LIFECYCLES=${DEVMAPPER_SOAK_LIFECYCLES:-10000}"
  --env "DEVMAPPER_POWER_CUT_MARKS=${DEVMAPPER_POWER_CUT_MARKS:-200}"
  --env "DEVMAPPER_FAULT_ROUNDS=${DEVMAPPER_FAULT_ROUNDS:-5}"
  --env "DEVMAPPER_FULL_POOL_MATRIX=${DEVMAPPER_FULL_POOL_MATRIX:-1}"
  --env "DEVMAPPER_IMAGES_DISKS=${DEVMAPPER_IMAGES_DISKS:-200}"
  --env "DEVMAPPER_IMAGES_LAYER_KIB=${DEVMAPPER_IMAGES_LAYER_KIB:-4096}"
  --env "DEVMAPPER_REAPER_CYCLES=${DEVMAPPER_REAPER_CYCLES:-1000}"
)
# A seed repeats the power-cut test's sample of points.
if [ -n "${DEVMAPPER_POWER_CUT_SEED:-}" ]; then sizes+=(--env "DEVMAPPER_POWER_CUT_SEED=$DEVMAPPER_POWER_CUT_SEED"); fi
# Jest path patterns: every integration file when none is given.
files=("$@")
# The guest is killed after this long (scripts/integration.sh's default, 50 minutes, is
# meant for the quick sizes).
timeout=${DEVMAPPER_SOAK_TIMEOUT:-14400}

started=$SECONDS
echo "== setup (scripts/bootstrap.sh)"
bash scripts/bootstrap.sh

results=${DEVMAPPER_TIER_RESULTS:-.cache/soak-results}
rm -rf "$results"
mkdir -p "$results"
timings=("$(printf '%5ds  %s' $((SECONDS - started)) "setup (scripts/bootstrap.sh)")")
echo "soak sizes: ${sizes[*]//--env /}"

run_integration() {
  # CI=true: jest's plain reporter, since the output goes to a log (and the guest's console is a tty).
  bash scripts/integration.sh --udev "$1" --timeout "$timeout" --env CI=true "${sizes[@]}" \
    --report "$results/integration-udev-$1.json" -- "${files[@]}"
}

failed=0
if grep -qw device-mapper /proc/misc 2>/dev/null && [ "$(id -u)" = 0 ]; then
  # A host kernel: the two udev modes share its udev state, one after the other.
  for udev in off on; do
    echo "== integration tests at full sizes, udev $udev (host kernel)"
    t0=$SECONDS
    code=0
    run_integration "$udev" || code=$?
    timings+=("$(printf '%5ds  integration, udev %s%s' $((SECONDS - t0)) "$udev" "$([ "$code" = 0 ] || echo ": FAILED (exit $code)")")")
    [ "$code" = 0 ] || failed=$((failed + 1))
  done
else
  # The sandbox: one kernel per udev mode, side by side (one CPU each).
  echo "== integration tests at full sizes, udev off and on, in two sandbox kernels side by side"
  t0=$SECONDS
  pids=()
  for udev in off on; do
    (
      s=$SECONDS
      code=0
      run_integration "$udev" >"$results/integration-udev-$udev.log" 2>&1 || code=$?
      echo "$((SECONDS - s)) $code" >"$results/integration-udev-$udev.done"
    ) &
    pids+=($!)
  done
  wait "${pids[@]}" || true
  for udev in off on; do
    read -r secs code <"$results/integration-udev-$udev.done" || { secs=$((SECONDS - t0)); code=unknown; }
    echo "-- integration, udev $udev (exit $code):"
    cat "$results/integration-udev-$udev.log"
    timings+=("$(printf '%5ds  integration, udev %s (sandbox kernel)%s' "$secs" "$udev" "$([ "$code" = 0 ] || echo ": FAILED (exit $code)")")")
    [ "$code" = 0 ] || failed=$((failed + 1))
  done
fi

# The whole tier (no path patterns) also runs containerd's conformance suite with udev on;
# `npm test` runs it with udev off.
expect=integration-udev-off,integration-udev-on
if [ ${#files[@]} = 0 ]; then
  echo "== containerd's snapshotter conformance suite, udev on"
  t0=$SECONDS
  code=0
  bash scripts/test-conformance.sh --udev on --report "$results/conformance-udev-on.json" || code=$?
  timings+=("$(printf '%5ds  conformance suite, udev on%s' $((SECONDS - t0)) "$([ "$code" = 0 ] || echo ": FAILED (exit $code)")")")
  [ "$code" = 0 ] || failed=$((failed + 1))
  expect=$expect,conformance-udev-on
fi

echo "== time per step"
printf '%s\n' "${timings[@]}"
printf '%5ds  total\n' $((SECONDS - started))

FAILED_STEPS=$failed node scripts/summarize-tests.js --expect "$expect" "$results"/*.json
