/**
 * The metadata directory, root/metadata/, byte-compatible with Docker's devmapper driver
 * (moby v20-v24, deviceset.go): one JSON file per device named by its hash ('base' for the
 * base device), `deviceset-metadata` and `transaction-metadata`, each exactly as Go's
 * json.Marshal wrote Docker's structs (field order, no spaces, no trailing newline).
 *
 * Writes are atomic and durable: a '.tmp' file in the same directory, fsync, rename over the
 * target, fsync of the directory (Docker skipped the last step). Each write is one native
 * job (lib/dm/steps.ts), and the DeviceSet puts several writes and the pool messages between them
 * into one job: a libuv round trip per request would cost eight per file.
 */
import { constants as osConstants } from 'node:os';
import { statfsSync } from 'node:fs';
import { chmod, mkdir, readdir, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { DevmapperError, ErrorCodes, invalidArgument } from '../errors';
import { MAX_THIN_DEVICE_ID } from '../dm';
import { runStepsOrThrow, syncDirStep, unlinkStep, writeFileStep, type Step } from '../dm';
import * as sys from '../sys';
import { metadataFileName } from './hash';

/** One device's file: Docker's devInfo. */
export interface DeviceMetadata {
  /** The thin device id in the pool, 0 .. 2^24-1. */
  deviceId: number;
  /** The device's size in bytes. */
  size: number;
  /** The pool transaction id that created the device. */
  transactionId: number;
  /** The base device's file system was made (base) / never used for others by Docker. */
  initialized: boolean;
  /** Marked for deferred deletion. */
  deleted: boolean;
}

/** deviceset-metadata: the DeviceSet's persisted fields. */
export interface DeviceSetMetadata {
  /** The last device id handed out (Docker's next_device_id); allocation continues after it. */
  nextDeviceId: number;
  /** The base device's file-system UUID, checked at every open. */
  baseDeviceUuid: string;
  /** The base device's file system, 'ext4' or 'xfs' ('' before the base is made). */
  baseDeviceFilesystem: string;
}

/** transaction-metadata: the open (or last) transaction. Docker keeps the file after commit. */
export interface TransactionMetadata {
  /** The transaction opened (pool's id + 1), or the pool's id when none is open. */
  openTransactionId: number;
  /** The hash of the device being created or deleted ('' for the base device). */
  deviceHash: string;
  /** The thin id being created or deleted (0 when none is open). */
  deviceId: number;
}

/** The name of the deviceset metadata file. */
export const DEVICE_SET_FILE = 'deviceset-metadata';
/** The name of the transaction metadata file. */
export const TRANSACTION_FILE = 'transaction-metadata';
/** Temporary files start with this; Docker's os.CreateTemp(dir, ".tmp") did the same. */
const TEMP_PREFIX = '.tmp';

/** Free blocks and inodes a create leaves for later deletes (see MetadataStore.checkRoomForDevice). */
const ROOM_BLOCKS = 3;
const ROOM_FILES = 3;

/**
 * The metadata directory of a DeviceSet root. Create one per root, call {@link open} first.
 * Calls on the same file must be ordered by the caller; different files are independent.
 */
export class MetadataStore {
  /** root/metadata */
  readonly dir: string;

  constructor(root: string) {
    if (typeof root !== 'string' || root === '' || root.includes('\0')) throw invalidArgument('root', 'a directory path', root);
    this.dir = join(root, 'metadata');
  }

  /**
   * Creates the directory (0700) if needed, sets an existing one to 0700, removes stray
   * temporary files left by a crash, and returns the hashes that have device files ('' for
   * the base device).
   */
  async open(): Promise<string[]> {
    try {
      await mkdir(this.dir, { recursive: true, mode: 0o700 });
      if (!(await stat(this.dir)).isDirectory())
        throw new DevmapperError(`open metadata directory ${this.dir}: not a directory`, {
          errno: osConstants.errno.ENOTDIR,
          operation: 'open metadata directory',
          device: this.dir,
        });
      await chmod(this.dir, 0o700);
    } catch (err) {
      throw fsError(err, 'open metadata directory', this.dir);
    }
    const entries = await this.entries();
    await Promise.all(
      entries
        .filter((e) => e.isFile() && e.name.startsWith(TEMP_PREFIX))
        .map((e) =>
          unlink(join(this.dir, e.name)).catch((err: unknown) => {
            if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw fsError(err, 'remove temporary file', join(this.dir, e.name));
          }),
        ),
    );
    return deviceHashes(entries);
  }

  /** A device's metadata, or null when it has no file. */
  async readDevice(hash: string): Promise<DeviceMetadata | null> {
    const file = this.deviceFile(hash);
    const text = await this.readText(file);
    return text === null ? null : decodeDevice(text, file);
  }

  /** Writes a device's file atomically. */
  async writeDevice(hash: string, metadata: DeviceMetadata): Promise<void> {
    await runStepsOrThrow([this.deviceWriteStep(hash, metadata), this.syncStep()]);
  }

  /**
   * Refuses (ENOSPC) unless the directory's file system keeps room for a device's file and,
   * after it, the temporary files of the transaction that would delete it again: a create
   * must never take the last blocks a delete needs to free space. One statfs(2), on the
   * calling thread.
   */
  checkRoomForDevice(): void {
    let st: ReturnType<typeof statfsSync>;
    try {
      st = statfsSync(this.dir);
    } catch (err) {
      throw fsError(err, 'statfs metadata directory', this.dir);
    }
    // A device's file, and then a delete's transaction file and rewrite beside the old ones.
    // bfree, not bavail: the library runs as root, which may use the reserved blocks.
    if (st.bfree < ROOM_BLOCKS || st.ffree < ROOM_FILES)
      throw new DevmapperError(
        `the metadata directory ${this.dir} is full (${st.bfree} blocks, ${st.ffree} inodes free): no room for another device and the transaction that would delete it`,
        {
          code: 'ENOSPC',
          errno: osConstants.errno.ENOSPC,
          operation: 'create',
          device: this.dir,
        },
      );
  }

  /** Removes a device's file (no error if it is already gone) and makes that durable. */
  async removeDevice(hash: string): Promise<void> {
    await runStepsOrThrow([this.deviceRemoveStep(hash), this.syncStep()]);
  }

  /** The step that replaces a device's file; durable after {@link syncStep}. */
  deviceWriteStep(hash: string, metadata: DeviceMetadata): Step {
    return writeFileStep(this.deviceFile(hash), encodeDevice(metadata), { operation: 'write metadata' });
  }

  /** The step that removes a device's file (gone already is fine); durable after {@link syncStep}. */
  deviceRemoveStep(hash: string): Step {
    return unlinkStep(this.deviceFile(hash), { ok: ['ENOENT'], operation: 'remove metadata' });
  }

  /** The step that replaces deviceset-metadata. */
  deviceSetWriteStep(metadata: DeviceSetMetadata): Step {
    return writeFileStep(join(this.dir, DEVICE_SET_FILE), encodeDeviceSet(metadata), { operation: 'write metadata' });
  }

  /** The step that replaces transaction-metadata. */
  transactionWriteStep(metadata: TransactionMetadata): Step {
    return writeFileStep(join(this.dir, TRANSACTION_FILE), encodeTransaction(metadata), { operation: 'write metadata' });
  }

  /** fsync of the directory: the renames and unlinks before it survive a crash. */
  syncStep(): Step {
    return syncDirStep(this.dir, { operation: 'sync metadata directory' });
  }

  /**
   * Every device file of the directory, read, by hash ('' for the base device): what Docker
   * loaded at start (loadDeviceFilesOnStart), including devices marked deleted.
   */
  async listDevices(): Promise<Map<string, DeviceMetadata>> {
    const hashes = deviceHashes(await this.entries());
    const files = hashes.map((hash) => this.deviceFile(hash));
    // All files in one native job: a readFile each would be four thread hops a device.
    const texts = await readMetadataFiles(files);
    const devices = new Map<string, DeviceMetadata>();
    // A file removed between the listing and the read is no device.
    hashes.forEach((hash, i) => {
      const text = texts[i];
      if (text !== null) devices.set(hash, decodeDevice(text, files[i]));
    });
    return devices;
  }

  /** deviceset-metadata, or null when there is none (a new root, or a very old Docker's). */
  async readDeviceSet(): Promise<DeviceSetMetadata | null> {
    const file = join(this.dir, DEVICE_SET_FILE);
    const text = await this.readText(file);
    return text === null ? null : decodeDeviceSet(text, file);
  }

  /** Writes deviceset-metadata atomically. */
  async writeDeviceSet(metadata: DeviceSetMetadata): Promise<void> {
    await runStepsOrThrow([this.deviceSetWriteStep(metadata), this.syncStep()]);
  }

  /** transaction-metadata, or null when there is none. */
  async readTransaction(): Promise<TransactionMetadata | null> {
    const file = join(this.dir, TRANSACTION_FILE);
    const text = await this.readText(file);
    return text === null ? null : decodeTransaction(text, file);
  }

  /** Writes transaction-metadata atomically. */
  async writeTransaction(metadata: TransactionMetadata): Promise<void> {
    await runStepsOrThrow([this.transactionWriteStep(metadata), this.syncStep()]);
  }

  /** Removes transaction-metadata (Docker did after a rollback); no error if absent. */
  async removeTransaction(): Promise<void> {
    await runStepsOrThrow([unlinkStep(join(this.dir, TRANSACTION_FILE), { ok: ['ENOENT'], operation: 'remove metadata' }), this.syncStep()]);
  }

  private deviceFile(hash: string): string {
    return join(this.dir, checkFileName(hash));
  }

  private async entries() {
    try {
      return await readdir(this.dir, { withFileTypes: true });
    } catch (err) {
      throw fsError(err, 'list metadata directory', this.dir);
    }
  }

  private async readText(file: string): Promise<string | null> {
    const [text] = await readMetadataFiles([file]);
    return text ?? null;
  }
}

/**
 * sys.readFiles, with a metadata file that is a symbolic link or not a regular file refused
 * as corrupt metadata: the library only ever writes regular files there, and following a
 * link would read (and later replace) whatever it points at.
 */
async function readMetadataFiles(files: string[]): Promise<(string | null)[]> {
  try {
    return await sys.readFiles(files);
  } catch (err) {
    if (err instanceof DevmapperError && (err.code === 'ELOOP' || err.code === 'EINVAL' || err.code === 'EISDIR'))
      throw notRegularFile(err.message, err.device, err);
    throw err;
  }
}

function notRegularFile(what: string, device: string | undefined, cause?: unknown): DevmapperError {
  return new DevmapperError(`${what}: a metadata file must be a regular file; move it away to open this root`, {
    code: ErrorCodes.METADATA_CORRUPT,
    device,
    cause,
  });
}

/**
 * The hashes among directory entries, with Docker's skip rules (deviceFileWalkFunction):
 * names ending '.migrated', names starting '.', deviceset-metadata and transaction-metadata;
 * 'base' is the base device, hash ''. Docker also walked into subdirectories; a
 * subdirectory is not something it wrote, so only regular files count here.
 */
function deviceHashes(entries: { name: string; isFile(): boolean; isSymbolicLink(): boolean }[]): string[] {
  const hashes: string[] = [];
  for (const e of entries) {
    const name = e.name;
    if (name.endsWith('.migrated') || name.startsWith('.')) continue;
    if (e.isSymbolicLink()) throw notRegularFile(`metadata file ${name} is a symbolic link, refused`, name);
    if (!e.isFile()) continue;
    if (name === DEVICE_SET_FILE || name === TRANSACTION_FILE) continue;
    hashes.push(name === 'base' ? '' : name);
  }
  return hashes.sort();
}

/** A device file name must stay inside the directory and not be another kind of file. */
function checkFileName(hash: string): string {
  if (typeof hash !== 'string') throw invalidArgument('hash', 'a device hash', hash);
  if (hash === '') return metadataFileName(hash);
  if (
    hash.includes('/') ||
    hash.includes('\0') ||
    hash.startsWith('.') ||
    hash.endsWith('.migrated') ||
    hash === 'base' ||
    hash === DEVICE_SET_FILE ||
    hash === TRANSACTION_FILE
  )
    throw invalidArgument('hash', 'a device hash usable as a metadata file name', hash);
  return hash;
}

// ---- Encoding: Go's encoding/json, byte for byte ----

const HEX = '0123456789abcdef';

/**
 * A string as Go's json.Marshal writes it: '"' and '\' escaped, \n \r \t short, other
 * control characters and <, >, & as \u00XX, U+2028/U+2029 escaped, other characters as
 * UTF-8; a lone surrogate (invalid UTF-8 to Go) becomes \ufffd.
 */
export function goJsonString(s: string): string {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) {
      if (c === 0x22) out += '\\"';
      else if (c === 0x5c) out += '\\\\';
      else if (c === 0x0a) out += '\\n';
      else if (c === 0x0d) out += '\\r';
      else if (c === 0x09) out += '\\t';
      else if (c < 0x20 || c === 0x3c || c === 0x3e || c === 0x26) out += `\\u00${HEX[c >> 4]}${HEX[c & 0xf]}`;
      else out += s[i];
    } else if (c === 0x2028 || c === 0x2029) {
      out += `\\u${c.toString(16)}`;
    } else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      out += s[i] + s[i + 1];
      i++;
    } else if (c >= 0xd800 && c <= 0xdfff) {
      out += '\\ufffd';
    } else {
      out += s[i];
    }
  }
  return out + '"';
}

