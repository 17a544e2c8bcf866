/** Thin-pool messages: create_thin, create_snap, delete, set_transaction_id. */
import { runSteps, runStepsOrThrow } from './run-steps';
import { createThinSteps, deletionSteps, setTransactionIdSteps, snapshotSteps, withOriginLock } from './sequences';
import { runTask } from './task';
import { resolveDeviceName } from './validate';

/**
 * Sends a raw message to sector 0 of a device's target; returns the target's response ('' when
 * it gave none). The typed calls below are built on it; use it for messages they do not cover
 * (`reserve_metadata_snap`, `release_metadata_snap`, ...).
 *
 * @param name the device (usually a pool)
 * @param message the message text, e.g. 'reserve_metadata_snap'
 * @param operation what to call it in errors
 * @throws {@link DevmapperError} ENXIO when there is no such device; the target's errno
 *   (EINVAL for a message it does not understand)
 */
export async function sendMessage(name: string, message: string, operation = `message ${message}`): Promise<string> {
  const dev = resolveDeviceName(name);
  const res = await runTask({ type: 'targetMsg', name: dev, sector: 0, message, operation });
  return res.response ?? '';
}

/**
 * `create_thin <id>`: a new, empty thin device in the pool. It has no size and no mapping
 * until {@link activateDevice} gives it a table.
 *
 * @param poolName the pool's name or /dev/mapper path
 * @param deviceId the new device's 24-bit id, 0 .. 16777215
 * @throws {@link DevmapperError} EEXIST when the id is taken; ENXIO when there is no such
 *   pool; ERR_INVALID_ARGUMENT for a bad name or id; the pool's errno when it cannot take
 *   the change (a read-only or failed pool)
 *
 * @example
 * ```ts
 * await dm.createDevice('myapp-pool', 0);
 * await dm.activateDevice('myapp-pool', 'myapp-base', 0, 10 * 2 ** 30);
 * ```
 */
export async function createDevice(poolName: string, deviceId: number): Promise<void> {
  await runStepsOrThrow(createThinSteps(poolName, deviceId));
}

/**
 * `create_snap <id> <baseId>`. When the origin is active (baseName given and present and not
 * already suspended) it is suspended, with its file system frozen, for the message, and resumed
 * afterwards on every path. The kernel's thin-provisioning documentation requires it: a
 * snapshot of an active origin taken without the suspend can be corrupt. Snapshots of one origin are serialised
 * within the process, so none resumes the origin while another still needs it frozen.
 *
 * @param poolName the pool
 * @param deviceId the snapshot's new 24-bit id
 * @param baseName the origin's device-mapper name when it may be active; null or '' when it
 *   is known to be inactive (no suspend is done then)
 * @param baseDeviceId the origin's thin id
 * @throws {@link DevmapperError} EEXIST when `deviceId` is taken; ENODATA when `baseDeviceId`
 *   does not exist; ENXIO when there is no such pool; the suspend's or resume's errno (a
 *   failed resume says that the snapshot was made and the origin may still be suspended)
 *
 * @example
 * ```ts
 * await dm.createSnapDevice('myapp-pool', 1, 'myapp-base', 0);   // myapp-base may stay mounted
 * ```
 */
export async function createSnapDevice(
  poolName: string,
  deviceId: number,
  baseName: string | null | undefined,
  baseDeviceId: number,
): Promise<void> {
  const origin = baseName ? resolveDeviceName(baseName, 'baseName') : null;
  await withOriginLock(origin, async () => {
    const out = await runSteps(await snapshotSteps(poolName, deviceId, baseDeviceId, origin));
    if (!out.error) return;
    if (out.failedPhase === 'resume') out.error.message += ` (the snapshot ${deviceId} was created; the origin ${origin} may still be suspended)`;
    throw out.error;
  });
}

/**
 * `delete <id>`: removes a thin device from the pool and frees its blocks (those no snapshot
 * still shares). Remove its mapping first ({@link removeDevice}).
 *
 * @throws {@link DevmapperError} ENODATA when the id does not exist; EBUSY when the device
 *   is still active; ENXIO when there is no such pool
 */
export async function deleteDevice(poolName: string, deviceId: number): Promise<void> {
  await runStepsOrThrow(deletionSteps(poolName, deviceId));
}

/**
 * `set_transaction_id <old> <new>`: the 64-bit id userspace keeps in the pool metadata to
 * tie the pool to its own records (the DeviceSet's crash recovery compares the two).
 *
 * @throws {@link DevmapperError} EINVAL when the pool's id is not `oldId`; ENXIO when there
 *   is no such pool; ERR_INVALID_ARGUMENT for ids that are not non-negative safe integers
 */
export async function setTransactionId(poolName: string, oldId: number, newId: number): Promise<void> {
  await runStepsOrThrow(setTransactionIdSteps(poolName, oldId, newId));
}
