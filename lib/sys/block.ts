/** Block device size and discard. */
import { invalidArgument } from '../errors';
import { native } from '../native';

/** Size of a block device in bytes (BLKGETSIZE64). */
export async function getBlockDeviceSize(path: string): Promise<number> {
  if (typeof path !== 'string' || !path.startsWith('/')) throw invalidArgument('path', 'an absolute device path', path);
  return native().blockDeviceSize(path);
}

/** Discards a byte range of a block device (BLKDISCARD); offset and length must be sector-aligned. */
export async function discardBlocks(path: string, offsetBytes: number, lengthBytes: number): Promise<void> {
  if (typeof path !== 'string' || !path.startsWith('/')) throw invalidArgument('path', 'an absolute device path', path);
  for (const [name, v] of [
    ['offsetBytes', offsetBytes],
    ['lengthBytes', lengthBytes],
  ] as const)
    if (!Number.isSafeInteger(v) || v < 0 || v % 512 !== 0) throw invalidArgument(name, 'a non-negative multiple of 512', v);
  await native().blockDiscard(path, offsetBytes, lengthBytes);
}
