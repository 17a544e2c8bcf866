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

/** The thin-pool table's tunables; each defaults to what Docker used. */
export interface PoolOptions {
  /** Data block size in 512-byte sectors. Default 128 (64 KiB), Docker's. */
  blockSizeSectors?: number;
  /** Free data blocks below which the kernel raises an event. Default 32768, Docker's. */
  lowWaterMark?: number;
  /** Feature words. Default ['skip_block_zeroing'], Docker's. */
  features?: ThinPoolFeature[];
}

/** The defaults of {@link PoolOptions}: Docker's table `... 128 32768 1 skip_block_zeroing`. */
export const POOL_DEFAULTS = {
  /** 128 sectors: 64 KiB data blocks. */
  blockSizeSectors: 128,
  /** 32768 free data blocks (2 GiB at 64 KiB blocks) before the kernel raises a dm event. */
  lowWaterMark: 32768,
  /** New blocks are not zeroed first: faster, and a file system never reads blocks it did not write. */
  features: ['skip_block_zeroing'] as ThinPoolFeature[],
};

/**
 * Size of a block device given by path or major:minor, in 512-byte sectors: from
 * /sys/dev/block/MAJ:MIN/size, or BLKGETSIZE64 on the opened path.
 *
 * @throws {@link DevmapperError} ENODEV when no block device has that major:minor; the
 *   errno of open(2) or the ioctl for a path (ENOENT, ENOTTY for a regular file, ...)
 */
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

/**
 * The thin-pool table line for a data and metadata device: `0 <len> thin-pool META DATA bs lwm n feats`.
 * The length is the data device's size rounded down to whole pool blocks (the kernel
 * ignores a partial last block).
 *
 * @param dataDevice absolute path or major:minor of the data device
 * @param metadataDevice absolute path or major:minor of the metadata device
 * @throws {@link DevmapperError} ERR_INVALID_ARGUMENT for a bad device reference, block size,
 *   low-water mark or feature list, or a data device smaller than one block; ENODEV and
 *   friends from {@link deviceSizeSectors}
 */
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

/**
 * Creates and activates a thin-pool over the data and metadata devices (Docker's CreatePool):
 * one create with the table from {@link poolTable}; the /dev/mapper node exists when this
 * resolves. A metadata device whose first 4 KiB are zero is formatted by the kernel; one
 * holding pool metadata is opened as it is (its thin devices and transaction id come back).
 *
 * @param poolName the device-mapper name to give the pool
 * @param dataDevice the data device (a loop device for a file)
 * @param metadataDevice the metadata device
 * @throws {@link DevmapperError} ERR_INVALID_ARGUMENT (see {@link poolTable}); EBUSY when a
 *   device of that name exists; the kernel's errno (often EINVAL) when it refuses the table,
 *   for example over a metadata device that holds something else (the kernel's reason is in
 *   its log, dmesg; libdevmapper's line is in `logs`); EACCES/EPERM without root
 *
 * @example
 * ```ts
 * const data = await sys.attachLoopDevice('/var/lib/myapp/data');     // sparse file, autoclear
 * const meta = await sys.attachLoopDevice('/var/lib/myapp/metadata');
 * await dm.createPool('myapp-pool', data.path, meta.path);            // 64 KiB blocks, skip_block_zeroing
 * data.release(); meta.release();                                     // the pool's table holds them now
 * ```
 */
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

/** {@link PoolOptions} plus whether to resume after the reload. */
export interface ReloadPoolOptions extends PoolOptions {
  /** Resume after loading, so the new table takes effect at once. Default true. */
  resume?: boolean;
}

/**
 * Loads a new table into an existing pool (for example after growing its data device) and,
 * by default, resumes it so the new size takes effect. The new table must keep the pool's
 * block size; a pool that was out of data space returns to `rw` once it has room.
 *
 * @throws {@link DevmapperError} as {@link createPool}; ENXIO when there is no such pool; the
 *   kernel's errno when it refuses the new table or the resume (a pool never shrinks)
 *
 * @example
 * ```ts
 * await truncate('/var/lib/myapp/data', 200 * 2 ** 30);   // grow the sparse file
 * await sys.setLoopCapacity(dataLoop);                     // the loop device sees the new size
 * await dm.reloadPool('myapp-pool', dataLoop, metaLoop);   // table reloaded, pool resumed
 * ```
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
