/** Loop devices over regular files: attach (with autoclear), find, detach. */
import { closeSync } from 'node:fs';
import { invalidArgument } from '../errors';
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

  /** Unbinds the file now (after releasing our hold). With other holders, the kernel detaches when they close. */
  async detach(): Promise<void> {
    this.release();
    await detachLoopDevice(this.path);
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

/** Unbinds a loop device (LOOP_CLR_FD). */
export async function detachLoopDevice(loopPath: string): Promise<void> {
  if (typeof loopPath !== 'string' || !/^\/dev\/loop\d+$/.test(loopPath)) throw invalidArgument('loopPath', 'a /dev/loopN path', loopPath);
  await native().loopDetach(loopPath);
}

export type LoopInfo = NativeLoopEntry;

/** The loop devices bound to a file, matched by device and inode. */
export async function findLoopDevices(file: string): Promise<LoopInfo[]> {
  if (typeof file !== 'string' || !file.startsWith('/')) throw invalidArgument('file', 'an absolute path', file);
  return native().loopFind(file);
}

/** A loop device's binding, or null when it is not bound. */
export async function getLoopStatus(loopPath: string): Promise<LoopInfo | null> {
  if (typeof loopPath !== 'string' || !/^\/dev\/loop\d+$/.test(loopPath)) throw invalidArgument('loopPath', 'a /dev/loopN path', loopPath);
  return native().loopStatus(loopPath);
}
