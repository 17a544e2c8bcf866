#!/usr/bin/env bash
# containerd's snapshotter conformance suite (v1.7.13's snapshots/testsuite, built as
# ../shared/peers/containerd/proxy-suite.test) against `devmapper snapshotter serve`, in the
# device-mapper kernel, with udev off and on. Skips, saying so, when the peers are absent.
#
#   scripts/test-conformance.sh [--udev on|off|both] [--report FILE] [-- SUITE_ARGS...]
#
# --report writes the counts as a jest-shaped JSON report (numPassedTests, numFailedTests,
# ...) for scripts/summarize-tests.js, zeros when it skipped.
# SUITE_ARGS go to the suite binary, e.g. -test.run 'Suite/Basic'. Each mode's summary and
# duration are printed at the end; the server's output is in .cache/conformance/<mode>.log.
set -euo pipefail
cd "$(dirname "$0")/.."

modes=(off on)
report=
while [ $# -gt 0 ]; do
  case "$1" in
    --udev)
      case "${2:-}" in on | off) modes=("$2") ;; both) modes=(off on) ;; *) echo "conformance: --udev must be on, off or both" >&2; exit 2 ;; esac
      shift ;;
    --report) report="${2:-}"; shift ;;
    --) shift; break ;;
    *) echo "conformance: unknown argument: $1" >&2; exit 2 ;;
  esac
  shift
done
suite_args=("$@")

# write_report PASSED FAILED SKIPPED ERRORS
write_report() {
  [ -n "$report" ] || return 0
  mkdir -p "$(dirname "$report")"
  printf '{"numPassedTests":%d,"numFailedTests":%d,"numPendingTests":%d,"numTodoTests":0,"numRuntimeErrorTestSuites":%d}\n' "$@" >"$report"
}

suite="$(realpath -m ../shared/peers/containerd/proxy-suite.test)"
if [ ! -x "$suite" ]; then
  echo "conformance: skipped: $suite not found (containerd peers are not on this machine)"
  write_report 0 0 0 0
  exit 0
fi

mkdir -p .cache/conformance
status=0
summary=()
total_passed=0 total_failed=0 total_skipped=0 errors=0
for mode in "${modes[@]}"; do
  log="$(realpath -m ".cache/conformance/$mode.log")"
  out="$(realpath -m ".cache/conformance/$mode.out")"
  rm -f "$log" "$out"
  opts="-o dm.fs=ext4 -o dm.basesize=64M -o dm.loopdatasize=1G -o dm.loopmetadatasize=128M"
  # Without udevd the DeviceSet refuses to start unless told the nodes are libdevmapper's to make.
  [ "$mode" = off ] && opts="$opts -o dm.override_udev_sync_check=true"
  cmd="exec node $(pwd)/dist/cli/main.js snapshotter serve --root {root} --socket {socket} $opts"
  start=$(date +%s)
  rc=0
  node dist/sandbox/cli.js --udev "$mode" --timeout 3000 -- \
    env SNAPSHOTTER_CMD="$cmd" SNAPSHOTTER_LOG="$log" \
    "$suite" -test.v -test.root -test.timeout 3h "${suite_args[@]}" >"$out" 2>&1 || rc=$?
  secs=$(($(date +%s) - start))
  passed=$(grep -c -- '^    --- PASS' "$out" || true)
  failed=$(grep -c -- '^    --- FAIL' "$out" || true)
  skipped=$(grep -c -- '^    --- SKIP' "$out" || true)
  summary+=("conformance udev $mode: $passed passed, $failed failed, $skipped skipped, exit $rc, ${secs} s (log $out)")
  total_passed=$((total_passed + passed)) total_failed=$((total_failed + failed)) total_skipped=$((total_skipped + skipped))
  # A run that failed without a failed test (the guest died, the suite did not build): counted too.
  if [ "$rc" -ne 0 ]; then
    status=1
    [ "$failed" -gt 0 ] || errors=$((errors + 1))
  fi
done
printf '%s\n' "${summary[@]}"
write_report "$total_passed" "$total_failed" "$total_skipped" "$errors"
exit "$status"
