/**
 * DeviceSet scale (issue 5): how DeviceSet.open, the process's memory and a layer's
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
 *   3. time `opens` opens of the filled root (each after the previous one's shutdown; the
 *      pool is made again from its loop files, as at a daemon's restart), with RSS and V8's
 *      heap after a full GC following each;
 *   4. with the last open's DeviceSet, time `lifecycles` DeviceSet lifecycles (the steps of
 *      lifecycle.ts), after one untimed.
 *
 * Sizes run one after another (each root is removed before the next is made), so a slow
 * spell of the shared machine can land on one size: compare the ratios with that in mind.
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { mkdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as dm from '../dist/dm';
import { DeviceSet } from '../dist/deviceset';
import { devicePrefixFromStat } from '../dist/deviceset/hash';
import {
  DEVICE_SET_FILE,
  TRANSACTION_FILE,
  decodeDeviceSet,
  decodeTransaction,
  encodeDevice,
  encodeDeviceSet,
} from '../dist/deviceset/metadata-store';
import { deviceSetOptions, deviceSetSteps, LAYER_BYTES, lifecycleStats, type Timed, timeSteps, unmountUnder } from './lifecycle';
import { removeWithPrefix } from './pool';
import { RawClient } from './raw-client';
import { summarize } from './stats';
import type { DsScaleOpen, DsScalePoint, DsScaleResult, MemorySnapshot } from './types';

export interface DsScalePlan {
  /** dist-bench/bin/dm_raw_bench: makes the filler's thin ids. */
  rawBinary: string;
  udevSync: boolean;
  sizes: number[];
  opens: number;
  lifecycles: number;
  progress?: (line: string) => void;
}

/** create_thin messages per request to the C program. */
const FILL_CHUNK = 1000;

/** The filler's hashes: fill-000000, fill-000001, ... */
export function fillerHash(i: number): string {
  return `fill-${String(i).padStart(6, '0')}`;
}

/** Memory after a full GC (--expose-gc), as process.memoryUsage() reports it. */
export function memoryAfterGc(): MemorySnapshot {
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
  const t0 = process.hrtime.bigint();
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
      for (let done = 0; done < size; ) {
        const n = Math.min(FILL_CHUNK, size - done);
        createThin = createThin.concat(await client.batch('create_thin', n, { id: first + done }));
        done += n;
      }
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
  return {
    createThin: summarize(createThin),
    createThinMs: createThin.reduce((s, v) => s + v, 0) / 1e6,
    filesMs: Number(t2 - t1) / 1e6,
    totalMs: Number(t2 - t0) / 1e6,
  };
}

async function measureSize(size: number, plan: DsScalePlan, options: string[]): Promise<DsScalePoint> {
  const log = (line: string) => plan.progress?.(`${size} devices: ${line}`);
  const dir = join(tmpdir(), `devmapper-bench-${process.pid}-dsscale-${size}`);
  const root = join(dir, 'root');
  const mnt = join(dir, 'mnt');
  await mkdir(root, { recursive: true, mode: 0o700 });
  await mkdir(mnt, { recursive: true, mode: 0o700 });
  const prefix = devicePrefixFromStat(await stat(root, { bigint: true }));
  let ds: DeviceSet | null = null;
  try {
    log('a fresh root with an image device, then the filler');
    const fill = await fillRoot(root, size, options, plan.rawBinary);
    log(
      `filled in ${(fill.totalMs / 1000).toFixed(1)} s (create_thin ${(fill.createThinMs / 1000).toFixed(1)} s, ` +
        `metadata files ${(fill.filesMs / 1000).toFixed(1)} s)`,
    );
    const opens: DsScaleOpen[] = [];
    for (let k = 0; k < plan.opens; k++) {
      const t0 = process.hrtime.bigint();
      ds = await DeviceSet.open(root, { options });
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      opens.push({ ms, ...memoryAfterGc() });
      const listed = (await ds.list()).length;
      // The image and the filler; fewer would mean the open rolled back or skipped some.
      if (listed !== size + 1) throw new Error(`dsscale: the open DeviceSet lists ${listed} devices, not ${size + 1}`);
      log(`open ${k + 1}/${plan.opens}: ${ms.toFixed(0)} ms`);
      if (k < plan.opens - 1) {
        await ds.shutdown();
        ds = null;
      }
    }
    if (!ds) throw new Error('dsscale: no open DeviceSet for the lifecycles');
    const open = ds;
    let serial = 0;
    const one = () => {
      const hash = `life-${++serial}`;
      return timeSteps(deviceSetSteps(open, hash, join(mnt, hash)));
    };
    await one();
    const timed: Timed = { ns: [], steps: [] };
    for (let i = 0; i < plan.lifecycles; i++) {
      const r = await one();
      timed.ns.push(r.ns);
      timed.steps.push(r.steps);
    }
    const lifecycle = lifecycleStats(timed);
    log(`${plan.lifecycles} lifecycles, mean ${(lifecycle.mean / 1e6).toFixed(0)} ms`);
    return { devices: size, registered: size + 2, fill, opens, openMedianMs: median(opens.map((o) => o.ms)), lifecycle };
  } finally {
    await ds?.shutdown().catch((err: unknown) => log(`DeviceSet shutdown: ${String(err)}`));
    // Whatever a failure left: mounts, thin devices, the pool (its loop devices go with it).
    await unmountUnder(dir);
    await removeWithPrefix(`${prefix}-`).catch((err: unknown) => log(`removing devices: ${String(err)}`));
    await rm(dir, { recursive: true, force: true });
  }
}

export async function measureDeviceSetScale(plan: DsScalePlan): Promise<DsScaleResult> {
  const options = deviceSetOptions(plan.udevSync);
  const points: DsScalePoint[] = [];
  for (const size of [...plan.sizes].sort((a, b) => a - b)) points.push(await measureSize(size, plan, options));
  return { options, sizeBytes: LAYER_BYTES, gcExposed: typeof (globalThis as { gc?: unknown }).gc === 'function', points };
}
