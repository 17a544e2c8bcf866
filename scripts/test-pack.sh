#!/usr/bin/env bash
# The published package, as a user gets it: `npm pack` (its prepack builds dist/ afresh), then
# checks that
#   - the tarball holds the compiled JavaScript and its type declarations, the native
#     sources, the snapshotter's .proto files, binding.gyp, CMakeLists.txt and
#     scripts/pkg-config-devmapper.sh, and nothing
#     else (npm adds package.json and README.md itself);
#   - installing it into an empty project builds the addon, and require('devmapper') and
#     `import { dm } from 'devmapper'` both work and reach the addon (dm.getLibraryVersion(),
#     which needs no device-mapper kernel); the ES module sees every name the CommonJS one has;
#   - the bin: `npx devmapper --help` and `--version` run from the project, a usage error exits 2;
#   - a TypeScript file importing { dm, DevmapperError } type-checks against the installed
#     declarations (strict, declarations checked too), and a wrong call does not;
#   - without libdevmapper's development files the install fails with the message of
#     scripts/pkg-config-devmapper.sh, before any compiler error.
# Runs on the host (no root, no kernel needed). npm may fetch bindings and node-addon-api from
# its cache or the registry.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

log() { printf 'test-pack: %s\n' "$*"; }
fail() {
  log "FAILED: $*"
  exit 1
}

work=$(mktemp -d "${TMPDIR:-/tmp}/devmapper-pack.XXXXXX")
trap 'rm -rf "$work"' EXIT
npm_quiet=(--no-audit --no-fund --loglevel=error --prefer-offline)

# --- pack --------------------------------------------------------------------------------
log "npm pack (prepack: a clean TypeScript build)"
npm pack --json --pack-destination "$work" >"$work/pack.json" 2>"$work/pack.log" || {
  cat "$work/pack.log" >&2
  fail "npm pack"
}
tarball=$(node -p "require('path').join(process.argv[1], require(process.argv[2])[0].filename)" "$work" "$work/pack.json")
node - "$work/pack.json" <<'EOF' || fail "the tarball's contents"
'use strict';
const fs = require('node:fs');
const files = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'))[0].files.map((f) => f.path).sort();
const allowed = [
  /^dist\/.+\.js$/,
  /^dist\/.+\.d\.ts$/,
  /^src-native\/[^/]+\.(cc|h)$/,
  /^proto\/containerd\/[^/]+\.proto$/,
  /^(binding\.gyp|CMakeLists\.txt|scripts\/pkg-config-devmapper\.sh|package\.json|README\.md|LICENSE)$/,
];
const problems = [];
for (const f of files) {
  if (!allowed.some((re) => re.test(f))) problems.push(`unexpected: ${f}`);
  // Compiled JavaScript only from lib/ (no stale output of a deleted source, no tests).
  const m = /^dist\/(.+)\.(js|d\.ts)$/.exec(f);
  if (m && !fs.existsSync(`lib/${m[1]}.ts`)) problems.push(`no lib/${m[1]}.ts for ${f}`);
}
const required = ['dist/index.js', 'dist/index.d.ts', 'dist/native.js', 'dist/sandbox/cli.js', 'dist/cli/main.js', 'binding.gyp', 'scripts/pkg-config-devmapper.sh', 'proto/containerd/snapshots.proto', 'proto/containerd/mount.proto'];
for (const f of fs.readdirSync('src-native')) required.push(`src-native/${f}`);
for (const f of required) if (!files.includes(f)) problems.push(`missing: ${f}`);
if (problems.length) {
  console.error(problems.map((p) => `  ${p}`).join('\n'));
  process.exit(1);
}
const js = files.filter((f) => f.endsWith('.js')).length;
const dts = files.filter((f) => f.endsWith('.d.ts')).length;
console.log(`test-pack: ${files.length} files: ${js} .js, ${dts} .d.ts, ${files.filter((f) => f.startsWith('src-native/')).length} native sources, build and package files`);
EOF

# The projects below get the repository's already-built better-sqlite3 before the install: its
# compile from source (a minute or more on two cores, twice) is its own package's business, not
# what this test checks, and npm keeps a dependency it finds installed at the wanted version.
# with_sqlite DIR
with_sqlite() {
  local want
  want=$(node -p "require('./package.json').dependencies['better-sqlite3']")
  [ "$(node -p "require('./node_modules/better-sqlite3/package.json').version")" = "$want" ] || return 0
  mkdir -p "$1/node_modules"
  cp -a node_modules/better-sqlite3 "$1/node_modules/"
}

# --- install into an empty project ---------------------------------------------------------
app="$work/app"
mkdir -p "$app"
echo '{ "name": "devmapper-pack-test", "version": "1.0.0", "private": true }' >"$app/package.json"
with_sqlite "$app"
log "npm install of the tarball into an empty project (builds the addon)"
(cd "$app" && npm install "${npm_quiet[@]}" "$tarball") >"$work/install.log" 2>&1 || {
  cat "$work/install.log" >&2
  fail "npm install of the tarball"
}
[ -f "$app/node_modules/devmapper/build/Release/devmapper.node" ] || fail "the install built no addon"