/** A device file's bytes: Go's json.Marshal of Docker's devInfo. */
export function encodeDevice(m: DeviceMetadata): string {
  checkObject(m, 'metadata');
  return (
    `{"device_id":${checkDeviceId(m.deviceId, 'metadata.deviceId')},` +
    `"size":${checkUint(m.size, 'metadata.size')},` +
    `"transaction_id":${checkUint(m.transactionId, 'metadata.transactionId')},` +
    `"initialized":${checkBool(m.initialized, 'metadata.initialized')},` +
    `"deleted":${checkBool(m.deleted, 'metadata.deleted')}}`
  );
}

/** deviceset-metadata's bytes: Go's json.Marshal of Docker's DeviceSet (its three exported fields). */
export function encodeDeviceSet(m: DeviceSetMetadata): string {
  checkObject(m, 'metadata');
  return (
    `{"next_device_id":${checkDeviceId(m.nextDeviceId, 'metadata.nextDeviceId')},` +
    `"BaseDeviceUUID":${goJsonString(checkString(m.baseDeviceUuid, 'metadata.baseDeviceUuid'))},` +
    `"BaseDeviceFilesystem":${goJsonString(checkString(m.baseDeviceFilesystem, 'metadata.baseDeviceFilesystem'))}}`
  );
}

