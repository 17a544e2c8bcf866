#!/usr/bin/env bash
# binding.gyp (node-gyp) and CMakeLists.txt (cmake-js) must build the same addon: the same
# source files and the same compiler flags. Configures both (no compiling; a few seconds),
# has each write its compile commands, and compares them file by file. Flags that only
# node-gyp's common.gypi adds for Node's own headers, which the addon does not use
# (V8, libuv, OpenSSL), and include paths are left out of the comparison.
set -euo pipefail
cd "$(dirname "$0")/.."

work=$(mktemp -d "${TMPDIR:-/tmp}/devmapper-native-check.XXXXXX")
trap 'rm -rf "$work"' EXIT

# node-gyp as `npm install` runs it (npm's own node-gyp and settings, e.g. nodedir), in a copy
# of the files it reads, so that build/ is left alone.
mkdir -p "$work/gyp/scripts"
cp -r binding.gyp src-native "$work/gyp/"
cp scripts/pkg-config-devmapper.sh "$work/gyp/scripts/"
ln -s "$(pwd)/node_modules" "$work/gyp/node_modules"
echo '{ "private": true, "scripts": { "cc": "node-gyp configure -- -f compile_commands_json" } }' >"$work/gyp/package.json"
if ! (cd "$work/gyp" && npm run cc) >"$work/gyp.log" 2>&1; then
  cat "$work/gyp.log" >&2
  echo "check-native-build: node-gyp configure failed" >&2
  exit 1
fi

# cmake-js, configure only, into its own directory.
if ! npx --no-install cmake-js configure --out "$work/cmake" >"$work/cmake.log" 2>&1; then
  cat "$work/cmake.log" >&2
  echo "check-native-build: cmake-js configure failed" >&2
  exit 1
fi

node - "$work/gyp/build/Release/compile_commands.json" "$work/cmake/compile_commands.json" <<'EOF'
'use strict';
const fs = require('node:fs');
const path = require('node:path');
// Defines node-gyp's common.gypi adds for V8/libuv/OpenSSL headers; devmapper_EXPORTS is CMake's.
const IGNORED = /^-D(USING_UV_SHARED|USING_V8_SHARED|V8_DEPRECATION_WARNINGS|_GLIBCXX_USE_CXX11_ABI|__STDC_FORMAT_MACROS|OPENSSL_\w+|devmapper_EXPORTS)(=|$)/;
function flagsByFile(file) {
  const out = new Map();
  for (const entry of JSON.parse(fs.readFileSync(file, 'utf8'))) {
    const words = entry.command.match(/"(?:[^"\\]|\\.)*"|\S+/g).map((w) => w.replace(/^"(.*)"$/, '$1'));
    const flags = new Set();
    for (let i = 1; i < words.length; i++) {
      const w = words[i];
      if (w === '-o' || w === '-c') { i++; continue; }
      if (w.startsWith('-I') || w === '-m64' || IGNORED.test(w)) continue;
      flags.add(w);
    }
    out.set(path.basename(entry.file), [...flags].sort());
  }
  return out;
}
const gyp = flagsByFile(process.argv[2]);
const cmake = flagsByFile(process.argv[3]);
const problems = [];
const names = [...new Set([...gyp.keys(), ...cmake.keys()])].sort();
for (const name of names) {
  if (!gyp.has(name)) { problems.push(`${name}: built by CMake only`); continue; }
  if (!cmake.has(name)) { problems.push(`${name}: built by node-gyp only`); continue; }
  const a = gyp.get(name), b = cmake.get(name);
  const onlyGyp = a.filter((f) => !b.includes(f));
  const onlyCmake = b.filter((f) => !a.includes(f));
  if (onlyGyp.length) problems.push(`${name}: node-gyp only: ${onlyGyp.join(' ')}`);
  if (onlyCmake.length) problems.push(`${name}: CMake only: ${onlyCmake.join(' ')}`);
}
if (problems.length) {
  console.error('check-native-build: binding.gyp and CMakeLists.txt differ:\n  ' + problems.join('\n  '));
  process.exit(1);
}
console.log(`check-native-build: node-gyp and cmake-js agree on ${names.length} sources and their flags: ${gyp.get(names[0]).join(' ')}`);
EOF
