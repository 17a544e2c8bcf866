/**
 * DeviceSet options: Docker's `dm.*` storage options (moby v24 daemon/graphdriver/devmapper,
 * deviceset.go NewDeviceSet) with Docker's defaults and value syntax, or the same settings as
 * a typed object. Every refusal is a DevmapperError that names the key as the caller wrote it.
 */
import { DevmapperError, ErrorCodes, invalidArgument } from '../errors';
import { MAX_POOL_BLOCK_SIZE_SECTORS, MIN_POOL_BLOCK_SIZE_SECTORS } from '../dm';
import { checkDeviceName } from '../dm';
import { parseSize } from '../util';

/** The file systems Docker's dm.fs accepted. */
export type Filesystem = 'ext4' | 'xfs';

const SECTOR_BYTES = 512;
const GIB = 1024 ** 3;

/** libdm's log levels (lvm2 lib/log/log.h), the range Docker's dm.libdm_log_level allowed. */
const LIBDM_LOG_LEVEL_MIN = 2; // _LOG_FATAL
const LIBDM_LOG_LEVEL_MAX = 7; // _LOG_DEBUG
/** The kernel's xfs max_retries knob is an int (sysfs kstrtoint); Docker passed it verbatim. */
const XFS_MAX_RETRIES_MAX = 2 ** 31 - 1;
const XFS_RETRIES_EXPECTED = `a retry count from 0 to ${XFS_MAX_RETRIES_MAX}`;
/** setTimeout's limit, for the millisecond options. */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** The bound on keepActive: a thin pool holds at most 2^24 device ids, and each kept device is a /dev node. */
const KEEP_ACTIVE_MAX = 65_536;

/** The settings while they are read, by ResolvedOptions field (what a computed default sees). */
type Settings = Record<string, unknown>;

/**
 * One option of the table below. `field` is the one ResolvedOptions field it sets, with that
 * field's doc and its default: a value, or a function of the other settings where Docker's
 * default depended on them. The typed parser's parameter is the option's type in
 * {@link DeviceSetOptions}; the parsers' result is the field's type.
 */
interface OptionSpec<In, Out, Field extends Settings> {
  /** Docker's key; null for this library's own options (typed object only, so that no 'dm.' key means something Docker would refuse). */
  docker: string | null;
  field: Field;
  /** Reads the typed object's value; `current` is the setting so far (the repeatable options add to it). */
  typed(value: In, argument: string, current: Out): Out;
  /** Reads the value of a 'dm.key=value' string. */
  text?(value: string, argument: string, current: Out): Out;
}

/** Docker's direct-lvm keys: known, refused here. */
interface UnsupportedSpec {
  docker: string;
  unsupported: true;
}

/** Types the parsers of one option (their parameters then need no annotation but the typed value's). */
function option<In, Out, Field extends Settings>(spec: OptionSpec<In, Out, Field>): OptionSpec<In, Out, Field> {
  return spec;
}

const unsupported = (docker: string): UnsupportedSpec => ({ docker, unsupported: true });

/**
 * Every option, once, in Docker's order (NewDeviceSet's switch), then ours: the doc above a
 * key is the {@link DeviceSetOptions} field's, the doc inside `field` the
 * {@link ResolvedOptions} field's. Unknown-key messages list the keys in this order.
 */
