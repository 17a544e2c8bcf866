#!/usr/bin/env bash
# The project's test command (README: `npm test`), the quick tier. From nothing: sets up the
# machine, lints, runs the unit tests on the host, then every integration file in a real
# device-mapper kernel (the host's when it has one and we are root, else the user-mode Linux
# sandbox), once with udev running and once without; then the container's entry script in
# that kernel, the `dm` tests against the sanitizer build of the addon, the packed package
# installed into an empty project, the benchmark in smoke mode, and containerd's snapshotter
# conformance suite against the served Snapshotter (when ../shared/peers has it): in both udev
# modes on a host kernel, udev off in the sandbox (there its udev-on run, 150 s, is the soak
# tier's: the suite checks the snapshot model, which udev does not touch, and the Snapshotter's
# own integration tests run in both modes). Prints how long each step took, and ends with one summary line.
#
# The integration files run at their quick default sizes (crash cycles, layer chain depth,
# concurrency width and rounds); `npm run test:soak` (scripts/test-soak.sh) runs them at
# the full sizes.
#
# In the sandbox the steps run in two lanes, one per core: each sandbox kernel has one CPU,
# so the two udev modes go side by side, and the host-side steps fill the lane that ends
# first. The package step runs first and alone in its lane: its `npm pack` rebuilds dist/,
# which every later step loads. On a host kernel the two udev modes share the kernel's udev
# state, so everything runs one step after the other.
# shellcheck disable=SC2317 # the step functions are called through run_step
set -euo pipefail
cd "$(dirname "$0")/.."

started=$SECONDS
echo "== setup (scripts/bootstrap.sh)"
bash scripts/bootstrap.sh

results=.cache/test-results
rm -rf "$results"
mkdir -p "$results"
# One line per finished step, written by either lane: seconds, lane, name, and FAILED.
steps="$results/steps.txt"
printf '%5ds  %s\n' $((SECONDS - started)) "setup (scripts/bootstrap.sh)" >"$steps"

lane=
# run_step NAME CMD...: runs CMD and notes its time; a failure is noted, and the run goes on.
run_step() {
  local name=$1 t0=$SECONDS code=0
  shift
  echo "== ${lane:+[$lane] }$name"
  "$@" || code=$?
  local line
  line=$(printf '%5ds  %s%s' $((SECONDS - t0)) "${lane:+[$lane] }" "$name")
  if [ "$code" != 0 ]; then line="$line: FAILED (exit $code)"; fi
  echo "$line" >>"$steps"
  return 0
}

lint() {
  npm run --silent lint &&
    npx tsc -p tsconfig.test.json &&
    bash scripts/check-native-build.sh &&
    bash scripts/check-docs.sh
}

unit() {
  node_modules/.bin/jest --selectProjects unit --json --outputFile="$results/unit.json"
}

# The integration suite (scripts/integration.sh, the entry point the container uses too).
# Reports go through the guest's view of the host file system (not /tmp, a tmpfs there).
# CI=true: jest's plain reporter, since the output goes to a log (and the guest's console is a tty).
# integration UDEV REPORT [JEST ARGS...]
integration() {
  local udev=$1 report=$2 sizes=()
  shift 2
  if [ "$udev" = on ]; then sizes=("${udev_on_sizes[@]}"); fi
  bash scripts/integration.sh --udev "$udev" --env CI=true "${sizes[@]}" --report "$results/$report.json" -- "$@"
}
# The random crash cycles test transaction logic that udev does not touch: with udev on (every
# activation slower) a few of them, the udev-off run the quick tier's 16.
udev_on_sizes=(--env DEVMAPPER_CRASH_CYCLES=4)
# In the sandbox the udev-on run is the longer lane: these files of it run at the end of the
# other lane instead, in a kernel of their own, so that both lanes end at about the same time.
udev_on_tail='test/integration/(deviceset-space|dm-seed-sequence)\.test\.ts'

# docker/entrypoint.sh as the container runs it (host kernel path: module checks, its own
# udevd, both udev modes), here inside the device-mapper kernel, on the tests that check
# the thin targets, the udev mode and the udev links.
entrypoint() {
  node dist/sandbox/cli.js --kernel auto --udev off --timeout 900 -- \
    env DEVMAPPER_UDEV=both DEVMAPPER_RESULTS="$results/entrypoint" \
    bash docker/entrypoint.sh test/integration/addon-runtime -t 'udev sync|versions'
}

