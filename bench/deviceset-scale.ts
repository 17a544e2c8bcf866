/**
 * DeviceSet scale: how DeviceSet.open, the process's memory and a layer's
 * lifecycle behave with many devices registered. Per size N, a root of its own:
 *
 *   1. open a fresh DeviceSet (pool and base device made), add the image device;
 *   2. register N more devices in bulk, as many as addDevice would leave behind but without
 *      its ~90 ms a call: the thin ids made in the DeviceSet's pool by the C program
 *      (create_thin messages, a thousand a batch), then, after shutdown, one metadata file
 *      each in Docker's format (the library's own encoder) and deviceset-metadata's
 *      next_device_id moved past them. create_thin leaves the pool's transaction id alone and
 *      the files carry that id, so the pool and transaction-metadata still agree and the next
 *      open has nothing to roll back (checked, and the opened DeviceSet must list them all);
 *   3. after one untimed open of each, time `opens` opens of each filled root (each shut
 *      down again before the next open, so one DeviceSet is open at a time; the pool is made
 *      again from its loop files, as at a daemon's restart), the sizes taken in turn, the
 *      order rotating; V8's heap after a full GC before each open, and RSS and the heap
 *      after it;
 *   4. all roots open together, `lifecycles` DeviceSet lifecycles on each (the steps of
 *      lifecycle.ts, one untimed first), in batches going round the sizes; with udev each
 *      batch carries the udev work it left behind (udev-backlog.ts).
 *
 * With udev, udev settles (untimed) before each timed open and between any two batches.
 *
 * The roots live side by side until the end, so that a slow spell of the shared machine
 * falls on all sizes alike rather than on the one being measured.
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { mkdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as dm from '../dist/dm';
import { DeviceSet } from '../dist/deviceset';
import { devicePrefixFromStat } from '../dist/internal';
import {
  DEVICE_SET_FILE,
  TRANSACTION_FILE,
  decodeDeviceSet,
  decodeTransaction,
  encodeDevice,
  encodeDeviceSet,
} from '../dist/internal';
import { deviceSetOptions, deviceSetSteps, LAYER_BYTES, lifecycleStats, type Timed, timeSteps, unmountUnder } from './lifecycle';
import { removeWithPrefix } from './pool';
import { RawClient } from './raw-client';
import { summarize } from './stats';
import { emptyBacklog, settleReaper, UdevBacklog } from './udev-backlog';
import type { DsScaleOpen, DsScalePoint, DsScaleResult, MemorySnapshot } from './types';

export interface DsScalePlan {
  /** dist-bench/bin/dm_raw_bench: makes the filler's thin ids. */
  rawBinary: string;
  udevSync: boolean;
  sizes: number[];
  opens: number;
  lifecycles: number;
  /** Lifecycles per root and round. */
  batch: number;
  progress?: (line: string) => void;
}

/** create_thin messages per request to the C program. */
const FILL_CHUNK = 1000;

/** The filler's hashes: fill-000000, fill-000001, ... */
function fillerHash(i: number): string {
  return `fill-${String(i).padStart(6, '0')}`;
}

/** Memory after a full GC (--expose-gc), as process.memoryUsage() reports it. */
function memoryAfterGc(): MemorySnapshot {
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  gc?.();
  const m = process.memoryUsage();
  return { rss: m.rss, heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external, arrayBuffers: m.arrayBuffers };
}

function median(a: number[]): number {
  const s = [...a].sort((x, y) => x - y);
  return s.length ? (s[Math.floor((s.length - 1) / 2)] as number) : NaN;
}

/** Writes a file as the DeviceSet would (temporary file, rename); the guest's /tmp needs no fsync. */
function replaceFile(file: string, text: string): void {
  const temp = `${file}.bench-tmp`;
  writeFileSync(temp, text, { mode: 0o600 });
  renameSync(temp, file);
}

/**
 * Steps 1 and 2: a fresh root with the image device and `size` more devices registered in
 * bulk. Leaves the root shut down.
 */