const OPTIONS = {
  /** dm.basesize: size of the base device, and so of every new image and container. Default 10 GiB. */
  baseSize: option({
    docker: 'dm.basesize',
    field: {
      /** dm.basesize in bytes. */
      baseSizeBytes: 10 * GIB,
    },
    typed: (v: number | string, a) => typedSize(v, a),
    text: (v, a) => positiveSize(parseSize(v, a), a, v),
  }),
  /** dm.loopdatasize: size of the sparse data file devicemapper/data. Default 100 GiB. */
  loopDataSize: option({
    docker: 'dm.loopdatasize',
    field: {
      /** dm.loopdatasize in bytes: the data loop file is created (or grown) to this. */
      loopDataSizeBytes: 100 * GIB,
    },
    typed: (v: number | string, a) => typedSize(v, a),
    text: (v, a) => positiveSize(parseSize(v, a), a, v),
  }),
  /** dm.loopmetadatasize: size of the sparse metadata file devicemapper/metadata. Default 2 GiB. */
  loopMetadataSize: option({
    docker: 'dm.loopmetadatasize',
    field: {
      /** dm.loopmetadatasize in bytes: the metadata loop file is created (or grown) to this. */
      loopMetadataSizeBytes: 2 * GIB,
    },
    typed: (v: number | string, a) => typedSize(v, a),
    text: (v, a) => positiveSize(parseSize(v, a), a, v),
  }),
  /** dm.fs: file system of the base device. Unset or '': xfs when supported, else ext4, as Docker chose. */
  fs: option({
    docker: 'dm.fs',
    field: {
      /** dm.fs; null: not chosen (xfs when mkfs.xfs and the kernel's xfs are there, else ext4; an existing base keeps its own). */
      fs: null,
    },
    typed: (v: Filesystem | '' | null, a): Filesystem | null => (v === '' ? null : filesystem(v, a)),
    // Docker compared the value exactly: "XFS" and "" were refused.
    text: (v, a) => filesystem(v, a),
  }),
  /** dm.mkfsarg (repeatable): extra arguments for mkfs. */
  mkfsArgs: option({
    docker: 'dm.mkfsarg',
    field: {
      /** dm.mkfsarg values in order. */
      mkfsArgs: [] as readonly string[],
    },
    typed: (v: readonly string[], a, current: readonly string[]): readonly string[] => {
      if (!Array.isArray(v)) throw invalidArgument(a, 'an array of mkfs arguments', v);
      return [...current, ...v.map((arg: unknown) => mkfsArg(arg, a))];
    },
    text: (v, a, current) => [...current, mkfsArg(v, a)],
  }),
  /** dm.mountopt (repeatable): extra mount options, comma-separated. */
  mountOpt: option({
    docker: 'dm.mountopt',
    field: {
      /** dm.mountopt values joined with commas as Docker did; '' when none. */
      mountOptions: '',
    },
    typed: (v: string | readonly string[], a, current: string) => {
      const list: unknown[] = Array.isArray(v) ? v : [v];
      return list.reduce<string>((joined, opt) => joinMountOptions(joined, mountOpt(opt, a)), current);
    },
    text: (v, a, current) => joinMountOptions(current, mountOpt(v, a)),
  }),
  /** dm.datadev: block device for the pool's data instead of a loop file. */
  dataDev: option({
    docker: 'dm.datadev',
    field: {
      /** dm.datadev, or null for the loop file. */
      dataDevice: null,
    },
    typed: (v: string, a) => devicePath(v, a),
    text: (v, a) => devicePath(v, a),
  }),
  /** dm.metadatadev: block device for the pool's metadata instead of a loop file. */
  metadataDev: option({
    docker: 'dm.metadatadev',
    field: {
      /** dm.metadatadev, or null for the loop file. */
      metadataDevice: null,
    },
    typed: (v: string, a) => devicePath(v, a),
    text: (v, a) => devicePath(v, a),
  }),
  /** dm.thinpooldev: an existing thin pool to use ("/dev/mapper/" is stripped). */
  thinPoolDev: option({
    docker: 'dm.thinpooldev',
    field: {
      /** dm.thinpooldev as a device-mapper name (no /dev/mapper/), or null for our own pool. */
      thinPoolDevice: null,
    },
    typed: (v: string, a) => thinPool(v, a),
    text: (v, a) => thinPool(v, a),
  }),
  /** dm.blocksize: pool data block size, a multiple of 64 KiB from 64 KiB to 1 GiB. Default 64 KiB. */
  blockSize: option({
    docker: 'dm.blocksize',
    field: {
      /** dm.blocksize in bytes. */
      blockSizeBytes: MIN_POOL_BLOCK_SIZE_SECTORS * SECTOR_BYTES,
    },
    typed: (v: number | string, a) => blockSize(typedSize(v, a), a, v),
    text: (v, a) => blockSize(parseSize(v, a), a, v),
  }),
  /** dm.blkdiscard: discard a device's blocks before deleting it. Default true, false on raw devices and thinpooldev. */
  blkDiscard: option({
    docker: 'dm.blkdiscard',
    field: {
      /** dm.blkdiscard, with Docker's default: true, but false with dm.datadev or dm.thinpooldev. */
      blkDiscard: (s: Settings) => s.dataDevice === null && s.thinPoolDevice === null,
    },
    typed: (v: boolean, a) => typedBool(v, a),
    text: (v, a) => goParseBool(v, a),
  }),
  /** dm.override_udev_sync_check: run without udev sync. Default false. */
  overrideUdevSyncCheck: option({
    docker: 'dm.override_udev_sync_check',
    field: {
      /** dm.override_udev_sync_check. */
      overrideUdevSyncCheck: false,
    },
    typed: (v: boolean, a) => typedBool(v, a),
    text: (v, a) => goParseBool(v, a),
  }),
  /** dm.use_deferred_removal. Default false. */
  useDeferredRemoval: option({
    docker: 'dm.use_deferred_removal',
    field: {
      /**
       * dm.use_deferred_removal. Docker v20.10+ turned deferred removal and deletion on by
       * default when the kernel (dm 4.27+) and libdm supported them; here they are off unless
       * asked for (see `explicitKeys` to tell the two apart).
       */
      useDeferredRemoval: false,
    },
    typed: (v: boolean, a) => typedBool(v, a),
    text: (v, a) => goParseBool(v, a),
  }),
  /** dm.use_deferred_deletion (needs deferred removal). Default false. */
  useDeferredDeletion: option({
    docker: 'dm.use_deferred_deletion',
    field: {
      /** dm.use_deferred_deletion (implies useDeferredRemoval, checked). */
      useDeferredDeletion: false,
    },
    typed: (v: boolean, a) => typedBool(v, a),
    text: (v, a) => goParseBool(v, a),
  }),
  /** dm.min_free_space: percentage (0-99) of pool data and metadata that must stay free; 10 or "10%". Default 10. */
  minFreeSpace: option({
    docker: 'dm.min_free_space',
    field: {
      /** dm.min_free_space, 0-99; 0 turns the check off. */
      minFreeSpacePercent: 10,
    },
    typed: (v: number | string, a) =>
      typeof v === 'string' ? percentText(v, a) : integerIn(v, 0, 99, a, 'a whole percentage from 0 to 99'),
    text: (v, a) => percentText(v, a),
  }),
  /** dm.xfs_nospace_max_retries: xfs's metadata ENOSPC max_retries for mounted devices. Default: kernel's. */
  xfsNospaceMaxRetries: option({
    docker: 'dm.xfs_nospace_max_retries',
    field: {
      /** dm.xfs_nospace_max_retries; null: leave the kernel's setting alone. */
      xfsNospaceMaxRetries: null,
    },
    typed: (v: number, a) => integerIn(v, 0, XFS_MAX_RETRIES_MAX, a, XFS_RETRIES_EXPECTED),
    text: (v, a) => goParseUint(v, XFS_MAX_RETRIES_MAX, a, XFS_RETRIES_EXPECTED),
  }),
  /** dm.libdm_log_level: 2 (fatal) to 7 (debug). Default 2, Docker's (pkg/devicemapper's DefaultLogger started at LogLevelFatal). */
  libdmLogLevel: option({
    docker: 'dm.libdm_log_level',
    field: {
      /** dm.libdm_log_level, 2-7. */
      libdmLogLevel: LIBDM_LOG_LEVEL_MIN,
    },
    typed: (v: number, a) => integerIn(v, LIBDM_LOG_LEVEL_MIN, LIBDM_LOG_LEVEL_MAX, a, LOG_LEVEL_EXPECTED),
    text: (v, a) => goParseLogLevel(v, a),
  }),
  /** dm.directlvm_device: not supported (direct-lvm setup). */
  directLvmDevice: unsupported('dm.directlvm_device'),
  /** dm.directlvm_device_force: not supported (direct-lvm setup). */
  directLvmDeviceForce: unsupported('dm.directlvm_device_force'),
  /** dm.thinp_percent: not supported (direct-lvm setup). */
  thinpPercent: unsupported('dm.thinp_percent'),
  /** dm.thinp_metapercent: not supported (direct-lvm setup). */
  thinpMetaPercent: unsupported('dm.thinp_metapercent'),
  /** dm.thinp_autoextend_percent: not supported (direct-lvm setup). */
  thinpAutoextendPercent: unsupported('dm.thinp_autoextend_percent'),
  /** dm.thinp_autoextend_threshold: not supported (direct-lvm setup). */
  thinpAutoextendThreshold: unsupported('dm.thinp_autoextend_threshold'),
  /** Ours: how long to wait for udev to confirm a device-mapper operation, in ms. Default 30000. */
  udevWaitTimeoutMs: option({
    docker: null,
    field: {
      /** Ours: udev wait bound in ms, for every device-mapper task this DeviceSet runs. */
      udevWaitTimeoutMs: 30_000,
    },
    typed: (v: number, a) => integerIn(v, 1, MAX_TIMER_MS, a, `a timeout in ms from 1 to ${MAX_TIMER_MS}`),
  }),
  /** Ours: how often to retry deferred deletions, in ms. Default 30000, Docker's worker tick. */
  deferredDeletionRetryMs: option({
    docker: null,
    field: {
      /** Ours (Docker's worker tick, time.NewTicker(30 * time.Second)): interval between deferred deletion retries in ms. */
      deferredDeletionRetryMs: 30_000,
    },
    typed: (v: number, a) => integerIn(v, 1, MAX_TIMER_MS, a, `an interval in ms from 1 to ${MAX_TIMER_MS}`),
  }),
  /** Ours: how long to keep retrying a busy device's removal, in ms. Default 5000. */
  removeRetryBudgetMs: option({
    docker: null,
    field: {
      /** Ours: budget of busy retries when deactivating a device, in ms (dm.removeDevice's default). */
      removeRetryBudgetMs: 5_000,
    },
    typed: (v: number, a) => integerIn(v, 0, MAX_TIMER_MS, a, `a budget in ms from 0 to ${MAX_TIMER_MS}`),
  }),
  /**
   * Ours: how many unmounted devices stay active, the least recently unmounted deactivated
   * first. A device kept active mounts again without an activation, and its delete discards
   * and removes it in one job instead of activating it again only to discard: a layer's
   * lifecycle has 3 uevents instead of 6. Shutdown, a delete and {@link DeviceSet.deactivateIdleDevices}
   * deactivate them. 0: deactivate on every unmount, as Docker did. Default 64.
   */
  keepActive: option({
    docker: null,
    field: {
      /** Ours: the bound on devices left active after their unmount (0: none, Docker's behaviour). */
      keepActiveDevices: 64,
    },
    typed: (v: number, a) => integerIn(v, 0, KEEP_ACTIVE_MAX, a, `a number of devices from 0 to ${KEEP_ACTIVE_MAX}`),
  }),
  /**
   * Ours: with udev running, the DeviceSet's own activations and removals (mount, unmount,
   * delete, evictions) hand their udev cookies to the addon's reaper instead of waiting for
   * udev's rules: a mount uses the kernel's /dev/dm-N node while udev still makes
   * /dev/mapper/NAME. Each cookie keeps the udevWaitTimeoutMs bound, a name is not reused
   * before udev is done with it, and shutdown waits for the rest (dm.udevSettle).
   * activateDevice still returns only once /dev/mapper/NAME is there. Default true.
   */
  udevReap: option({
    docker: null,
    field: {
      /** Ours: the DeviceSet's activations and removals do not wait for udev (the reaper does). */
      udevReap: true,
    },
    typed: (v: boolean, a) => typedBool(v, a),
  }),
  /**
   * Ours: create the pool with the kernel's `error_if_no_space` feature, so that a write to a
   * full pool fails at once with ENOSPC instead of queueing (for up to the dm-thin module's
   * no_space_timeout, 60 s by default). Applies when this DeviceSet creates the pool; a
   * resize keeps the live table's features. Default false (queue), as Docker's pools did.
   */
  errorIfNoSpace: option({
    docker: null,
    field: {
      /** Ours: the pool is created with error_if_no_space. */
      errorIfNoSpace: false,
    },
    typed: (v: boolean, a) => typedBool(v, a),
  }),
  /**
   * Ours: the pool's low-water mark, in data blocks: the kernel raises an event (a
   * 'low-water' pool event) when free data blocks fall to it. Used when this DeviceSet
   * creates or grows its pool. Default 32768, Docker's.
   */
  lowWaterMarkBlocks: option({
    docker: null,
    field: {
      /** Ours: the pool table's low-water mark in data blocks. */
      lowWaterMarkBlocks: 32768,
    },
    typed: (v: number, a) => integerIn(v, 0, Number.MAX_SAFE_INTEGER, a, 'a number of data blocks, 0 or more'),
  }),
};

