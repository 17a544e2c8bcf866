/** Loop devices over regular files: attach (with autoclear), find, detach. */
import { closeSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { DevmapperError, invalidArgument } from '../errors';
import { sleep } from '../util/abort';
import { native, type NativeLoopEntry } from '../native';

export interface AttachLoopOptions {
  readOnly?: boolean;
  /**
   * Detach automatically when the last holder closes the device (default true): a pool
   * built on it then takes the loop device away with it, and nothing leaks after a crash.
   */
  autoclear?: boolean;
  directIo?: boolean;
}

/**
 * An attached loop device, held open by this object. With autoclear, release() (or the
 * process exiting) lets the device go as soon as nothing else (a pool table) uses it.
 */
export class LoopDevice {
  private fd: number | null;

  constructor(
    readonly path: string,
    readonly number: number,
    readonly major: number,
    readonly minor: number,
    readonly file: string,
    fd: number,
  ) {
    this.fd = fd;
  }

  /** major:minor, as device-mapper tables print it. */
  get devno(): string {
    return `${this.major}:${this.minor}`;
  }

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

  [Symbol.dispose](): void {
    this.release();
  }
}

/** Binds a file to a free loop device. */
export async function attachLoopDevice(file: string, opts: AttachLoopOptions = {}): Promise<LoopDevice> {
  if (typeof file !== 'string' || !file.startsWith('/')) throw invalidArgument('file', 'an absolute path', file);
  const r = await native().loopAttach(file, {
    readOnly: opts.readOnly ?? false,
    autoclear: opts.autoclear ?? true,
    directIo: opts.directIo ?? false,
  });
  return new LoopDevice(r.path, r.number, r.major, r.minor, file, r.fd);
}

export interface DetachLoopOptions {
  /** How long to wait for the device to come free when someone else holds it open (ms). Default 5000. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

/**
 * Unbinds a loop device (LOOP_CLR_FD) and waits until it is unbound. While another process
 * holds the device open (udev probing it, typically), the kernel only marks it to detach on
 * last close; this waits for that, within the timeout, and rejects with EBUSY past it.
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

/** Makes a loop device re-read its backing file's size (LOOP_SET_CAPACITY), after the file grew. */
export async function setLoopCapacity(loopPath: string): Promise<void> {
  checkLoopPath(loopPath);
  await native().loopSetCapacity(loopPath);
}

export type LoopInfo = NativeLoopEntry;

function checkLoopPath(loopPath: unknown): void {
  if (typeof loopPath !== 'string' || !/^\/dev\/loop\d+$/.test(loopPath)) throw invalidArgument('loopPath', 'a /dev/loopN path', loopPath);
}

/** The loop devices bound to a file, matched by device and inode. */
export async function findLoopDevices(file: string): Promise<LoopInfo[]> {
  if (typeof file !== 'string' || !file.startsWith('/')) throw invalidArgument('file', 'an absolute path', file);
  return native().loopFind(file);
}

/** A loop device's binding, or null when it is not bound. */
export async function getLoopStatus(loopPath: string): Promise<LoopInfo | null> {
  checkLoopPath(loopPath);
  return native().loopStatus(loopPath);
}
