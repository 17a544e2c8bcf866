/** Mounting and unmounting DeviceSet devices. */
import { readFile, rmdir, writeFile } from 'node:fs/promises';
import * as dm from '../dm';
import { DevmapperError, invalidArgument } from '../errors';
import * as sys from '../sys';
import { activateIfNeeded, deactivate, nameOf, unknownDevice } from './devices';
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

/** Whether something is mounted at path (the kernel's view, not ours: survives a restart). */
export async function mountedAt(path: string): Promise<boolean> {
  const info = await readFile('/proc/self/mountinfo', 'utf8');
  return info.split('\n').some((l) => unescapeMountPath(l.split(' ')[4] ?? '') === path);
}

function unescapeMountPath(p: string): string {
  return p.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
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
      code: 'ERR_XFS_NOSPACE_RETRIES',
      argument: 'dm.xfs_nospace_max_retries',
      device: hash,
      cause: err,
    });
  }
}

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
  if (current === path && (await mountedAt(path))) return;
  const devicePath = await activateIfNeeded(s, hash, meta);
  try {
    await sys.mount(devicePath, path, s.filesystem, { data: mountData(s, mountLabel) });
  } catch (err) {
    await deactivate(s, hash).catch(() => undefined);
    throw err;
  }
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
 * mount point), removes the mount point, then deactivates the device (deferred when enabled).
 */
export async function unmountDevice(s: DeviceSetState, hash: string, path: string): Promise<void> {
  if (!s.devices.has(hash)) throw unknownDevice(hash);
  if (await mountedAt(path)) await sys.unmount(path, { detach: true });
  s.mounts.delete(hash);
  await rmdir(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT' && err.code !== 'ENOTEMPTY' && err.code !== 'EBUSY') throw err;
  });
  await deactivate(s, hash);
}

/** Whether the device's mapping exists and is open (mounted, or held by someone). */
export async function deviceOpenCount(s: DeviceSetState, hash: string): Promise<number> {
  const info = await dm.getInfo(nameOf(s, hash));
  return info?.openCount ?? 0;
}
