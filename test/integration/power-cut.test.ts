/**
 * Power cuts at every flush (issue 15). The DeviceSet root lives on an ext4 whose device sits
 * behind dm-log-writes, so its pool's loop files and its metadata files are all logged. A
 * workload of creates, snapshots, writes and deletes runs, with a log mark before and after
 * each operation. Then the log is replayed onto a replica, forward, and at each chosen
 * flush/FUA point a throwaway snapshot of the replica (dm-snapshot, non-persistent) is what a
 * power cut there would have left: e2fsck, mount, open the DeviceSet, and check that the pool
 * and the metadata agree, that thin_check is clean, and that every device whose data was
 * reported durable (the operation that wrote it had resolved) reads it back.
 *
 * DEVMAPPER_POWER_CUT_MARKS: how many points to check, 8 by default (evenly spread, plus the
 * last); with a value the points are a seeded sample (DEVMAPPER_POWER_CUT_SEED, printed) of
 * that many, or every point when the log has fewer. A seed picks the same positions in the
 * list of points, but the log itself differs by a few entries from run to run (timing).
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, fsyncSync, openSync, writeSync } from 'node:fs';
import { mkdir, readFile, readdir, rename, rm, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { dm, sys } from '../../lib';
import { DeviceSet } from '../../lib/deviceset';
import { runTask } from '../../lib/dm/task';
import { readJson, testOptions, thinCheck } from '../helpers/deviceset';
import { describeKernel, kernelEnv } from '../helpers/kernel-env';
import { flushPoints, LogReplayer, parseLog, type LogEntry } from '../helpers/log-writes';
import { SCRATCH_ROOT, uniquePrefix } from '../helpers/names';

const execFileP = promisify(execFile);
const MIB = 2 ** 20;
const FS_BYTES = 384 * MIB;
const LOG_BYTES = 2048 * MIB;
const COW_BYTES = 256 * MIB;
const MARKS_ENV = process.env.DEVMAPPER_POWER_CUT_MARKS;
const DEFAULT_MARKS = 8;

/** One operation of the workload; `content` names what a write leaves in the device's file. */
type Op =
  | { kind: 'open' }
  | { kind: 'add'; hash: string; parent: string }
  | { kind: 'write'; hash: string; content: string }
  | { kind: 'delete'; hash: string };

const WORKLOAD: Op[] = [
  { kind: 'open' },
  { kind: 'add', hash: 'img', parent: '' },
  { kind: 'write', hash: 'img', content: 'v1' },
  { kind: 'add', hash: 'c1', parent: 'img' },
  { kind: 'write', hash: 'c1', content: 'v2' },
  { kind: 'add', hash: 'c2', parent: 'img' },
  { kind: 'write', hash: 'img', content: 'v3' },
  { kind: 'delete', hash: 'c1' },
  { kind: 'add', hash: 'c3', parent: 'c2' },
  { kind: 'write', hash: 'c3', content: 'v4' },
  { kind: 'delete', hash: 'c2' },
  { kind: 'delete', hash: 'img' },
  { kind: 'add', hash: 'c4', parent: 'c3' },
  { kind: 'write', hash: 'c4', content: 'v5' },
  { kind: 'delete', hash: 'c3' },
];

/** The file each device holds, with bytes known per content name (64 KiB, not compressible). */
const FILE = 'content';
function contentBytes(name: string): Buffer {
  const parts: Buffer[] = [];
  for (let i = 0; parts.length * 32 < 64 * 1024; i++) parts.push(createHash('sha256').update(`${name}:${i}`).digest());
  return Buffer.concat(parts);
}

/** Per device: undefined = absent; null = present, no file; else the content name. */
type State = Map<string, string | null>;

function apply(state: State, op: Op): State {
  const next = new Map(state);
  if (op.kind === 'open') next.set('', null);
  else if (op.kind === 'add') next.set(op.hash, state.get(op.parent) ?? null);
  else if (op.kind === 'write') next.set(op.hash, op.content);
  else next.delete(op.hash);
  return next;
}