/** transaction-metadata's bytes: Go's json.Marshal of Docker's transaction. */
export function encodeTransaction(m: TransactionMetadata): string {
  checkObject(m, 'metadata');
  return (
    `{"open_transaction_id":${checkUint(m.openTransactionId, 'metadata.openTransactionId')},` +
    `"device_hash":${goJsonString(checkString(m.deviceHash, 'metadata.deviceHash'))},` +
    `"device_id":${checkDeviceId(m.deviceId, 'metadata.deviceId')}}`
  );
}

function checkObject(value: unknown, argument: string): void {
  if (typeof value !== 'object' || value === null) throw invalidArgument(argument, 'a metadata object', value);
}

function checkDeviceId(value: unknown, argument: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > MAX_THIN_DEVICE_ID)
    throw invalidArgument(argument, `a thin device id from 0 to ${MAX_THIN_DEVICE_ID}`, value);
  return value;
}

function checkUint(value: unknown, argument: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0)
    throw invalidArgument(argument, 'a non-negative integer', value);
  return value;
}

function checkBool(value: unknown, argument: string): boolean {
  if (typeof value !== 'boolean') throw invalidArgument(argument, 'a boolean', value);
  return value;
}

function checkString(value: unknown, argument: string): string {
  if (typeof value !== 'string') throw invalidArgument(argument, 'a string', value);
  return value;
}

