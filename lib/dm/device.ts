/** Thin device activation and the life cycle of a mapped device: suspend, resume, remove. */
import { DevmapperError, ErrorCodes } from '../errors';
import { abortError, sleep } from '../util/abort';
import { formatThinTable } from './parse';
import { runTask } from './task';
import { warnIfUdevTimedOut } from './udev-timeout';
import { checkBlockDeviceRef, checkSizeBytes, checkThinId, resolveDeviceName, SECTOR_BYTES } from './validate';

export interface ActivateOptions {
  /** Map the device read-only. */
  readOnly?: boolean;
  /** A read-only device whose blocks the thin device reads until it writes its own. */
  externalOrigin?: string;
}

/**
 * Activates thin device `deviceId` of the pool as `name`, with the table
 * `0 <sizeBytes/512> thin /dev/mapper/<pool> <id>`. The /dev/mapper node exists when this resolves.
 */
export async function activateDevice(
  poolName: string,
  name: string,
  deviceId: number,
  sizeBytes: number,
  opts: ActivateOptions = {},
): Promise<void> {
  const pool = resolveDeviceName(poolName, 'poolName');
  const dev = resolveDeviceName(name, 'name');
  const id = checkThinId(deviceId);
  const size = checkSizeBytes(sizeBytes);
  if (opts.externalOrigin !== undefined) checkBlockDeviceRef(opts.externalOrigin, 'externalOrigin');
  const params = formatThinTable({ poolDevice: `/dev/mapper/${pool}`, deviceId: id, externalOrigin: opts.externalOrigin });
  const res = await runTask({
    type: 'create',
    name: dev,
    targets: [{ start: 0, length: size / SECTOR_BYTES, type: 'thin', params }],
    addNode: 'create',
    readOnly: opts.readOnly,
    operation: `activate thin ${id}`,
  });
  warnIfUdevTimedOut(res, 'activate', dev);
}

export interface SuspendOptions {
  /** Do not freeze the file system on the device (default: freeze, as Docker did). */
  skipLockfs?: boolean;
  /** Do not flush outstanding I/O (only for a device that cannot complete it). */
  noFlush?: boolean;
}

export async function suspendDevice(name: string, opts: SuspendOptions = {}): Promise<void> {
  const dev = resolveDeviceName(name);
  await runTask({ type: 'suspend', name: dev, skipLockfs: opts.skipLockfs, noFlush: opts.noFlush, operation: 'suspend' });
}

export async function resumeDevice(name: string): Promise<void> {
  const dev = resolveDeviceName(name);
  const res = await runTask({ type: 'resume', name: dev, operation: 'resume' });
  warnIfUdevTimedOut(res, 'resume', dev);
}

export interface RemoveOptions {
  /**
   * Deferred removal: if the device is open, the kernel removes it when the last holder
   * closes it, and this call succeeds at once.
   */
  deferred?: boolean;
  /** How long to keep retrying while the device is busy (EBUSY), in ms. Default 5000; 0 = one try. */
  retryBudgetMs?: number;
  signal?: AbortSignal;
}

export const REMOVE_DEFAULTS = { retryBudgetMs: 5_000 };

/**
 * Removes a mapped device, retrying a busy device with backoff within the budget. Rejects
 * with ENXIO when there is no such device, EBUSY when it stayed busy, ABORT_ERR on abort.
 */
export async function removeDevice(name: string, opts: RemoveOptions = {}): Promise<void> {
  const dev = resolveDeviceName(name);
  const budget = opts.retryBudgetMs ?? REMOVE_DEFAULTS.retryBudgetMs;
  if (!Number.isInteger(budget) || budget < 0)
    throw new DevmapperError(`retryBudgetMs: expected a non-negative integer, got ${String(budget)}`, {
      code: ErrorCodes.INVALID_ARGUMENT,
      argument: 'retryBudgetMs',
    });
  const started = Date.now();
  let delay = 10;
  for (let attempt = 1; ; attempt++) {
    if (opts.signal?.aborted) throw abortError('remove', dev, opts.signal);
    try {
      const res = await runTask({ type: 'remove', name: dev, deferredRemove: opts.deferred, operation: 'remove' });
      warnIfUdevTimedOut(res, 'remove', dev);
      if (opts.deferred) await restoreNodeIfStillPresent(dev);
      return;
    } catch (err) {
      if (!(err instanceof DevmapperError) || err.code !== 'EBUSY') throw err;
      const left = budget - (Date.now() - started);
      if (left <= 0) {
        err.message += ` (still busy after ${attempt} attempt${attempt > 1 ? 's' : ''} in ${Date.now() - started} ms)`;
        throw err;
      }
      await sleep(Math.min(delay, left), opts.signal, 'remove', dev);
      delay = Math.min(delay * 2, 250);
    }
  }
}

/**
 * libdevmapper drops the /dev/mapper node after any successful remove, even one the kernel
 * only deferred because the device is open (the stale-link bug of moby#23418): put the node
 * back while the device lives. mknodes also deletes a node whose device has gone.
 */
async function restoreNodeIfStillPresent(dev: string): Promise<void> {
  await runTask({ type: 'mknodes', name: dev, operation: 'refresh node after deferred remove' });
}

/**
 * Brings /dev/mapper in line with the kernel for one device, or for all when no name is given:
 * creates missing nodes and deletes those of devices that are gone (without udev, a device
 * the kernel removed on its own, after a deferred remove, leaves its node behind).
 */
export async function updateNodes(name?: string): Promise<void> {
  const dev = name === undefined ? undefined : resolveDeviceName(name);
  await runTask({ type: 'mknodes', name: dev, operation: 'update nodes' });
}

/** Cancels a pending deferred remove, so the device stays. */
export async function cancelDeferredRemove(name: string): Promise<void> {
  const dev = resolveDeviceName(name);
  await runTask({ type: 'targetMsg', name: dev, sector: 0, message: '@cancel_deferred_remove', operation: 'cancel deferred remove' });
}
