/**
 * The thin pool under a DeviceSet: by default a pool on two sparse loop files under
 * root/devicemapper/, else raw data and metadata devices, else an existing pool adopted by
 * name (dm.thinpooldev) and never created or removed by us.
 */
import { constants as fsConstants } from 'node:fs';
import { mkdir, open, stat } from 'node:fs/promises';
import { join } from 'node:path';
import * as dm from '../dm';
import { DevmapperError, ErrorCodes } from '../errors';
import * as sys from '../sys';

export type PoolKind = 'loopback' | 'direct' | 'external';

export interface PoolHandle {
  kind: PoolKind;
  /** The device-mapper name of the pool. */
  name: string;
  /** We created it (or own its backing files): shutdown may deactivate it. */
  owned: boolean;
  /** Loopback: the sparse files. */
  dataFile?: string;
  metadataFile?: string;
  /** The block devices the pool sits on (loop devices for loopback). */
  dataDevice?: string;
  metadataDevice?: string;
  blockSizeSectors: number;
  /** The low-water mark (data blocks) written into the table when we create or reload it. */
  lowWaterMarkBlocks: number;
  /** The pool was created by this open (not found already active). */
  createdNow: boolean;
}

export interface PoolSetupOptions {
  root: string;
  poolName: string;
  thinPoolDevice: string | null;
  dataDevice: string | null;
  metadataDevice: string | null;
  loopDataSizeBytes: number;
  loopMetadataSizeBytes: number;
  blockSizeSectors: number;
  /** Create the pool with error_if_no_space (writes to a full pool fail instead of queueing). */
  errorIfNoSpace: boolean;
  /** The pool table's low-water mark in data blocks. */
  lowWaterMarkBlocks: number;
  /** No metadata exists yet for this root: a raw metadata device is zeroed at its start. */
  fresh: boolean;
}

const METADATA_HEADER_BYTES = 4096;

/** The table options of a pool we create: Docker's defaults plus what the options ask for. */
function newPoolOptions(o: PoolSetupOptions): dm.PoolOptions {
  const features = [...dm.POOL_DEFAULTS.features];
  if (o.errorIfNoSpace) features.push('error_if_no_space');
  return { blockSizeSectors: o.blockSizeSectors, lowWaterMark: o.lowWaterMarkBlocks, features };
}