// ---- Decoding: what Go's json.Unmarshal into Docker's structs accepted ----

type FieldKind = 'deviceId' | 'uint' | 'bool' | 'string';

/**
 * Reads a JSON object into the named fields the way Go's json.Unmarshal fills a struct:
 * keys match field names exactly or case-insensitively (later keys win), unknown keys and
 * null values are ignored, absent fields keep Go's zero value. A value of the wrong type
 * is refused (Docker failed to load such a file).
 */
function decodeFields(text: string, file: string, fields: Record<string, FieldKind>): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw corrupt(file, `not valid JSON (${(err as Error).message})`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw corrupt(file, 'not a JSON object');
  const byFolded = new Map(Object.keys(fields).map((name) => [name.toLowerCase(), name]));
  const out: Record<string, unknown> = {};
  for (const [name, kind] of Object.entries(fields)) out[name] = kind === 'bool' ? false : kind === 'string' ? '' : 0;
  for (const [key, value] of Object.entries(parsed)) {
    const name = byFolded.get(goFoldKey(key));
    if (name === undefined || value === null) continue;
    const kind = fields[name];
    const ok =
      kind === 'bool'
        ? typeof value === 'boolean'
        : kind === 'string'
          ? typeof value === 'string'
          : typeof value === 'number' &&
            Number.isSafeInteger(value) &&
            value >= 0 &&
            (kind === 'uint' || value <= MAX_THIN_DEVICE_ID);
    if (!ok) throw corrupt(file, `field "${key}" is ${JSON.stringify(value)}, expected ${describeKind(kind)}`);
    out[name] = value;
  }
  return out;
}