async function fillRoot(root: string, size: number, options: string[], rawBinary: string): Promise<DsScalePoint['fill']> {
  const ds = await DeviceSet.open(root, { options });
  let createThin: number[] = [];
  let first: number;
  let transactionId: number;
  let createThinWallNs = 0;
  try {
    await ds.addDevice('image', '');
    const image = ds.getDeviceMetadata('image');
    const base = ds.getDeviceMetadata('');
    if (!image || !base) throw new Error('dsscale: the new DeviceSet has no base or image device');
    first = Math.max(image.deviceId, base.deviceId) + 1;
    const status = await dm.getPoolStatus(ds.poolName);
    if (status.state !== 'ok') throw new Error(`dsscale: the DeviceSet's pool reports ${status.state}`);
    transactionId = status.transactionId;
    const { client } = await RawClient.start(rawBinary, ds.poolName);
    try {
      const t0 = process.hrtime.bigint();
      for (let done = 0; done < size; ) {
        const n = Math.min(FILL_CHUNK, size - done);
        createThin = createThin.concat(await client.batch('create_thin', n, { id: first + done }));
        done += n;
      }
      createThinWallNs = Number(process.hrtime.bigint() - t0);
    } finally {
      await client.close();
    }
  } finally {
    await ds.shutdown();
  }
  const t1 = process.hrtime.bigint();

  // Shutdown wrote deviceset-metadata last: the filler's files go in after it.
  const metaDir = join(root, 'metadata');
  const tx = decodeTransaction(readFileSync(join(metaDir, TRANSACTION_FILE), 'utf8'), TRANSACTION_FILE);
  if (tx.openTransactionId !== transactionId)
    throw new Error(`dsscale: transaction-metadata holds ${tx.openTransactionId}, the pool ${transactionId}: the next open would roll back`);
  const saved = decodeDeviceSet(readFileSync(join(metaDir, DEVICE_SET_FILE), 'utf8'), DEVICE_SET_FILE);
  if (saved.nextDeviceId >= first) throw new Error(`dsscale: next_device_id ${saved.nextDeviceId} is past the filler's first id ${first}`);
  for (let i = 0; i < size; i++) {
    const text = encodeDevice({ deviceId: first + i, size: LAYER_BYTES, transactionId, initialized: false, deleted: false });
    writeFileSync(join(metaDir, fillerHash(i)), text, { mode: 0o600 });
  }
  replaceFile(join(metaDir, DEVICE_SET_FILE), encodeDeviceSet({ ...saved, nextDeviceId: first + size - 1 }));
  const t2 = process.hrtime.bigint();
  const filesMs = Number(t2 - t1) / 1e6;
  return { createThin: summarize(createThin), createThinMs: createThinWallNs / 1e6, filesMs, totalMs: createThinWallNs / 1e6 + filesMs };
}

/** One size's root and what was measured on it. */
interface Root {
  size: number;
  dir: string;
  root: string;
  mnt: string;
  /** Docker's device prefix of the root: its devices' names start with it. */
  prefix: string;
  fill?: DsScalePoint['fill'];
  opens: DsScaleOpen[];
  timed: Timed;
  ds: DeviceSet | null;
  serial: number;
}

function rotate<T>(a: readonly T[], by: number): T[] {
  const k = by % a.length;
  return [...a.slice(k), ...a.slice(0, k)];
}

/** One timed open of a filled root, the memory before and after it, the check that it holds every device; shut down again. */
async function timedOpen(r: Root, options: string[]): Promise<DsScaleOpen> {
  const before = memoryAfterGc();
  const t0 = process.hrtime.bigint();
  const ds = await DeviceSet.open(r.root, { options });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  try {
    const after = memoryAfterGc();
    const listed = (await ds.list()).length;
    // The image and the filler; fewer would mean the open rolled back or skipped some.
    if (listed !== r.size + 1) throw new Error(`dsscale: the open DeviceSet lists ${listed} devices, not ${r.size + 1}`);
    return { ms, ...after, heapUsedBefore: before.heapUsed };
  } finally {
    await ds.shutdown();
  }
}

async function lifecycles(r: Root, count: number, into: Timed | null): Promise<void> {
  const ds = r.ds;
  if (!ds) throw new Error('dsscale: the root is not open');
  for (let i = 0; i < count; i++) {
    const hash = `life-${++r.serial}`;
    const t = await timeSteps(deviceSetSteps(ds, hash, join(r.mnt, hash)));
    into?.ns.push(t.ns);
    into?.steps.push(t.steps);
  }
}

