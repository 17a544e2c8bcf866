/** The storage options of Driver.create, parsed as Docker's devicemapper parseStorageOpt did. */
import { invalidArgument } from '../errors';
import { parseSize } from '../util';

/** What create() accepts: Docker's map (`{ size: '20G' }`, keys case-insensitive). */
export type StorageOpt = Readonly<Record<string, string>>;

/** What {@link parseStorageOpt} makes of a StorageOpt. */
export interface ParsedStorageOpt {
  /** Bytes; undefined when not given (or 0, as Docker: the parent's size). */
  size?: number;
}

/**
 * Docker's keys: only `size` (any case), a go-units RAMInBytes size ("20G" = 20 GiB). Any
 * other key is ERR_INVALID_ARGUMENT naming it (Docker: "Unknown option %s"); a size that is
 * not a whole number of 512-byte sectors is refused too. Whether the size is at least the
 * parent's is checked by the DeviceSet.
 *
 * @throws {@link DevmapperError} ERR_INVALID_ARGUMENT with `argument` 'storageOpt' or
 *   'storageOpt.KEY'
 *
 * @example
 * ```ts
 * parseStorageOpt({ size: '20G' });   // { size: 21474836480 }
 * parseStorageOpt({ quota: '1G' });   // throws ERR_INVALID_ARGUMENT, argument 'storageOpt.quota'
 * ```
 */
export function parseStorageOpt(storageOpt: StorageOpt | null | undefined): ParsedStorageOpt {
  const out: ParsedStorageOpt = {};
  if (storageOpt === null || storageOpt === undefined) return out;
  if (typeof storageOpt !== 'object' || Array.isArray(storageOpt))
    throw invalidArgument('storageOpt', 'an object of string options such as { size: "20G" }', storageOpt);
  for (const [key, value] of Object.entries(storageOpt)) {
    if (key.toLowerCase() !== 'size')
      throw invalidArgument(`storageOpt.${key}`, 'a known storage option (devicemapper knows only "size")', value);
    const bytes = parseSize(value, `storageOpt.${key}`);
    if (bytes % 512 !== 0) throw invalidArgument(`storageOpt.${key}`, 'a size that is a multiple of 512 bytes', value);
    if (bytes > 0) out.size = bytes;
  }
  return out;
}