type Table = typeof OPTIONS;
type InputOf<S> = S extends { typed(value: infer In, ...rest: never[]): unknown } ? In : never;
/** A default that is a function of the other settings is not part of the field's type. */
type StaticDefault<D> = D extends (s: Settings) => unknown ? never : D;
type FieldsOf<S> =
  S extends { field: infer Field; typed(...args: never[]): infer Out }
    ? { readonly [F in keyof Field]: Out | StaticDefault<Field[F]> }
    : Record<never, never>;
type UnionToIntersection<U> = (U extends unknown ? (u: U) => void : never) extends (i: infer I) => void ? I : never;
/** An intersection as one object type, its fields keeping their docs. */
type Flat<T> = { [K in keyof T]: T[K] };

/**
 * The options as a typed object: Docker's keys in camelCase. Sizes are a number of bytes or
 * a size string as dm.basesize took ("10G"). `null` and `undefined` mean "not set".
 *
 * @interface
 */
export type DeviceSetOptions = { [K in keyof Table]?: InputOf<Table[K]> };

/** The fields of {@link ResolvedOptions} that no single option sets. */
interface ResolvedExtras {
  /** dm.basesize was given: Docker only grows an existing base device then (its userBaseSize). */
  readonly baseSizeExplicit: boolean;
  /** dm.blocksize in 512-byte sectors, as the thin-pool table takes it. */
  readonly blockSizeSectors: number;
  /** The Docker keys ('dm.basesize', ...) that were set explicitly, whichever form was used; our own options by their camelCase names. */
  readonly explicitKeys: readonly string[];
}

