/** mount(2) and umount2(2), without a shell or a child process. */
import { invalidArgument } from '../errors';
import { native } from '../native';

/** A flag name of {@link mountFlags}: 'MS_RDONLY', 'MS_NOATIME', ..., 'MNT_DETACH', .... */
export type MountFlagName = keyof ReturnType<typeof native>['mountFlags'];

/**
 * The MS_* and MNT_* constants of this platform, from the addon's <sys/mount.h>.
 *
 * @throws {@link DevmapperError} ERR_ADDON_NOT_LOADED when the native addon is missing
 */
export function mountFlags(): Record<MountFlagName, number> {
  return native().mountFlags;
}

/** How {@link mount} mounts. */
export interface MountOptions {
  /** MS_RDONLY. */
  readOnly?: boolean;
  /** Extra MS_* flag names. */
  flags?: MountFlagName[];
  /** File-system specific options, the `data` argument ("nouuid,discard"). */
  data?: string;
}

function checkPath(v: unknown, name: string): string {
  if (typeof v !== 'string' || !v.startsWith('/') || v.includes('\0')) throw invalidArgument(name, 'an absolute path', v);
  return v;
}

/**
 * mount(2), run on the libuv pool: no shell, no mount(8), no /etc/mtab. Needs
 * CAP_SYS_ADMIN in the mount namespace.
 *
 * @param source the block device (e.g. /dev/mapper/NAME)
 * @param target an existing directory
 * @param fstype 'ext4', 'xfs', ...
 * @throws {@link DevmapperError} ERR_INVALID_ARGUMENT for relative paths, a bad type or a
 *   flag name that is not MS_*; the errno of mount(2): EPERM without the privilege, EINVAL
 *   for bad options, a device without that file system, or an xfs whose UUID is already
 *   mounted (snapshots share it: pass `nouuid`), ENOENT for a missing source or target,
 *   EBUSY when the device is held exclusively by someone else
 *
 * @example
 * ```ts
 * await sys.mount('/dev/mapper/myapp-snap', '/mnt/snap', 'xfs', { data: 'nouuid', flags: ['MS_NOATIME'] });
 * ```
 */
export async function mount(source: string, target: string, fstype: string, opts: MountOptions = {}): Promise<void> {
  checkPath(source, 'source');
  checkPath(target, 'target');
  if (typeof fstype !== 'string' || !/^[a-z0-9_.]*$/.test(fstype)) throw invalidArgument('fstype', 'a file-system type name', fstype);
  const f = mountFlags();
  let flags = opts.readOnly ? f.MS_RDONLY : 0;
  for (const name of opts.flags ?? []) {
    if (!(name in f) || !name.startsWith('MS_')) throw invalidArgument('flags', 'MS_* flag names', name);
    flags |= f[name];
  }
  await native().mount(source, target, fstype, flags, opts.data ?? '');
}

/** How {@link unmount} unmounts. */
export interface UnmountOptions {
  /** MNT_DETACH: detach now, finish when the last user goes. */
  detach?: boolean;
  /** MNT_FORCE (only some file systems honour it). */
  force?: boolean;
}

/**
 * umount2(2) with UMOUNT_NOFOLLOW (a symlink at `target` is not followed).
 *
 * @throws {@link DevmapperError} ERR_INVALID_ARGUMENT for a relative path; EINVAL when
 *   nothing is mounted there; EBUSY when it is in use (use `detach`); EPERM without the privilege
 */
export async function unmount(target: string, opts: UnmountOptions = {}): Promise<void> {
  checkPath(target, 'target');
  const f = mountFlags();
  const flags = (opts.detach ? f.MNT_DETACH : 0) | (opts.force ? f.MNT_FORCE : 0) | f.UMOUNT_NOFOLLOW;
  await native().umount(target, flags);
}

/**
 * Whether `path` is the root of a mount, in this process's mount namespace: one statx(2)
 * (STATX_ATTR_MOUNT_ROOT; before Linux 5.8, a device different from the parent's), made on
 * the JS thread because it costs less than a thread hop. False when the path does not exist.
 *
 * @throws {@link DevmapperError} ERR_INVALID_ARGUMENT for a relative path; the errno's
 *   name (EACCES, ENAMETOOLONG, ...) for a statx failure other than ENOENT/ENOTDIR
 *
 * @example
 * ```ts
 * if (sys.isMountPoint('/mnt/c1')) await sys.unmount('/mnt/c1');
 * ```
 */
export function isMountPoint(path: string): boolean {
  checkPath(path, 'path');
  return native().isMountPoint(path);
}

/**
 * Makes `path` a mount with private propagation, bind-mounting the directory onto itself
 * first when it is not a mount point yet (two mount(2) calls at most; a second call finds
 * the mount and only sets the propagation again). Mounts made under a private mount are not
 * copied into other mount namespaces: under a shared parent (systemd makes / shared) every
 * layer mount would also appear in each namespace that shares it, hold the device open
 * there, and make its deactivation fail with EBUSY.
 *
 * @returns true when this call made the bind mount
 * @throws {@link DevmapperError} ERR_INVALID_ARGUMENT for a relative path; the errno of
 *   mount(2) (EPERM without CAP_SYS_ADMIN, ENOENT for a missing directory)
 */
export async function makePrivateMount(path: string): Promise<boolean> {
  checkPath(path, 'path');
  const f = mountFlags();
  const bound = !isMountPoint(path);
  if (bound) await native().mount(path, path, '', f.MS_BIND, '');
  await native().mount('', path, '', f.MS_PRIVATE, '');
  return bound;
}
