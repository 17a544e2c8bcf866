/**
 * Parsers and formatters for device-mapper table and status lines of the `thin-pool` and
 * `thin` targets. Pure functions, no dependencies beyond ../errors.
 *
 * Formats follow the kernel's drivers/md/dm-thin.c (pool_status, thin_status, pool_ctr,
 * thin_ctr) and Documentation/admin-guide/device-mapper/thin-provisioning.rst.
 *
 * Parsers take what follows the target type (the "params") and throw a DevmapperError with
 * code ErrorCodes.PARSE that quotes the input and names the faulty field. They tolerate runs
 * of whitespace between fields and leading/trailing whitespace (the kernel itself ends most
 * of these lines with a space), but not line breaks inside the line. Numbers must be plain
 * non-negative decimal integers without sign, leading zeros, fraction or exponent, and at
 * most Number.MAX_SAFE_INTEGER.
 *
 * Formatters print the canonical form (single spaces, no trailing space) that the parsers
 * read back to an equal object; they throw ErrorCodes.INVALID_ARGUMENT for values that
 * could not be printed and read back.
 */
import { DevmapperError, ErrorCodes, invalidArgument } from '../errors';
import type {
  DeviceNumber,
  TargetLine,
  ThinPoolDiscards,
  ThinPoolMode,
  ThinPoolNoSpacePolicy,
  ThinPoolStatus,
  ThinPoolTable,
  ThinStatus,
  ThinTable,
} from './types';

/** Thin device ids are 24 bits (MAX_DEV_ID in dm-thin.c). */
export const MAX_THIN_DEVICE_ID = (1 << 24) - 1;
/** Smallest data block size of a pool, and the granularity of any block size: 64 KiB. */
export const MIN_POOL_BLOCK_SIZE_SECTORS = 128;
/** Largest data block size of a pool: 1 GiB. */
export const MAX_POOL_BLOCK_SIZE_SECTORS = 2097152;
/** The largest major number: the kernel's dev_t has 12 major bits (format_dev_t prints these). */
export const MAX_DEVICE_MAJOR = (1 << 12) - 1;
/** The largest minor number: the kernel's dev_t has 20 minor bits. */
export const MAX_DEVICE_MINOR = (1 << 20) - 1;

const POOL_MODES: readonly ThinPoolMode[] = ['rw', 'ro', 'out_of_data_space'];
const POOL_DISCARDS: readonly ThinPoolDiscards[] = ['discard_passdown', 'no_discard_passdown', 'ignore_discard'];
const POOL_NO_SPACE: readonly ThinPoolNoSpacePolicy[] = ['error_if_no_space', 'queue_if_no_space'];

const MAX_QUOTED = 200;

function quote(input: string): string {
  const shown = input.length > MAX_QUOTED ? `${input.slice(0, MAX_QUOTED)}...` : input;
  return JSON.stringify(shown);
}

/** What is being parsed, for error messages. */
class Source {
  constructor(
    readonly kind: string,
    readonly input: string,
  ) {}

  error(detail: string): DevmapperError {
    return new DevmapperError(`invalid ${this.kind} ${quote(this.input)}: ${detail}`, {
      code: ErrorCodes.PARSE,
    });
  }
}

function source(kind: string, input: unknown): Source {
  if (typeof input !== 'string') {
    throw new DevmapperError(`invalid ${kind}: expected a string, got ${input === null ? 'null' : typeof input}`, {
      code: ErrorCodes.PARSE,
    });
  }
  return new Source(kind, input);
}

/** The input without surrounding whitespace; a line break left inside is an error. */
function body(src: Source): string {
  const trimmed = src.input.trim();
  if (/[\r\n]/.test(trimmed)) throw src.error('contains a line break inside the line');
  return trimmed;
}

function splitFields(src: Source): string[] {
  const b = body(src);
  return b === '' ? [] : b.split(/\s+/);
}

/** `field 3 (data usage)`, for messages. */
function fieldName(index: number, name: string): string {
  return `field ${index + 1} (${name})`;
}

