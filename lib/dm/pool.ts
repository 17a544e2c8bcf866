/** Creating and reloading a thin-pool device (Docker's CreatePool / ReloadPool). */
import { readFile } from 'node:fs/promises';
import { DevmapperError, ErrorCodes } from '../errors';
import { native } from '../native';
import { formatThinPoolTable } from './parse';
import { runTask } from './task';
import type { TargetLine } from './types';
import { warnIfUdevTimedOut } from './udev-timeout';
import {
  checkBlockDeviceRef,
  checkPoolBlockSize,
  checkPoolFeatures,
  checkUint,
  resolveDeviceName,
  SECTOR_BYTES,
  type ThinPoolFeature,
} from './validate';

export interface PoolOptions {
  /** Data block size in 512-byte sectors. Default 128 (64 KiB), Docker's. */
  blockSizeSectors?: number;
  /** Free data blocks below which the kernel raises an event. Default 32768, Docker's. */
  lowWaterMark?: number;
  /** Feature words. Default ['skip_block_zeroing'], Docker's. */
  features?: ThinPoolFeature[];
}

export const POOL_DEFAULTS = {
  blockSizeSectors: 128,
  lowWaterMark: 32768,
  features: ['skip_block_zeroing'] as ThinPoolFeature[],
};

/** Size of a block device given by path or major:minor, in 512-byte sectors. */
export async function deviceSizeSectors(device: string): Promise<number> {
  const mm = /^(\d+):(\d+)$/.exec(device);
  if (mm) {
    try {
      return Number((await readFile(`/sys/dev/block/${mm[1]}:${mm[2]}/size`, 'utf8')).trim());
    } catch (err) {
      throw new DevmapperError(`no block device ${device}`, { code: 'ENODEV', operation: 'device size', device, cause: err });
    }
  }
  const bytes = await native().blockDeviceSize(device);
  return Math.floor(bytes / SECTOR_BYTES);
}

/** The thin-pool table line for a data and metadata device: `0 <len> thin-pool META DATA bs lwm n feats`. */
export async function poolTable(dataDevice: string, metadataDevice: string, opts: PoolOptions = {}): Promise<TargetLine> {
  checkBlockDeviceRef(dataDevice, 'dataDevice');
  checkBlockDeviceRef(metadataDevice, 'metadataDevice');
  const blockSizeSectors = checkPoolBlockSize(opts.blockSizeSectors ?? POOL_DEFAULTS.blockSizeSectors);
  const lowWaterMarkBlocks = checkUint(opts.lowWaterMark ?? POOL_DEFAULTS.lowWaterMark, 'lowWaterMark');
  const features = checkPoolFeatures(opts.features ?? POOL_DEFAULTS.features);
  const length = await deviceSizeSectors(dataDevice);
  if (length < blockSizeSectors)
    throw new DevmapperError(`data device ${dataDevice} (${length} sectors) is smaller than one pool block`, {
      code: ErrorCodes.INVALID_ARGUMENT,
      argument: 'dataDevice',
      device: dataDevice,
    });
  // The kernel ignores a partial last block; keep the table a whole number of blocks.
  const usable = length - (length % blockSizeSectors);
  return {
    start: 0,
    length: usable,
    type: 'thin-pool',
    params: formatThinPoolTable({ metadataDevice, dataDevice, blockSizeSectors, lowWaterMarkBlocks, features }),
  };
}

/** Creates and activates a thin-pool over the data and metadata devices. */
export async function createPool(
  poolName: string,
  dataDevice: string,
  metadataDevice: string,
  opts: PoolOptions = {},
): Promise<void> {
  const name = resolveDeviceName(poolName, 'poolName');
  const table = await poolTable(dataDevice, metadataDevice, opts);
  const res = await runTask({ type: 'create', name, targets: [table], addNode: 'create', operation: 'create pool' });
  warnIfUdevTimedOut(res, 'create pool', name);
}

export interface ReloadPoolOptions extends PoolOptions {
  /** Resume after loading, so the new table takes effect at once. Default true. */
  resume?: boolean;
}

/**
 * Loads a new table into an existing pool (for example after growing its data device) and,
 * by default, resumes it so the new size takes effect.
 */
export async function reloadPool(
  poolName: string,
  dataDevice: string,
  metadataDevice: string,
  opts: ReloadPoolOptions = {},
): Promise<void> {
  const name = resolveDeviceName(poolName, 'poolName');
  const table = await poolTable(dataDevice, metadataDevice, opts);
  await runTask({ type: 'reload', name, targets: [table], operation: 'reload pool' });
  if (opts.resume ?? true) {
    const res = await runTask({ type: 'resume', name, operation: 'resume pool' });
    warnIfUdevTimedOut(res, 'resume pool', name);
  }
}
