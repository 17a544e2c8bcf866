/**
 * A throwaway thin pool on sparse loop files, with a unique name prefix, that always tears
 * down: devices with the prefix are removed (thin devices first), mounts under its scratch
 * directory are detached, the loop devices go with the pool (autoclear).
 */
import { execFile } from 'node:child_process';
import { mkdir, open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { dm, sys } from '../../lib';
import { mountsUnder } from './leaks';
import { SCRATCH_ROOT, uniquePrefix } from './names';

export const execFileP = promisify(execFile);

export interface TestPool {
  prefix: string;
  poolName: string;
  dir: string;
  dataFile: string;
  metadataFile: string;
  dataDevno: string;
  metadataDevno: string;
  /** A device name under this pool's prefix. */
  name(suffix: string): string;
}

export interface TestPoolOptions {
  dataBytes?: number;
  metadataBytes?: number;
  blockSizeSectors?: number;
  features?: dm.ThinPoolFeature[];
}

async function sparseFile(path: string, bytes: number): Promise<void> {
  const fh = await open(path, 'w', 0o600);
  try {
    await fh.truncate(bytes);
  } finally {
    await fh.close();
  }
}

export async function removeWithPrefix(prefix: string): Promise<void> {
  const names = (await dm.listDevices()).map((d) => d.name).filter((n) => n.startsWith(prefix));
  const order = [...names.filter((n) => !n.endsWith('-pool')), ...names.filter((n) => n.endsWith('-pool'))];
  for (const n of order) await dm.removeDevice(n, { retryBudgetMs: 3000 });
}

export async function withPool<T>(fn: (p: TestPool) => Promise<T>, opts: TestPoolOptions = {}): Promise<T> {
  const prefix = uniquePrefix();
  const dir = join(SCRATCH_ROOT, prefix);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const dataFile = join(dir, 'data');
  const metadataFile = join(dir, 'metadata');
  await sparseFile(dataFile, opts.dataBytes ?? 512 * 1024 * 1024);
  await sparseFile(metadataFile, opts.metadataBytes ?? 16 * 1024 * 1024);
  const data = await sys.attachLoopDevice(dataFile);
  const meta = await sys.attachLoopDevice(metadataFile);
  const poolName = `${prefix}-pool`;
  const pool: TestPool = {
    prefix,
    poolName,
    dir,
    dataFile,
    metadataFile,
    dataDevno: data.devno,
    metadataDevno: meta.devno,
    name: (suffix) => `${prefix}-${suffix}`,
  };
  try {
    await dm.createPool(poolName, data.path, meta.path, {
      blockSizeSectors: opts.blockSizeSectors,
      features: opts.features,
    });
  } finally {
    // The pool's table now holds both loop devices; with autoclear they go when it does.
    data.release();
    meta.release();
  }
  try {
    return await fn(pool);
  } finally {
    for (const mp of mountsUnder(dir).reverse()) await sys.unmount(mp, { detach: true });
    await removeWithPrefix(prefix);
    await rm(dir, { recursive: true, force: true });
  }
}

/** Makes an ext4 file system the way Docker did (no discard at mkfs, lazy init off). */
export async function mkfsExt4(device: string): Promise<void> {
  await execFileP('mkfs.ext4', ['-q', '-F', '-E', 'nodiscard,lazy_itable_init=0,lazy_journal_init=0', device]);
}
