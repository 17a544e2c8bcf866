/**
 * The benchmark's throwaway thin pool: sparse files in the guest's /tmp (a tmpfs), loop
 * devices with autoclear, Docker's table. Teardown removes every device with the run's
 * prefix (thin devices first, the pool last; the loop devices go with it) and the files.
 */
import { mkdir, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as dm from '../dist/dm';
import * as sys from '../dist/sys';

export interface BenchPool {
  name: string;
  prefix: string;
  dir: string;
  destroy(): Promise<void>;
}

async function sparseFile(path: string, bytes: number): Promise<void> {
  const fh = await open(path, 'w', 0o600);
  try {
    await fh.truncate(bytes);
  } finally {
    await fh.close();
  }
}

/** Removes every device whose name starts with prefix: thin devices first, pools last. */
export async function removeWithPrefix(prefix: string): Promise<void> {
  const names = (await dm.listDevices()).map((d) => d.name).filter((n) => n.startsWith(prefix));
  const pools = names.filter((n) => n.endsWith('-pool'));
  for (const n of [...names.filter((n) => !n.endsWith('-pool')), ...pools]) {
    await dm.removeDevice(n, { retryBudgetMs: 3000 });
  }
}

export async function createBenchPool(
  prefix: string,
  label: string,
  opts: { dataBytes: number; metadataBytes: number },
): Promise<BenchPool> {
  const dir = join(tmpdir(), `devmapper-bench-${prefix}${label}`);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const dataFile = join(dir, 'data');
  const metadataFile = join(dir, 'metadata');
  await sparseFile(dataFile, opts.dataBytes);
  await sparseFile(metadataFile, opts.metadataBytes);
  const data = await sys.attachLoopDevice(dataFile);
  const meta = await sys.attachLoopDevice(metadataFile);
  const name = `${prefix}${label}-pool`;
  try {
    await dm.createPool(name, data.path, meta.path);
  } finally {
    data.release();
    meta.release();
  }
  const devicePrefix = `${prefix}${label}-`;
  return {
    name,
    prefix: devicePrefix,
    dir,
    async destroy() {
      try {
        await removeWithPrefix(devicePrefix);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
  };
}
