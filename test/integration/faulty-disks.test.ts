/**
 * Faulty disks under the pool: a DeviceSet in direct mode (dm.datadev, dm.metadatadev) on dm
 * devices of our own over loop files, whose tables are swapped mid-run for dm-flakey
 * (error_writes, drop_writes, everything failing), dm-delay, dm-dust (bad blocks) and the
 * `error` target, then back to linear. For each fault: every DeviceSet call returns within its
 * budget and fails, if it does, with a DevmapperError naming what it did; status and the pool
 * events report the pool's mode; the metadata files name no committed id the pool lacks; and
 * with the disk healed the set closes, thin_check is clean, the set reopens and works.
 *
 * DEVMAPPER_FAULT_ROUNDS: how many times each fault is injected, each time into a fresh pool;
 * set (as `npm run test:soak` does), it also runs the faults the quick default leaves out
 * (data: every I/O failing under flakey; metadata: flakey error_writes), whose outcomes
 * match those of data: error_writes and metadata: error.
 */
import { mkdir, readdir, readFile, rm, truncate, writeFile, open } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { DevmapperError, type PoolEvent } from '../../lib';
import { DeviceSet } from '../../lib/deviceset';
import { kernelEnv, describeKernel } from '../helpers/kernel-env';
import { newRoot, testOptions } from '../helpers/deviceset';
import { collectPoolEvents } from '../helpers/pool-events';
import { FaultyDisk, faultName, thinCheckDevice, thinDumpSummary, type Fault } from '../helpers/fault-devices';

const MiB = 1024 * 1024;
const FULL = process.env.DEVMAPPER_FAULT_ROUNDS !== undefined;
const ROUNDS = Math.max(1, Number(process.env.DEVMAPPER_FAULT_ROUNDS ?? 1) || 1);
/** Every DeviceSet call and every write of the test's own must return within this (the sandbox kernel is slow). */
const OP_BUDGET_MS = 30_000;
/** From a change of the pool's mode to its event. */
const EVENT_BOUND_MS = 3000;

type Side = 'data' | 'metadata';

interface Outcome {
  op: string;
  ms: number;
  error?: unknown;
}