/** Why a token is not a plain non-negative decimal integer, or null when it is one. */
function uintProblem(token: string): string | null {
  if (token === '') return 'is empty';
  if (/^(0|[1-9][0-9]*)$/.test(token)) {
    return Number.isSafeInteger(Number(token)) ? null : `is too large (more than ${Number.MAX_SAFE_INTEGER})`;
  }
  if (/^-[0-9]+$/.test(token)) return 'is negative';
  if (/^[0-9]+$/.test(token)) return 'has leading zeros';
  if (/^[+-]?([0-9]+\.[0-9]*|\.[0-9]+)$/.test(token)) return 'is not an integer';
  return 'is not a non-negative decimal integer';
}

function parseUint(src: Source, token: string, what: string): number {
  const problem = uintProblem(token);
  if (problem !== null) throw src.error(`${what} ${JSON.stringify(token)} ${problem}`);
  return Number(token);
}

function parseUsage(src: Source, token: string, what: string): { used: number; total: number } {
  const parts = token.split('/');
  if (parts.length !== 2) {
    throw src.error(`${what} ${JSON.stringify(token)} is not of the form <used>/<total>`);
  }
  const used = parseUint(src, parts[0] ?? '', `${what}: used count`);
  const total = parseUint(src, parts[1] ?? '', `${what}: total count`);
  if (used > total) throw src.error(`${what} ${JSON.stringify(token)}: used count exceeds total`);
  return { used, total };
}

function oneOf<T extends string>(values: readonly T[], token: string): token is T {
  return (values as readonly string[]).includes(token);
}

function parseEnum<T extends string>(src: Source, token: string, what: string, values: readonly T[]): T {
  if (!oneOf(values, token)) {
    throw src.error(`${what} ${JSON.stringify(token)} is not one of ${values.join(', ')}`);
  }
  return token;
}

// ---------------------------------------------------------------------------------------
// Validation for the formatters (ERR_INVALID_ARGUMENT).

function checkUint(argument: string, value: unknown, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    throw invalidArgument(argument, `an integer from ${min} to ${max}`, value);
  }
  return value;
}

function checkToken(argument: string, value: unknown): string {
  if (typeof value !== 'string' || value === '' || /\s/.test(value)) {
    throw invalidArgument(argument, 'a non-empty string without whitespace', value);
  }
  return value;
}

function checkBlockSize(argument: string, value: unknown): number {
  const n = checkUint(argument, value, MIN_POOL_BLOCK_SIZE_SECTORS, MAX_POOL_BLOCK_SIZE_SECTORS);
  if (n % MIN_POOL_BLOCK_SIZE_SECTORS !== 0) {
    throw invalidArgument(argument, `a multiple of ${MIN_POOL_BLOCK_SIZE_SECTORS} sectors`, value);
  }
  return n;
}

// ---------------------------------------------------------------------------------------
// Target lines.

/**
 * Parses one table line, `<start sector> <length sectors> <target type> [<params...>]`.
 * The params are kept as one string (their inner spacing untouched), '' when there are none.
 *
 * @throws {@link DevmapperError} ERR_PARSE naming the faulty field and quoting the input
 */
export function parseTargetLine(line: string): TargetLine {
  const src = source('target line', line);
  const b = body(src);
  const m = /^(\S+)\s+(\S+)\s+(\S+)(?:\s+([\s\S]*))?$/.exec(b);
  if (m === null) {
    const count = b === '' ? 0 : b.split(/\s+/).length;
    throw src.error(`expected <start> <length> <target type> [<params>], got ${count} field(s)`);
  }
  const start = parseUint(src, m[1] ?? '', fieldName(0, 'start sector'));
  const length = parseUint(src, m[2] ?? '', fieldName(1, 'length in sectors'));
  if (length === 0) throw src.error(`${fieldName(1, 'length in sectors')} "0": a target cannot be empty`);
  if (!Number.isSafeInteger(start + length)) {
    throw src.error(`start + length is too large (more than ${Number.MAX_SAFE_INTEGER})`);
  }
  return { start, length, type: m[3] ?? '', params: m[4] ?? '' };
}