/** Whatever a failure left of a root: mounts, thin devices, the pool (its loop devices go with it), the files. */
async function removeRoot(r: Root, log: (line: string) => void): Promise<void> {
  await r.ds?.shutdown().catch((err: unknown) => log(`${r.size} devices: DeviceSet shutdown: ${String(err)}`));
  r.ds = null;
  await unmountUnder(r.dir);
  // No prefix: the root's directory was never made, so neither was anything in the kernel.
  if (r.prefix) await removeWithPrefix(`${r.prefix}-`).catch((err: unknown) => log(`${r.size} devices: removing devices: ${String(err)}`));
  await rm(r.dir, { recursive: true, force: true });
}

/**
 * Every size's root is filled first; then the opens go round the sizes (the order rotating),
 * one DeviceSet open at a time; then all are open together and the lifecycles go round them
 * batch by batch. So a slow spell of the shared machine falls on all sizes alike.
 */
export async function measureDeviceSetScale(plan: DsScalePlan): Promise<DsScaleResult> {
  const log = plan.progress ?? (() => undefined);
  const options = deviceSetOptions(plan.udevSync);
  const roots: Root[] = [];
  try {
    for (const size of [...plan.sizes].sort((a, b) => a - b)) {
      const dir = join(tmpdir(), `devmapper-bench-${process.pid}-dsscale-${size}`);
      const r: Root = { size, dir, root: join(dir, 'root'), mnt: join(dir, 'mnt'), prefix: '', opens: [], timed: { ns: [], steps: [], udev: emptyBacklog() }, ds: null, serial: 0 };
      roots.push(r);
      await mkdir(r.root, { recursive: true, mode: 0o700 });
      await mkdir(r.mnt, { recursive: true, mode: 0o700 });
      r.prefix = devicePrefixFromStat(await stat(r.root, { bigint: true }));
      const fill = await fillRoot(r.root, size, options, plan.rawBinary);
      r.fill = fill;
      log(
        `${size} devices: filled in ${(fill.totalMs / 1000).toFixed(1)} s (create_thin ${(fill.createThinMs / 1000).toFixed(1)} s, ` +
          `metadata files ${(fill.filesMs / 1000).toFixed(1)} s)`,
      );
    }
    // One untimed open of each root first: in udev-off runs the first open after the fill
    // took up to twice as long as the next ones.
    const udev = new UdevBacklog(plan.udevSync);
    for (const r of roots) await timedOpen(r, options);
    for (let k = 0; k < plan.opens; k++) {
      for (const r of rotate(roots, k)) {
        await udev.quiesce(settleReaper);
        r.opens.push(await timedOpen(r, options));
      }
      log(`opens ${k + 1}/${plan.opens}: ${roots.map((r) => `${r.size} devices ${(r.opens[k] as DsScaleOpen).ms.toFixed(0)} ms`).join(', ')}`);
    }
    for (const r of roots) {
      r.ds = await DeviceSet.open(r.root, { options });
      await lifecycles(r, 1, null);
    }
    await udev.quiesce(settleReaper);
    const rounds = Math.ceil(plan.lifecycles / plan.batch);
    for (let k = 0; k < rounds; k++) {
      const b = Math.min(plan.batch, plan.lifecycles - k * plan.batch);
      for (const r of rotate(roots, k)) {
        await lifecycles(r, b, r.timed);
        await udev.afterBatch(r.timed.ns, b, settleReaper, r.timed.udev!);
      }
      log(`lifecycles, round ${k + 1}/${rounds}`);
    }
    const points = roots.map((r) => {
      const lifecycle = lifecycleStats(r.timed);
      return {
        devices: r.size,
        registered: r.size + 2,
        fill: r.fill as DsScalePoint['fill'],
        opens: r.opens,
        openMedianMs: median(r.opens.map((o) => o.ms)),
        lifecycle,
      };
    });
    log(points.map((p) => `${p.devices} devices: open ${p.openMedianMs.toFixed(0)} ms, lifecycle ${(p.lifecycle.mean / 1e6).toFixed(0)} ms`).join('; '));
    return { options, sizeBytes: LAYER_BYTES, gcExposed: typeof (globalThis as { gc?: unknown }).gc === 'function', points };
  } finally {
    for (const r of roots) await removeRoot(r, log);
  }
}
