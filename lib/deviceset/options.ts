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

/** Docker's defaults (deviceset.go: defaultDataLoopbackSize and friends, NewDeviceSet). */
export const DOCKER_DEFAULTS = Object.freeze({
  baseSizeBytes: 10 * GIB,
  loopDataSizeBytes: 100 * GIB,
  loopMetadataSizeBytes: 2 * GIB,
  /** 64 KiB: defaultThinpBlockSize = 128 sectors. */
  blockSizeBytes: MIN_POOL_BLOCK_SIZE_SECTORS * SECTOR_BYTES,
  minFreeSpacePercent: 10,
  /** pkg/devicemapper's DefaultLogger starts at LogLevelFatal. */
  libdmLogLevel: 2,
  /** The deletion worker's ticker: time.NewTicker(30 * time.Second). */
  deferredDeletionRetryMs: 30_000,
});

/** Defaults of the options this library adds to Docker's. */
export const LIBRARY_DEFAULTS = Object.freeze({
  udevWaitTimeoutMs: 30_000,
  /** The budget of busy retries when deactivating a device, as dm.removeDevice's default. */
  removeRetryBudgetMs: 5_000,
  /** Queue writes to a full pool, as Docker's pools did (the kernel's default). */
  errorIfNoSpace: false,
  /** The pool table's low-water mark in data blocks: Docker's thin-pool tables carried 32768. */
  lowWaterMarkBlocks: 32768,
});

/** libdm's log levels (lvm2 lib/log/log.h), the range Docker's dm.libdm_log_level allowed. */
const LIBDM_LOG_LEVEL_MIN = 2; // _LOG_FATAL
const LIBDM_LOG_LEVEL_MAX = 7; // _LOG_DEBUG
/** The kernel's xfs max_retries knob is an int (sysfs kstrtoint); Docker passed it verbatim. */
const XFS_MAX_RETRIES_MAX = 2 ** 31 - 1;
const XFS_RETRIES_EXPECTED = `a retry count from 0 to ${XFS_MAX_RETRIES_MAX}`;
/** setTimeout's limit, for the millisecond options. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * The options as a typed object: Docker's keys in camelCase. Sizes are a number of bytes or
 * a size string as dm.basesize took ("10G"). `null` and `undefined` mean "not set".
 */
export interface DeviceSetOptions {
  /** dm.basesize: size of the base device, and so of every new image and container. Default 10 GiB. */
  baseSize?: number | string;
  /** dm.loopdatasize: size of the sparse data file devicemapper/data. Default 100 GiB. */
  loopDataSize?: number | string;
  /** dm.loopmetadatasize: size of the sparse metadata file devicemapper/metadata. Default 2 GiB. */
  loopMetadataSize?: number | string;
  /** dm.fs: file system of the base device. Unset or '': xfs when supported, else ext4, as Docker chose. */
  fs?: Filesystem | '' | null;
  /** dm.mkfsarg (repeatable): extra arguments for mkfs. */
  mkfsArgs?: readonly string[];
  /** dm.mountopt (repeatable): extra mount options, comma-separated. */
  mountOpt?: string | readonly string[];
  /** dm.datadev: block device for the pool's data instead of a loop file. */
  dataDev?: string;
  /** dm.metadatadev: block device for the pool's metadata instead of a loop file. */
  metadataDev?: string;
  /** dm.thinpooldev: an existing thin pool to use ("/dev/mapper/" is stripped). */
  thinPoolDev?: string;
  /** dm.blocksize: pool data block size, a multiple of 64 KiB from 64 KiB to 1 GiB. Default 64 KiB. */
  blockSize?: number | string;
  /** dm.blkdiscard: discard a device's blocks before deleting it. Default true, false on raw devices and thinpooldev. */
  blkDiscard?: boolean;
  /** dm.override_udev_sync_check: run without udev sync. Default false. */
  overrideUdevSyncCheck?: boolean;
  /** dm.use_deferred_removal. Default false. */
  useDeferredRemoval?: boolean;
  /** dm.use_deferred_deletion (needs deferred removal). Default false. */
  useDeferredDeletion?: boolean;
  /** dm.min_free_space: percentage (0-99) of pool data and metadata that must stay free; 10 or "10%". Default 10. */
  minFreeSpace?: number | string;
  /** dm.xfs_nospace_max_retries: xfs's metadata ENOSPC max_retries for mounted devices. Default: kernel's. */
  xfsNospaceMaxRetries?: number;
  /** dm.libdm_log_level: 2 (fatal) to 7 (debug). Default 2, Docker's. */
  libdmLogLevel?: number;
  /** Ours: how long to wait for udev to confirm a device-mapper operation, in ms. Default 30000. */
  udevWaitTimeoutMs?: number;
  /** Ours: how often to retry deferred deletions, in ms. Default 30000, Docker's worker tick. */
  deferredDeletionRetryMs?: number;
  /** Ours: how long to keep retrying a busy device's removal, in ms. Default 5000. */
  removeRetryBudgetMs?: number;
  /**
   * Ours: create the pool with the kernel's `error_if_no_space` feature, so that a write to a
   * full pool fails at once with ENOSPC instead of queueing (for up to the dm-thin module's
   * no_space_timeout, 60 s by default). Applies when this DeviceSet creates the pool; a
   * resize keeps the live table's features. Default false (queue), as Docker's pools did.
   */
  errorIfNoSpace?: boolean;
  /**
   * Ours: the pool's low-water mark, in data blocks: the kernel raises an event (a
   * 'low-water' pool event) when free data blocks fall to it. Used when this DeviceSet
   * creates or grows its pool. Default 32768, Docker's.
   */
  lowWaterMarkBlocks?: number;
  /** dm.directlvm_device: not supported (direct-lvm setup). */
  directLvmDevice?: never;
  /** dm.directlvm_device_force: not supported (direct-lvm setup). */
  directLvmDeviceForce?: never;
  /** dm.thinp_percent: not supported (direct-lvm setup). */
  thinpPercent?: never;
  /** dm.thinp_metapercent: not supported (direct-lvm setup). */
  thinpMetaPercent?: never;
  /** dm.thinp_autoextend_percent: not supported (direct-lvm setup). */
  thinpAutoextendPercent?: never;
  /** dm.thinp_autoextend_threshold: not supported (direct-lvm setup). */
  thinpAutoextendThreshold?: never;
}

