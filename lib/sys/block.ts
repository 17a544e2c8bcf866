/** Block device size and discard. */
import { invalidArgument } from '../errors';
import { native } from '../native';

/**
 * Size of a block device in bytes (BLKGETSIZE64).
 *
 * @param path absolute path of the device node
 * @throws {@link DevmapperError} ERR_INVALID_ARGUMENT for a relative path; the errno of
 *   open(2) (ENOENT, EACCES) or of the ioctl (ENOTTY for a file that is not a block device)
 */
export async function getBlockDeviceSize(path: string): Promise<number> {
  if (typeof path !== 'string' || !path.startsWith('/')) throw invalidArgument('path', 'an absolute device path', path);
  return native().blockDeviceSize(path);
}

/**
 * Discards a byte range of a block device (BLKDISCARD); offset and length must be sector-aligned.
 * On a thin device this returns the range's blocks to the pool (and, with discard passdown,
 * to the device under the pool, e.g. punching holes in a loop file). No sync(2) is done.
 *
 * @param path absolute path of the device node
 * @param offsetBytes start, a multiple of 512
 * @param lengthBytes length, a multiple of 512
 * @throws {@link DevmapperError} ERR_INVALID_ARGUMENT for a relative path or unaligned
 *   range; EOPNOTSUPP when the device does not support discard; EINVAL for a range past
 *   its end
 */
export async function discardBlocks(path: string, offsetBytes: number, lengthBytes: number): Promise<void> {
  if (typeof path !== 'string' || !path.startsWith('/')) throw invalidArgument('path', 'an absolute device path', path);
  for (const [name, v] of [
    ['offsetBytes', offsetBytes],
    ['lengthBytes', lengthBytes],
  ] as const)
    if (!Number.isSafeInteger(v) || v < 0 || v % 512 !== 0) throw invalidArgument(name, 'a non-negative multiple of 512', v);
  await native().blockDiscard(path, offsetBytes, lengthBytes);
}