cat >"$app/check.cjs" <<'EOF'
'use strict';
const assert = require('node:assert');
const devmapper = require('devmapper');
const v = devmapper.dm.getLibraryVersion();
assert.match(v, /^1\.02\.\d+/);
assert.equal(typeof devmapper.DevmapperError, 'function');
console.log(`test-pack: require('devmapper'): dm.getLibraryVersion() = ${v}`);
// The snapshotter's gRPC service finds its .proto files from dist/, as installed.
const { PROTO_DIR } = require('devmapper/dist/snapshotter/server');
const def = require('@grpc/proto-loader').loadSync('containerd/snapshots.proto', { includeDirs: [PROTO_DIR] });
assert.ok(def['containerd.services.snapshots.v1.Snapshots'], 'the snapshots service is not in the installed .proto files');
console.log(`test-pack: the snapshots service loads from ${PROTO_DIR}`);
EOF
cat >"$app/check.mjs" <<'EOF'
import assert from 'node:assert';
import { createRequire } from 'node:module';
import { dm, DevmapperError } from 'devmapper';
import * as ns from 'devmapper';
const cjs = createRequire(import.meta.url)('devmapper');
assert.match(dm.getLibraryVersion(), /^1\.02\.\d+/);
assert.equal(DevmapperError, cjs.DevmapperError);
const missing = Object.keys(cjs).filter((k) => k !== '__esModule' && !(k in ns));
assert.deepEqual(missing, [], `names the ES module does not see: ${missing.join(', ')}`);
console.log(`test-pack: import { dm } from 'devmapper': ok; named exports: ${Object.keys(ns).filter((k) => k !== 'default' && k !== '__esModule').join(', ')}`);
EOF
(cd "$app" && node check.cjs && node check.mjs) || fail "loading the installed package"

# --- the command-line tool (package.json "bin") ---------------------------------------------
log "npx devmapper --help in the project (the bin link, its shebang and file mode)"
[ -x "$app/node_modules/.bin/devmapper" ] || fail "no executable node_modules/.bin/devmapper after install"
help_text=$(cd "$app" && npx --no-install devmapper --help) || fail "npx devmapper --help"
grep -q '^Usage: devmapper ' <<<"$help_text" || fail "npx devmapper --help printed no usage: $help_text"
grep -q 'devmapper sandbox -- devmapper' <<<"$help_text" || fail "npx devmapper --help does not point at the sandbox"
version=$(cd "$app" && ./node_modules/.bin/devmapper --version) || fail "node_modules/.bin/devmapper --version"
[ "$version" = "$(node -p "require('$repo/package.json').version")" ] || fail "devmapper --version printed '$version'"
rc=0
(cd "$app" && npx --no-install devmapper create) 2>"$work/usage.err" || rc=$?
[ "$rc" = 2 ] || fail "devmapper create without ID exited $rc, not 2"
grep -qx 'devmapper: create: missing ID (ERR_INVALID_ARGUMENT)' "$work/usage.err" || fail "unexpected usage message: $(cat "$work/usage.err")"
log "devmapper --help, --version ($version) and a usage error (exit 2) work from the installed bin"

# --- types -----------------------------------------------------------------------------------
cat >"$app/check.ts" <<'EOF'
import { dm, DevmapperError } from 'devmapper';

const version: string = dm.getLibraryVersion();

export async function create(pool: string, id: number): Promise<string> {
  try {
    await dm.createDevice(pool, id);
    return version;
  } catch (err) {
    if (err instanceof DevmapperError && err.code === 'EEXIST') return 'taken';
    throw err;
  }
}

// The declarations are real types, not `any`: a wrong call must not type-check.
// @ts-expect-error a pool name is a string
void dm.createDevice(42, 0);
EOF
cp "$app/check.ts" "$app/check-esm.mts"
cat >"$app/tsconfig.json" <<EOF
{
  "compilerOptions": {
    "module": "node16",
    "moduleResolution": "node16",
    "target": "ES2022",
    "lib": ["ES2022"],
    "strict": true,
    "noEmit": true,
    "skipLibCheck": false,
    "types": ["node"],
    "typeRoots": ["$repo/node_modules/@types"]
  },
  "files": ["check.ts", "check-esm.mts"]
}
EOF
log "tsc --noEmit against the installed declarations (CommonJS and ES module importers)"
(cd "$app" && "$repo/node_modules/.bin/tsc" -p tsconfig.json) || fail "type check of a TypeScript user of the package"

# --- without libdevmapper-dev ----------------------------------------------------------------
bare="$work/bare"
mkdir -p "$bare" "$work/empty-pkgconfig"
echo '{ "name": "devmapper-pack-bare", "version": "1.0.0", "private": true }' >"$bare/package.json"
with_sqlite "$bare"
log "npm install where pkg-config finds no libdevmapper (PKG_CONFIG_LIBDIR=/nonexistent)"
if (cd "$bare" && PKG_CONFIG_LIBDIR=/nonexistent PKG_CONFIG_PATH="$work/empty-pkgconfig" \
  npm install "${npm_quiet[@]}" "$tarball") >"$work/bare.log" 2>&1; then
  fail "the install succeeded without libdevmapper's development files"
fi
message="devmapper: libdevmapper development files not found (pkg-config devmapper)."
hint="devmapper: install them: apt-get install -y libdevmapper-dev"
if ! grep -qF "$message" "$work/bare.log" || ! grep -qF "$hint" "$work/bare.log"; then
  cat "$work/bare.log" >&2
  fail "the failed install does not say which package is missing"
fi
if grep -qE 'libdevmapper\.h|error: |undefined reference' "$work/bare.log"; then
  cat "$work/bare.log" >&2
  fail "the failed install reached the compiler or linker"
fi
log "the failed install says: $(grep -F "$hint" "$work/bare.log" | head -1 | sed 's/^npm error //')"
log "passed"