/** The options after parsing and defaults, units in the names. Frozen. */
export interface ResolvedOptions {
  /** dm.basesize in bytes. */
  readonly baseSizeBytes: number;
  /** dm.basesize was given: Docker only grows an existing base device then (its userBaseSize). */
  readonly baseSizeExplicit: boolean;
  /** dm.loopdatasize in bytes: the data loop file is created (or grown) to this. */
  readonly loopDataSizeBytes: number;
  /** dm.loopmetadatasize in bytes: the metadata loop file is created (or grown) to this. */
  readonly loopMetadataSizeBytes: number;
  /** dm.fs; null: not chosen (xfs when mkfs.xfs and the kernel's xfs are there, else ext4; an existing base keeps its own). */
  readonly fs: Filesystem | null;
  /** dm.mkfsarg values in order. */
  readonly mkfsArgs: readonly string[];
  /** dm.mountopt values joined with commas as Docker did; '' when none. */
  readonly mountOptions: string;
  /** dm.datadev, or null for the loop file. */
  readonly dataDevice: string | null;
  /** dm.metadatadev, or null for the loop file. */
  readonly metadataDevice: string | null;
  /** dm.thinpooldev as a device-mapper name (no /dev/mapper/), or null for our own pool. */
  readonly thinPoolDevice: string | null;
  /** dm.blocksize in bytes. */
  readonly blockSizeBytes: number;
  /** dm.blocksize in 512-byte sectors, as the thin-pool table takes it. */
  readonly blockSizeSectors: number;
  /** dm.blkdiscard, with Docker's default: true, but false with dm.datadev or dm.thinpooldev. */
  readonly blkDiscard: boolean;
  /** dm.override_udev_sync_check. */
  readonly overrideUdevSyncCheck: boolean;
  /**
   * dm.use_deferred_removal. Docker v20.10+ turned deferred removal and deletion on by
   * default when the kernel (dm 4.27+) and libdm supported them; here they are off unless
   * asked for (see `explicitKeys` to tell the two apart).
   */
  readonly useDeferredRemoval: boolean;
  /** dm.use_deferred_deletion (implies useDeferredRemoval, checked). */
  readonly useDeferredDeletion: boolean;
  /** dm.min_free_space, 0-99; 0 turns the check off. */
  readonly minFreeSpacePercent: number;
  /** dm.xfs_nospace_max_retries; null: leave the kernel's setting alone. */
  readonly xfsNospaceMaxRetries: number | null;
  /** dm.libdm_log_level, 2-7. */
  readonly libdmLogLevel: number;
  /** Ours: udev wait bound in ms. */
  readonly udevWaitTimeoutMs: number;
  /** Ours (Docker's worker tick): interval between deferred deletion retries in ms. */
  readonly deferredDeletionRetryMs: number;
  /** Ours: budget of busy retries when deactivating a device, in ms. */
  readonly removeRetryBudgetMs: number;
  /** Ours: the pool is created with error_if_no_space. */
  readonly errorIfNoSpace: boolean;
  /** Ours: the pool table's low-water mark in data blocks. */
  readonly lowWaterMarkBlocks: number;
  /** The Docker keys ('dm.basesize', ...) that were set explicitly, whichever form was used; our own options by their camelCase names. */
  readonly explicitKeys: readonly string[];
}