LINT="lint (eslint, clang-format, dockerfilelint, shellcheck), type check of the tests, binding.gyp = CMakeLists.txt, API docs"
UNIT="unit tests (host, no root needed)"
ENTRY="container entry script (docker/entrypoint.sh) in the device-mapper kernel"
ASAN="dm-level integration tests against the sanitizer build of the addon (cmake-js)"
PACK="package: npm pack, install into an empty project, types, missing libdevmapper-dev"
BENCH="benchmark, smoke mode (tiny counts: it must run, its figures mean nothing)"
# containerd's snapshotter conformance suite against `devmapper snapshotter serve`, one udev
# mode a run, in a kernel of its own; the script says it skipped when ../shared/peers is absent.
CONFORMANCE="containerd's snapshotter conformance suite (scripts/test-conformance.sh)"

if grep -qw device-mapper /proc/misc 2>/dev/null && [ "$(id -u)" = 0 ]; then
  run_step "$LINT" lint
  run_step "$UNIT" unit
  run_step "integration tests, udev off (host kernel)" integration off integration-udev-off
  run_step "integration tests, udev on (host kernel)" integration on integration-udev-on
  reports=unit,integration-udev-off,integration-udev-on
  run_step "$ENTRY" entrypoint
  run_step "$ASAN" bash scripts/test-asan.sh --udev on
  run_step "$PACK" bash scripts/test-pack.sh
  run_step "$BENCH" npm run --silent bench:smoke
  run_step "$CONFORMANCE" bash scripts/test-conformance.sh --udev both --report "$results/conformance.json"
  reports=$reports,conformance
else
  # Lane 1 (its output is kept in a log and shown afterwards): the package, then the
  # integration tests with udev on in their own sandbox kernel (the longer of the two runs:
  # every activation waits for udev's rules), but for the files of $udev_on_tail. Lane 2
  # (shown as it runs): lint meanwhile, then, once dist/ is rebuilt, everything else, ending
  # with those udev-on files in a kernel of their own.
  pack_done="$results/pack.done"
  (
    lane=1
    run_step "$PACK" bash scripts/test-pack.sh
    touch "$pack_done"
    run_step "integration tests, udev on (sandbox kernel)" integration on integration-udev-on --testPathIgnorePatterns "$udev_on_tail"
  ) >"$results/lane1.log" 2>&1 &
  lane1=$!
  lane=2
  run_step "$LINT" lint
  while [ ! -e "$pack_done" ] && kill -0 "$lane1" 2>/dev/null; do sleep 1; done
  run_step "$UNIT" unit
  run_step "integration tests, udev off (sandbox kernel)" integration off integration-udev-off
  run_step "$ENTRY" entrypoint
  run_step "$ASAN" bash scripts/test-asan.sh --udev on
  run_step "$BENCH" npm run --silent bench:smoke
  run_step "$CONFORMANCE, udev off" bash scripts/test-conformance.sh --udev off --report "$results/conformance-udev-off.json"
  run_step "integration tests, udev on, the files moved from lane 1 (sandbox kernel)" integration on integration-udev-on-2 "$udev_on_tail"
  reports=unit,integration-udev-off,integration-udev-on,integration-udev-on-2,conformance-udev-off
  lane=
  wait "$lane1" || echo "lane 1 exited with $?" >>"$steps"
  echo "-- lane 1: package, then integration tests with udev on:"
  cat "$results/lane1.log"
fi

echo "== time per step (in the sandbox, [1] and [2] ran side by side)"
cat "$steps"
printf '%5ds  total\n' $((SECONDS - started))

# The jest reports of the unit and integration runs add up to the "total:" line; the steps
# that have no place in it (sanitizer build, package, entry script, benchmark) are named when
# they fail.
failed=$(grep -c -e ': FAILED' -e '^lane 1 exited' "$steps" || true)
status=0
FAILED_STEPS=$failed node scripts/summarize-tests.js --expect "$reports" "$results"/*.json || status=1
if [ "$failed" -gt 0 ]; then
  echo "failed steps:"
  grep -e ': FAILED' -e '^lane 1 exited' "$steps" | sed 's/^ *[0-9]*s  /  /'
fi
exit $status