/**
 * Prints a table line; params are trimmed and omitted (with their separator) when empty.
 *
 * @throws {@link DevmapperError} ERR_INVALID_ARGUMENT naming the field that cannot be printed
 */
export function formatTargetLine(t: TargetLine): string {
  const start = checkUint('start', t.start);
  const length = checkUint('length', t.length, 1);
  if (!Number.isSafeInteger(start + length)) {
    throw invalidArgument('length', `at most ${Number.MAX_SAFE_INTEGER - start} after start ${start}`, length);
  }
  const type = checkToken('type', t.type);
  if (typeof t.params !== 'string' || /[\r\n]/.test(t.params)) {
    throw invalidArgument('params', 'a string without line breaks', t.params);
  }
  const params = t.params.trim();
  return params === '' ? `${start} ${length} ${type}` : `${start} ${length} ${type} ${params}`;
}

// ---------------------------------------------------------------------------------------
// Device numbers.

/**
 * Parses `<major>:<minor>` as the kernel prints it (`254:0`).
 *
 * @throws {@link DevmapperError} ERR_PARSE naming the faulty field and quoting the input
 */
export function parseDeviceNumber(text: string): DeviceNumber {
  const src = source('device number', text);
  const b = body(src);
  const parts = b.split(':');
  if (parts.length !== 2 || /\s/.test(b)) throw src.error('expected <major>:<minor>');
  const major = parseUint(src, parts[0] ?? '', 'major');
  const minor = parseUint(src, parts[1] ?? '', 'minor');
  if (major > MAX_DEVICE_MAJOR) throw src.error(`major ${major} is above ${MAX_DEVICE_MAJOR}`);
  if (minor > MAX_DEVICE_MINOR) throw src.error(`minor ${minor} is above ${MAX_DEVICE_MINOR}`);
  return { major, minor };
}

/**
 * Prints `<major>:<minor>`.
 *
 * @throws {@link DevmapperError} ERR_INVALID_ARGUMENT naming the field that cannot be printed
 */
export function formatDeviceNumber(d: DeviceNumber): string {
  const major = checkUint('major', d.major, 0, MAX_DEVICE_MAJOR);
  const minor = checkUint('minor', d.minor, 0, MAX_DEVICE_MINOR);
  return `${major}:${minor}`;
}

// ---------------------------------------------------------------------------------------
// thin-pool table.

/**
 * Parses thin-pool table params:
 * `<metadata dev> <data dev> <data block size (sectors)> <low water mark (blocks)> <#feature args> [<arg>...]`.
 * The feature count is required (the kernel always prints it) and must match the arguments
 * that follow. Unknown feature arguments are kept as they are.
 *
 * @throws {@link DevmapperError} ERR_PARSE naming the faulty field and quoting the input
 */
export function parseThinPoolTable(params: string): ThinPoolTable {
  const src = source('thin-pool table', params);
  const f = splitFields(src);
  if (f.length < 5) {
    throw src.error(
      `expected <metadata dev> <data dev> <block size> <low water mark> <#feature args> [<arg>...], got ${f.length} field(s)`,
    );
  }
  const [metadataDevice = '', dataDevice = '', bs = '', lwm = '', count = ''] = f;
  if (metadataDevice === dataDevice) {
    throw src.error(`${fieldName(1, 'data device')} is the same as the metadata device`);
  }
  const blockSizeSectors = parseUint(src, bs, fieldName(2, 'data block size in sectors'));
  if (
    blockSizeSectors < MIN_POOL_BLOCK_SIZE_SECTORS ||
    blockSizeSectors > MAX_POOL_BLOCK_SIZE_SECTORS ||
    blockSizeSectors % MIN_POOL_BLOCK_SIZE_SECTORS !== 0
  ) {
    throw src.error(
      `${fieldName(2, 'data block size in sectors')} ${blockSizeSectors} is not a multiple of ` +
        `${MIN_POOL_BLOCK_SIZE_SECTORS} from ${MIN_POOL_BLOCK_SIZE_SECTORS} to ${MAX_POOL_BLOCK_SIZE_SECTORS}`,
    );
  }
  const lowWaterMarkBlocks = parseUint(src, lwm, fieldName(3, 'low water mark in blocks'));
  const featureCount = parseUint(src, count, fieldName(4, 'number of feature args'));
  const features = f.slice(5);
  if (features.length !== featureCount) {
    throw src.error(
      `${fieldName(4, 'number of feature args')} says ${featureCount} but ${features.length} feature arg(s) follow`,
    );
  }
  return { metadataDevice, dataDevice, blockSizeSectors, lowWaterMarkBlocks, features };
}

