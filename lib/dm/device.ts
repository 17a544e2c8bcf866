/** Thin device activation and the life cycle of a mapped device: suspend, resume, remove. */
import { runStepsOrThrow } from './run-steps';
import { activationSteps, removeWithRetries } from './sequences';
import { cancelDeferredRemoveSpec, mknodesSpec, resumeSpec, suspendSpec } from './specs';
import { runTask } from './task';
import { warnIfUdevTimedOut } from './udev-timeout';

/** How {@link activateDevice} maps the thin device. */
export interface ActivateOptions {
  /** Map the device read-only. */
  readOnly?: boolean;
  /** A read-only device whose blocks the thin device reads until it writes its own. */
  externalOrigin?: string;
  /**
   * Keep the device private to udev, as devicemapper-rs does for its internal devices: udev
   * makes the /dev/mapper node but skips the disk rules (no blkid probe, no /dev/disk/by-*
   * links) and the other packages' rules, which is most of what a udev wait costs. For
   * container layers, which nothing looks up by UUID. Default false (every rule runs).
   */
  udevPrivate?: boolean;
}

/**
 * Activates thin device `deviceId` of the pool as `name`, with the table
 * `0 <sizeBytes/512> thin /dev/mapper/<pool> <id>`. The /dev/mapper node exists when this resolves:
 * with udev, after udev confirmed the cookie (or the bounded wait ran out, which emits a
 * `DEVMAPPER_UDEV_TIMEOUT` process warning); without, libdevmapper made the node itself.
 * The size is free to differ from the one the device had before: a thin device has no size of
 * its own, only the table gives it one.
 *
 * @param poolName the pool
 * @param name the device-mapper name of the new mapping
 * @param deviceId the thin id in the pool
 * @param sizeBytes the mapped size, a positive multiple of 512
 * @throws {@link DevmapperError} EBUSY when a device of that name exists; ENODEV when the
 *   external origin does not exist; ERR_INVALID_ARGUMENT for a bad name, id, size or origin;
 *   the kernel's errno when it refuses the table (nothing is left half-created)
 *
 * @example
 * ```ts
 * await dm.activateDevice('myapp-pool', 'myapp-base', 0, 10 * 2 ** 30);
 * // /dev/mapper/myapp-base now exists: mkfs, mount, ...
 * ```
 */
export async function activateDevice(
  poolName: string,
  name: string,
  deviceId: number,
  sizeBytes: number,
  opts: ActivateOptions = {},
): Promise<void> {
  await runStepsOrThrow(activationSteps(null, poolName, name, deviceId, sizeBytes, opts));
}

/** How {@link suspendDevice} suspends. */
export interface SuspendOptions {
  /** Do not freeze the file system on the device (default: freeze, as Docker did). */
  skipLockfs?: boolean;
  /** Do not flush outstanding I/O (only for a device that cannot complete it). */
  noFlush?: boolean;
}

/**
 * Suspends a device: new I/O queues until {@link resumeDevice}. By default the file system
 * on it is frozen first and outstanding I/O is flushed. Always pair with a resume: a device
 * left suspended blocks every process that touches it.
 *
 * @throws {@link DevmapperError} ENXIO when there is no such device
 */
export async function suspendDevice(name: string, opts: SuspendOptions = {}): Promise<void> {
  await runTask(suspendSpec(name, opts));
}

/**
 * Resumes a suspended device (and makes a loaded inactive table live); the node is checked
 * as after {@link activateDevice}.
 *
 * @throws {@link DevmapperError} ENXIO when there is no such device; the kernel's errno when
 *   the target refuses to resume (for a pool: a data device smaller than before)
 */
export async function resumeDevice(name: string): Promise<void> {
  const spec = resumeSpec(name);
  const res = await runTask(spec);
  warnIfUdevTimedOut(res, 'resume', spec.name!);
}

/** How {@link removeDevice} removes. */
export interface RemoveOptions {
  /**
   * Deferred removal: if the device is open, the kernel removes it when the last holder
   * closes it, and this call succeeds at once.
   */
  deferred?: boolean;
  /** How long to keep retrying while the device is busy (EBUSY), in ms. Default 5000; 0 = one try. */
  retryBudgetMs?: number;
  /** Stops the retries: rejects with ABORT_ERR at once while waiting between tries (a try under way finishes first). */
  signal?: AbortSignal;
}

/** The defaults of {@link RemoveOptions}. */
export const REMOVE_DEFAULTS = {
  /** 5 s of busy retries. */
  retryBudgetMs: 5_000,
};

/**
 * Removes a mapped device, retrying a busy device with backoff within the budget. Rejects
 * with ENXIO when there is no such device, EBUSY when it stayed busy, ABORT_ERR on abort.
 *
 * A device is busy while anything holds it open: a mount (in any mount namespace), a
 * process, a device stacked on it (a pool's thin devices keep it busy), or udev probing it
 * right after a change. Backoff starts at 10 ms and doubles up to 250 ms. With `deferred`,
 * an open device is only marked and the kernel removes it at its last close; libdevmapper
 * drops the /dev/mapper node even then, so this puts it back while the device lives.
 *
 * @throws {@link DevmapperError} ENXIO, EBUSY (the message counts the attempts), ABORT_ERR,
 *   ERR_INVALID_ARGUMENT for a bad name or budget
 *
 * @example
 * ```ts
 * await dm.removeDevice('myapp-snap', { retryBudgetMs: 2000, signal: AbortSignal.timeout(5000) });
 * ```
 */
export async function removeDevice(name: string, opts: RemoveOptions = {}): Promise<void> {
  await removeWithRetries(name, {
    deferred: opts.deferred,
    retryBudgetMs: opts.retryBudgetMs ?? REMOVE_DEFAULTS.retryBudgetMs,
    signal: opts.signal,
  });
}

/**
 * Brings /dev/mapper in line with the kernel for one device, or for all when no name is given:
 * creates missing nodes and deletes those of devices that are gone (without udev, a device
 * the kernel removed on its own, after a deferred remove, leaves its node behind).
 *
 * @param name one device, or undefined for all
 * @throws {@link DevmapperError} ERR_INVALID_ARGUMENT for a bad name
 */
export async function updateNodes(name?: string): Promise<void> {
  await runTask(mknodesSpec(name, 'update nodes'));
}

/**
 * Cancels a pending deferred remove, so the device stays (the `@cancel_deferred_remove`
 * message, device-mapper 4.27+).
 *
 * @throws {@link DevmapperError} ENXIO when there is no such device; EBUSY when the kernel
 *   is already deleting it (no error when no deferred remove was pending)
 */
export async function cancelDeferredRemove(name: string): Promise<void> {
  await runTask(cancelDeferredRemoveSpec(name));
}