/**
 * The options after parsing and defaults, units in the names. Frozen.
 *
 * @interface
 */
export type ResolvedOptions = Flat<UnionToIntersection<{ [K in keyof Table]: FieldsOf<Table[K]> }[keyof Table]> & ResolvedExtras>;

/** One option as resolveOptions walks it. */
interface KeySpec {
  camel: string;
  docker: string | null;
  /** The ResolvedOptions field; '' for an unsupported key. */
  field: string;
  initial: unknown;
  typed?: (value: unknown, argument: string, current: unknown) => unknown;
  text?: (value: string, argument: string, current: unknown) => unknown;
  unsupported: boolean;
}

const KEYS: readonly KeySpec[] = Object.entries(OPTIONS as Record<string, OptionSpec<unknown, unknown, Settings> | UnsupportedSpec>).map(
  ([camel, spec]): KeySpec => {
    if ('unsupported' in spec) return { camel, docker: spec.docker, field: '', initial: undefined, unsupported: true };
    const [[field, initial]] = Object.entries(spec.field);
    return { camel, docker: spec.docker, field, initial, typed: spec.typed, text: spec.text, unsupported: false };
  },
);

const BY_DOCKER_KEY = new Map(KEYS.filter((k) => k.docker !== null).map((k) => [k.docker as string, k]));
const BY_CAMEL_KEY = new Map(KEYS.map((k) => [k.camel, k]));

