/**
 * The file calls Node lacks, for unpacking and packing image layers: extended attributes of
 * a path itself (a symlink's own, never its target's), mknod(2) for devices and fifos, and
 * utimensat(2) with nanoseconds that does not follow symlinks.
 */
import { invalidArgument } from '../errors';
import { native } from '../native';

function checkPath(v: unknown, name = 'path'): string {
  if (typeof v !== 'string' || v === '' || v.includes('\0')) throw invalidArgument(name, 'a non-empty path', v);
  return v;
}

function checkXattrName(v: unknown): string {
  if (typeof v !== 'string' || !/^[a-z]+\.[^\0]+$/.test(v)) throw invalidArgument('name', 'an xattr name like "user.x"', v);
  return v;
}

function checkInt(v: unknown, name: string, max = Number.MAX_SAFE_INTEGER, min = 0): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max)
    throw invalidArgument(name, `an integer in [${min}, ${max}]`, v);
  return v;
}

/** The value of xattr `name` of the path itself, or null when it has none. */
export async function lgetxattr(path: string, name: string): Promise<Buffer | null> {
  return native().lgetxattr(checkPath(path), checkXattrName(name));
}

/** Sets xattr `name` of the path itself (created or replaced). */
export async function lsetxattr(path: string, name: string, value: Buffer): Promise<void> {
  if (!Buffer.isBuffer(value)) throw invalidArgument('value', 'a Buffer', value);
  await native().lsetxattr(checkPath(path), checkXattrName(name), value);
}

/** Removes xattr `name` of the path itself; no error when it had none. */
export async function lremovexattr(path: string, name: string): Promise<void> {
  await native().lremovexattr(checkPath(path), checkXattrName(name));
}

/** The xattr names of the path itself; empty on a file system without xattrs. */
export async function llistxattr(path: string): Promise<string[]> {
  return native().llistxattr(checkPath(path));
}

/** Every xattr of the path itself, by name, sorted by name. */
export async function readXattrs(path: string): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  for (const name of (await llistxattr(path)).sort()) {
    const value = await lgetxattr(path, name);
    if (value !== null) out.set(name, value);
  }
  return out;
}

/** File types mknod accepts, with their S_IF* bits. */
export const MknodTypes = {
  /** S_IFIFO: a named pipe. */
  fifo: 0o010000,
  /** S_IFCHR: a character device. */
  char: 0o020000,
  /** S_IFBLK: a block device. */
  block: 0o060000,
} as const;

/** mknod(2): a fifo, or a character or block device with the given numbers. The umask applies to `permissions`. */
export async function mknod(
  path: string,
  type: keyof typeof MknodTypes,
  permissions: number,
  major = 0,
  minor = 0,
): Promise<void> {
  if (!(type in MknodTypes)) throw invalidArgument('type', 'fifo, char or block', type);
  checkInt(permissions, 'permissions', 0o7777);
  checkInt(major, 'major', 0xfff);
  checkInt(minor, 'minor', 0xfffff);
  await native().mknod(checkPath(path), MknodTypes[type] | permissions, major, minor);
}

/** A time as whole seconds since the epoch plus nanoseconds. */
export interface TimeSpec {
  /** Whole seconds since the epoch. */
  sec: number;
  /** Nanoseconds, 0 to 999999999. */
  nsec: number;
}

/** utimensat(2) on the path itself (a symlink's own times), with nanoseconds. */
export async function lutimesNs(path: string, atime: TimeSpec, mtime: TimeSpec): Promise<void> {
  const min = -(2 ** 53) + 1;
  checkInt(atime?.sec, 'atime.sec', Number.MAX_SAFE_INTEGER, min);
  checkInt(atime?.nsec, 'atime.nsec', 999_999_999);
  checkInt(mtime?.sec, 'mtime.sec', Number.MAX_SAFE_INTEGER, min);
  checkInt(mtime?.nsec, 'mtime.nsec', 999_999_999);
  await native().lutimesNs(checkPath(path), atime.sec, atime.nsec, mtime.sec, mtime.nsec);
}

/**
 * Reads many files in one native job (one thread hop for all, not four a file): each whole
 * file as UTF-8, null for a file that does not exist. For a DeviceSet root's metadata files,
 * thousands at open. Only regular files are read: a symbolic link is refused, never followed,
 * and a FIFO or device is not opened for reading.
 *
 * @throws {@link DevmapperError} ELOOP for a symbolic link; EISDIR for a directory, EINVAL for
 *   another path that is not a regular file; the errno of open(2) or read(2) for a file that exists but cannot be read
 */
export async function readFiles(paths: string[]): Promise<(string | null)[]> {
  return native().readFiles(paths);
}

/**
 * Takes an exclusive flock(2) on `path` without waiting (the file made 0600 when missing) and
 * writes our pid into it; returns the descriptor that holds the lock ({@link unlockFile} drops it).
 * The kernel drops the lock when the holder dies.
 *
 * @throws {@link DevmapperError} EWOULDBLOCK, its message naming the holder's pid, when another open file holds it
 */
export function lockFile(path: string): number {
  return native().lockFile(path);
}

/** Drops a lock taken by {@link lockFile} (closes its descriptor). */
export function unlockFile(fd: number): void {
  native().unlockFile(fd);
}
