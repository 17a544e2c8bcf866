/**
 * Thin devices of a DeviceSet: creating (create_thin for the base, create_snap for the rest)
 * and deleting them inside a transaction, activating and deactivating them.
 */
import { existsSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import * as dm from '../dm';
import { DevmapperError, ErrorCodes } from '../errors';
import { crashSteps } from './crash-points';
import { deviceName } from './hash';
import type { DeviceMetadata } from './metadata-store';
import { POOL_LOCK, type DeviceSetState } from './state';

export function nameOf(s: DeviceSetState, hash: string): string {
  return deviceName(s.prefix, hash);
}

/** Refuses a change to a device this DeviceSet has mounted (EBUSY, naming the mount point). */
export function refuseIfMounted(s: DeviceSetState, hash: string): void {
  const at = s.mounts.get(hash);
  if (at !== undefined) throw new DevmapperError(`device ${hash} is mounted at ${at}: unmount it first`, { code: 'EBUSY', device: hash });
}

/** @internal The ENOENT error for a device the DeviceSet does not have. */
export function unknownDevice(hash: string): DevmapperError {
  return new DevmapperError(`unknown device ${hash === '' ? '(base)' : hash}`, {
    code: 'ENOENT',
    errno: osConstants.errno.ENOENT,
    device: hash,
  });
}

/**
 * Refuses any change to a pool that cannot take one: failed, read-only, or flagged
 * needs_check (the kernel would refuse the message with a bare EOPNOTSUPP). A pool that is
 * only out of data space can still delete, which is how space comes back.
 */
export async function checkPoolCanChange(s: DeviceSetState): Promise<dm.ThinPoolStatusOk> {
  // Without a flush: mode, needs_check and the counts need no metadata commit, and the
  // query then runs on the JS thread instead of costing a hop.
  const st = await dm.getPoolStatus(s.pool.name, { noFlush: true });
  if (st.state !== 'ok')
    throw new DevmapperError(`the pool ${s.pool.name} has failed (status ${st.state}): run thin_check on its metadata`, {
      code: ErrorCodes.POOL_FAILED,
      device: s.pool.name,
    });
  if (st.mode === 'ro' || st.needsCheck)
    throw new DevmapperError(
      `the pool ${s.pool.name} is ${st.needsCheck ? 'flagged needs_check' : 'read-only'}: nothing can be created or deleted until its metadata is checked (thin_check) or it is reloaded read-write`,
      { code: ErrorCodes.POOL_NOT_WRITABLE, device: s.pool.name },
    );
  return st;
}

/**
 * Refuses a new device the pool cannot take: what checkPoolCanChange refuses, out of data
 * space, or free data or metadata space below dm.min_free_space.
 */
export async function checkPoolCanGrow(s: DeviceSetState): Promise<void> {
  const st = await checkPoolCanChange(s);
  if (st.mode !== 'rw')
    throw new DevmapperError(`the pool ${s.pool.name} is ${st.mode}: no device can be created (free space or grow the pool)`, {
      code: ErrorCodes.POOL_NOT_WRITABLE,
      device: s.pool.name,
    });
  const pct = s.options.minFreeSpacePercent;
  if (pct > 0) {
    const dataFree = st.dataTotalBlocks - st.dataUsedBlocks;
    const minData = Math.floor((st.dataTotalBlocks * pct) / 100);
    if (dataFree < minData)
      throw new DevmapperError(
        `the pool has ${dataFree} free data blocks, less than dm.min_free_space=${pct}% (${minData}): free space or grow the pool`,
        { code: ErrorCodes.POOL_LOW_SPACE, device: s.pool.name, argument: 'dm.min_free_space' },
      );
    const metaFree = st.metadataTotalBlocks - st.metadataUsedBlocks;
    const minMeta = Math.floor((st.metadataTotalBlocks * pct) / 100);
    if (metaFree < minMeta)
      throw new DevmapperError(
        `the pool has ${metaFree} free metadata blocks, less than dm.min_free_space=${pct}% (${minMeta}): free space or grow the metadata`,
        { code: ErrorCodes.POOL_LOW_SPACE, device: s.pool.name, argument: 'dm.min_free_space' },
      );
  }
}

/**
 * Creates thin device `hash` in one transaction: a new thin id (create_thin) for the base,
 * a snapshot (create_snap, the origin suspended around it when active) of `parent`
 * otherwise. An id the pool already has is skipped. Call with the pool lock held.
 *
 * The whole sequence is one native job: the intent and the device's file written and made
 * durable together (one directory fsync), the thin id created, set_transaction_id. A crash
 * before the commit leaves a device file whose transaction the pool never committed: the
 * next open drops it (the open transaction's rollback, or, should only the device's file
 * have reached the disk, {@link TransactionLog.dropUncommitted}, which checks every file's
 * transaction_id). next_device_id is written at init and shutdown, as Docker did, not per
 * device: the allocator finds the used ids from the device files. The phase that failed
 * decides the undo.
 */
export async function createRegisteredDevice(
  s: DeviceSetState,
  hash: string,
  sizeBytes: number,
  parent: { hash: string; meta: DeviceMetadata } | null,
): Promise<DeviceMetadata> {
  const origin = parent ? nameOf(s, parent.hash) : null;
  await s.tx.finishPendingRollback((id) => s.ids.release(id));
  s.store.checkRoomForDevice();
  for (;;) {
    const deviceId = s.ids.allocate();
    const meta: DeviceMetadata = { deviceId, size: sizeBytes, transactionId: s.tx.poolTransactionId + 1, initialized: false, deleted: false };
    const out = await dm.withOriginLock(origin, async () => {
      let create: dm.Step[];
      try {
        create = parent ? await dm.snapshotSteps(s.pool.name, deviceId, parent.meta.deviceId, origin) : dm.createThinSteps(s.pool.name, deviceId);
      } catch (err) {
        s.ids.release(deviceId);
        throw err;
      }
      return dm.runSteps([
        ...s.tx.beginSteps(hash, deviceId, { register: s.store.deviceWriteStep(hash, meta) }),
        ...create,
        ...crashSteps('after-create-thin'),
        ...s.tx.commitSteps(),
      ]);
    });
    if (!out.error) {
      s.tx.committed();
      s.devices.set(hash, meta);
      return meta;
    }
    switch (out.failedPhase) {
      case 'intent':
        // The files may be written without being durable: neither may stay.
        s.ids.release(deviceId);
        await s.store.removeDevice(hash).catch(() => undefined);
        // (abandon forgets the intent in memory first; its rewrite may fail on a full disk.)
        await s.tx.abandon().catch(() => undefined);
        throw out.error;
      case 'suspend':
      case 'create':
        // Nothing was made in the pool; the device's file goes with the intent.
        await s.store.removeDevice(hash);
        // An id made behind our back: leave it marked used, take the next one.
        if (out.failedPhase === 'create' && out.error.code === 'EEXIST') continue;
        s.ids.release(deviceId);
        await s.tx.abandon();
        throw out.error;
      case 'resume':
        // The snapshot was made but the origin did not resume: undo it in the pool; if that
        // fails too, the open transaction rolls it back at next open.
        out.error.message += ` (the snapshot ${deviceId} was made and is deleted again; the origin may still be suspended)`;
        await dm.deleteDevice(s.pool.name, deviceId);
        await s.store.removeDevice(hash).catch(() => undefined);
        s.ids.release(deviceId);
        await s.tx.abandon();
        throw out.error;
      default:
        // set_transaction_id failed: the device is registered, the transaction stays open and
        // the next open rolls it back.
        throw out.error;
    }
  }
}

/** Writes deviceset-metadata with the allocator's next id (at init, base checks and shutdown). */
export async function saveDeviceSet(s: DeviceSetState): Promise<void> {
  const next = { ...s.deviceSet, nextDeviceId: s.ids.nextDeviceId };
  await s.store.writeDeviceSet(next);
  s.deviceSet = next;
  s.deviceSetOnDisk = true;
}

/**
 * Deletes the thin id and the metadata of `hash` in one transaction, as one native job.
 * Call with the pool lock held.
 */
export async function deleteRegisteredDevice(s: DeviceSetState, hash: string, meta: DeviceMetadata): Promise<void> {
  await s.tx.finishPendingRollback((id) => s.ids.release(id));
  const out = await dm.runSteps([
    ...s.tx.beginSteps(hash, meta.deviceId),
    // missingOk: the pool no longer has it (deleted behind our back): finish the bookkeeping.
    ...dm.deletionSteps(s.pool.name, meta.deviceId, { missingOk: true }),
    ...crashSteps('mid-delete'),
    ...dm.inPhase('unregister', [s.store.deviceRemoveStep(hash), s.store.syncStep()]),
    ...s.tx.commitSteps(),
  ]);
  switch (out.failedPhase) {
    case null:
      s.devices.delete(hash);
      s.tx.committed();
      s.ids.release(meta.deviceId);
      return;
    case 'intent':
      s.tx.reset();
      break;
    case 'delete':
      await s.tx.abandon();
      break;
    case 'unregister':
      // The file could not be removed: the transaction stays open, the next open finishes it.
      break;
    default:
      // set_transaction_id failed: the file is gone, the next open finishes the transaction.
      s.devices.delete(hash);
  }
  throw out.error;
}

/**
 * Activates the device unless it is active; a pending deferred remove is cancelled instead.
 * Returns /dev/mapper/NAME once udev made it; with `nodeNow` (a short use inside the library:
 * a superblock probe) the activation does not wait for udev (udevReap) and the path is one
 * that can be opened at once ({@link dm.usableDevicePath}).
 */
export async function activateIfNeeded(s: DeviceSetState, hash: string, meta: DeviceMetadata, o: { nodeNow?: boolean } = {}): Promise<string> {
  const name = nameOf(s, hash);
  const reap = o.nodeNow === true && s.options.udevReap;
  // Layers are found by name, never by UUID: skip udev's disk and other rules (blkid, links).
  const steps = dm.activationSteps(await dm.getInfo(name), s.pool.name, name, meta.deviceId, meta.size, { udevPrivate: true, udevReap: reap });
  if (steps.length > 0) await dm.runStepsOrThrow(steps);
  s.activated.add(hash);
  // The caller's now, until it deactivates it: not one to evict.
  s.idle.delete(hash);
  if (reap) return dm.usableDevicePath(name);
  // Active already, from a mount that did not wait for udev: the caller gets a path that exists.
  if (steps.length === 0 && dm.udevReaperStats().pending > 0) await dm.udevWaitName(name);
  const path = `/dev/mapper/${name}`;
  // The promise is a path that exists. Once (a loaded full run, containerd's view right after
  // its garbage collection removed devices) it did not after the wait, cause not found: the
  // node is then made to match the kernel by hand, as libdevmapper's fallback would.
  if (!existsSync(path)) await dm.updateNodes(name);
  return path;
}

export interface DeactivateOptions {
  retryBudgetMs?: number;
  signal?: AbortSignal;
  /** Use deferred removal (default: dm.use_deferred_removal). */
  deferred?: boolean;
}

/** Removes the device's mapping if present (deferred when enabled), with bounded retries. */
export async function deactivate(s: DeviceSetState, hash: string, o: DeactivateOptions = {}): Promise<void> {
  const name = nameOf(s, hash);
  if ((await dm.getInfo(name)) !== null)
    await dm.removeWithRetries(name, {
      deferred: o.deferred ?? s.options.useDeferredRemoval,
      missingOk: true,
      retryBudgetMs: o.retryBudgetMs ?? s.options.removeRetryBudgetMs,
      signal: o.signal,
      udevReap: s.options.udevReap,
    });
  s.activated.delete(hash);
  s.idle.delete(hash);
}

/**
 * Discards the device's blocks before deletion (dm.blkdiscard) unless something holds it
 * open, in one native job: the device activated when it is not active (one kept active
 * after its unmount needs nothing), the thin target asked whether anything is mapped (a
 * device with nothing mapped is not discarded), the discard, and the device deactivated.
 * No process-wide sync. Returns whether it discarded and whether the device is gone; a
 * device still busy at the end is left active for the caller's retrying deactivation.
 */
export async function discardBeforeDelete(s: DeviceSetState, hash: string, meta: DeviceMetadata): Promise<{ discarded: boolean; gone: boolean }> {
  const name = nameOf(s, hash);
  const before = await dm.getInfo(name);
  if (before && before.openCount > 0) return { discarded: false, gone: false };
  const out = await dm.runSteps([
    // Layers are found by name, never by UUID: skip udev's disk and other rules (blkid, links).
    ...dm.activationSteps(before, s.pool.name, name, meta.deviceId, meta.size, { udevPrivate: true, udevReap: s.options.udevReap }),
    ...dm.discardSteps(name, meta.size),
    ...dm.removalSteps(name, { missingOk: true, udevReap: s.options.udevReap }),
  ]);
  const discarded = out.results.some((r) => r.phase === 'discard' && r.ran && !r.skipped && r.errno === 0);
  if (!out.error) {
    s.activated.delete(hash);
    s.idle.delete(hash);
    return { discarded, gone: true };
  }
  // Still busy (udev probing it, a process): the caller's deactivation retries, deferred
  // when enabled.
  if (out.failedPhase === 'remove' && out.error.code === 'EBUSY') {
    s.activated.add(hash);
    return { discarded, gone: false };
  }
  // The discard failed on a device that is active now: it goes before the error is reported.
  if (before || out.failedPhase !== 'activate') {
    s.activated.add(hash);
    // Not hiding the discard's error: a device left active is still in `activated`.
    await deactivate(s, hash, { deferred: false }).catch(() => undefined);
  }
  throw out.error;
}

/** Takes the pool lock for fn. */
export function withPoolLock<T>(s: DeviceSetState, fn: () => Promise<T>): Promise<T> {
  return s.locks.run(POOL_LOCK, fn);
}
