/**
 * Checks made before the kernel is asked anything. Each failure is a DevmapperError with
 * code ERR_INVALID_ARGUMENT that names the argument.
 */
import { readFileSync } from 'node:fs';
import { invalidArgument } from '../errors';
import { MAX_POOL_BLOCK_SIZE_SECTORS, MAX_THIN_DEVICE_ID, MIN_POOL_BLOCK_SIZE_SECTORS } from './parse';

/** The longest device-mapper name in bytes: the kernel's DM_NAME_LEN is 128 bytes including the terminating NUL. */
export const DM_NAME_MAX_BYTES = 127;
/** Device-mapper tables count in 512-byte sectors, whatever the device's logical block size. */
export const SECTOR_BYTES = 512;

/** Feature words a thin-pool table accepts (kernel docs, thin-provisioning.rst). */
export const THIN_POOL_FEATURES = [
  'skip_block_zeroing',
  'ignore_discard',
  'no_discard_passdown',
  'read_only',
  'error_if_no_space',
] as const;
/** One thin-pool feature word, as {@link PoolOptions.features} takes them. */
export type ThinPoolFeature = (typeof THIN_POOL_FEATURES)[number];

const MAPPER_PREFIX = '/dev/mapper/';

/**
 * A device-mapper name from a name, a /dev/mapper/NAME path or a /dev/dm-N path, checked:
 * non-empty, under 128 bytes, no '/', not '.' or '..', no NUL. A /dev/dm-N path is
 * translated through /sys/block/dm-N/dm/name, so that device must exist.
 *
 * @param nameOrPath a name, `/dev/mapper/NAME` or `/dev/dm-N`
 * @param argument the argument name to put in the error
 * @returns the bare device-mapper name
 * @throws {@link DevmapperError} ERR_INVALID_ARGUMENT naming `argument` for anything else
 */
export function resolveDeviceName(nameOrPath: unknown, argument = 'name'): string {
  if (typeof nameOrPath !== 'string') throw invalidArgument(argument, 'a device-mapper name or /dev/mapper path', nameOrPath);
  let name = nameOrPath;
  if (name.startsWith(MAPPER_PREFIX)) {
    name = name.slice(MAPPER_PREFIX.length);
  } else if (/^\/dev\/dm-\d+$/.test(name)) {
    // The kernel's own name for the device, read from sysfs.
    try {
      name = readFileSync(`/sys/block/${name.slice(5)}/dm/name`, 'utf8').trim();
    } catch {
      throw invalidArgument(argument, 'an existing /dev/dm-N device', nameOrPath);
    }
  }
  checkDeviceName(name, argument);
  return name;
}

/**
 * Refuses a device-mapper name the kernel would refuse: empty, longer than
 * {@link DM_NAME_MAX_BYTES} bytes, or holding a `/`.
 *
 * @throws {@link DevmapperError} ERR_INVALID_ARGUMENT naming `argument`
 */
export function checkDeviceName(name: string, argument = 'name'): void {
  if (name.length === 0) throw invalidArgument(argument, 'a non-empty device-mapper name', name);
  if (Buffer.byteLength(name, 'utf8') > DM_NAME_MAX_BYTES)
    throw invalidArgument(argument, `a device-mapper name of at most ${DM_NAME_MAX_BYTES} bytes`, name);
  if (name.includes('/') || name.includes('\0') || name === '.' || name === '..')
    throw invalidArgument(argument, "a device-mapper name without '/', NUL, or '.'/'..'", name);
}

/** A thin device id: an integer in 0 .. 2^24-1. */
export function checkThinId(id: unknown, argument = 'deviceId'): number {
  if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id > MAX_THIN_DEVICE_ID)
    throw invalidArgument(argument, `an integer thin device id in 0..${MAX_THIN_DEVICE_ID}`, id);
  return id;
}

/** A non-negative safe integer (transaction ids, sectors, block counts). */
export function checkUint(value: unknown, argument: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0)
    throw invalidArgument(argument, 'a non-negative integer', value);
  return value;
}

/** A size in bytes: a positive whole number of 512-byte sectors. */
export function checkSizeBytes(value: unknown, argument = 'sizeBytes'): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0 || value % SECTOR_BYTES !== 0)
    throw invalidArgument(argument, 'a positive size in bytes, a multiple of 512', value);
  return value;
}

export function checkPoolBlockSize(value: unknown, argument = 'blockSizeSectors'): number {
  if (
    typeof value !== 'number' ||
    !Number.isInteger(value) ||
    value < MIN_POOL_BLOCK_SIZE_SECTORS ||
    value > MAX_POOL_BLOCK_SIZE_SECTORS ||
    value % MIN_POOL_BLOCK_SIZE_SECTORS !== 0
  )
    throw invalidArgument(
      argument,
      `a multiple of ${MIN_POOL_BLOCK_SIZE_SECTORS} sectors between ${MIN_POOL_BLOCK_SIZE_SECTORS} and ${MAX_POOL_BLOCK_SIZE_SECTORS}`,
      value,
    );
  return value;
}

export function checkPoolFeatures(value: unknown, argument = 'features'): ThinPoolFeature[] {
  if (!Array.isArray(value)) throw invalidArgument(argument, 'an array of thin-pool feature words', value);
  for (const f of value)
    if (!(THIN_POOL_FEATURES as readonly unknown[]).includes(f))
      throw invalidArgument(argument, `thin-pool features among ${THIN_POOL_FEATURES.join(', ')}`, f);
  if (new Set(value).size !== value.length) throw invalidArgument(argument, 'no repeated feature', value);
  // dm-thin's parse_pool_features takes at most four feature arguments.
  if (value.length > 4) throw invalidArgument(argument, 'at most 4 thin-pool features', value);
  return value as ThinPoolFeature[];
}

/** A block device for a table: an absolute path or major:minor. */
export function checkBlockDeviceRef(value: unknown, argument: string): string {
  if (typeof value !== 'string' || !(/^\d+:\d+$/.test(value) || (value.startsWith('/') && !/\s/.test(value) && !value.includes('\0'))))
    throw invalidArgument(argument, 'an absolute block device path without spaces, or major:minor', value);
  return value;
}