/** states[k]: after the first k operations resolved. */
const STATES: State[] = WORKLOAD.reduce<State[]>((acc, op) => [...acc, apply(acc[acc.length - 1], op)], [new Map()]);
const EVERY_HASH = [...new Set(WORKLOAD.flatMap((op) => (op.kind === 'open' ? [''] : [op.hash])))];

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The points to check: evenly spread plus the last, or a seeded sample of `n`. */
function choosePoints(points: LogEntry[]): { chosen: LogEntry[]; how: string } {
  if (MARKS_ENV === undefined) {
    const n = Math.min(DEFAULT_MARKS, points.length);
    const idx = new Set<number>([points.length - 1]);
    for (let i = 0; i < n - 1; i++) idx.add(Math.floor(((i + 0.5) * points.length) / (n - 1 || 1)) % points.length);
    return { chosen: [...idx].sort((a, b) => a - b).map((i) => points[i]), how: `${idx.size} evenly spread` };
  }
  const n = Number(MARKS_ENV);
  if (!Number.isSafeInteger(n) || n <= 0) throw new Error(`DEVMAPPER_POWER_CUT_MARKS must be a positive integer, not ${MARKS_ENV}`);
  if (n >= points.length) return { chosen: points, how: `every one of ${points.length}` };
  const seed = Number(process.env.DEVMAPPER_POWER_CUT_SEED ?? Math.floor(Math.random() * 2 ** 31));
  const rand = mulberry32(seed);
  // A partial Fisher-Yates shuffle picks n distinct points; the last point is always one.
  const pool = points.slice(0, -1);
  for (let i = 0; i < n - 1; i++) {
    const j = i + Math.floor(rand() * (pool.length - i));
    [pool[i], pool[j]] = [pool[j], pool[i]];
  }
  const chosen = [...pool.slice(0, n - 1), points[points.length - 1]].sort((a, b) => a.index - b.index);
  return { chosen, how: `a sample of ${n} with DEVMAPPER_POWER_CUT_SEED=${seed}` };
}

/** A device-mapper device with one target, made through the library's task runner. */
async function createTarget(name: string, sectors: number, type: string, params: string): Promise<void> {
  await runTask({ type: 'create', name, targets: [{ start: 0, length: sectors, type, params }], addNode: 'create', operation: `create ${type}` });
}