/** Every dm.* key Docker's devicemapper driver accepted (NewDeviceSet's option switch). */
export const DOCKER_OPTION_KEYS: readonly string[] = Object.freeze([...BY_DOCKER_KEY.keys()]);

/**
 * Parses DeviceSet options, either Docker's `dm.key=value` strings (keys case-insensitive,
 * key and value trimmed, later keys override earlier ones, dm.mkfsarg and dm.mountopt
 * accumulate) or a {@link DeviceSetOptions} object, and applies Docker's defaults.
 *
 * Throws DevmapperError ERR_INVALID_ARGUMENT, `argument` = the key as written ('dm.basesize'
 * or 'baseSize'), for an unknown key, a string without '=', or a bad value; and
 * ERR_NOT_SUPPORTED for Docker's direct-lvm keys, which this library does not implement.
 * DeviceSet.open calls this; call it yourself to check options before opening.
 *
 * @throws {@link DevmapperError} ERR_INVALID_ARGUMENT (also for dm.use_deferred_deletion
 *   without dm.use_deferred_removal); ERR_NOT_SUPPORTED for dm.directlvm_* and dm.thinp_*
 *
 * @example
 * ```ts
 * const o = resolveOptions(['dm.basesize=20G', 'dm.fs=xfs', 'dm.mountopt=noatime']);
 * o.baseSizeBytes;   // 21474836480
 * resolveOptions({ baseSize: '20G', fs: 'xfs', mountOpt: 'noatime' });   // the same, typed
 * resolveOptions(['dm.basesize=20Q']);   // throws ERR_INVALID_ARGUMENT, argument 'dm.basesize'
 * ```
 */