/** Creates the sparse file, or grows it to `bytes`; never shrinks. */
async function ensureSparseFile(path: string, bytes: number): Promise<void> {
  const fh = await open(path, fsConstants.O_RDWR | fsConstants.O_CREAT, 0o600);
  try {
    const st = await fh.stat();
    if (st.size < bytes) await fh.truncate(bytes);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** The loop device bound to the file, or a new one (autoclear) held until the pool holds it. */
async function loopFor(file: string): Promise<{ path: string; release(): void }> {
  const existing = await sys.findLoopDevices(file);
  if (existing.length > 0) return { path: existing[0].path, release: () => undefined };
  return sys.attachLoopDevice(file);
}

async function zeroMetadataHeader(device: string): Promise<void> {
  const fh = await open(device, fsConstants.O_WRONLY);
  try {
    await fh.write(Buffer.alloc(METADATA_HEADER_BYTES), 0, METADATA_HEADER_BYTES, 0);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

async function checkIsThinPool(name: string): Promise<number> {
  const table = await dm.getTable(name).catch((err: unknown) => {
    if (err instanceof DevmapperError && err.code === 'ENXIO')
      throw new DevmapperError(`dm.thinpooldev: no device-mapper device named ${name}`, {
        code: 'ENXIO',
        argument: 'dm.thinpooldev',
        device: name,
      });
    throw err;
  });
  if (table.length !== 1 || table[0].type !== 'thin-pool')
    throw new DevmapperError(`dm.thinpooldev: ${name} is not a thin-pool device`, {
      code: ErrorCodes.INVALID_ARGUMENT,
      argument: 'dm.thinpooldev',
      device: name,
    });
  return dm.parseThinPoolTable(table[0].params).blockSizeSectors;
}

/** Finds or creates the pool. Loop devices attached here end up held by the pool alone. */
export async function setupPool(o: PoolSetupOptions): Promise<PoolHandle> {
  if (o.thinPoolDevice) {
    const blockSizeSectors = await checkIsThinPool(o.thinPoolDevice);
    return { kind: 'external', name: o.thinPoolDevice, owned: false, blockSizeSectors, lowWaterMarkBlocks: o.lowWaterMarkBlocks, createdNow: false };
  }

  const existing = await dm.getInfo(o.poolName);
  if (o.dataDevice || o.metadataDevice) {
    if (!o.dataDevice || !o.metadataDevice)
      throw new DevmapperError('dm.datadev and dm.metadatadev must be given together', {
        code: ErrorCodes.INVALID_ARGUMENT,
        argument: o.dataDevice ? 'dm.metadatadev' : 'dm.datadev',
      });
    for (const [key, dev] of [
      ['dm.datadev', o.dataDevice],
      ['dm.metadatadev', o.metadataDevice],
    ] as const) {
      const st = await stat(dev).catch(() => null);
      if (!st?.isBlockDevice())
        throw new DevmapperError(`${key}: ${dev} is not a block device`, { code: ErrorCodes.INVALID_ARGUMENT, argument: key, device: dev });
    }
    const handle: PoolHandle = {
      kind: 'direct',
      name: o.poolName,
      owned: true,
      dataDevice: o.dataDevice,
      metadataDevice: o.metadataDevice,
      blockSizeSectors: o.blockSizeSectors,
      lowWaterMarkBlocks: o.lowWaterMarkBlocks,
      createdNow: false,
    };
    if (existing) {
      handle.blockSizeSectors = await checkIsThinPool(o.poolName);
      return handle;
    }
    if (o.fresh) await zeroMetadataHeader(o.metadataDevice);
    await dm.createPool(o.poolName, o.dataDevice, o.metadataDevice, newPoolOptions(o));
    handle.createdNow = true;
    return handle;
  }

  const dir = join(o.root, 'devicemapper');
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const dataFile = join(dir, 'data');
  const metadataFile = join(dir, 'metadata');
  await ensureSparseFile(dataFile, o.loopDataSizeBytes);
  await ensureSparseFile(metadataFile, o.loopMetadataSizeBytes);
  const handle: PoolHandle = {
    kind: 'loopback',
    name: o.poolName,
    owned: true,
    dataFile,
    metadataFile,
    blockSizeSectors: o.blockSizeSectors,
    lowWaterMarkBlocks: o.lowWaterMarkBlocks,
    createdNow: false,
  };
  if (existing) {
    handle.blockSizeSectors = await checkIsThinPool(o.poolName);
    handle.dataDevice = (await sys.findLoopDevices(dataFile))[0]?.path;
    handle.metadataDevice = (await sys.findLoopDevices(metadataFile))[0]?.path;
    return handle;
  }
  const data = await loopFor(dataFile);
  const meta = await loopFor(metadataFile);
  try {
    await dm.createPool(o.poolName, data.path, meta.path, newPoolOptions(o));
  } finally {
    // From here the pool's table holds the loop devices; with autoclear they go with it.
    data.release();
    meta.release();
  }
  handle.dataDevice = data.path;
  handle.metadataDevice = meta.path;
  handle.createdNow = true;
  return handle;
}

/**
 * Grows the pool's data to `bytes`: the loop file and its loop device, or (direct) whatever
 * the data device now holds; then reloads the pool table. Never shrinks.
 */
export async function growPool(pool: PoolHandle, bytes: number | null): Promise<void> {
  if (pool.kind === 'external')
    throw new DevmapperError(`the pool ${pool.name} is not ours to resize (dm.thinpooldev)`, {
      code: ErrorCodes.INVALID_ARGUMENT,
      argument: 'dm.thinpooldev',
      device: pool.name,
    });
  if (pool.kind === 'loopback' && pool.dataFile && pool.metadataFile) {
    const st = await stat(pool.dataFile);
    if (bytes !== null && bytes < st.size)
      throw new DevmapperError(`the pool cannot shrink: ${bytes} bytes asked, the data file has ${st.size}`, {
        code: ErrorCodes.INVALID_ARGUMENT,
        argument: 'bytes',
      });
    if (bytes !== null && bytes > st.size) await ensureSparseFile(pool.dataFile, bytes);
    pool.dataDevice = (await sys.findLoopDevices(pool.dataFile))[0]?.path;
    pool.metadataDevice = (await sys.findLoopDevices(pool.metadataFile))[0]?.path;
    if (!pool.dataDevice || !pool.metadataDevice)
      throw new DevmapperError('the pool has lost its loop devices', { code: 'ENODEV', device: pool.name });
    await sys.setLoopCapacity(pool.dataDevice);
  }
  if (!pool.dataDevice || !pool.metadataDevice) throw new DevmapperError('unknown pool devices', { code: 'ENODEV', device: pool.name });
  // Keep the live table's features (error_if_no_space, read_only, ...):
  // a resize must not quietly change the pool's behaviour.
  const live = await liveThinPoolTable(pool.name);
  await dm.reloadPool(pool.name, pool.dataDevice, pool.metadataDevice, {
    blockSizeSectors: pool.blockSizeSectors,
    lowWaterMark: pool.lowWaterMarkBlocks,
    features: live?.features.filter((f): f is dm.ThinPoolFeature => (dm.THIN_POOL_FEATURES as readonly string[]).includes(f)),
  });
}

/** The active thin-pool table of a pool, or null when it has none (or another target). */
async function liveThinPoolTable(name: string): Promise<dm.ThinPoolTable | null> {
  const line = (await dm.getTable(name))[0];
  return line?.type === 'thin-pool' ? dm.parseThinPoolTable(line.params) : null;
}
