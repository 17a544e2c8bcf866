'use strict';
// What the addon does without a device-mapper kernel, many times over, for valgrind
// (scripts/test-valgrind.sh): loading, libdevmapper's version and udev queries, the udev
// reaper's calls with nothing pending, dm tasks
// that fail (no device-mapper: libdevmapper's error path and log capture), step jobs of file
// steps (write, create, mkdir, fsync, unlink, rmdir, a failing step), loop devices (attach,
// status, find, capacity, size, discard, detach), mount and unmount of a tmpfs, the private
// mount, xattrs, mknod, utimes, readFiles (regular, missing, symlink, FIFO), file locks.
// Exits 0 when every call behaved as expected; valgrind's findings are the script's business.
// Usage: node test/valgrind/addon-exercise.js DIR ROUNDS
const assert = require('node:assert/strict');
const { mkdirSync, rmSync, symlinkSync, truncateSync, writeFileSync } = require('node:fs');
const { join } = require('node:path');
const { Buffer } = require('node:buffer');
const { dm, sys, DevmapperError } = require('../../dist');

async function rejects(p, code) {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof DevmapperError, `not a DevmapperError: ${err}`);
    if (code) assert.equal(err.code, code);
    return err;
  }
  assert.fail('expected a rejection');
}

async function round(dir, i) {
  // libdevmapper, no kernel driver: queries answer, tasks fail typed.
  assert.match(dm.getLibraryVersion(), /^1\.02\./);
  dm.udevSyncSupported();
  await rejects(dm.getDriverVersion());
  await rejects(dm.listDevices());
  await rejects(dm.getInfo(`valgrind-${i}`));
  await rejects(dm.createDevice('/dev/mapper/valgrind-pool', 1));
  // The udev reaper with nothing handed to it: counts, a settle, a sweep, a node path.
  assert.deepEqual(dm.udevReaperStats(), { pending: 0, reaped: 0, timedOut: 0 });
  assert.equal((await dm.udevSettle(10)).pending, 0);
  assert.equal(typeof dm.sweepAbandonedUdevCookies(3600), 'number');
  assert.equal(await dm.usableDevicePath(`valgrind-${i}`), `/dev/mapper/valgrind-${i}`);
  await dm.udevWaitName(`valgrind-${i}`);

  // A step job of file steps, and one that fails at its second step.
  const d = join(dir, `steps-${i}`);
  await dm.runStepsOrThrow([
    dm.mkdirStep(d, 0o755),
    dm.writeFileStep(join(d, 'a'), 'x'.repeat(4096)),
    dm.createFileStep(join(d, 'b'), 'y', 0o600),
    dm.syncDirStep(d),
    dm.unlinkStep(join(d, 'a')),
    dm.unlinkStep(join(d, 'b')),
    dm.rmdirStep(d),
  ]);
  const out = await dm.runSteps([dm.mkdirStep(d, 0o755), dm.mkdirStep(d, 0o755), dm.rmdirStep(d)]);
  assert.ok(out.error instanceof DevmapperError);
  rmSync(d, { recursive: true, force: true });

  // readFiles: a regular file, a missing one, a link (refused), a FIFO (refused).
  const f = join(dir, 'meta');
  writeFileSync(f, `{"device_id":${i}}`);
  assert.deepEqual(await sys.readFiles([f, join(dir, 'missing')]), [`{"device_id":${i}}`, null]);
  await rejects(sys.readFiles([join(dir, 'link')]));
  await rejects(sys.readFiles([join(dir, 'fifo')]));

  // xattrs, utimes, locks.
  await sys.lsetxattr(f, 'user.devmapper', Buffer.from(`v${i}`));
  assert.equal((await sys.lgetxattr(f, 'user.devmapper')).toString(), `v${i}`);
  assert.ok((await sys.llistxattr(f)).includes('user.devmapper'));
  await sys.lremovexattr(f, 'user.devmapper');
  assert.equal(await sys.lgetxattr(f, 'user.devmapper'), null);
  await sys.lutimesNs(f, { sec: 1, nsec: 2 }, { sec: 3, nsec: 4 });
  const fd = sys.lockFile(join(dir, 'lock'));
  sys.unlockFile(fd);

  // A loop device over a sparse file: attach, query, grow, discard, detach.
  const img = join(dir, 'loop.img');
  writeFileSync(img, '');
  truncateSync(img, 8 << 20);
  const loop = await sys.attachLoopDevice(img);
  assert.equal(await sys.getBlockDeviceSize(loop.path), 8 << 20);
  assert.ok(await sys.getLoopStatus(loop.path));
  assert.ok((await sys.findLoopDevices(img)).length >= 1);
  truncateSync(img, 16 << 20);
  await sys.setLoopCapacity(loop.path);
  assert.equal(await sys.getBlockDeviceSize(loop.path), 16 << 20);
  await sys.discardBlocks(loop.path, 0, 1 << 20);
  await loop.detach();
  await rejects(sys.attachLoopDevice(join(dir, 'no-such-file')));

  // mount(2) and umount2(2), the private mount, isMountPoint.
  const mnt = join(dir, 'mnt');
  await sys.mount('/dev/null', mnt, 'tmpfs', { data: 'size=1m' });
  assert.equal(sys.isMountPoint(mnt), true);
  await sys.makePrivateMount(mnt);
  await sys.unmount(mnt);
  assert.equal(sys.isMountPoint(mnt), false);
  await rejects(sys.unmount(mnt));
  await rejects(sys.mount('/dev/null', mnt, 'no-such-fs'));
}

async function main() {
  const [dir, rounds] = [process.argv[2], Number(process.argv[3] ?? '20')];
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(join(dir, 'mnt'), { recursive: true });
  symlinkSync('/etc/hostname', join(dir, 'link'));
  await sys.mknod(join(dir, 'fifo'), 'fifo', 0o600);
  for (let i = 0; i < rounds; i++) await round(dir, i);
  rmSync(dir, { recursive: true, force: true });
  process.stdout.write(`addon exercise: ${rounds} rounds done\n`);
}

main().catch((err) => {
  process.stderr.write(`${err.stack ?? err}\n`);
  process.exitCode = 1;
});
