/** The Snapshotter's errors, one per containerd error kind. */
import { DevmapperError, ErrorCodes, invalidArgument } from '../errors';

export function snapshotNotFound(what: string, key: string): DevmapperError {
  return new DevmapperError(`${what} ${JSON.stringify(key)} does not exist`, { code: ErrorCodes.SNAPSHOT_NOT_FOUND, device: key });
}

export function snapshotExists(key: string): DevmapperError {
  return new DevmapperError(`a snapshot named ${JSON.stringify(key)} already exists`, { code: ErrorCodes.SNAPSHOT_EXISTS, device: key });
}

export function snapshotPrecondition(key: string, why: string): DevmapperError {
  return new DevmapperError(`snapshot ${JSON.stringify(key)} ${why}`, { code: ErrorCodes.SNAPSHOT_PRECONDITION, device: key });
}

/** containerd's own limit on one label (key plus value), kept so a label it accepts here it accepts there too. */
export const MAX_LABEL_BYTES = 4096;

/** Refuses keys that are not non-empty strings. */
export function checkKey(argument: string, key: unknown): string {
  if (typeof key !== 'string' || key.length === 0) throw invalidArgument(argument, 'a non-empty string', key);
  if (key.includes('\0')) throw invalidArgument(argument, 'a string without NUL bytes', key);
  return key;
}

/** Refuses labels that are not a string-to-string record, or a label over containerd's size limit. */
export function checkLabels(labels: unknown): Record<string, string> {
  if (labels === undefined || labels === null) return {};
  if (typeof labels !== 'object' || Array.isArray(labels)) throw invalidArgument('labels', 'an object of string values', labels);
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(labels)) {
    if (typeof v !== 'string') throw invalidArgument(`labels.${k}`, 'a string', v);
    if (k.length === 0) throw invalidArgument('labels', 'label keys that are not empty', k);
    if (Buffer.byteLength(k) + Buffer.byteLength(v) > MAX_LABEL_BYTES)
      throw invalidArgument(`labels.${k}`, `a label of at most ${MAX_LABEL_BYTES} bytes (key and value)`, `${v.slice(0, 40)}...`);
    out[k] = v;
  }
  return out;
}
