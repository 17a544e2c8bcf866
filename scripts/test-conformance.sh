#!/usr/bin/env bash
# containerd's snapshotter conformance suite (v1.7.13's snapshots/testsuite, built as
# ../shared/peers/containerd/proxy-suite.test) against `devmapper snapshotter serve`, in the
# device-mapper kernel, with udev off and on. Skips, saying so, when the peers are absent.
#
#   scripts/test-conformance.sh [--udev on|off|both] [-- SUITE_ARGS...]
#
# SUITE_ARGS go to the suite binary, e.g. -test.run 'Suite/Basic'. Each mode's summary and
# duration are printed at the end; the server's output is in .cache/conformance/<mode>.log.
set -euo pipefail
cd "$(dirname "$0")/.."

suite="$(realpath -m ../shared/peers/containerd/proxy-suite.test)"
if [ ! -x "$suite" ]; then
  echo "conformance: skipped: $suite not found (containerd peers are not on this machine)"
  exit 0
fi

modes=(off on)
while [ $# -gt 0 ]; do
  case "$1" in
    --udev)
      case "${2:-}" in on | off) modes=("$2") ;; both) modes=(off on) ;; *) echo "conformance: --udev must be on, off or both" >&2; exit 2 ;; esac
      shift ;;
    --) shift; break ;;
    *) echo "conformance: unknown argument: $1" >&2; exit 2 ;;
  esac
  shift
done
suite_args=("$@")

mkdir -p .cache/conformance
status=0
summary=()
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
  [ "$rc" -eq 0 ] || status=1
done
printf '%s\n' "${summary[@]}"
exit "$status"
