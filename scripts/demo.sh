#!/usr/bin/env bash
# The README's first command (`npm run demo`): sets up the machine, then runs the demo in a
# kernel with device-mapper (the host's when it has one and we are root, else the sandbox).
# The story is the first argument: container (the default, a container's storage as Docker
# told it) or microvm (root disks for microVMs from an imported image).
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-container}" in
  container) story=dist/demo/container-story.js ;;
  microvm) story=dist/demo/microvm-story.js ;;
  *) echo "demo: no story named '$1' (container, microvm)" >&2; exit 2 ;;
esac
bash scripts/bootstrap.sh
exec node dist/sandbox/cli.js --kernel auto --udev on --timeout 600 -- node "$story"