/**
 * Prints thin-pool table params (the feature count always included).
 *
 * @throws {@link DevmapperError} ERR_INVALID_ARGUMENT naming the field that cannot be printed
 */
export function formatThinPoolTable(t: ThinPoolTable): string {
  const metadataDevice = checkToken('metadataDevice', t.metadataDevice);
  const dataDevice = checkToken('dataDevice', t.dataDevice);
  if (metadataDevice === dataDevice) {
    throw invalidArgument('dataDevice', 'a device other than the metadata device', dataDevice);
  }
  const blockSize = checkBlockSize('blockSizeSectors', t.blockSizeSectors);
  const lowWater = checkUint('lowWaterMarkBlocks', t.lowWaterMarkBlocks);
  if (!Array.isArray(t.features)) throw invalidArgument('features', 'an array of strings', t.features);
  const features = t.features.map((x, i) => checkToken(`features[${i}]`, x));
  return [metadataDevice, dataDevice, blockSize, lowWater, features.length, ...features].join(' ');
}

// ---------------------------------------------------------------------------------------
// thin table.

/**
 * Parses thin table params: `<pool dev> <dev id> [<external origin dev>]`.
 *
 * @throws {@link DevmapperError} ERR_PARSE naming the faulty field and quoting the input
 */
export function parseThinTable(params: string): ThinTable {
  const src = source('thin table', params);
  const f = splitFields(src);
  if (f.length !== 2 && f.length !== 3) {
    throw src.error(`expected <pool dev> <dev id> [<external origin dev>], got ${f.length} field(s)`);
  }
  const [poolDevice = '', id = '', externalOrigin] = f;
  const deviceId = parseUint(src, id, fieldName(1, 'device id'));
  if (deviceId > MAX_THIN_DEVICE_ID) {
    throw src.error(`${fieldName(1, 'device id')} ${deviceId} is above the 24-bit limit ${MAX_THIN_DEVICE_ID}`);
  }
  if (externalOrigin === undefined) return { poolDevice, deviceId };
  if (externalOrigin === poolDevice) {
    throw src.error(`${fieldName(2, 'external origin')} is the same as the pool device`);
  }
  return { poolDevice, deviceId, externalOrigin };
}

/**
 * Prints thin table params.
 *
 * @throws {@link DevmapperError} ERR_INVALID_ARGUMENT naming the field that cannot be printed
 */
export function formatThinTable(t: ThinTable): string {
  const poolDevice = checkToken('poolDevice', t.poolDevice);
  const deviceId = checkUint('deviceId', t.deviceId, 0, MAX_THIN_DEVICE_ID);
  if (t.externalOrigin === undefined) return `${poolDevice} ${deviceId}`;
  const origin = checkToken('externalOrigin', t.externalOrigin);
  if (origin === poolDevice) throw invalidArgument('externalOrigin', 'a device other than the pool device', origin);
  return `${poolDevice} ${deviceId} ${origin}`;
}

// ---------------------------------------------------------------------------------------
// Status lines.

