#!/usr/bin/env bash
# Entry point of the privileged test container (docker/Dockerfile): runs the integration suite
# against the running kernel through scripts/integration.sh --kernel host, the entry point
# `npm test` runs in the sandbox kernel.
#
#   docker run --rm --privileged -v /dev:/dev -v /lib/modules:/lib/modules:ro \
#     [-e DEVMAPPER_UDEV=on|off|both] [-e DEVMAPPER_SANITIZE=1] IMAGE [JEST_ARGS...]
#
# DEVMAPPER_UDEV      both (default): a run without udev, then one with udevd; on; off
# DEVMAPPER_SANITIZE  1: afterwards, the dm-level tests once more against an ASan + UBSan
#                     build of the addon (scripts/test-asan.sh)
# DEVMAPPER_RESULTS   where jest's JSON reports go (default .cache/test-results; mount a
#                     volume there to keep them)
# JEST_ARGS           passed to jest, e.g. a test path pattern: test/integration/dm-errno
#
# Loads dm-thin-pool (and loop) with modprobe when the kernel lacks them, which needs the
# host's modules mounted. With udev on it uses the udevd whose socket is at
# /run/udev/control, or starts its own (stopped again at exit). It does not replay events
# for the host's existing devices (no `udevadm trigger`): only devices the tests create
# matter. Exit status: 0 when every run passed.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf 'entrypoint: %s\n' "$*" >&2; }
die() {
  log "$*"
  exit 2
}

mode=${DEVMAPPER_UDEV:-both}
case "$mode" in
  on) modes=(on) ;;
  off) modes=(off) ;;
  both) modes=(off on) ;;
  *) die "DEVMAPPER_UDEV must be on, off or both, not '$mode'" ;;
esac
case "${DEVMAPPER_SANITIZE:-0}" in 0 | 1) ;; *) die "DEVMAPPER_SANITIZE must be 0 or 1" ;; esac
if [ "${1:-}" = -- ]; then shift; fi

[ "$(id -u)" = 0 ] || die "run as root, in a privileged container (docker run --privileged ...)"

# --- the kernel: device-mapper, the thin-pool target, loop devices -------------------------
modules_hint="mount the host's modules (-v /lib/modules:/lib/modules:ro), or load them on the host: modprobe dm-thin-pool loop"
load_module() {
  log "loading $1"
  modprobe "$1" || die "cannot load $1 ($modules_hint)"
}
has_dm() { grep -qw device-mapper /proc/misc 2>/dev/null; }
has_thin_pool() { dmsetup targets 2>/dev/null | grep -q '^thin-pool[[:space:]]'; }

has_dm || load_module dm-mod
has_dm || die "the kernel still has no device-mapper after modprobe dm-mod"
if [ ! -e /dev/mapper/control ]; then
  die "no /dev/mapper/control: give the container the host's /dev (-v /dev:/dev) and --privileged"
fi
has_thin_pool || load_module dm-thin-pool
has_thin_pool || die "the kernel has no thin-pool target after modprobe dm-thin-pool"
if [ ! -e /dev/loop-control ]; then load_module loop; fi
[ -e /dev/loop-control ] || die "no /dev/loop-control: give the container the host's /dev (-v /dev:/dev)"
if [ ! -w /dev/mapper/control ] || [ ! -w /dev/loop-control ]; then
  die "cannot write /dev/mapper/control or /dev/loop-control: run with --privileged"
fi
log "kernel $(uname -r): device-mapper $(dmsetup version 2>/dev/null | sed -n 's/^Driver version: *//p'), thin-pool $(dmsetup targets | sed -n 's/^thin-pool[[:space:]]*//p')"

# --- udev ------------------------------------------------------------------------------------
udevd_pid=
stop_udevd() {
  if [ -n "$udevd_pid" ]; then
    kill "$udevd_pid" 2>/dev/null || true
    udevd_pid=
  fi
}
trap stop_udevd EXIT
start_udevd() {
  if [ -S /run/udev/control ]; then
    log "udev: using the udevd already listening on /run/udev/control"
    return
  fi
  local udevd
  for udevd in /usr/lib/systemd/systemd-udevd /lib/systemd/systemd-udevd; do
    [ -x "$udevd" ] && break
  done
  [ -x "$udevd" ] || die "no systemd-udevd (apt-get install udev)"
  mkdir -p /run/udev
  log "udev: starting $udevd"
  SYSTEMD_LOG_LEVEL=warning "$udevd" &
  udevd_pid=$!
  local i
  for i in $(seq 100); do
    [ -S /run/udev/control ] && udevadm control --ping 2>/dev/null && return
    kill -0 "$udevd_pid" 2>/dev/null || die "systemd-udevd exited at start"
    [ "$i" = 100 ] || sleep 0.1
  done
  die "systemd-udevd did not answer within 10 s"
}

# --- the suite -------------------------------------------------------------------------------
results=${DEVMAPPER_RESULTS:-.cache/test-results}
status=0
for udev in "${modes[@]}"; do
  if [ "$udev" = on ]; then start_udevd; fi
  log "integration tests, host kernel, udev $udev"
  report="$results/integration-udev-$udev.json"
  bash scripts/integration.sh --kernel host --udev "$udev" --report "$report" -- "$@" || status=1
  if [ -f "$report" ]; then
    # shellcheck disable=SC2016 # JavaScript, not shell
    node -e '
      const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
      console.log(`udev ${process.argv[2]}: ${r.numPassedTests} passed, ${r.numFailedTests + r.numRuntimeErrorTestSuites} failed, ${r.numPendingTests} skipped`);
    ' "$report" "$udev"
  else
    log "no report from the run with udev $udev"
    status=1
  fi
done

if [ "${DEVMAPPER_SANITIZE:-0}" = 1 ]; then
  udev=${modes[${#modes[@]} - 1]}
  log "dm-level tests against the sanitized addon, udev $udev"
  bash scripts/test-asan.sh --kernel host --udev "$udev" || status=1
fi

stop_udevd
if [ "$status" = 0 ]; then log "all runs passed"; else log "FAILED"; fi
exit "$status"
