/** Thin-pool messages: create_thin, create_snap, delete, set_transaction_id. */
import { DevmapperError } from '../errors';
import { KeyedLock } from './keyed-lock';
import { runTask } from './task';
import { checkThinId, checkUint, resolveDeviceName } from './validate';

/** Sends a raw message to sector 0 of a device's target; returns the target's response. */
export async function sendMessage(name: string, message: string, operation = `message ${message}`): Promise<string> {
  const dev = resolveDeviceName(name);
  const res = await runTask({ type: 'targetMsg', name: dev, sector: 0, message, operation });
  return res.response ?? '';
}

/** `create_thin <id>`: a new, empty thin device in the pool. EEXIST when the id is taken. */
export async function createDevice(poolName: string, deviceId: number): Promise<void> {
  const pool = resolveDeviceName(poolName, 'poolName');
  const id = checkThinId(deviceId);
  await runTask({ type: 'targetMsg', name: pool, sector: 0, message: `create_thin ${id}`, operation: `create_thin ${id}` });
}

// Snapshots of one origin are serialised so that none resumes the origin while another's
// create_snap still needs it suspended.
const originLocks = new KeyedLock();

/**
 * `create_snap <id> <baseId>`. When the origin is active (baseName given and present and not
 * already suspended) it is suspended, with its file system frozen, for the message, and resumed
 * afterwards on every path.
 */
export async function createSnapDevice(
  poolName: string,
  deviceId: number,
  baseName: string | null | undefined,
  baseDeviceId: number,
): Promise<void> {
  const pool = resolveDeviceName(poolName, 'poolName');
  const id = checkThinId(deviceId);
  const baseId = checkThinId(baseDeviceId, 'baseDeviceId');
  const origin = baseName ? resolveDeviceName(baseName, 'baseName') : null;
  const message = `create_snap ${id} ${baseId}`;
  const send = () => runTask({ type: 'targetMsg', name: pool, sector: 0, message, operation: message });
  if (!origin) {
    await send();
    return;
  }
  await originLocks.run(origin, async () => {
    const info = await runTask({ type: 'info', name: origin, operation: 'info' });
    const mustSuspend = info.info?.exists === true && !info.info.suspended;
    if (!mustSuspend) {
      await send();
      return;
    }
    await runTask({ type: 'suspend', name: origin, operation: `suspend origin for ${message}` });
    let failure: unknown;
    try {
      await send();
    } catch (err) {
      failure = err;
    }
    try {
      await runTask({ type: 'resume', name: origin, operation: `resume origin after ${message}` });
    } catch (resumeErr) {
      if (failure === undefined && resumeErr instanceof DevmapperError) {
        resumeErr.message += ` (the snapshot ${id} was created; the origin ${origin} may still be suspended)`;
      }
      throw failure ?? resumeErr;
    }
    if (failure !== undefined) throw failure;
  });
}

/** `delete <id>`: removes a thin device from the pool. ENODATA when the id does not exist. */
export async function deleteDevice(poolName: string, deviceId: number): Promise<void> {
  const pool = resolveDeviceName(poolName, 'poolName');
  const id = checkThinId(deviceId);
  await runTask({ type: 'targetMsg', name: pool, sector: 0, message: `delete ${id}`, operation: `delete ${id}` });
}

/** `set_transaction_id <old> <new>`: fails (EINVAL) when the pool's id is not `oldId`. */
export async function setTransactionId(poolName: string, oldId: number, newId: number): Promise<void> {
  const pool = resolveDeviceName(poolName, 'poolName');
  const from = checkUint(oldId, 'oldId');
  const to = checkUint(newId, 'newId');
  const message = `set_transaction_id ${from} ${to}`;
  await runTask({ type: 'targetMsg', name: pool, sector: 0, message, operation: message });
}
