/**
 * Thin devices of a DeviceSet: creating (create_thin for the base, create_snap for the rest)
 * and deleting them inside a transaction, activating and deactivating them.
 */
import { constants as osConstants } from 'node:os';
import * as dm from '../dm';
import { DevmapperError, ErrorCodes } from '../errors';
import * as sys from '../sys';
import { createSnapSpec, createThinSpec, deleteThinSpec, resumeSpec, suspendSpec } from '../dm/specs';
import type { NativeStep } from '../native';
import { runSteps, taskStep } from '../steps';
import { crashSteps } from './crash-points';
import { deviceName } from './hash';
import type { DeviceMetadata } from './metadata-store';
import { POOL_LOCK, type DeviceSetState } from './state';

export function nameOf(s: DeviceSetState, hash: string): string {
  return deviceName(s.prefix, hash);
}

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
 * The create_snap of `parent`, as steps: when the origin is active it is suspended (its file
 * system frozen) for the message and resumed on every path, as dm.createSnapDevice does.
 * The origin is not activated meanwhile: its device lock is held by the caller.
 */
async function snapshotSteps(s: DeviceSetState, deviceId: number, parent: { hash: string; meta: DeviceMetadata }): Promise<NativeStep[]> {
  const spec = createSnapSpec(s.pool.name, deviceId, parent.meta.deviceId);
  const origin = nameOf(s, parent.hash);
  const info = await dm.getInfo(origin);
  if (!info || info.suspended) return [taskStep(spec)];
  return [
    taskStep(suspendSpec(origin, { operation: `suspend origin for ${spec.message}` })),
    taskStep(spec),
    taskStep(resumeSpec(origin, `resume origin after ${spec.message}`), { always: true }),
  ];
}

/**
 * Creates thin device `hash` in one transaction: a new thin id (create_thin) for the base,
 * a snapshot (create_snap) of `parent` otherwise. An id the pool already has is skipped.
 * Call with the pool lock held.
 *
 * The whole sequence is one native job: the intent saved, the thin id created, the device's
 * file and deviceset-metadata written, set_transaction_id. What failed decides the undo.
 */
export async function createRegisteredDevice(
  s: DeviceSetState,
  hash: string,
  sizeBytes: number,
  parent: { hash: string; meta: DeviceMetadata } | null,
): Promise<DeviceMetadata> {
  for (;;) {
    const deviceId = s.ids.allocate();
    const meta: DeviceMetadata = { deviceId, size: sizeBytes, transactionId: s.tx.poolTransactionId + 1, initialized: false, deleted: false };
    let createSteps: NativeStep[];
    try {
      createSteps = parent ? await snapshotSteps(s, deviceId, parent) : [taskStep(createThinSpec(s.pool.name, deviceId))];
    } catch (err) {
      s.ids.release(deviceId);
      throw err;
    }
    const intent = s.tx.beginSteps(hash, deviceId);
    const register = [
      ...crashSteps('after-create-thin'),
      s.store.deviceWriteStep(hash, meta),
      s.store.deviceSetWriteStep({ ...s.deviceSet, nextDeviceId: s.ids.nextDeviceId }),
      s.store.syncStep(),
      ...crashSteps('after-register'),
    ];
    const out = await runSteps([...intent, ...createSteps, ...register, ...s.tx.commitSteps()]);
    // The create message is the middle step when the origin is suspended around it.
    const message = intent.length + (createSteps.length > 1 ? 1 : 0);
    const created = intent.length + createSteps.length;
    const registered = created + register.length;
    if (!out.error) {
      s.tx.committed();
      s.deviceSet.nextDeviceId = s.ids.nextDeviceId;
      s.deviceSetOnDisk = true;
      s.devices.set(hash, meta);
      return meta;
    }
    const failed = out.failedStep;
    if (failed < intent.length) {
      s.ids.release(deviceId);
      s.tx.reset();
      throw out.error;
    }
    if (failed <= message) {
      // Made behind our back: leave it marked used, take the next one.
      if (failed === message && out.error.code === 'EEXIST') continue;
      s.ids.release(deviceId);
      await s.tx.abandon();
      throw out.error;
    }
    if (failed < registered) {
      // The thin id exists but is not registered (or the origin did not resume): undo in the
      // pool; if that fails too, the open transaction rolls it back at next open.
      if (failed < created) out.error.message += ` (the snapshot ${deviceId} was made and is deleted again; the origin may still be suspended)`;
      await dm.deleteDevice(s.pool.name, deviceId);
      await s.store.removeDevice(hash).catch(() => undefined);
      s.ids.release(deviceId);
      await s.tx.abandon();
      throw out.error;
    }
    // set_transaction_id failed: the device is registered, the transaction stays open and
    // the next open rolls it back.
    s.deviceSet.nextDeviceId = s.ids.nextDeviceId;
    s.deviceSetOnDisk = true;
    throw out.error;
  }
}

