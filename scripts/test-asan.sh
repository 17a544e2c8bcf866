#!/usr/bin/env bash
# The `dm`-level integration tests (test/integration/dm-*.test.ts, sys-loop.test.ts) once more,
# against the addon built by cmake-js with sanitizers (CMakeLists.txt, DEVMAPPER_SANITIZE=ON).
#
#   scripts/test-asan.sh [--kernel auto|host|sandbox] [--udev on|off]
#
# Which sanitizers depends on the kernel the tests run in:
# - host kernel with device-mapper (a real host, docker/): AddressSanitizer + UBSan. Node is
#   not instrumented, so it runs with the compiler's libasan preloaded
#   (LD_PRELOAD=$(cc -print-file-name=libasan.so)) and ASAN_OPTIONS=detect_leaks=0: node
#   itself leaks at exit by design, and LeakSanitizer cannot tell those leaks from ours.
# - the user-mode Linux sandbox: UBSan only. ASan cannot run there at all: its shadow memory
#   must be mapped at fixed addresses up to 2^47 (128 TiB), and a process of this user-mode
#   kernel (Debian's 6.1) has an address space of 512 GiB ("Shadow memory range interleaves
#   with an existing memory mapping. ASan cannot proceed correctly"). ASan still checks the
#   addon on the host, in the paths that need no device-mapper (a short smoke run below:
#   libdevmapper failing without a driver and its error path, loop devices).
#
# The sanitized addon lives in build-asan/ (or build-ubsan/); build/Release/devmapper.node,
# node-gyp's build, is never touched: node is started with a --require hook that loads the
# sanitized file wherever `bindings` asks for build/Release/devmapper.node, and that fails the
# process at exit unless the sanitized file, and not the normal one, was what got loaded.
#
# By hand, for any command (ASan+UBSan build):
#   npx cmake-js build --out build-asan --CDDEVMAPPER_SANITIZE=ON
#   LD_PRELOAD=$(cc -print-file-name=libasan.so) ASAN_OPTIONS=detect_leaks=0 \
#     node -e "const m = { exports: {} }; process.dlopen(m, require('path').resolve('build-asan/Release/devmapper.node')); console.log(m.exports.libraryVersion())"
set -euo pipefail
cd "$(dirname "$0")/.."

kernel=auto
udev=on
while [ $# -gt 0 ]; do
  case "$1" in
    --kernel) kernel="${2:-}"; shift ;;
    --udev) udev="${2:-}"; shift ;;
    *) echo "test-asan: unknown argument: $1 (usage: scripts/test-asan.sh [--kernel auto|host|sandbox] [--udev on|off])" >&2; exit 2 ;;
  esac
  shift
done

log() { printf 'test-asan: %s\n' "$*"; }

where=$(node -p "require('./dist/sandbox/kernel').chooseKernel(process.argv[1])" "$kernel")
root=$(pwd)
work=.cache/sanitize
results=.cache/test-results/sanitize
mkdir -p "$work" "$results"

