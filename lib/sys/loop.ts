/** Loop devices over regular files: attach (with autoclear), find, detach. */
import { closeSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { DevmapperError, invalidArgument } from '../errors';
import { sleep } from '../util';
import { native, type NativeLoopEntry } from '../native';

/** How {@link attachLoopDevice} binds the file. */
export interface AttachLoopOptions {
  /** Bind read-only (the file is opened O_RDONLY; writes to the device fail with EPERM/EROFS). */
  readOnly?: boolean;
  /**
   * Detach automatically when the last holder closes the device (default true): a pool
   * built on it then takes the loop device away with it, and nothing leaks after a crash.
   */
  autoclear?: boolean;
  /**
   * LO_FLAGS_DIRECT_IO: the loop driver reads and writes the file with O_DIRECT, bypassing
   * the page cache. The file's file system must support O_DIRECT (tmpfs does not).
   */
  directIo?: boolean;
}

/**
 * An attached loop device, held open by this object. With autoclear, release() (or the
 * process exiting) lets the device go as soon as nothing else (a pool table) uses it.
 */
export class LoopDevice {
  private fd: number | null;

  /**
   * Made by {@link attachLoopDevice}; not meant to be constructed directly.
   *
   * @param path /dev/loopN
   * @param number N
   * @param major the block device's major number (7 for loop)
   * @param minor its minor number
   * @param file the backing file
   * @param fd the open descriptor that holds the device
   */
  constructor(
    /** The device node, /dev/loopN. */
    readonly path: string,
    /** N of /dev/loopN. */
    readonly number: number,
    /** Major number of the block device (7). */
    readonly major: number,
    /** Minor number of the block device. */
    readonly minor: number,
    /** The backing file, as given to attachLoopDevice. */
    readonly file: string,
    fd: number,
  ) {
    this.fd = fd;
  }

  /** major:minor, as device-mapper tables print it. */
  get devno(): string {
    return `${this.major}:${this.minor}`;
  }

  /** Whether this object still holds the device open (false after release() or detach()). */
  get held(): boolean {
    return this.fd !== null;
  }

  /** Closes our hold on the device. Idempotent. */
  release(): void {
    if (this.fd === null) return;
    const fd = this.fd;
    this.fd = null;
    closeSync(fd);
  }

  /** Releases our hold and unbinds the file, waiting (bounded) for other holders such as udev. */
  async detach(opts: DetachLoopOptions = {}): Promise<void> {
    this.release();
    await detachLoopDevice(this.path, opts);
  }

  /** Releases the hold, for `using loop = await sys.attachLoopDevice(...)`. */
  [Symbol.dispose](): void {
    this.release();
  }
}

/**
 * Binds a file to a free loop device (/dev/loop-control's LOOP_CTL_GET_FREE, then
 * LOOP_CONFIGURE, or LOOP_SET_FD + LOOP_SET_STATUS64 on kernels before 5.8) and keeps it open.
 * With autoclear (the default) the kernel unbinds the device at its last close: once a pool
 * table holds it, call release(), and the loop device goes away with the pool. Races with
 * other processes for the same free number are retried (up to 32 numbers). Missing
 * /dev/loopN nodes are created (mknod), as in a container without udev.
 *
 * @param file absolute path of a regular file (a sparse file is fine)
 * @throws {@link DevmapperError} ERR_INVALID_ARGUMENT for a relative path; the errno of
 *   opening the file (ENOENT, EACCES) or /dev/loop-control (ENOENT without the loop driver,
 *   EACCES/EPERM without root); EBUSY when no free loop device could be had after 32 tries;
 *   EINVAL from the kernel for `directIo` on a file system without O_DIRECT (tmpfs)
 *
 * @example
 * ```ts
 * await fs.promises.truncate('/var/lib/myapp/data', 100 * 2 ** 30);   // 100 GiB sparse
 * const data = await sys.attachLoopDevice('/var/lib/myapp/data');      // autoclear
 * console.log(data.path, data.devno);                                   // /dev/loop3 7:3
 * // ... build a pool on data.path, then:
 * data.release();                                                       // the pool holds it now
 * ```
 */
export async function attachLoopDevice(file: string, opts: AttachLoopOptions = {}): Promise<LoopDevice> {
  if (typeof file !== 'string' || !file.startsWith('/')) throw invalidArgument('file', 'an absolute path', file);
  const r = await native().loopAttach(file, {
    readOnly: opts.readOnly ?? false,
    autoclear: opts.autoclear ?? true,
    directIo: opts.directIo ?? false,
  });
  return new LoopDevice(r.path, r.number, r.major, r.minor, file, r.fd);
}

/** How {@link detachLoopDevice} waits. */
export interface DetachLoopOptions {
  /** How long to wait for the device to come free when someone else holds it open (ms). Default 5000. */
  timeoutMs?: number;
  /** Stops the wait: rejects with ABORT_ERR. */
  signal?: AbortSignal;
}

/**
 * Unbinds a loop device (LOOP_CLR_FD) and waits until it is unbound. While another process
 * holds the device open (udev probing it, typically), the kernel only marks it to detach on
 * last close; this waits for that, within the timeout, and rejects with EBUSY past it.
 * A device that is not bound is left alone (no error).
 *
 * @param loopPath a /dev/loopN path
 * @throws {@link DevmapperError} ERR_INVALID_ARGUMENT for another path; EBUSY past the
 *   timeout (the kernel still detaches it when the holder closes it); ABORT_ERR on abort
 */
export async function detachLoopDevice(loopPath: string, opts: DetachLoopOptions = {}): Promise<void> {
  checkLoopPath(loopPath);
  const timeoutMs = opts.timeoutMs ?? 5_000;
  const before = await native().loopStatus(loopPath);
  if (before === null) return;
  await native().loopDetach(loopPath);
  const deadline = Date.now() + timeoutMs;
  let delay = 2;
  for (;;) {
    const now = await native().loopStatus(loopPath);
    // Unbound, or already bound again to another file by someone else: ours is gone.
    if (now === null || now.backingFile !== before.backingFile) return;
    if (Date.now() >= deadline)
      throw new DevmapperError(`${loopPath} is still held open by another process after ${timeoutMs} ms; it detaches when they close it`, {
        code: 'EBUSY',
        errno: osConstants.errno.EBUSY,
        operation: 'loop detach',
        device: loopPath,
      });
    await sleep(delay, opts.signal, 'loop detach', loopPath);
    delay = Math.min(delay * 2, 50);
  }
}

/**
 * Makes a loop device re-read its backing file's size (LOOP_SET_CAPACITY), after the file grew.
 * Follow with {@link dm.reloadPool} for a pool on it.
 *
 * @throws {@link DevmapperError} ERR_INVALID_ARGUMENT for a path that is not /dev/loopN;
 *   ENXIO when the device is not bound
 */
export async function setLoopCapacity(loopPath: string): Promise<void> {
  checkLoopPath(loopPath);
  await native().loopSetCapacity(loopPath);
}

/**
 * A loop device's binding, as the kernel reports it (LOOP_GET_STATUS64): `path`, `number`,
 * `major`, `minor`, `autoclear`, `readOnly`, and `backingFile` (the full path from sysfs,
 * or the kernel's copy truncated to 63 bytes when sysfs lacks it).
 */
export type LoopInfo = NativeLoopEntry;

function checkLoopPath(loopPath: unknown): void {
  if (typeof loopPath !== 'string' || !/^\/dev\/loop\d+$/.test(loopPath)) throw invalidArgument('loopPath', 'a /dev/loopN path', loopPath);
}

/**
 * The loop devices bound to a file, matched by device and inode (not by name, which the
 * kernel truncates and which a rename makes stale).
 *
 * @throws {@link DevmapperError} ERR_INVALID_ARGUMENT for a relative path; the errno of stat(2) on the file
 */
export async function findLoopDevices(file: string): Promise<LoopInfo[]> {
  if (typeof file !== 'string' || !file.startsWith('/')) throw invalidArgument('file', 'an absolute path', file);
  return native().loopFind(file);
}

/**
 * A loop device's binding, or null when it is not bound.
 *
 * @throws {@link DevmapperError} ERR_INVALID_ARGUMENT for a path that is not /dev/loopN
 */
export async function getLoopStatus(loopPath: string): Promise<LoopInfo | null> {
  checkLoopPath(loopPath);
  return native().loopStatus(loopPath);
}