export function resolveOptions(input: readonly string[] | DeviceSetOptions = []): ResolvedOptions {
  // Defaults that depend on other settings are computed once every option has been read.
  const s: Settings = {};
  for (const k of KEYS) if (!k.unsupported && typeof k.initial !== 'function') s[k.field] = k.initial;
  const explicit = new Set<string>();

  if (Array.isArray(input)) {
    for (const option of input as readonly unknown[]) {
      if (typeof option !== 'string') throw invalidArgument('options', "'dm.key=value' strings", option);
      const eq = option.indexOf('=');
      if (eq === -1) throw invalidArgument(goTrimSpace(option) || 'options', "an option of the form 'dm.key=value'", option);
      // Docker: strings.Cut at the first '=', TrimSpace both sides, lowercase the key.
      const key = goTrimSpace(option.slice(0, eq)).toLowerCase();
      const value = goTrimSpace(option.slice(eq + 1));
      const spec = BY_DOCKER_KEY.get(key);
      if (!spec) throw unknownKey(key, [...BY_DOCKER_KEY.keys()]);
      if (spec.unsupported || !spec.text) throw unsupportedKey(key);
      s[spec.field] = spec.text(value, key, s[spec.field]);
      explicit.add(key);
    }
  } else if (typeof input === 'object' && input !== null) {
    for (const [key, value] of Object.entries(input)) {
      const spec = BY_CAMEL_KEY.get(key);
      if (!spec) throw unknownKey(key, [...BY_CAMEL_KEY.keys()]);
      if (value === undefined || value === null) continue;
      if (spec.unsupported || !spec.typed) throw unsupportedKey(key);
      s[spec.field] = spec.typed(value, key, s[spec.field]);
      explicit.add(spec.docker ?? key);
    }
  } else {
    throw invalidArgument('options', "an array of 'dm.key=value' strings or an options object", input);
  }

  if (s.useDeferredDeletion && !s.useDeferredRemoval) {
    // Docker's enableDeferredRemovalDeletion refused this combination too.
    const argument = Array.isArray(input) ? 'dm.use_deferred_deletion' : 'useDeferredDeletion';
    throw new DevmapperError(
      `${argument}: deferred deletion needs deferred removal; enable dm.use_deferred_removal too`,
      { code: ErrorCodes.INVALID_ARGUMENT, argument },
    );
  }

  const resolved: Settings = {};
  for (const k of KEYS) {
    if (k.unsupported) continue;
    const value = k.field in s ? s[k.field] : (k.initial as (s: Settings) => unknown)(s);
    resolved[k.field] = Array.isArray(value) ? Object.freeze([...value]) : value;
  }
  resolved.baseSizeExplicit = explicit.has('dm.basesize');
  resolved.blockSizeSectors = (s.blockSizeBytes as number) / SECTOR_BYTES;
  resolved.explicitKeys = Object.freeze([...explicit]);
  return Object.freeze(resolved) as ResolvedOptions;
}