# build DIR SANITIZERS: the cmake-js build with sanitizers, quiet unless it fails. Rebuilt
# from scratch whenever the sources, node or the compiler changed in any way (make and ninja
# trust modification times, which a checkout or a copy can set back).
build() {
  local dir=$1 sanitizers=$2 stamp
  stamp=$( (cat CMakeLists.txt src-native/*; node --version; cc --version; echo "$sanitizers") | sha256sum | cut -c1-32)
  if [ "$(cat "$dir/devmapper-build.stamp" 2>/dev/null)" != "$stamp" ]; then rm -rf "$dir"; fi
  log "building the addon with -fsanitize=$sanitizers into $dir/ (cmake-js)"
  if ! npx --no-install cmake-js build --out "$dir" --CDDEVMAPPER_SANITIZE=ON "--CDDEVMAPPER_SANITIZERS=$sanitizers" \
    >"$work/build-$(basename "$dir").log" 2>&1; then
    cat "$work/build-$(basename "$dir").log" >&2
    log "the sanitized build failed"
    return 1
  fi
  echo "$stamp" >"$dir/devmapper-build.stamp"
}

# The --require hook: loads the sanitized addon in place of build/Release/devmapper.node
# (main thread and worker threads alike) and checks at exit that it did.
hook="$root/$work/load-sanitized-addon.js"
cat >"$hook" <<'EOF'
'use strict';
// Written by scripts/test-asan.sh. Loads DEVMAPPER_SANITIZED_ADDON wherever
// build/Release/devmapper.node is asked for; fails the process if the normal addon got
// loaded, or nothing sanitized did.
const fs = require('node:fs');
const path = require('node:path');
const { isMainThread } = require('node:worker_threads');
const normal = path.resolve(process.env.DEVMAPPER_NORMAL_ADDON);
const sanitized = path.resolve(process.env.DEVMAPPER_SANITIZED_ADDON);
const dlopen = process.dlopen;
process.dlopen = function (module, filename, ...rest) {
  const asked = path.resolve(String(filename));
  return dlopen.call(this, module, asked === normal ? sanitized : filename, ...rest);
};
if (isMainThread) {
  process.on('exit', () => {
    const maps = fs.readFileSync('/proc/self/maps', 'utf8');
    const problem = maps.includes(normal)
      ? `the normal addon ${normal} was loaded`
      : addonLoaded(maps) && !/lib(asan|ubsan)\.so/.test(maps)
        ? 'no sanitizer runtime is mapped'
        : '';
    if (problem) {
      process._rawDebug(`test-asan: ${problem}; this run did not test the sanitized build`);
      process.exitCode = 70;
    } else if (addonLoaded(maps)) {
      fs.appendFileSync(process.env.DEVMAPPER_SANITIZE_LOG, `${process.pid} ${sanitized}\n`);
    }
  });
}
function addonLoaded(maps) {
  return maps.includes(sanitized);
}
EOF

status=0
normal_addon="$root/build/Release/devmapper.node"
load_log="$root/$work/loaded.log"

if [ "$where" = host ]; then
  sanitizers=address,undefined
  dir=build-asan
else
  sanitizers=undefined
  dir=build-ubsan
  # ASan on the host: no device-mapper here, but libdevmapper's failure path, the error
  # objects, the thread-pool workers and the loop device calls all run.
  build build-asan address,undefined
  rm -f "$load_log"
  smoke_dir="$root/$work/smoke"
  rm -rf "$smoke_dir"
  mkdir -p "$smoke_dir"
  log "ASan + UBSan on the host (no device-mapper): addon smoke run"
  if ! env LD_PRELOAD="$(cc -print-file-name=libasan.so)" ASAN_OPTIONS=detect_leaks=0:halt_on_error=1 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 NODE_OPTIONS="--require $hook" \
    DEVMAPPER_NORMAL_ADDON="$normal_addon" DEVMAPPER_SANITIZED_ADDON="$root/build-asan/Release/devmapper.node" \
    DEVMAPPER_SANITIZE_LOG="$load_log" node - "$smoke_dir" <<'EOF'
'use strict';
const assert = require('node:assert');
const fs = require('node:fs');
const path = require('node:path');
const { Worker } = require('node:worker_threads');
const { dm, sys, DevmapperError } = require('./dist');
// Nothing here may open the device-mapper control device (no task, not even
// dm.udevSyncSupported(), which asks the driver's version): libdevmapper, run as root on a
// kernel without the driver, creates /dev/mapper/control (10:236, for module autoloading),
// and that stray node makes every later check believe the host has device-mapper.
const hadControl = fs.existsSync('/dev/mapper/control');
(async () => {
  assert.match(dm.getLibraryVersion(), /^1\.02\./);
  await assert.rejects(dm.createDevice('asan-smoke-pool', 2 ** 24), DevmapperError);
  // Loop devices (the host has them; we are root), and errors made in C++ from an errno.
  if (process.getuid() === 0 && fs.existsSync('/dev/loop-control')) {
    const file = path.join(process.argv[2], 'loop.img');
    fs.writeFileSync(file, '');
    fs.truncateSync(file, 16 << 20);
    for (let i = 0; i < 3; i++) {
      const loop = await sys.attachLoopDevice(file, { readOnly: i === 1 });
      assert.equal(await sys.getBlockDeviceSize(loop.path), 16 << 20);
      assert.ok((await sys.findLoopDevices(file)).some((l) => l.path === loop.path));
      assert.equal((await sys.getLoopStatus(loop.path)).backingFile, file);
      if (i !== 1) await sys.discardBlocks(loop.path, 0, 1 << 20);
      await loop.detach();
    }
    await assert.rejects(sys.attachLoopDevice(path.join(process.argv[2], 'missing.img')), DevmapperError);
    await assert.rejects(sys.getBlockDeviceSize(path.join(process.argv[2], 'missing.img')), DevmapperError);
  }
  // The addon in two worker threads at once, then their environments torn down.
  await Promise.all([1, 2].map(() => new Promise((resolve, reject) => {
    const w = new Worker(`const { dm, sys } = require(${JSON.stringify(path.resolve('dist'))});
      dm.getLibraryVersion();
      sys.getBlockDeviceSize('/nonexistent').catch(() => process.exit(0));`, { eval: true });
    w.once('error', reject);
    w.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`worker exit ${code}`))));
  })));
  assert.ok(hadControl || !fs.existsSync('/dev/mapper/control'), 'the smoke run made /dev/mapper/control');
  console.log('test-asan: host smoke run passed');
})().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
EOF
  then
    log "the ASan smoke run on the host failed"
    status=1
  elif [ ! -s "$load_log" ]; then
    log "the ASan smoke run did not load the sanitized addon"
    status=1
  fi
fi

build "$dir" "$sanitizers"
envs=(
  --env "NODE_OPTIONS=--require $hook"
  --env "DEVMAPPER_NORMAL_ADDON=$normal_addon"
  --env "DEVMAPPER_SANITIZED_ADDON=$root/$dir/Release/devmapper.node"
  --env "DEVMAPPER_SANITIZE_LOG=$load_log"
  --env "UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1"
)
if [ "$sanitizers" = address,undefined ]; then
  envs+=(
    --env "LD_PRELOAD=$(cc -print-file-name=libasan.so)"
    --env "ASAN_OPTIONS=detect_leaks=0:halt_on_error=1"
  )
fi
rm -f "$load_log"
log "dm-level integration tests, kernel $where, udev $udev, -fsanitize=$sanitizers"
if ! bash scripts/integration.sh --kernel "$where" --udev "$udev" --report "$results/integration.json" \
  "${envs[@]}" -- 'test/integration/(dm-[^/]*|sys-loop)\.test\.ts$'; then
  log "the sanitized integration run failed"
  status=1
elif [ ! -s "$load_log" ]; then
  log "the sanitized integration run did not load the sanitized addon"
  status=1
fi
if [ -f "$results/integration.json" ]; then
  # shellcheck disable=SC2016 # JavaScript, not shell
  node -e '
    const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    console.log(`test-asan (${process.argv[2]}): ${r.numPassedTests} passed, ${r.numFailedTests + r.numRuntimeErrorTestSuites} failed, ${r.numPendingTests} skipped, ${r.numTotalTestSuites} files`);
    if (r.numTotalTests === 0 || r.numPendingTests > 0) { console.log("test-asan: tests were skipped or none ran"); process.exitCode = 1; }
  ' "$results/integration.json" "-fsanitize=$sanitizers, kernel $where, udev $udev" || status=1
else
  log "no report from the sanitized run"
  status=1
fi
exit $status