/**
 * Deletes the thin id and the metadata of `hash` in one transaction, as one native job.
 * Call with the pool lock held.
 */
export async function deleteRegisteredDevice(s: DeviceSetState, hash: string, meta: DeviceMetadata): Promise<void> {
  const intent = s.tx.beginSteps(hash, meta.deviceId);
  // ENODATA: the pool no longer has it (deleted behind our back): finish the bookkeeping.
  const remove = [taskStep(deleteThinSpec(s.pool.name, meta.deviceId), { ok: ['ENODATA'] }), ...crashSteps('mid-delete')];
  const unregister = [s.store.deviceRemoveStep(hash), s.store.syncStep()];
  const out = await runSteps([...intent, ...remove, ...unregister, ...s.tx.commitSteps()]);
  const failed = out.failedStep;
  if (out.error && failed < intent.length) {
    s.tx.reset();
    throw out.error;
  }
  if (out.error && failed < intent.length + remove.length) {
    await s.tx.abandon();
    throw out.error;
  }
  // The file could not be removed: the transaction stays open, the next open finishes it.
  if (out.error && failed < intent.length + remove.length + unregister.length) throw out.error;
  s.devices.delete(hash);
  if (out.error) throw out.error;
  s.tx.committed();
  s.ids.release(meta.deviceId);
}

/** Activates the device unless it is active; a pending deferred remove is cancelled instead. */
export async function activateIfNeeded(s: DeviceSetState, hash: string, meta: DeviceMetadata): Promise<string> {
  const name = nameOf(s, hash);
  const info = await dm.getInfo(name);
  if (info) {
    if (info.deferredRemove) await dm.cancelDeferredRemove(name);
  } else {
    // Layers are found by name, never by UUID: skip udev's disk and other rules (blkid, links).
    await dm.activateDevice(s.pool.name, name, meta.deviceId, meta.size, { udevPrivate: true });
  }
  s.activated.add(hash);
  return `/dev/mapper/${name}`;
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
  if ((await dm.getInfo(name)) === null) {
    s.activated.delete(hash);
    return;
  }
  await dm.removeDevice(name, {
    deferred: o.deferred ?? s.options.useDeferredRemoval,
    retryBudgetMs: o.retryBudgetMs ?? s.options.removeRetryBudgetMs,
    signal: o.signal,
  });
  s.activated.delete(hash);
}

/**
 * Discards the device's blocks before deletion (dm.blkdiscard), only when it has mapped
 * blocks and nobody holds it open; no process-wide sync.
 */
export async function discardIfUseful(s: DeviceSetState, hash: string, meta: DeviceMetadata): Promise<boolean> {
  const name = nameOf(s, hash);
  const wasActive = (await dm.getInfo(name)) !== null;
  const path = await activateIfNeeded(s, hash, meta);
  try {
    const info = await dm.getInfo(name);
    if (!info || info.openCount > 0) return false;
    const st = await dm.getThinStatus(name);
    if (st.state !== 'ok' || st.mappedSectors === 0) return false;
    await sys.discardBlocks(path, 0, meta.size);
    return true;
  } finally {
    if (!wasActive) await deactivate(s, hash, { deferred: false });
  }
}

/** Takes the pool lock for fn. */
export function withPoolLock<T>(s: DeviceSetState, fn: () => Promise<T>): Promise<T> {
  return s.locks.run(POOL_LOCK, fn);
}