/** A setting under construction: what each key parser may change. */
interface Draft {
  baseSizeBytes: number;
  loopDataSizeBytes: number;
  loopMetadataSizeBytes: number;
  fs: Filesystem | null;
  mkfsArgs: string[];
  mountOptions: string;
  dataDevice: string | null;
  metadataDevice: string | null;
  thinPoolDevice: string | null;
  blockSizeBytes: number;
  blkDiscard: boolean | null;
  overrideUdevSyncCheck: boolean;
  useDeferredRemoval: boolean;
  useDeferredDeletion: boolean;
  minFreeSpacePercent: number;
  xfsNospaceMaxRetries: number | null;
  libdmLogLevel: number;
  udevWaitTimeoutMs: number;
  deferredDeletionRetryMs: number;
  removeRetryBudgetMs: number;
  errorIfNoSpace: boolean;
  lowWaterMarkBlocks: number;
}

/** How one key reads its value: `text` from a 'dm.key=value' string, `typed` from the object. */
interface KeySpec {
  docker: string | null;
  camel: string;
  text?: (d: Draft, value: string, argument: string) => void;
  typed?: (d: Draft, value: unknown, argument: string) => void;
  /** direct-lvm keys: known to Docker, refused here. */
  unsupported?: true;
}

const KEYS: readonly KeySpec[] = [
  {
    docker: 'dm.basesize',
    camel: 'baseSize',
    text: (d, v, a) => (d.baseSizeBytes = positiveSize(parseSize(v, a), a, v)),
    typed: (d, v, a) => (d.baseSizeBytes = typedSize(v, a)),
  },
  {
    docker: 'dm.loopdatasize',
    camel: 'loopDataSize',
    text: (d, v, a) => (d.loopDataSizeBytes = positiveSize(parseSize(v, a), a, v)),
    typed: (d, v, a) => (d.loopDataSizeBytes = typedSize(v, a)),
  },
  {
    docker: 'dm.loopmetadatasize',
    camel: 'loopMetadataSize',
    text: (d, v, a) => (d.loopMetadataSizeBytes = positiveSize(parseSize(v, a), a, v)),
    typed: (d, v, a) => (d.loopMetadataSizeBytes = typedSize(v, a)),
  },
  {
    docker: 'dm.fs',
    camel: 'fs',
    // Docker compared the value exactly: "XFS" and "" were refused.
    text: (d, v, a) => (d.fs = filesystem(v, a)),
    typed: (d, v, a) => (d.fs = v === '' ? null : filesystem(v, a)),
  },
  {
    docker: 'dm.mkfsarg',
    camel: 'mkfsArgs',
    text: (d, v, a) => d.mkfsArgs.push(mkfsArg(v, a)),
    typed: (d, v, a) => {
      if (!Array.isArray(v)) throw invalidArgument(a, 'an array of mkfs arguments', v);
      for (const arg of v) d.mkfsArgs.push(mkfsArg(arg, a));
    },
  },
  {
    docker: 'dm.mountopt',
    camel: 'mountOpt',
    text: (d, v, a) => (d.mountOptions = joinMountOptions(d.mountOptions, mountOpt(v, a))),
    typed: (d, v, a) => {
      const list: unknown[] = Array.isArray(v) ? v : [v];
      for (const opt of list) d.mountOptions = joinMountOptions(d.mountOptions, mountOpt(opt, a));
    },
  },
  {
    docker: 'dm.datadev',
    camel: 'dataDev',
    text: (d, v, a) => (d.dataDevice = devicePath(v, a)),
    typed: (d, v, a) => (d.dataDevice = devicePath(v, a)),
  },
  {
    docker: 'dm.metadatadev',
    camel: 'metadataDev',
    text: (d, v, a) => (d.metadataDevice = devicePath(v, a)),
    typed: (d, v, a) => (d.metadataDevice = devicePath(v, a)),
  },
  {
    docker: 'dm.thinpooldev',
    camel: 'thinPoolDev',
    text: (d, v, a) => (d.thinPoolDevice = thinPool(v, a)),
    typed: (d, v, a) => (d.thinPoolDevice = thinPool(v, a)),
  },
  {
    docker: 'dm.blocksize',
    camel: 'blockSize',
    text: (d, v, a) => (d.blockSizeBytes = blockSize(parseSize(v, a), a, v)),
    typed: (d, v, a) => (d.blockSizeBytes = blockSize(typedSize(v, a), a, v)),
  },
  {
    docker: 'dm.blkdiscard',
    camel: 'blkDiscard',
    text: (d, v, a) => (d.blkDiscard = goParseBool(v, a)),
    typed: (d, v, a) => (d.blkDiscard = typedBool(v, a)),
  },
  {
    docker: 'dm.override_udev_sync_check',
    camel: 'overrideUdevSyncCheck',
    text: (d, v, a) => (d.overrideUdevSyncCheck = goParseBool(v, a)),
    typed: (d, v, a) => (d.overrideUdevSyncCheck = typedBool(v, a)),
  },
  {
    docker: 'dm.use_deferred_removal',
    camel: 'useDeferredRemoval',
    text: (d, v, a) => (d.useDeferredRemoval = goParseBool(v, a)),
    typed: (d, v, a) => (d.useDeferredRemoval = typedBool(v, a)),
  },
  {
    docker: 'dm.use_deferred_deletion',
    camel: 'useDeferredDeletion',
    text: (d, v, a) => (d.useDeferredDeletion = goParseBool(v, a)),
    typed: (d, v, a) => (d.useDeferredDeletion = typedBool(v, a)),
  },
  {
    docker: 'dm.min_free_space',
    camel: 'minFreeSpace',
    text: (d, v, a) => (d.minFreeSpacePercent = percentText(v, a)),
    typed: (d, v, a) => {
      if (typeof v === 'string') d.minFreeSpacePercent = percentText(v, a);
      else d.minFreeSpacePercent = integerIn(v, 0, 99, a, 'a whole percentage from 0 to 99');
    },
  },
  {
    docker: 'dm.xfs_nospace_max_retries',
    camel: 'xfsNospaceMaxRetries',
    text: (d, v, a) => (d.xfsNospaceMaxRetries = goParseUint(v, XFS_MAX_RETRIES_MAX, a, XFS_RETRIES_EXPECTED)),
    typed: (d, v, a) => (d.xfsNospaceMaxRetries = integerIn(v, 0, XFS_MAX_RETRIES_MAX, a, XFS_RETRIES_EXPECTED)),
  },
  {
    docker: 'dm.libdm_log_level',
    camel: 'libdmLogLevel',
    text: (d, v, a) => (d.libdmLogLevel = goParseLogLevel(v, a)),
    typed: (d, v, a) => (d.libdmLogLevel = integerIn(v, LIBDM_LOG_LEVEL_MIN, LIBDM_LOG_LEVEL_MAX, a, LOG_LEVEL_EXPECTED)),
  },
  { docker: 'dm.directlvm_device', camel: 'directLvmDevice', unsupported: true },
  { docker: 'dm.directlvm_device_force', camel: 'directLvmDeviceForce', unsupported: true },
  { docker: 'dm.thinp_percent', camel: 'thinpPercent', unsupported: true },
  { docker: 'dm.thinp_metapercent', camel: 'thinpMetaPercent', unsupported: true },
  { docker: 'dm.thinp_autoextend_percent', camel: 'thinpAutoextendPercent', unsupported: true },
  { docker: 'dm.thinp_autoextend_threshold', camel: 'thinpAutoextendThreshold', unsupported: true },
  // Ours: typed object only, so that no 'dm.' key means something Docker would refuse.
  {
    docker: null,
    camel: 'udevWaitTimeoutMs',
    typed: (d, v, a) => (d.udevWaitTimeoutMs = integerIn(v, 1, MAX_TIMER_MS, a, `a timeout in ms from 1 to ${MAX_TIMER_MS}`)),
  },
  {
    docker: null,
    camel: 'deferredDeletionRetryMs',
    typed: (d, v, a) => (d.deferredDeletionRetryMs = integerIn(v, 1, MAX_TIMER_MS, a, `an interval in ms from 1 to ${MAX_TIMER_MS}`)),
  },
  {
    docker: null,
    camel: 'removeRetryBudgetMs',
    typed: (d, v, a) => (d.removeRetryBudgetMs = integerIn(v, 0, MAX_TIMER_MS, a, `a budget in ms from 0 to ${MAX_TIMER_MS}`)),
  },
  {
    docker: null,
    camel: 'errorIfNoSpace',
    typed: (d, v, a) => (d.errorIfNoSpace = typedBool(v, a)),
  },
  {
    docker: null,
    camel: 'lowWaterMarkBlocks',
    typed: (d, v, a) => (d.lowWaterMarkBlocks = integerIn(v, 0, Number.MAX_SAFE_INTEGER, a, 'a number of data blocks, 0 or more')),
  },
];

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
  const d: Draft = {
    baseSizeBytes: DOCKER_DEFAULTS.baseSizeBytes,
    loopDataSizeBytes: DOCKER_DEFAULTS.loopDataSizeBytes,
    loopMetadataSizeBytes: DOCKER_DEFAULTS.loopMetadataSizeBytes,
    fs: null,
    mkfsArgs: [],
    mountOptions: '',
    dataDevice: null,
    metadataDevice: null,
    thinPoolDevice: null,
    blockSizeBytes: DOCKER_DEFAULTS.blockSizeBytes,
    blkDiscard: null,
    overrideUdevSyncCheck: false,
    useDeferredRemoval: false,
    useDeferredDeletion: false,
    minFreeSpacePercent: DOCKER_DEFAULTS.minFreeSpacePercent,
    xfsNospaceMaxRetries: null,
    libdmLogLevel: DOCKER_DEFAULTS.libdmLogLevel,
    udevWaitTimeoutMs: LIBRARY_DEFAULTS.udevWaitTimeoutMs,
    deferredDeletionRetryMs: DOCKER_DEFAULTS.deferredDeletionRetryMs,
    removeRetryBudgetMs: LIBRARY_DEFAULTS.removeRetryBudgetMs,
    errorIfNoSpace: LIBRARY_DEFAULTS.errorIfNoSpace,
    lowWaterMarkBlocks: LIBRARY_DEFAULTS.lowWaterMarkBlocks,
  };
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
      if (spec.unsupported) throw unsupportedKey(key);
      spec.text?.(d, value, key);
      explicit.add(key);
    }
  } else if (typeof input === 'object' && input !== null) {
    for (const [key, value] of Object.entries(input)) {
      const spec = BY_CAMEL_KEY.get(key);
      if (!spec) throw unknownKey(key, [...BY_CAMEL_KEY.keys()]);
      if (value === undefined || value === null) continue;
      if (spec.unsupported) throw unsupportedKey(key);
      spec.typed?.(d, value, key);
      explicit.add(spec.docker ?? key);
    }
  } else {
    throw invalidArgument('options', "an array of 'dm.key=value' strings or an options object", input);
  }

  if (d.useDeferredDeletion && !d.useDeferredRemoval) {
    // Docker's enableDeferredRemovalDeletion refused this combination too.
    const argument = Array.isArray(input) ? 'dm.use_deferred_deletion' : 'useDeferredDeletion';
    throw new DevmapperError(
      `${argument}: deferred deletion needs deferred removal; enable dm.use_deferred_removal too`,
      { code: ErrorCodes.INVALID_ARGUMENT, argument },
    );
  }

  return Object.freeze({
    baseSizeBytes: d.baseSizeBytes,
    baseSizeExplicit: explicit.has('dm.basesize'),
    loopDataSizeBytes: d.loopDataSizeBytes,
    loopMetadataSizeBytes: d.loopMetadataSizeBytes,
    fs: d.fs,
    mkfsArgs: Object.freeze([...d.mkfsArgs]),
    mountOptions: d.mountOptions,
    dataDevice: d.dataDevice,
    metadataDevice: d.metadataDevice,
    thinPoolDevice: d.thinPoolDevice,
    blockSizeBytes: d.blockSizeBytes,
    blockSizeSectors: d.blockSizeBytes / SECTOR_BYTES,
    // Docker: discard by default, except on raw devices and a given pool, unless asked.
    blkDiscard: d.blkDiscard ?? (d.dataDevice === null && d.thinPoolDevice === null),
    overrideUdevSyncCheck: d.overrideUdevSyncCheck,
    useDeferredRemoval: d.useDeferredRemoval,
    useDeferredDeletion: d.useDeferredDeletion,
    minFreeSpacePercent: d.minFreeSpacePercent,
    xfsNospaceMaxRetries: d.xfsNospaceMaxRetries,
    libdmLogLevel: d.libdmLogLevel,
    udevWaitTimeoutMs: d.udevWaitTimeoutMs,
    deferredDeletionRetryMs: d.deferredDeletionRetryMs,
    removeRetryBudgetMs: d.removeRetryBudgetMs,
    errorIfNoSpace: d.errorIfNoSpace,
    lowWaterMarkBlocks: d.lowWaterMarkBlocks,
    explicitKeys: Object.freeze([...explicit]),
  });
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
