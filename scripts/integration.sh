#!/usr/bin/env bash
# The one entry point of the integration suite, shared by `npm test` (scripts/test.sh), the
# sanitizer run (scripts/test-asan.sh) and the privileged container (docker/entrypoint.sh):
# jest's integration project, in band, in a kernel with device-mapper.
#
#   scripts/integration.sh [--kernel auto|host|sandbox] [--udev on|off] [--report FILE]
#                          [--timeout SECONDS] [--env NAME=VALUE]... [-- JEST_ARGS...]
#
# --kernel   auto (default): the host's when it has device-mapper and we are root, else the
#            user-mode Linux sandbox; host: the running kernel, whatever it has (the container)
# --udev     on (default): udevd runs (the guest starts one; on the host it must be running)
#            off: no udev, libdevmapper makes the /dev/mapper nodes itself
# --report   also write jest's JSON report to FILE (a path the guest sees: not under /tmp)
# --env      set a variable for jest only, not for the sandbox runner (e.g. LD_PRELOAD)
# JEST_ARGS  passed to jest, e.g. test path patterns
#
# A kernel without device-mapper is a failure here, never a silent skip.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { sed -n '2,17s/^# \{0,1\}//p' "$0" >&2; exit 2; }

kernel=auto
udev=on
report=
timeout=3000
envs=()
while [ $# -gt 0 ]; do
  case "$1" in
    --kernel) kernel="${2:-}"; shift ;;
    --udev) udev="${2:-}"; shift ;;
    --report) report="${2:-}"; shift ;;
    --timeout) timeout="${2:-}"; shift ;;
    --env) envs+=("${2:-}"); shift ;;
    --) shift; break ;;
    -h | --help) usage ;;
    *) echo "integration: unknown argument: $1" >&2; usage ;;
  esac
  shift
done
case "$kernel" in auto | host | sandbox) ;; *) echo "integration: --kernel must be auto, host or sandbox" >&2; exit 2 ;; esac
case "$udev" in on | off) ;; *) echo "integration: --udev must be on or off" >&2; exit 2 ;; esac
for e in "${envs[@]}"; do
  case "$e" in [A-Za-z_]*=*) ;; *) echo "integration: --env takes NAME=VALUE, not '$e'" >&2; exit 2 ;; esac
done

jest_args=(--selectProjects integration --runInBand)
if [ -n "$report" ]; then
  mkdir -p "$(dirname "$report")"
  rm -f "$report"
  jest_args+=(--json "--outputFile=$(realpath -m "$report")")
fi

exec node dist/sandbox/cli.js --kernel "$kernel" --udev "$udev" --timeout "$timeout" -- \
  env DEVMAPPER_REQUIRE_KERNEL=1 "${envs[@]}" node_modules/.bin/jest "${jest_args[@]}" "$@"
