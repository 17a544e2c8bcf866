#!/usr/bin/env bash
# Brings a fresh Debian machine (or container) to the point where the demo, the tests and
# the benchmarks run: system packages, npm packages, the native addon and the TypeScript
# build. Quick and quiet when everything is already in place.
#
#   scripts/bootstrap.sh [--packages-only] [--kernel auto|host|sandbox]
#
# --packages-only stops after the Debian packages (docker/Dockerfile uses it). --kernel says
# which kernel the tests will use: the host's needs kmod and udev (to load dm-thin-pool and
# run udevd), the sandbox also user-mode-linux; auto (the default) picks the sandbox when
# the running kernel has no device-mapper.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf 'bootstrap: %s\n' "$*"; }

packages_only=0
kernel=auto
while [ $# -gt 0 ]; do
  case "$1" in
    --packages-only) packages_only=1 ;;
    --kernel) kernel="${2:-}"; shift ;;
    --kernel=*) kernel="${1#--kernel=}" ;;
    *) log "unknown argument: $1 (usage: scripts/bootstrap.sh [--packages-only] [--kernel auto|host|sandbox])"; exit 2 ;;
  esac
  shift
done
case "$kernel" in
  auto)
    kernel=host
    # /proc/misc only: libdevmapper creates /dev/mapper/control even without the driver.
    if ! grep -qw device-mapper /proc/misc 2>/dev/null; then kernel=sandbox; fi
    ;;
  host | sandbox) ;;
  *) log "--kernel must be auto, host or sandbox, not '$kernel'"; exit 2 ;;
esac

# Build: the addon links libdevmapper through pkg-config; cmake for the cmake-js
# (sanitizer) build, whose g++ brings libasan and libubsan. Run time: dmsetup, mkfs for ext4
# and xfs, thin_check. Lint: shellcheck. Kernel: kmod and udev; user-mode-linux only where
# the host kernel has no device-mapper. The Snapshotter's containerd test: containerd, runc,
# and busybox-static for the image it builds offline. zstd compresses the image tests' zstd layers.
packages=(libdevmapper-dev pkg-config g++ make python3 cmake dmsetup e2fsprogs xfsprogs thin-provisioning-tools shellcheck kmod udev containerd runc busybox-static zstd)
if [ "$kernel" = sandbox ]; then
  packages+=(user-mode-linux)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    log "missing system packages: ${missing[*]}"
    log "install them as root: apt-get install -y ${missing[*]}"
    exit 1
  fi
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if [ "$packages_only" = 1 ]; then exit 0; fi

# npm packages (this also builds the addon, through the package's install script).
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  log "npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi

# Rebuild the addon when its sources changed since the last build.
addon=build/Release/devmapper.node
if [ ! -f "$addon" ] || [ -n "$(find src-native binding.gyp -newer "$addon" 2>/dev/null | head -1)" ]; then
  log "building the native addon"
  npm run --silent build:native >/dev/null
fi

npm run --silent build:ts
