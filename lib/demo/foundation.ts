/**
 * The demo of the low-level layer: a thin pool on loopback files, a thin volume with ext4,
 * a file written, a snapshot of the live volume, the file read back from the snapshot, the
 * pool's status, and everything removed again. One line per step.
 *
 * Run it with `npm run demo` (which boots the sandbox kernel when the host has no
 * device-mapper), or directly as root on a device-mapper host: `node dist/demo/foundation.js`.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { dm, sys } from '../index';

const execFileP = promisify(execFile);
const MiB = 1024 * 1024;

function step(text: string): void {
  process.stdout.write(`• ${text}\n`);
}

function detail(text: string): void {
  process.stdout.write(`    ${text}\n`);
}

async function sparseFile(path: string, bytes: number): Promise<void> {
  const fh = await open(path, 'w', 0o600);
  await fh.truncate(bytes);
  await fh.close();
}

export async function runFoundationDemo(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'devmapper-demo-'));
  const prefix = `devmapper-demo-${process.pid}`;
  const pool = `${prefix}-pool`;
  const origin = `${prefix}-base`;
  const snap = `${prefix}-snap`;
  const cleanups: (() => Promise<unknown>)[] = [];
  let failure: unknown;
  try {
    step(`device-mapper driver ${await dm.getDriverVersion()}, libdevmapper ${dm.getLibraryVersion()}, udev sync ${dm.udevSyncSupported() ? 'on' : 'off'}`);

    step('sparse loopback files: data 1 GiB, metadata 64 MiB');
    await sparseFile(join(dir, 'data'), 1024 * MiB);
    await sparseFile(join(dir, 'metadata'), 64 * MiB);
    const data = await sys.attachLoopDevice(join(dir, 'data'));
    const meta = await sys.attachLoopDevice(join(dir, 'metadata'));
    detail(`data ${data.path} (${data.devno}), metadata ${meta.path} (${meta.devno}), autoclear`);

    step(`thin pool ${pool}`);
    await dm.createPool(pool, data.path, meta.path);
    cleanups.unshift(() => dm.removeDevice(pool));
    data.release();
    meta.release();
    const [poolLine] = await dm.getTable(pool);
    detail(`table: ${dm.formatTargetLine(poolLine)}`);

    step('create_thin 0 and activate it as a 256 MiB volume');
    await dm.createDevice(pool, 0);
    cleanups.unshift(() => dm.deleteDevice(pool, 0));
    await dm.activateDevice(pool, origin, 0, 256 * MiB);
    cleanups.unshift(() => dm.removeDevice(origin));
    detail(`/dev/mapper/${origin}: ${dm.formatTargetLine((await dm.getTable(origin))[0])}`);

    step('mkfs.ext4, mount, write a file, unmount');
    await execFileP('mkfs.ext4', ['-q', '-E', 'nodiscard,lazy_itable_init=0,lazy_journal_init=0', `/dev/mapper/${origin}`]);
    const mnt = join(dir, 'mnt');
    await mkdir(mnt);
    await sys.mount(`/dev/mapper/${origin}`, mnt, 'ext4');
    await writeFile(join(mnt, 'greeting.txt'), `hello from thin device 0, written at ${new Date().toISOString()}\n`);
    await sys.unmount(mnt);
    const thin = await dm.getThinStatus(origin);
    if (thin.state === 'ok') detail(`mapped: ${(thin.mappedSectors * 512) / MiB} MiB of 256 MiB`);

    step('create_snap 1 of the active volume (suspended for the message, resumed at once)');
    await dm.createSnapDevice(pool, 1, origin, 0);
    cleanups.unshift(() => dm.deleteDevice(pool, 1));
    detail(`origin suspended now: ${(await dm.getInfo(origin))?.suspended}`);

    step('activate the snapshot and read the file back from it');
    await dm.activateDevice(pool, snap, 1, 256 * MiB);
    cleanups.unshift(() => dm.removeDevice(snap));
    await sys.mount(`/dev/mapper/${snap}`, mnt, 'ext4', { readOnly: true });
    try {
      detail(`snapshot says: ${(await readFile(join(mnt, 'greeting.txt'), 'utf8')).trim()}`);
    } finally {
      await sys.unmount(mnt);
    }

    step('pool status');
    const status = await dm.getPoolStatus(pool);
    if (status.state === 'ok') {
      detail(`transaction ${status.transactionId}, mode ${status.mode}, needs_check ${status.needsCheck}`);
      detail(`data ${status.dataUsedBlocks}/${status.dataTotalBlocks} blocks of 64 KiB, metadata ${status.metadataUsedBlocks}/${status.metadataTotalBlocks} blocks of 4 KiB`);
      detail(`discards ${status.discards}, no-space policy ${status.noSpacePolicy}`);
    } else {
      detail(`pool state: ${status.state}`);
    }
    detail(`devices: ${(await dm.listDevices()).map((d) => `${d.name} (${d.major}:${d.minor})`).join(', ')}`);
  } catch (err) {
    failure = err;
  }
  step('teardown: remove the volumes, delete the thin ids, remove the pool (the loop devices go with it)');
  for (const undo of cleanups) {
    try {
      await undo();
    } catch (err) {
      failure ??= err;
    }
  }
  await rm(dir, { recursive: true, force: true });
  if (failure !== undefined) throw failure;
  detail(`left behind: ${(await dm.listDevices()).filter((d) => d.name.startsWith(prefix)).length} devices`);
}

if (require.main === module) {
  runFoundationDemo().then(
    () => step('done'),
    (err: unknown) => {
      process.stderr.write(`demo failed: ${err instanceof Error ? err.stack : String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