/** Go's case folding of JSON keys against ASCII field names, including its k/s specials. */
function goFoldKey(key: string): string {
  return key.replace(/[A-Z\u017f\u212a]/g, (c) => (c === '\u017f' ? 's' : c === '\u212a' ? 'k' : c.toLowerCase()));
}

function describeKind(kind: FieldKind): string {
  switch (kind) {
    case 'bool':
      return 'a boolean';
    case 'string':
      return 'a string';
    case 'uint':
      return 'a non-negative integer';
    case 'deviceId':
      return `a device id from 0 to ${MAX_THIN_DEVICE_ID}`;
  }
}

/** Parses a device file. Throws ERR_METADATA_CORRUPT naming the file. */
export function decodeDevice(text: string, file: string): DeviceMetadata {
  const f = decodeFields(text, file, {
    device_id: 'deviceId',
    size: 'uint',
    transaction_id: 'uint',
    initialized: 'bool',
    deleted: 'bool',
  });
  return {
    deviceId: f.device_id as number,
    size: f.size as number,
    transactionId: f.transaction_id as number,
    initialized: f.initialized as boolean,
    deleted: f.deleted as boolean,
  };
}

/** Parses deviceset-metadata. Throws ERR_METADATA_CORRUPT naming the file. */
export function decodeDeviceSet(text: string, file: string): DeviceSetMetadata {
  const f = decodeFields(text, file, {
    next_device_id: 'deviceId',
    BaseDeviceUUID: 'string',
    BaseDeviceFilesystem: 'string',
  });
  return {
    nextDeviceId: f.next_device_id as number,
    baseDeviceUuid: f.BaseDeviceUUID as string,
    baseDeviceFilesystem: f.BaseDeviceFilesystem as string,
  };
}

/** Parses transaction-metadata. Throws ERR_METADATA_CORRUPT naming the file. */
export function decodeTransaction(text: string, file: string): TransactionMetadata {
  const f = decodeFields(text, file, {
    open_transaction_id: 'uint',
    device_hash: 'string',
    device_id: 'deviceId',
  });
  return {
    openTransactionId: f.open_transaction_id as number,
    deviceHash: f.device_hash as string,
    deviceId: f.device_id as number,
  };
}

function corrupt(file: string, reason: string): DevmapperError {
  return new DevmapperError(`metadata file ${file}: ${reason}`, {
    code: ErrorCodes.METADATA_CORRUPT,
    operation: 'read metadata',
    device: file,
  });
}

/** A file-system failure as a DevmapperError with the errno's code ('ENOSPC', ...), naming the file. */
function fsError(err: unknown, operation: string, file: string): DevmapperError {
  if (err instanceof DevmapperError) return err;
  const e = err as NodeJS.ErrnoException;
  const code = typeof e?.code === 'string' ? e.code : undefined;
  const errno = code !== undefined ? (osConstants.errno as Record<string, number>)[code] : undefined;
  return new DevmapperError(`${operation} ${file}: ${e?.message ?? String(err)}`, {
    code: code ?? ErrorCodes.DM_FAILED,
    errno,
    operation,
    device: file,
    cause: err,
  });
}
