/**
 * The base device every other device snapshots: created with a file system at first open,
 * its UUID and type recorded and verified at every open, grown when dm.basesize grows.
 */
import * as dm from '../dm';
import { DevmapperError, ErrorCodes } from '../errors';
import { activateIfNeeded, createRegisteredDevice, deactivate, deleteRegisteredDevice, nameOf, saveDeviceSet, withPoolLock } from './devices';
import { growFilesystem, makeFilesystem, probeFilesystem } from './filesystem';
import type { DeviceSetState } from './state';

export const BASE_HASH = '';

/** With dm.thinpooldev, a pool is only taken over while nothing was ever written to it. */
async function checkPoolAdoptable(s: DeviceSetState): Promise<void> {
  if (s.pool.kind !== 'external') return;
  const st = await dm.getPoolStatus(s.pool.name);
  if (st.state !== 'ok') throw new DevmapperError(`the pool ${s.pool.name} has failed`, { code: ErrorCodes.POOL_FAILED, device: s.pool.name });
  if (st.dataUsedBlocks !== 0 || st.transactionId !== 0)
    throw new DevmapperError(
      `cannot take ownership of thin-pool ${s.pool.name}: it already has ${st.dataUsedBlocks} used data blocks and transaction id ${st.transactionId} (another root, or another tool, uses it)`,
      { code: ErrorCodes.POOL_NOT_ADOPTABLE, device: s.pool.name, argument: 'dm.thinpooldev' },
    );
}

async function createBase(s: DeviceSetState): Promise<void> {
  await checkPoolAdoptable(s);
  const size = s.options.baseSizeBytes;
  const meta = await withPoolLock(s, () => createRegisteredDevice(s, BASE_HASH, size, null));
  const path = await activateIfNeeded(s, BASE_HASH, meta);
  try {
    await makeFilesystem(path, s.filesystem, s.options.mkfsArgs);
    const probed = await probeFilesystem(path);
    if (!probed.uuid) throw new DevmapperError(`no file system found on ${path} after mkfs`, { code: ErrorCodes.COMMAND_FAILED, device: path });
    s.deviceSet.baseDeviceUuid = probed.uuid;
    s.deviceSet.baseDeviceFilesystem = s.filesystem;
    await saveDeviceSet(s);
    meta.initialized = true;
    await s.store.writeDevice(BASE_HASH, meta);
  } finally {
    await deactivate(s, BASE_HASH, { deferred: false });
  }
}

/** The recorded UUID and type must still be on the base device (a different pool, or tampering, otherwise). */
async function verifyBase(s: DeviceSetState): Promise<void> {
  const meta = s.devices.get(BASE_HASH);
  if (!meta) return;
  const wasActive = (await dm.getInfo(nameOf(s, BASE_HASH))) !== null;
  // Only its superblock is read: the activation does not wait for udev's link.
  const path = await activateIfNeeded(s, BASE_HASH, meta, { nodeNow: true });
  try {
    // Named by its /dev/mapper path in errors, whichever node was opened.
    const probed = await probeFilesystem(path, `/dev/mapper/${nameOf(s, BASE_HASH)}`);
    const want = s.deviceSet.baseDeviceUuid;
    if (want && probed.uuid !== want)
      throw new DevmapperError(
        `the base device's file system UUID is ${probed.uuid ?? 'missing'}, the metadata recorded ${want}: this is not the pool this root was made on`,
        { code: ErrorCodes.BASE_DEVICE_CHANGED, device: nameOf(s, BASE_HASH) },
      );
    const recorded = s.deviceSet.baseDeviceFilesystem;
    if (recorded && probed.type !== recorded)
      throw new DevmapperError(`the base device holds ${probed.type ?? 'no file system'}, the metadata recorded ${recorded}`, {
        code: ErrorCodes.BASE_DEVICE_CHANGED,
        device: nameOf(s, BASE_HASH),
      });
    // An old Docker root may lack the record: fill it in.
    if (!want && probed.uuid) {
      s.deviceSet.baseDeviceUuid = probed.uuid;
      if (probed.type === 'ext4' || probed.type === 'xfs') s.deviceSet.baseDeviceFilesystem = probed.type;
      await saveDeviceSet(s);
    }
  } finally {
    // Active before (left by a process that died, perhaps still mounted): shutdown decides.
    if (!wasActive) await deactivate(s, BASE_HASH, { deferred: false });
  }
}

/** dm.basesize grew since the base was made: grow the base device and its file system. */
async function growBase(s: DeviceSetState): Promise<void> {
  const meta = s.devices.get(BASE_HASH);
  if (!meta) return;
  const want = s.options.baseSizeBytes;
  if (want === meta.size) return;
  if (want < meta.size)
    throw new DevmapperError(`dm.basesize ${want} is smaller than the existing base device (${meta.size} bytes): a base device cannot shrink`, {
      code: ErrorCodes.INVALID_ARGUMENT,
      argument: 'dm.basesize',
    });
  const updated = { ...meta, size: want };
  await s.store.writeDevice(BASE_HASH, updated);
  s.devices.set(BASE_HASH, updated);
  await deactivate(s, BASE_HASH, { deferred: false });
  const path = await activateIfNeeded(s, BASE_HASH, updated);
  try {
    await growFilesystem(path, s.filesystem);
  } finally {
    await deactivate(s, BASE_HASH, { deferred: false });
  }
}

export async function setupBaseImage(s: DeviceSetState): Promise<void> {
  const base = s.devices.get(BASE_HASH);
  if (base && !base.initialized) {
    // A crash during the first open left a base without a file system: start it over.
    await withPoolLock(s, () => deleteRegisteredDevice(s, BASE_HASH, base));
  }
  if (!s.devices.has(BASE_HASH)) {
    await createBase(s);
    return;
  }
  await verifyBase(s);
  await growBase(s);
}
