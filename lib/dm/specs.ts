/**
 * The task descriptions of the dm operations, in one place. The kernel sequences
 * (sequences.ts) make steps of them, which the public functions and the DeviceSet run alike;
 * the queries run them alone. Arguments are validated here, so every path refuses the same input.
 */
import { native, type NativeTaskSpec } from '../native';
import { formatThinTable } from './parse';
import { checkBlockDeviceRef, checkSizeBytes, checkThinId, checkUint, resolveDeviceName, SECTOR_BYTES } from './validate';

/** A message to sector 0 of the pool's target. */
function poolMessage(poolName: string, message: string): NativeTaskSpec {
  const pool = resolveDeviceName(poolName, 'poolName');
  return { type: 'targetMsg', name: pool, sector: 0, message, operation: message };
}

export function createThinSpec(poolName: string, deviceId: number): NativeTaskSpec {
  const pool = resolveDeviceName(poolName, 'poolName');
  return poolMessage(pool, `create_thin ${checkThinId(deviceId)}`);
}

export function createSnapSpec(poolName: string, deviceId: number, baseDeviceId: number): NativeTaskSpec {
  const pool = resolveDeviceName(poolName, 'poolName');
  const id = checkThinId(deviceId);
  return poolMessage(pool, `create_snap ${id} ${checkThinId(baseDeviceId, 'baseDeviceId')}`);
}

export function deleteThinSpec(poolName: string, deviceId: number): NativeTaskSpec {
  const pool = resolveDeviceName(poolName, 'poolName');
  return poolMessage(pool, `delete ${checkThinId(deviceId)}`);
}

export function setTransactionIdSpec(poolName: string, oldId: number, newId: number): NativeTaskSpec {
  const pool = resolveDeviceName(poolName, 'poolName');
  return poolMessage(pool, `set_transaction_id ${checkUint(oldId, 'oldId')} ${checkUint(newId, 'newId')}`);
}

/** The udev flags that keep a device to the device-mapper rules only. */
function privateUdevFlags(): number {
  const f = native().udevFlags;
  return f.DISABLE_DISK_RULES | f.DISABLE_OTHER_RULES;
}

/** See {@link ActivateOptions} in device.ts. */
export interface ActivateSpecOptions {
  readOnly?: boolean;
  externalOrigin?: string;
  udevPrivate?: boolean;
  /** Hand the udev cookie to the reaper instead of waiting (the node may come after the call). */
  udevReap?: boolean;
}

/** create with the thin table, node made on create (with udev: after its cookie). */
export function activateSpec(poolName: string, name: string, deviceId: number, sizeBytes: number, opts: ActivateSpecOptions = {}): NativeTaskSpec {
  const pool = resolveDeviceName(poolName, 'poolName');
  const dev = resolveDeviceName(name, 'name');
  const id = checkThinId(deviceId);
  const size = checkSizeBytes(sizeBytes);
  if (opts.externalOrigin !== undefined) checkBlockDeviceRef(opts.externalOrigin, 'externalOrigin');
  const params = formatThinTable({ poolDevice: `/dev/mapper/${pool}`, deviceId: id, externalOrigin: opts.externalOrigin });
  return {
    type: 'create',
    name: dev,
    targets: [{ start: 0, length: size / SECTOR_BYTES, type: 'thin', params }],
    addNode: 'create',
    readOnly: opts.readOnly,
    udevFlags: opts.udevPrivate ? privateUdevFlags() : 0,
    ...(opts.udevReap ? { udevReap: true } : {}),
    operation: `activate thin ${id}`,
  };
}

export function suspendSpec(name: string, opts: { skipLockfs?: boolean; noFlush?: boolean; operation?: string } = {}): NativeTaskSpec {
  const dev = resolveDeviceName(name);
  return { type: 'suspend', name: dev, skipLockfs: opts.skipLockfs, noFlush: opts.noFlush, operation: opts.operation ?? 'suspend' };
}

export function resumeSpec(name: string, operation = 'resume'): NativeTaskSpec {
  return { type: 'resume', name: resolveDeviceName(name), operation };
}

export function removeSpec(name: string, deferred = false, udevReap = false): NativeTaskSpec {
  return { type: 'remove', name: resolveDeviceName(name), deferredRemove: deferred, ...(udevReap ? { udevReap } : {}), operation: 'remove' };
}

/** Makes or deletes the /dev/mapper node to match the kernel (all nodes when no name). */
export function mknodesSpec(name: string | undefined, operation: string): NativeTaskSpec {
  return { type: 'mknodes', name: name === undefined ? undefined : resolveDeviceName(name), operation };
}

export function infoSpec(name: string): NativeTaskSpec {
  return { type: 'info', name: resolveDeviceName(name), operation: 'info' };
}

/** The live table's status; `noFlush` spares a pool the metadata commit it would make first. */
export function statusSpec(name: string, noFlush = false): NativeTaskSpec {
  return { type: 'status', name: resolveDeviceName(name), noFlush, operation: 'status' };
}

/** The `@cancel_deferred_remove` message: the device stays. */
export function cancelDeferredRemoveSpec(name: string): NativeTaskSpec {
  return { type: 'targetMsg', name: resolveDeviceName(name), sector: 0, message: '@cancel_deferred_remove', operation: 'cancel deferred remove' };
}
