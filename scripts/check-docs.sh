#!/usr/bin/env bash
# API documentation check: TypeDoc over the public surface (lib/index.ts) with
# typedoc.json's validation (every public symbol documented, no broken {@link}, nothing
# public referring to an unexported type) and warnings as errors. Writes nothing (`npm run
# docs` builds the HTML in docs/api/). Quiet on success; on failure prints TypeDoc's
# messages and exits non-zero.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! out="$(node_modules/.bin/typedoc --emit none --logLevel Warn 2>&1)"; then
  printf '%s\n' "$out" >&2
  echo "check-docs: TypeDoc found undocumented or broken API docs (see above)" >&2
  exit 1
fi
