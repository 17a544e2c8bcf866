/**
 * One DeviceSet per root at a time: an exclusive flock(2) on root/.devmapper-lock, held for
 * the DeviceSet's life, holding the owner's pid. Two owners would each keep their own idea
 * of the transaction and the next device id and overwrite each other's metadata files.
 * The kernel drops the lock when its holder dies, so a crash never leaves a root locked.
 * Docker ignores the file (it reads only metadata/ and mnt/).
 */
import { join } from 'node:path';
import { DevmapperError, ErrorCodes } from '../errors';
import * as sys from '../sys';

/** The lock file's name in the root. */
export const ROOT_LOCK_FILE = '.devmapper-lock';

export class RootLock {
  private fd: number | null;

  private constructor(
    fd: number,
    readonly path: string,
  ) {
    this.fd = fd;
  }

  /** Takes the root's lock without waiting; ERR_ROOT_BUSY when another DeviceSet holds it. */
  static acquire(root: string): RootLock {
    const path = join(root, ROOT_LOCK_FILE);
    try {
      return new RootLock(sys.lockFile(path), path);
    } catch (err) {
      if (err instanceof DevmapperError && (err.code === 'EWOULDBLOCK' || err.code === 'EAGAIN'))
        throw new DevmapperError(`the root ${root} is already open (${err.message}): one DeviceSet per root at a time`, {
          code: ErrorCodes.ROOT_BUSY,
          errno: err.errno,
          device: root,
          operation: 'open',
          cause: err,
        });
      throw err;
    }
  }

  /** Drops the lock (idempotent). */
  release(): void {
    if (this.fd === null) return;
    sys.unlockFile(this.fd);
    this.fd = null;
  }
}
