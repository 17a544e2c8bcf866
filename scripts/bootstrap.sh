#!/usr/bin/env bash
# Brings a fresh Debian machine (or container) to the point where the demo, the tests and
# the benchmarks run: system packages, npm packages, the native addon and the TypeScript
# build. Quick and quiet when everything is already in place.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf 'bootstrap: %s\n' "$*"; }

# Build: the addon links libdevmapper through pkg-config. Run time: dmsetup, mkfs for ext4
# and xfs, thin_check. Sandbox kernel: only where the host kernel has no device-mapper.
packages=(libdevmapper-dev pkg-config g++ make python3 dmsetup e2fsprogs xfsprogs thin-provisioning-tools)
if [ ! -e /dev/mapper/control ] && ! grep -qw device-mapper /proc/misc 2>/dev/null; then
  packages+=(user-mode-linux kmod udev)
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