/**
 * Parses thin-pool status params:
 * `<transaction id> <used>/<total metadata blocks> <used>/<total data blocks> <held root|->
 *  ro|rw|out_of_data_space [discard_passdown|no_discard_passdown|ignore_discard
 *  [error_if_no_space|queue_if_no_space [needs_check|- [<metadata low watermark>]]]]`,
 * or `Fail`, or `Error`.
 *
 * The first five fields are required; the later ones were added over kernel releases and are
 * null (needsCheck false) when absent. Fields after the ninth, which a future kernel might
 * append, are ignored.
 *
 * @throws {@link DevmapperError} ERR_PARSE naming the faulty field and quoting the input
 *
 * @example
 * ```ts
 * const st = dm.parseThinPoolStatus('1 10/4096 0/16384 - rw discard_passdown queue_if_no_space - 1024');
 * // { state: 'ok', transactionId: 1, metadataUsedBlocks: 10, ..., mode: 'rw', needsCheck: false }
 * ```
 */
export function parseThinPoolStatus(params: string): ThinPoolStatus {
  const src = source('thin-pool status', params);
  const f = splitFields(src);
  if (f.length === 1 && f[0] === 'Fail') return { state: 'fail' };
  if (f.length === 1 && f[0] === 'Error') return { state: 'error' };
  if (f[0] === 'Fail' || f[0] === 'Error') throw src.error(`"${f[0]}" must stand alone`);
  if (f.length < 5) {
    throw src.error(
      `expected at least 5 fields (<transaction id> <metadata used/total> <data used/total> <held root> <mode>), got ${f.length}`,
    );
  }
  const [tx = '', meta = '', data = '', held = '', mode = '', discards, noSpace, needsCheck, lowWater] = f;
  const transactionId = parseUint(src, tx, fieldName(0, 'transaction id'));
  const metadata = parseUsage(src, meta, fieldName(1, 'metadata blocks used/total'));
  const dataUsage = parseUsage(src, data, fieldName(2, 'data blocks used/total'));
  const heldMetadataRoot = held === '-' ? null : parseUint(src, held, fieldName(3, 'held metadata root'));
  let needs = false;
  if (needsCheck !== undefined && needsCheck !== '-') {
    if (needsCheck !== 'needs_check') {
      throw src.error(`${fieldName(7, 'needs_check')} ${JSON.stringify(needsCheck)} is neither needs_check nor -`);
    }
    needs = true;
  }
  return {
    state: 'ok',
    transactionId,
    metadataUsedBlocks: metadata.used,
    metadataTotalBlocks: metadata.total,
    dataUsedBlocks: dataUsage.used,
    dataTotalBlocks: dataUsage.total,
    heldMetadataRoot,
    mode: parseEnum(src, mode, fieldName(4, 'mode'), POOL_MODES),
    discards: discards === undefined ? null : parseEnum(src, discards, fieldName(5, 'discards'), POOL_DISCARDS),
    noSpacePolicy:
      noSpace === undefined ? null : parseEnum(src, noSpace, fieldName(6, 'no-space policy'), POOL_NO_SPACE),
    needsCheck: needs,
    metadataLowWatermarkBlocks:
      lowWater === undefined ? null : parseUint(src, lowWater, fieldName(8, 'metadata low watermark')),
  };
}

/**
 * Parses thin status params: `<nr mapped sectors> <highest mapped sector|->`, or `Fail`,
 * `Error`, or `-` (device not set up).
 *
 * The two numbers are read by separate metadata lookups in the kernel, so they are not
 * checked against each other.
 *
 * @throws {@link DevmapperError} ERR_PARSE naming the faulty field and quoting the input
 */
export function parseThinStatus(params: string): ThinStatus {
  const src = source('thin status', params);
  const f = splitFields(src);
  if (f.length === 1) {
    if (f[0] === 'Fail') return { state: 'fail' };
    if (f[0] === 'Error') return { state: 'error' };
    if (f[0] === '-') return { state: 'unset' };
  }
  if (f.length !== 2) {
    throw src.error(
      `expected <mapped sectors> <highest mapped sector|->, or Fail, Error or -, got ${f.length} field(s)`,
    );
  }
  const [mapped = '', highest = ''] = f;
  const mappedSectors = parseUint(src, mapped, fieldName(0, 'mapped sectors'));
  const highestMappedSector = highest === '-' ? null : parseUint(src, highest, fieldName(1, 'highest mapped sector'));
  return { state: 'ok', mappedSectors, highestMappedSector };
}