/**
 * The base device's file system as Docker chose it: dm.fs when given, else xfs when the
 * host supports it, else ext4. Docker's probe (determineDefaultFS) required mkfs.xfs on the
 * PATH and "xfs" in /proc/filesystems after trying a mount to load the module; the caller
 * passes its own probe. An existing base device's recorded file system wins over both.
 */
export async function chooseFilesystem(
  options: Pick<ResolvedOptions, 'fs'>,
  xfsSupported: () => boolean | Promise<boolean>,
): Promise<Filesystem> {
  if (options.fs !== null) return options.fs;
  return (await xfsSupported()) ? 'xfs' : 'ext4';
}

/** Docker's joinMountOptions: comma-join, skipping empty sides. */
export function joinMountOptions(a: string, b: string): string {
  if (a === '') return b;
  if (b === '') return a;
  return `${a},${b}`;
}

function unknownKey(key: string, known: string[]): DevmapperError {
  return new DevmapperError(`${key}: unknown devicemapper option (known: ${known.join(', ')})`, {
    code: ErrorCodes.INVALID_ARGUMENT,
    argument: key,
  });
}

function unsupportedKey(key: string): DevmapperError {
  return new DevmapperError(
    `${key}: direct-lvm setup is not supported by this library; create the thin pool yourself and pass dm.thinpooldev`,
    { code: ErrorCodes.NOT_SUPPORTED, argument: key },
  );
}

/** Go's unicode.IsSpace set, for strings.TrimSpace. */
const GO_SPACE = '\t\n\v\f\r \u0085\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000';

function goTrimSpace(s: string): string {
  let start = 0;
  let end = s.length;
  while (start < end && GO_SPACE.includes(s[start])) start++;
  while (end > start && GO_SPACE.includes(s[end - 1])) end--;
  return s.slice(start, end);
}

const BOOL_EXPECTED = 'a boolean (1, t, T, TRUE, true, True, 0, f, F, FALSE, false, False)';

/** Go's strconv.ParseBool. */
function goParseBool(value: string, argument: string): boolean {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(value)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(value)) return false;
  throw invalidArgument(argument, BOOL_EXPECTED, value);
}

function typedBool(value: unknown, argument: string): boolean {
  if (typeof value !== 'boolean') throw invalidArgument(argument, 'a boolean', value);
  return value;
}

