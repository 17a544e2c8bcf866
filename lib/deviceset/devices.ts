/**
 * Thin devices of a DeviceSet: creating (create_thin for the base, create_snap for the rest)
 * and deleting them inside a transaction, activating and deactivating them.
 */
import { constants as osConstants } from 'node:os';
import * as dm from '../dm';
import { DevmapperError, ErrorCodes } from '../errors';
import * as sys from '../sys';
import { crashPoint } from './crash-points';
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
  const st = await dm.getPoolStatus(s.pool.name);
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
 * a snapshot (create_snap) of `parent` otherwise. An id the pool already has is skipped.
 * Call with the pool lock held.
 */
export async function createRegisteredDevice(
  s: DeviceSetState,
  hash: string,
  sizeBytes: number,
  parent: { hash: string; meta: DeviceMetadata } | null,
): Promise<DeviceMetadata> {
  let deviceId = s.ids.allocate();
  const transactionId = await s.tx.begin(hash, deviceId);
  for (;;) {
    try {
      if (parent) await dm.createSnapDevice(s.pool.name, deviceId, nameOf(s, parent.hash), parent.meta.deviceId);
      else await dm.createDevice(s.pool.name, deviceId);
      break;
    } catch (err) {
      if (err instanceof DevmapperError && err.code === 'EEXIST') {
        // Made behind our back: leave it marked used, take the next one.
        deviceId = s.ids.allocate();
        await s.tx.refresh(deviceId);
        continue;
      }
      s.ids.release(deviceId);
      await s.tx.abandon();
      throw err;
    }
  }
  crashPoint('after-create-thin');
  const meta: DeviceMetadata = { deviceId, size: sizeBytes, transactionId, initialized: false, deleted: false };
  try {
    await s.store.writeDevice(hash, meta);
    s.deviceSet.nextDeviceId = s.ids.nextDeviceId;
    await s.store.writeDeviceSet(s.deviceSet);
  } catch (err) {
    // Undo in the pool; if that fails too, the open transaction rolls it back at next open.
    await dm.deleteDevice(s.pool.name, deviceId);
    await s.store.removeDevice(hash).catch(() => undefined);
    s.ids.release(deviceId);
    await s.tx.abandon();
    throw err;
  }
  crashPoint('after-register');
  await s.tx.commit();
  s.devices.set(hash, meta);
  return meta;
}

/** Deletes the thin id and the metadata of `hash` in one transaction. Call with the pool lock held. */
export async function deleteRegisteredDevice(s: DeviceSetState, hash: string, meta: DeviceMetadata): Promise<void> {
  await s.tx.begin(hash, meta.deviceId);
  try {
    await dm.deleteDevice(s.pool.name, meta.deviceId);
  } catch (err) {
    // ENODATA: the pool no longer has it (deleted behind our back): finish the bookkeeping.
    if (!(err instanceof DevmapperError && err.code === 'ENODATA')) {
      await s.tx.abandon();
      throw err;
    }
  }
  crashPoint('mid-delete');
  await s.store.removeDevice(hash);
  s.devices.delete(hash);
  await s.tx.commit();
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
