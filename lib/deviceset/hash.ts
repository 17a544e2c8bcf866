/**
 * Device hashes (the caller's ids) and the device-mapper names built from them, exactly as
 * Docker's devmapper driver named things (deviceset.go: devInfo.Name, getPoolName,
 * initDevmapper's devicePrefix). A hash is also a file name in root/metadata/, so it is
 * checked before it reaches the disk or the kernel (ids used as paths unchecked were CVE-2014-8178).
 */
import { invalidArgument } from '../errors';
import { DM_NAME_MAX_BYTES } from '../dm';

/** The metadata files that are not device files, and the base device's file. */
const RESERVED_NAMES: ReadonlySet<string> = new Set(['base', 'deviceset-metadata', 'transaction-metadata']);

/**
 * Characters libdevmapper passes through unmangled (lvm2 libdm-common.c _is_whitelisted_char).
 * Any other character is rewritten as \xNN in the name the kernel and /dev/mapper get, so
 * the name would no longer be `${prefix}-${hash}`.
 */
const LIBDM_NAME_CHARS = /^[0-9A-Za-z#+\-.:=@_]*$/;

/** Options of {@link checkDeviceHash}. */
export interface CheckDeviceHashOptions {
  /** The root's device prefix ("docker-0:18-3"): the dm name must fit in 127 bytes. */
  devicePrefix: string;
  /** The caller's name for the value, in the error (default 'hash'; the Driver's is 'id'). */
  argument?: string;
}

/**
 * Refuses a hash that is not safe as both a metadata file name and part of a dm name: empty,
 * '.', '..', a leading dot (hidden and temporary files), '/', NUL or other control
 * characters, the reserved names 'base', 'deviceset-metadata' and 'transaction-metadata',
 * a '.migrated' suffix (files Docker skipped at load), characters libdevmapper would mangle,
 * and hashes that make `${devicePrefix}-${hash}` 128 bytes or longer (DM_NAME_LEN).
 *
 * The base device (hash '') is addressed internally and never passes through this check.
 *
 * @throws DevmapperError ERR_INVALID_ARGUMENT with `argument` 'hash', the message naming the rule
 */
export function checkDeviceHash(hash: unknown, options: CheckDeviceHashOptions): string {
  const refuse = (rule: string) => invalidArgument(options.argument ?? 'hash', `a device hash that ${rule}`, hash);
  if (typeof hash !== 'string') throw refuse('is a string');
  if (hash.length === 0) throw refuse('is not empty');
  if (hash.includes('\0')) throw refuse('contains no NUL byte');
  if (hasControlCharacter(hash)) throw refuse('contains no control character');
  if (hash.includes('/')) throw refuse("contains no '/'");
  if (hash === '.' || hash === '..') throw refuse("is not '.' or '..'");
  if (hash.startsWith('.')) throw refuse("does not start with '.' (hidden and temporary metadata files)");
  if (RESERVED_NAMES.has(hash)) throw refuse(`is not the reserved metadata file name '${hash}'`);
  if (hash.endsWith('.migrated')) throw refuse("does not end in '.migrated' (files Docker skipped at load)");
  if (!LIBDM_NAME_CHARS.test(hash))
    throw refuse('uses only the characters libdevmapper leaves unmangled: A-Z a-z 0-9 # + - . : = @ _');
  const name = deviceName(options.devicePrefix, hash);
  const bytes = Buffer.byteLength(name, 'utf8');
  if (bytes > DM_NAME_MAX_BYTES)
    throw refuse(`makes a device-mapper name of at most ${DM_NAME_MAX_BYTES} bytes (${JSON.stringify(name)} has ${bytes})`);
  return hash;
}

/** C0 controls, DEL and C1 controls. */
function hasControlCharacter(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || (c >= 0x7f && c <= 0x9f)) return true;
  }
  return false;
}

/**
 * The device-mapper name of a device: `${prefix}-${hash}`, and `${prefix}-base` for the base
 * device (hash ''), as Docker's devInfo.Name().
 */
export function deviceName(prefix: string, hash: string): string {
  return `${prefix}-${hash === '' ? 'base' : hash}`;
}

/** The metadata file name of a device: the hash, and 'base' for the base device (hash ''). */
export function metadataFileName(hash: string): string {
  return hash === '' ? 'base' : hash;
}

/** The pool's device-mapper name when this library owns the pool: `${prefix}-pool`. */
export function poolName(prefix: string): string {
  return `${prefix}-pool`;
}

/**
 * Docker's device prefix, "docker-<major>:<minor>-<inode>", from the device and inode of the
 * root directory (its stat). Pass the inode as a bigint (stat with { bigint: true }) when it
 * may exceed 2^53.
 */
export function devicePrefix(major: number, minor: number, inode: number | bigint): string {
  for (const [argument, value] of [
    ['major', major],
    ['minor', minor],
    ['inode', inode],
  ] as const) {
    const ok = typeof value === 'bigint' ? value >= 0n : Number.isSafeInteger(value) && value >= 0;
    if (!ok) throw invalidArgument(argument, 'a non-negative integer', value);
  }
  return `docker-${major}:${minor}-${inode}`;
}

/** Docker's major() of a st_dev: (dev >> 8) & 0xfff. */
export function devMajor(dev: number | bigint): number {
  return Number((BigInt(dev) >> 8n) & 0xfffn);
}

/** Docker's minor() of a st_dev: (dev & 0xff) | ((dev >> 12) & 0xfff00). */
export function devMinor(dev: number | bigint): number {
  const d = BigInt(dev);
  return Number((d & 0xffn) | ((d >> 12n) & 0xfff00n));
}

/** Docker's prefix straight from a stat of the root: {@link devicePrefix} of its st_dev and inode. */
export function devicePrefixFromStat(stat: { dev: number | bigint; ino: number | bigint }): string {
  return devicePrefix(devMajor(stat.dev), devMinor(stat.dev), stat.ino);
}