/** Go's strconv.ParseUint(value, 10, ...) with an upper bound: decimal digits only. */
function goParseUint(value: string, max: number, argument: string, expected: string): number {
  if (!/^[0-9]+$/.test(value)) throw invalidArgument(argument, expected, value);
  const n = Number(value);
  if (n > max) throw invalidArgument(argument, expected, value);
  return n;
}

const LOG_LEVEL_EXPECTED = `a libdm log level from ${LIBDM_LOG_LEVEL_MIN} (fatal) to ${LIBDM_LOG_LEVEL_MAX} (debug)`;

/** Go's strconv.ParseInt(value, 10, 32), then Docker's range check. */
function goParseLogLevel(value: string, argument: string): number {
  if (!/^[+-]?[0-9]+$/.test(value)) throw invalidArgument(argument, LOG_LEVEL_EXPECTED, value);
  return integerIn(Number(value), LIBDM_LOG_LEVEL_MIN, LIBDM_LOG_LEVEL_MAX, argument, LOG_LEVEL_EXPECTED);
}

function integerIn(value: unknown, min: number, max: number, argument: string, expected: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max)
    throw invalidArgument(argument, expected, value);
  return value;
}

/** Docker's dm.min_free_space: "N%" with N a decimal from 0 to 99. */
function percentText(value: string, argument: string): number {
  const expected = 'a whole percentage with a % sign, from "0%" to "99%"';
  if (!value.endsWith('%')) throw invalidArgument(argument, expected, value);
  return goParseUint(value.slice(0, -1), 99, argument, expected);
}

function positiveSize(bytes: number, argument: string, shown: unknown): number {
  if (bytes <= 0) throw invalidArgument(argument, 'a size greater than zero', shown);
  return bytes;
}

function typedSize(value: unknown, argument: string): number {
  if (typeof value === 'string') return positiveSize(parseSize(value, argument), argument, value);
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0)
    throw invalidArgument(argument, 'a size in bytes (a positive integer) or a size string such as "10G"', value);
  return value;
}

/** The kernel's limits for a pool's data block size (Docker left this check to the kernel). */
function blockSize(bytes: number, argument: string, shown: unknown): number {
  const min = MIN_POOL_BLOCK_SIZE_SECTORS * SECTOR_BYTES;
  const max = MAX_POOL_BLOCK_SIZE_SECTORS * SECTOR_BYTES;
  if (bytes < min || bytes > max || bytes % min !== 0)
    throw invalidArgument(argument, 'a block size that is a multiple of 64K, from 64K to 1G', shown);
  return bytes;
}

function filesystem(value: unknown, argument: string): Filesystem {
  if (value !== 'ext4' && value !== 'xfs') throw invalidArgument(argument, '"ext4" or "xfs"', value);
  return value;
}

function mkfsArg(value: unknown, argument: string): string {
  if (typeof value !== 'string' || value === '' || value.includes('\0'))
    throw invalidArgument(argument, 'a non-empty mkfs argument without NUL', value);
  return value;
}

function mountOpt(value: unknown, argument: string): string {
  if (typeof value !== 'string' || value.includes('\0')) throw invalidArgument(argument, 'mount options without NUL', value);
  return value;
}

/** A raw device path; '' means unset, as in Docker. */
function devicePath(value: unknown, argument: string): string | null {
  if (value === '') return null;
  if (typeof value !== 'string' || !value.startsWith('/') || value.includes('\0'))
    throw invalidArgument(argument, 'an absolute path to a block device', value);
  return value;
}

/** Docker's dm.thinpooldev: strip one leading "/dev/mapper/"; '' means unset. */
function thinPool(value: unknown, argument: string): string | null {
  if (typeof value !== 'string') throw invalidArgument(argument, 'a thin-pool name or /dev/mapper/ path', value);
  const name = value.startsWith('/dev/mapper/') ? value.slice('/dev/mapper/'.length) : value;
  if (name === '') return null;
  checkDeviceName(name, argument);
  return name;
}
