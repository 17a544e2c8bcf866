/** Mounting and unmounting DeviceSet devices. */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as dm from '../dm';
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

/** An entry {@link MountDeviceOptions.layout} makes on the mounted file system. */
export interface LayoutEntry {
  /** Relative to the mount point, without `..` components. */
  path: string;
  /** The exact mode, whatever the umask. */
  mode: number;
  /** A file with this content; a directory when absent. */
  content?: string;
}

/** What {@link DeviceSet.mountDevice} does besides the mount, in the mount's own native job. */
export interface MountDeviceOptions {
  /** Make the mount point with exactly this mode when it does not exist (removed again when the mount fails). */
  mountPointMode?: number;
  /** Entries made on the mounted file system when missing (existing ones are left as they are), in order. */
  layout?: LayoutEntry[];
}

function checkMode(mode: unknown, argument: string): number {
  if (typeof mode !== 'number' || !Number.isInteger(mode) || mode < 0 || mode > 0o7777) throw invalidArgument(argument, 'a file mode (0 to 0o7777)', mode);
  return mode;
}

function layoutSteps(path: string, layout: LayoutEntry[]): dm.Step[] {
  return layout.map((e) => {
    const parts = typeof e.path === 'string' ? e.path.split('/') : [];
    if (parts.length === 0 || e.path.startsWith('/') || parts.some((p) => p === '' || p === '.' || p === '..' || p.includes('\0')))
      throw invalidArgument('layout.path', 'a relative path without empty, . or .. components', e.path);
    const mode = checkMode(e.mode, 'layout.mode');
    const target = join(path, e.path);
    const o = { ok: ['EEXIST' as const], phase: 'layout' as const };
    return e.content === undefined ? dm.mkdirStep(target, mode, o) : dm.createFileStep(target, e.content, mode, o);
  });
}

/**
 * Activates the device when needed and mounts it, as one native job: the mount point made
 * when asked, the activation (or the cancel of a pending deferred remove), the mount, the
 * layout entries. What failed is undone by phase: a device is active only while mounted, and
 * a mount point made here goes again.
 */
export async function mountDevice(s: DeviceSetState, hash: string, path: string, mountLabel?: string, o: MountDeviceOptions = {}): Promise<void> {
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
  const layout = layoutSteps(path, o.layout ?? []);
  const name = nameOf(s, hash);
  const mountPoint = o.mountPointMode === undefined ? [] : [dm.mkdirStep(path, checkMode(o.mountPointMode, 'mountPointMode'), { ok: ['EEXIST'], phase: 'mountpoint' })];
  const out = await dm.runSteps([
    ...mountPoint,
    // Layers are found by name, never by UUID: skip udev's disk and other rules (blkid, links).
    // The mount does not wait for udev (udevReap): it uses /dev/dm-N until udev made the link.
    ...dm.activationSteps(await dm.getInfo(name), s.pool.name, name, meta.deviceId, meta.size, { udevPrivate: true, udevReap: s.options.udevReap }),
    ...dm.mountSteps(`/dev/mapper/${name}`, path, s.filesystem, data, { dmName: name }),
    ...layout,
  ]);
  if (out.error) {
    const phase = out.failedPhase;
    // Undo that must not hide the error being reported.
    if (phase === 'layout') await dm.runSteps([dm.umountStep(path)]).catch(() => undefined);
    if (phase === 'mount' || phase === 'layout') {
      s.activated.add(hash);
      await deactivate(s, hash).catch(() => undefined);
    }
    if (phase !== 'mountpoint' && dm.madeIn(out, 'mountpoint')) await dm.runSteps([dm.rmdirStep(path)]).catch(() => undefined);
    throw out.error;
  }
  s.activated.add(hash);
  s.idle.delete(hash);
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
 * mount point) and removes the mount point, in one native job. With keepActive the device
 * stays active, the most recent of the idle ones (the caller evicts past the bound);
 * without, the same job deactivates it (deferred when enabled). Nothing mounted there, a
 * mount point already gone and a device already inactive are fine. A device still busy is
 * retried within the budget.
 */
export async function unmountDevice(s: DeviceSetState, hash: string, path: string): Promise<void> {
  if (!s.devices.has(hash)) throw unknownDevice(hash);
  const name = nameOf(s, hash);
  const keep = s.options.keepActiveDevices > 0;
  const out = await dm.runSteps([
    ...dm.unmountSteps(path),
    ...(keep ? [] : dm.removalSteps(name, { deferred: s.options.useDeferredRemoval, missingOk: true, udevReap: s.options.udevReap })),
  ]);
  if (out.failedPhase === 'unmount') throw out.error;
  s.mounts.delete(hash);
  if (keep) {
    if (s.activated.has(hash)) s.idle.add(hash);
    return;
  }
  if (out.failedPhase === 'remove' && out.error?.code === 'EBUSY') {
    // Still held (udev probing it, a process): the retrying path.
    await deactivate(s, hash);
    return;
  }
  if (out.error) throw out.error;
  s.activated.delete(hash);
}

/**
 * The idle devices past keepActive, least recently unmounted first: the caller deactivates
 * them, each under its own lock (never under another device's: see the lock order).
 */
export function idleOverBound(s: DeviceSetState): string[] {
  const over = s.idle.size - s.options.keepActiveDevices;
  return over > 0 ? [...s.idle].slice(0, over) : [];
}
