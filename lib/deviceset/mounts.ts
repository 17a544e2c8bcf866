/** Mounting and unmounting DeviceSet devices. */
import { writeFile } from 'node:fs/promises';
import * as dm from '../dm';
import { activateSpec, cancelDeferredRemoveSpec, mknodesSpec, removeSpec } from '../dm/specs';
import type { NativeStep } from '../native';
import { mountStep, rmdirStep, runSteps, taskStep, umountStep } from '../steps';
import { DevmapperError, ErrorCodes, invalidArgument } from '../errors';
import * as sys from '../sys';
import { deactivate, nameOf, unknownDevice } from './devices';
import { requiredMountOptions } from './filesystem';
import type { DeviceSetState } from './state';

/** The mount options of a device: nouuid for xfs, dm.mountopt, the SELinux context label. */
export function mountData(s: DeviceSetState, mountLabel: string | undefined): string {
  const opts = [...requiredMountOptions(s.filesystem)];
  if (s.options.mountOptions) opts.push(...s.options.mountOptions.split(',').filter(Boolean));
  if (mountLabel) {
    if (/[",\n\0]/.test(mountLabel)) throw invalidArgument('mountLabel', 'an SELinux label without quotes, commas or newlines', mountLabel);
    opts.push(`context="${mountLabel}"`);
  }
  return opts.join(',');
}

/** xfs keeps retrying metadata writes on ENOSPC forever by default: bound it (dm.xfs_nospace_max_retries). */
async function applyXfsNospaceRetries(s: DeviceSetState, hash: string): Promise<void> {
  if (s.filesystem !== 'xfs' || s.options.xfsNospaceMaxRetries === null) return;
  // xfs names its sysfs directory after the kernel's block device name, dm-<minor>.
  const info = await dm.getInfo(nameOf(s, hash));
  const knob = `/sys/fs/xfs/dm-${info?.minor}/error/metadata/ENOSPC/max_retries`;
  try {
    await writeFile(knob, String(s.options.xfsNospaceMaxRetries));
  } catch (err) {
    throw new DevmapperError(`could not apply dm.xfs_nospace_max_retries at ${knob}`, {
      code: ErrorCodes.XFS_NOSPACE_RETRIES,
      argument: 'dm.xfs_nospace_max_retries',
      device: hash,
      cause: err,
    });
  }
}

/**
 * Activates the device when needed and mounts it, as one native job. A mount that fails
 * deactivates the device again (as before the job: a device is active only while mounted).
 */
export async function mountDevice(s: DeviceSetState, hash: string, path: string, mountLabel?: string): Promise<void> {
  const meta = s.devices.get(hash);
  if (!meta) throw unknownDevice(hash);
  if (meta.deleted)
    throw new DevmapperError(`device ${hash} is marked for deferred deletion and cannot be mounted`, { code: 'ENOENT', device: hash });
  const current = s.mounts.get(hash);
  if (current !== undefined && current !== path)
    throw new DevmapperError(`device ${hash} is already mounted at ${current}, not mounting it at ${path} too`, {
      code: 'EBUSY',
      device: hash,
    });
  if (current === path && sys.isMountPoint(path)) return;
  const data = mountData(s, mountLabel);
  const name = nameOf(s, hash);
  const info = await dm.getInfo(name);
  const steps: NativeStep[] = [];
  if (!info) {
    // Layers are found by name, never by UUID: skip udev's disk and other rules (blkid, links).
    steps.push(taskStep(activateSpec(s.pool.name, name, meta.deviceId, meta.size, { udevPrivate: true })));
  } else if (info.deferredRemove) {
    steps.push(taskStep(cancelDeferredRemoveSpec(name)));
  }
  steps.push(mountStep(`/dev/mapper/${name}`, path, s.filesystem, data));
  const out = await runSteps(steps);
  if (out.error) {
    if (out.failedStep === steps.length - 1) {
      s.activated.add(hash);
      await deactivate(s, hash).catch(() => undefined);
    }
    throw out.error;
  }
  s.activated.add(hash);
  try {
    await applyXfsNospaceRetries(s, hash);
  } catch (err) {
    // All or nothing: a mount without the bound the user asked for is not left behind.
    await sys.unmount(path, { detach: true }).catch(() => undefined);
    await deactivate(s, hash).catch(() => undefined);
    throw err;
  }
  s.mounts.set(hash, path);
}

/**
 * Unmounts with MNT_DETACH (copies of the mount leaked into other namespaces go with the
 * mount point), removes the mount point, then deactivates the device (deferred when
 * enabled): one native job. Nothing mounted there (EINVAL), a mount point already gone and
 * a device already inactive are fine. A device still busy is retried within the budget.
 */
export async function unmountDevice(s: DeviceSetState, hash: string, path: string): Promise<void> {
  if (!s.devices.has(hash)) throw unknownDevice(hash);
  const name = nameOf(s, hash);
  const deferred = s.options.useDeferredRemoval;
  const steps = [
    umountStep(path, { ok: ['EINVAL', 'ENOENT'] }),
    rmdirStep(path, { ok: ['ENOENT', 'ENOTEMPTY', 'EBUSY'] }),
    taskStep(removeSpec(name, deferred), { ok: ['ENXIO'] }),
  ];
  // libdevmapper drops the node even when the kernel only deferred the remove: put it back.
  if (deferred) steps.push(taskStep(mknodesSpec(name, 'refresh node after deferred remove')));
  const out = await runSteps(steps);
  if (out.error && out.failedStep === 0) throw out.error;
  s.mounts.delete(hash);
  if (out.error && out.failedStep === 1) throw out.error;
  if (out.error && out.failedStep === 2 && out.error.code === 'EBUSY') {
    // Still held (udev probing it, a process): the retrying path.
    await deactivate(s, hash);
    return;
  }
  if (out.error) throw out.error;
  s.activated.delete(hash);
}

/** Whether the device's mapping exists and is open (mounted, or held by someone). */
export async function deviceOpenCount(s: DeviceSetState, hash: string): Promise<number> {
  const info = await dm.getInfo(nameOf(s, hash));
  return info?.openCount ?? 0;
}
