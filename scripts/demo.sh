#!/usr/bin/env bash
# The README's first command (`npm run demo`): sets up the machine, then runs the demo in a
# kernel with device-mapper (the host's when it has one and we are root, else the sandbox).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec node dist/sandbox/cli.js --kernel auto --udev on --timeout 600 -- node dist/demo/container-story.js