function writeDurably(path: string, data: Buffer): void {
  const fd = openSync(path, 'w');
  try {
    for (let done = 0; done < data.length; ) done += writeSync(fd, data, done, data.length - done);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function fsyncDir(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

describeKernel('power cuts at every flush (dm-log-writes replay)', () => {
  jest.setTimeout(3_600_000);

  test('every chosen flush point leaves a root that opens, agrees with its pool and keeps what was durable', async () => {
    const prefix = uniquePrefix();
    const dir = join(SCRATCH_ROOT, prefix);
    const fsDir = join(dir, 'fs');
    const root = join(fsDir, 'root');
    const mnt = join(dir, 'mnt');
    await mkdir(fsDir, { recursive: true });
    await mkdir(mnt, { recursive: true });
    const files = { backing: join(dir, 'backing.img'), log: join(dir, 'log.img'), replica: join(dir, 'replica.img'), cow: join(dir, 'cow.img') };
    await writeFile(files.backing, '');
    await truncate(files.backing, FS_BYTES);
    await writeFile(files.log, '');
    await truncate(files.log, LOG_BYTES);
    const options = testOptions(['dm.loopdatasize=512M', 'dm.loopmetadatasize=16M']);
    const lwName = `${prefix}-logw`;
    const snapName = `${prefix}-cut`;
    try {
      await runAndCheck({ fsDir, root, mnt, files, options, lwName, snapName });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

/** Where the logged file system is mounted, the DeviceSet root on it, the files behind it, the names. */
interface Setup {
  fsDir: string;
  root: string;
  mnt: string;
  files: { backing: string; log: string; replica: string; cow: string };
  options: string[];
  lwName: string;
  snapName: string;
}

/** Runs the workload on the logged file system, then replays the log and checks the chosen points. */
async function runAndCheck({ fsDir, root, mnt, files, options, lwName, snapName }: Setup): Promise<void> {
  const t0 = Date.now();

  // 1. The workload, logged.
  const loops: sys.LoopDevice[] = [];
  let lwMade = false;
  let fsMounted = false;
  try {
    const backing = await sys.attachLoopDevice(files.backing);
    loops.push(backing);
    const logDev = await sys.attachLoopDevice(files.log);
    loops.push(logDev);
    await createTarget(lwName, FS_BYTES / 512, 'log-writes', `${backing.path} ${logDev.path}`);
    lwMade = true;
    const mark = (m: string): Promise<string> => dm.sendMessage(lwName, `mark ${m}`);
    // Inode tables and journal written now, not by ext4lazyinit at some later flush.
    await execFileP('mkfs.ext4', ['-q', '-F', '-E', 'nodiscard,lazy_itable_init=0,lazy_journal_init=0', `/dev/mapper/${lwName}`]);
    await mark('mkfs');
    await sys.mount(`/dev/mapper/${lwName}`, fsDir, 'ext4');
    fsMounted = true;
    let ds: DeviceSet | null = null;
    try {
      for (const [k, op] of WORKLOAD.entries()) {
        await mark(`b:${k + 1}`);
        if (op.kind === 'open') ds = await DeviceSet.open(root, { doInit: true, options });
        else if (op.kind === 'add') await ds!.addDevice(op.hash, op.parent);
        else if (op.kind === 'delete') await ds!.deleteDevice(op.hash);
        else {
          const at = join(mnt, op.hash);
          await mkdir(at, { recursive: true });
          await ds!.mountDevice(op.hash, at);
          try {
            // Replaced atomically: the old content or the new, never a mix.
            writeDurably(join(at, `${FILE}.tmp`), contentBytes(op.content));
            await rename(join(at, `${FILE}.tmp`), join(at, FILE));
            fsyncDir(at);
          } finally {
            await ds!.unmountDevice(op.hash, at);
          }
        }
        await mark(`e:${k + 1}`);
      }
    } finally {
      await ds?.shutdown();
    }
    await mark('shutdown');
  } finally {
    if (fsMounted) await sys.unmount(fsDir);
    if (lwMade) await dm.removeDevice(lwName);
    for (const l of loops) await l.detach();
  }
  const workloadMs = Date.now() - t0;

  // 2. The log: flush points, and what had resolved before each.
  const log = parseLog(files.log);
  const marks = log.entries.filter((e) => e.mark !== undefined);
  expect(marks.map((e) => e.mark)).toEqual(['mkfs', ...WORKLOAD.flatMap((_, k) => [`b:${k + 1}`, `e:${k + 1}`]), 'shutdown', 'dm-log-writes-end']);
  // Before mkfs returned there is no file system to speak of: the points start after it.
  const points = flushPoints(log).filter((e) => e.index > marks[0].index);
  const { chosen, how } = choosePoints(points);
  console.log(
    `power-cut: udev ${kernelEnv().udev}; workload ${workloadMs} ms; log ${log.entries.length} entries, ${points.length} flush/FUA points; checking ${how}`,
  );

  // 3. Replay and check.
  await writeFile(files.replica, '');
  await truncate(files.replica, FS_BYTES);
  await writeFile(files.cow, '');
  await truncate(files.cow, COW_BYTES);
  const replayer = new LogReplayer(files.log, log, files.replica);
  const checkLoops: sys.LoopDevice[] = [];
  const checked = { points: 0, devicesRead: 0, inFlight: 0, rolledBack: 0 };
  const t1 = Date.now();
  try {
    const replica = await sys.attachLoopDevice(files.replica);
    checkLoops.push(replica);
    const cow = await sys.attachLoopDevice(files.cow);
    checkLoops.push(cow);
    for (const point of chosen) {
      replayer.replayTo(point.index);
      // The last mark before the point: 'e:k' = k operations resolved, none in flight;
      // 'b:k' = k-1 resolved, operation k in flight (its effect may or may not be there).
      const last = marks.filter((m) => m.index < point.index).pop()?.mark ?? '';
      const m = /^([be]):(\d+)$/.exec(last);
      let done: number;
      let inFlight: Op | null = null;
      if (m) {
        done = m[1] === 'e' ? Number(m[2]) : Number(m[2]) - 1;
        if (m[1] === 'b') inFlight = WORKLOAD[done];
      } else done = last === 'shutdown' || last === 'dm-log-writes-end' ? WORKLOAD.length : 0;
      const context = `point ${point.index} (after mark '${last || 'none'}')`;
      await checkPoint({ context, done, inFlight, replica: replica.path, cow: cow.path, snapName, fsDir, root, mnt, options, checked });
      checked.points++;
      if (inFlight) checked.inFlight++;
    }
  } finally {
    replayer.close();
    if (sys.isMountPoint(fsDir)) await sys.unmount(fsDir);
    if (await dm.getInfo(snapName)) await dm.removeDevice(snapName);
    for (const l of checkLoops) await l.detach();
  }
  console.log(
    `power-cut: udev ${kernelEnv().udev}; checked ${checked.points} points (${checked.inFlight} with an operation in flight, ` +
      `${checked.rolledBack} opens that rolled a transaction back), ${checked.devicesRead} device reads; ` +
      `replayed ${Math.round(replayer.bytesWritten / MIB)} MiB; checks ${Date.now() - t1} ms`,
  );
  expect(checked.points).toBe(chosen.length);
}

interface PointSpec {
  context: string;
  /** Operations that had resolved. */
  done: number;
  /** The operation that had begun and not resolved, if any. */
  inFlight: Op | null;
  replica: string;
  cow: string;
  snapName: string;
  fsDir: string;
  root: string;
  mnt: string;
  options: string[];
  checked: { devicesRead: number; rolledBack: number };
}

async function checkPoint(p: PointSpec): Promise<void> {
  const sectors = FS_BYTES / 512;
  await createTarget(p.snapName, sectors, 'snapshot', `${p.replica} ${p.cow} N 8`);
  const dev = `/dev/mapper/${p.snapName}`;
  try {
    // The journal replays at mount; what is left after it must be clean.
    await sys.mount(dev, p.fsDir, 'ext4');
    await sys.unmount(p.fsDir);
    const fsck = await execFileP('e2fsck', ['-fn', dev]).catch((err: { code?: number; stdout?: string; stderr?: string }) => err);
    if ('code' in fsck && fsck.code) throw new Error(`${p.context}: e2fsck -fn exit ${fsck.code}: ${fsck.stdout ?? ''}${fsck.stderr ?? ''}`);
    await sys.mount(dev, p.fsDir, 'ext4');
    try {
      await checkRoot(p);
    } finally {
      await sys.unmount(p.fsDir);
    }
  } finally {
    await dm.removeDevice(p.snapName);
  }
}

async function checkRoot(p: PointSpec): Promise<void> {
  const before = STATES[p.done];
  const after = p.inFlight ? STATES[p.done + 1] : before;
  const flux = p.inFlight && p.inFlight.kind !== 'open' ? p.inFlight.hash : p.inFlight ? '' : null;
  const saved = await readJson(join(p.root, 'metadata', 'transaction-metadata')).catch(() => null);
  let ds: DeviceSet;
  try {
    ds = await DeviceSet.open(p.root, { doInit: true, options: p.options });
  } catch (err) {
    throw new Error(`${p.context}: the DeviceSet does not open: ${(err as Error).message}`);
  }
  const registered = new Map<string, number>();
  const devicesTx: number[] = [];
  try {
    for (const h of ['', ...(await ds.list())]) {
      const meta = ds.getDeviceMetadata(h);
      if (!meta) throw new Error(`${p.context}: ${h || 'base'} listed without metadata`);
      registered.set(h, meta.deviceId);
      devicesTx.push(meta.transactionId);
      // Registered means in the pool: creating its id again must fail.
      const made = await dm.createDevice(ds.poolName, meta.deviceId).then(
        () => true,
        (err: { code?: string }) => {
          if (err.code === 'EEXIST') return false;
          throw err;
        },
      );
      if (made) throw new Error(`${p.context}: device '${h}' is registered with id ${meta.deviceId}, which the pool does not hold`);
    }
    // Devices whose creation or deletion had resolved are there, or gone, as reported.
    for (const h of EVERY_HASH) {
      if (h === flux || (h === '' && p.done === 0)) continue;
      const want = before.has(h);
      if (registered.has(h) !== want) throw new Error(`${p.context}: device '${h}' is ${registered.has(h) ? '' : 'not '}registered, expected ${want ? '' : 'not '}`);
    }
    const tx = await readJson(join(p.root, 'metadata', 'transaction-metadata'));
    const status = await dm.getPoolStatus(ds.poolName);
    if (status.state !== 'ok') throw new Error(`${p.context}: the pool reports ${status.state}`);
    if (status.transactionId !== tx.open_transaction_id)
      throw new Error(`${p.context}: the pool is at transaction ${status.transactionId}, the metadata at ${tx.open_transaction_id}`);
    // No device was made by a transaction the pool never committed.
    const newest = Math.max(...devicesTx);
    if (newest > status.transactionId)
      throw new Error(`${p.context}: a device records transaction ${newest}, the pool is at ${status.transactionId}`);
    if (saved && (saved.open_transaction_id as number) > status.transactionId) p.checked.rolledBack++;
    // What resolved writes left must read back; an operation in flight may have left either side.
    for (const [h] of registered) {
      if (h === '') continue;
      let allowed: (string | null | undefined)[];
      if (h !== flux) allowed = [before.get(h)];
      else if (p.inFlight!.kind === 'delete') continue; // its blocks may be discarded already
      else allowed = [before.get(h), after.get(h)];
      const at = join(p.mnt, `check-${h}`);
      await mkdir(at, { recursive: true });
      await ds.mountDevice(h, at);
      let got: string | null;
      try {
        const bytes = await readFile(join(at, FILE)).catch((err: NodeJS.ErrnoException) => {
          if (err.code === 'ENOENT') return null;
          throw err;
        });
        got = bytes === null ? null : (['v1', 'v2', 'v3', 'v4', 'v5'].find((v) => contentBytes(v).equals(bytes)) ?? 'garbage');
        const strays = (await readdir(at)).filter((n) => n !== FILE && n !== 'lost+found' && n !== `${FILE}.tmp`);
        if (strays.length) throw new Error(`${p.context}: device '${h}' holds unexpected entries ${strays.join(', ')}`);
      } finally {
        await ds.unmountDevice(h, at);
      }
      p.checked.devicesRead++;
      if (!allowed.includes(got)) throw new Error(`${p.context}: device '${h}' reads ${got}, expected ${allowed.join(' or ')}`);
    }
  } finally {
    await ds.shutdown();
  }
  // The pool's own view, from its metadata once it is down: the ids it holds are exactly the
  // registered ones, at the metadata's transaction id, and thin_check finds nothing wrong.
  const metadataFile = join(p.root, 'devicemapper', 'metadata');
  await thinCheck(metadataFile);
  const { stdout } = await execFileP('thin_dump', [metadataFile], { maxBuffer: 64 * MIB });
  const poolIds = [...stdout.matchAll(/<device dev_id="(\d+)"/g)].map((x) => Number(x[1])).sort((a, b) => a - b);
  const metaIds = [...registered.values()].sort((a, b) => a - b);
  if (poolIds.join() !== metaIds.join()) throw new Error(`${p.context}: the pool holds ids ${poolIds.join(',')}, the metadata names ${metaIds.join(',')}`);
  const poolTx = Number(/<superblock [^>]*transaction="(\d+)"/.exec(stdout)?.[1]);
  const tx = await readJson(join(p.root, 'metadata', 'transaction-metadata'));
  if (poolTx !== tx.open_transaction_id) throw new Error(`${p.context}: thin_dump's transaction is ${poolTx}, the metadata's ${tx.open_transaction_id}`);
}
