#!/bin/sh
# Used by binding.gyp: prints libdevmapper's compiler or linker flags, or fails the build
# with a message that says which package to install.
if ! command -v pkg-config >/dev/null 2>&1; then
  echo "devmapper: pkg-config not found. Install it: apt-get install -y pkg-config libdevmapper-dev" >&2
  exit 1
fi
if ! pkg-config --exists devmapper; then
  echo "devmapper: libdevmapper development files not found (pkg-config devmapper)." >&2
  echo "devmapper: install them: apt-get install -y libdevmapper-dev   (Fedora: device-mapper-devel)" >&2
  exit 1
fi
exec pkg-config "$1" devmapper