/** Runs one operation, noting how long it took and how it failed; never throws. A call past the budget counts as failed (and hung). */
async function timed(log: Outcome[], op: string, fn: () => Promise<unknown>): Promise<boolean> {
  const started = Date.now();
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      fn(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${op} still running after ${OP_BUDGET_MS} ms`)), OP_BUDGET_MS);
      }),
    ]);
    log.push({ op, ms: Date.now() - started });
    return true;
  } catch (error) {
    log.push({ op, ms: Date.now() - started, error });
    return false;
  } finally {
    clearTimeout(timer);
  }
}

/** The device ids the metadata files hold, and the transaction file. */
async function metadataView(root: string): Promise<{ ids: Map<string, number>; tx: { open: number; hash: string; id: number } }> {
  const dir = join(root, 'metadata');
  const ids = new Map<string, number>();
  for (const f of await readdir(dir)) {
    if (f === 'deviceset-metadata' || f === 'transaction-metadata' || f.startsWith('.')) continue;
    ids.set(f, JSON.parse(await readFile(join(dir, f), 'utf8')).device_id);
  }
  const t = JSON.parse(await readFile(join(dir, 'transaction-metadata'), 'utf8'));
  return { ids, tx: { open: t.open_transaction_id, hash: t.device_hash, id: t.device_id } };
}

/** A 4 MiB file written and fsynced on a mounted device: the test's own I/O, Node's errors. */
async function writeFileSynced(path: string): Promise<void> {
  const fh = await open(path, 'w');
  try {
    await fh.write(Buffer.alloc(4 * MiB, 0x33));
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** unmountDevice removes the mount point: each mount makes it again. */
async function mountAt(ds: DeviceSet, hash: string, path: string): Promise<void> {
  await mkdir(path, { recursive: true });
  await ds.mountDevice(hash, path);
}

interface FaultyPool {
  root: string;
  options: string[];
  data: FaultyDisk;
  metadata: FaultyDisk;
  mnt: string;
  /** Where the device written before the fault stays mounted while it is injected. */
  mntPre: string;
}

async function withFaultyPool(fn: (p: FaultyPool) => Promise<void>): Promise<void> {
  const root = await newRoot();
  const dir = dirname(root);
  const prefix = basename(dir);
  await mkdir(join(dir, 'disks'), { recursive: true });
  const dataFile = join(dir, 'disks', 'data');
  const metaFile = join(dir, 'disks', 'metadata');
  await writeFile(dataFile, '');
  await writeFile(metaFile, '');
  await truncate(dataFile, 256 * MiB);
  await truncate(metaFile, 16 * MiB);
  const data = await FaultyDisk.create(`${prefix}-fdata`, dataFile);
  try {
    const metadata = await FaultyDisk.create(`${prefix}-fmeta`, metaFile);
    try {
      const options = testOptions([`dm.datadev=${data.path}`, `dm.metadatadev=${metadata.path}`, 'dm.min_free_space=0%', 'dm.basesize=32M']);
      await fn({ root, options, data, metadata, mnt: join(dir, 'mnt'), mntPre: join(dir, 'mnt-pre') });
    } finally {
      await metadata.remove();
    }
  } finally {
    await data.remove();
    await rm(dir, { recursive: true, force: true });
  }
}

/** The pool's mode as status() gives it: rw, ro, out_of_data_space, ..., or 'fail' / 'error'. */
function modeOf(st: Awaited<ReturnType<DeviceSet['status']>>): string {
  return st.pool.state === 'ok' ? st.pool.mode : st.pool.state;
}

/** The event a pool in that mode must have sent. */
const EVENT_OF_MODE: Record<string, PoolEvent['type'] | undefined> = {
  ro: 'read-only',
  fail: 'failed',
  error: 'failed',
  out_of_data_space: 'out-of-data-space',
};

/**
 * One fault, one round: the set is open on a healthy pool; the fault goes in, the operations
 * run, the disk is healed, the set is closed and checked, and reopened. Returns what happened,
 * for the summary line.
 */
async function faultRound(p: FaultyPool, side: Side, fault: Fault, round: number): Promise<Record<string, unknown>> {
  const disk = side === 'data' ? p.data : p.metadata;
  const log: Outcome[] = [];
  let ds = await DeviceSet.open(p.root, { doInit: true, options: p.options });
  let modeDuring = '';
  let events: string[] = [];
  try {
    // A device with a file written before the fault, left mounted: a snapshot of it under the
    // fault freezes its file system for the suspend.
    const pre = `pre${round}`;
    await ds.addDevice(pre, '');
    await mountAt(ds, pre, p.mntPre);
    await writeFileSynced(join(p.mntPre, 'before'));
    const watch = collectPoolEvents(ds);
    // The watch reports the pool's state on its start: the test pool is below Docker's
    // low-water mark (32768 blocks), so that event comes first; the fault's come after it.
    await watch.waitFor('low-water', EVENT_BOUND_MS);
    const eventsBefore = watch.seen.length;

    await disk.inject(fault);
    const a = `a${round}`;
    // Create first: nothing has read the status with a flush (which commits) under the fault,
    // so the first commit to meet it is the one after create_thin's message.
    const made = await timed(log, 'create', () => ds.addDevice(a, ''));
    await timed(log, 'status', () => ds.status());
    if (made) {
      await timed(log, 'snapshot', () => ds.addDevice(`b${round}`, a));
      if (await timed(log, 'mount', () => mountAt(ds, a, p.mnt))) {
        await timed(log, 'write (the test, on the mount)', () => writeFileSynced(join(p.mnt, 'during')));
        await timed(log, 'unmount', () => ds.unmountDevice(a, p.mnt));
      }
    }
    await timed(log, 'snapshot of a mounted device', () => ds.addDevice(`live${round}`, pre));
    await timed(log, 'write (the test, on the mount before the fault)', () => writeFileSynced(join(p.mntPre, 'during')));
    await timed(log, 'unmount (mounted before)', () => ds.unmountDevice(pre, p.mntPre));
    if (await timed(log, 'mount (written before)', () => mountAt(ds, pre, p.mnt))) {
      await timed(log, 'read (the test, on the mount)', () => readFile(join(p.mnt, 'before')));
      await timed(log, 'unmount (written before)', () => ds.unmountDevice(pre, p.mnt));
    }
    await timed(log, 'activate', () => ds.activateDevice(pre));
    await timed(log, 'deactivate', () => ds.deactivateDevice(pre));
    await timed(log, 'delete', () => ds.deleteDevice(pre));
    await timed(log, 'status', () => ds.status());
    const st = await ds.status();
    modeDuring = modeOf(st);

    // The pool's mode is reported by status and was sent as an event.
    const expected = EVENT_OF_MODE[modeDuring];
    if (expected) await watch.waitFor(expected, EVENT_BOUND_MS);
    events = watch.seen.slice(eventsBefore).map((e) => e.type);
    if (!expected) expect(events.filter((e) => e !== 'low-water' && e !== 'writable')).toEqual([]);

    // Every call returned in its budget; every failure of the library is typed and says what.
    for (const o of log) {
      expect({ op: o.op, ms: o.ms < OP_BUDGET_MS }).toEqual({ op: o.op, ms: true });
      if (!o.error) continue;
      if (o.op.includes('(the test')) {
        // Our own I/O on a file system whose disk fails: EIO (or EROFS once ext4 gave up). The
        // read may also find the file gone (ENOENT): on a pool gone read-only, ext4 could not
        // write its journal's blocks home (they were shared with the base, and copying needs a
        // new block), and the remount does not see them. The kernel's and ext4's doing: the
        // library made no call there.
        const e = o.error as NodeJS.ErrnoException;
        const allowed = o.op.startsWith('read') ? /^(EIO|ENOENT)$/ : /^(EIO|EROFS|ENOSPC)$/;
        expect({ op: o.op, code: e.code, message: e.message }).toEqual({ op: o.op, code: expect.stringMatching(allowed), message: e.message });
        continue;
      }
      expect(o.error).toBeInstanceOf(DevmapperError);
      const e = o.error as DevmapperError;
      expect({ op: o.op, code: e.code }).toEqual({ op: o.op, code: expect.stringMatching(/^(EIO|EROFS|EUCLEAN|EOPNOTSUPP|ENOSPC|EINVAL|ENODATA|ERR_POOL_FAILED|ERR_POOL_NOT_WRITABLE|ERR_COMMAND_FAILED)$/) });
      expect(e.operation ?? e.device).toBeTruthy();
    }
    await watch.stop();
    await disk.heal();
  } finally {
    // Healed or not, the set closes: nothing of it may stay active.
    if ((await disk.targetType()) !== 'linear') await disk.heal();
    await ds.shutdown();
  }

  const summary: Record<string, unknown> = {
    fault: `${side}: ${faultName(fault)}`,
    round,
    modeDuring,
    events,
    failed: log.filter((o) => o.error).map((o) => `${o.op}: ${o.error instanceof DevmapperError ? o.error.code : (o.error as NodeJS.ErrnoException).code}`),
    slowestMs: Math.max(...log.map((o) => o.ms)),
  };

  // Pool torn down, disk healed: what is on the metadata device?
  const check = await thinCheckDevice(p.metadata.path);
  if (!check.ok) {
    // The metadata itself is damaged (thin_check says how): the library must refuse to open,
    // with a typed error naming the pool, and leave nothing active (the leak check).
    summary.after = 'corrupt';
    summary.thinCheck = check.output.split('\n').slice(0, 3).join(' / ');
    const err = await DeviceSet.open(p.root, { doInit: true, options: p.options }).then(
      async (opened) => {
        await opened.shutdown();
        return null;
      },
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(DevmapperError);
    expect((err as DevmapperError).device ?? (err as DevmapperError).operation).toBeTruthy();
    summary.openAfter = `${(err as DevmapperError).code} (${(err as DevmapperError).operation ?? ''}): ${(err as DevmapperError).message.split('\n')[0]}`;
    return summary;
  }
  // Every committed device file names an id the pool has (an open transaction's device is
  // rolled back at the next open).
  const { ids: poolIds, transactionId: poolTx } = await thinDumpSummary(p.metadata.path);
  const files = await metadataView(p.root);
  const uncommitted = files.tx.open > poolTx ? files.tx.hash : null;
  for (const [hash, id] of files.ids) if (hash !== uncommitted) expect({ hash, id, inPool: poolIds.includes(id) }).toEqual({ hash, id, inPool: true });
  summary.rolledBack = uncommitted;

  ds = await DeviceSet.open(p.root, { doInit: true, options: p.options });
  let st = await ds.status();
  summary.after = st.pool.state === 'ok' && st.pool.needsCheck ? 'needs_check' : 'clean';
  if (summary.after === 'needs_check') {
    // The kernel set needs_check: the pool comes back read-only until thin_check clears the
    // flag. The library says so and refuses changes; it does not clear the flag itself.
    // An unfinished transaction cannot be rolled back on it (the kernel refuses messages):
    // the open still works, the device is not listed, and its file stays with the transaction.
    try {
      expect(modeOf(st)).toBe('ro');
      expect(st.warnings.some((w) => /needs_check/.test(w))).toBe(true);
      if (uncommitted !== null) expect(await ds.list()).not.toContain(uncommitted);
      await expect(ds.addDevice(`refused${round}`, '')).rejects.toMatchObject({ code: 'ERR_POOL_NOT_WRITABLE' });
    } finally {
      await ds.shutdown();
    }
    const kept = await metadataView(p.root);
    if (uncommitted !== null) expect({ tx: kept.tx.hash, file: kept.ids.has(uncommitted) }).toEqual({ tx: uncommitted, file: true });
    const cleared = await thinCheckDevice(p.metadata.path, ['--clear-needs-check-flag']);
    expect(cleared).toMatchObject({ ok: true });
    ds = await DeviceSet.open(p.root, { doInit: true, options: p.options });
    st = await ds.status();
  }
  // Reopened on the healed disk: writable, the unfinished device rolled back, changes work.
  try {
    expect(modeOf(st)).toBe('rw');
    if (uncommitted !== null) expect(await ds.list()).not.toContain(uncommitted);
    await ds.addDevice(`after${round}`, '');
    for (const h of await ds.list()) await ds.deleteDevice(h);
  } finally {
    await ds.shutdown();
  }
  // The files and the pool agree exactly (thin_dump reads the whole metadata: it fails on damage).
  const after = await thinDumpSummary(p.metadata.path);
  const filesAfter = await metadataView(p.root);
  expect([...filesAfter.ids.values()].sort((x, y) => x - y)).toEqual(after.ids);
  expect(filesAfter.tx.open).toBe(after.transactionId);
  return summary;
}

const FAULT_TABLE: { side: Side; fault: Fault; quick: boolean }[] = [
  { side: 'data', fault: { kind: 'flakey-error-writes' }, quick: true },
  { side: 'data', fault: { kind: 'flakey-drop-writes' }, quick: true },
  { side: 'data', fault: { kind: 'flakey-error-all' }, quick: false },
  { side: 'data', fault: { kind: 'delay', ms: 20 }, quick: true },
  // Dust blocks are 64 KiB, the pool's block size: the first 32 data blocks hold the base's file system.
  { side: 'data', fault: { kind: 'dust', badBlocks: Array.from({ length: 32 }, (_, i) => i) }, quick: true },
  { side: 'data', fault: { kind: 'error' }, quick: true },
  { side: 'metadata', fault: { kind: 'flakey-error-writes' }, quick: false },
  { side: 'metadata', fault: { kind: 'error' }, quick: true },
];
const FAULTS = FAULT_TABLE.filter((f) => FULL || f.quick);

describeKernel(`DeviceSet on faulty disks (udev ${kernelEnv().udev})`, () => {
  jest.setTimeout(900_000);

  test.each(FAULTS.map((f) => [`${f.side}: ${faultName(f.fault)}`, f] as const))('%s', async (_title, { side, fault }) => {
    // A fresh pool each round: a round may leave the metadata needing repair.
    for (let round = 0; round < ROUNDS; round++)
      await withFaultyPool(async (p) => {
        const summary = await faultRound(p, side, fault, round);
        process.stdout.write(`faulty-disks ${JSON.stringify(summary)}\n`);
      });
  });

  test('opening on a data disk that fails every I/O: the base device probe is a typed EIO naming it, nothing is left active', async () => {
    await withFaultyPool(async (p) => {
      await (await DeviceSet.open(p.root, { doInit: true, options: p.options })).shutdown();
      await p.data.inject({ kind: 'error' });
      try {
        // The pool comes up (it reads only its metadata); reading the base's superblock fails.
        await expect(DeviceSet.open(p.root, { doInit: true, options: p.options })).rejects.toMatchObject({
          name: 'DevmapperError',
          code: 'EIO',
          operation: 'probe file system',
          device: expect.stringMatching(/-base$/),
        });
      } finally {
        await p.data.heal();
      }
      // Healed: it opens again.
      await (await DeviceSet.open(p.root, { doInit: true, options: p.options })).shutdown();
    });
  });
});
