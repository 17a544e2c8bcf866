import { constants as osConstants } from 'node:os';

/**
 * One line libdevmapper logged while a call ran, with its syslog-style level (3 = error ... 7 = debug).
 *
 * The addon installs its own libdevmapper log function, so these lines are captured per call
 * and never printed on stderr. Error lines are always kept; warnings, notices and debug lines
 * only up to the call's level: a DeviceSet's `dm.libdm_log_level` for its own calls (see
 * {@link DeviceSetOptions.libdmLogLevel}, default 2), else the process's (dm.setLogLevel, default 5).
 */
export interface LibdmLogLine {
  /** Syslog-style level: 2 fatal, 3 error, 4 warning, 5 notice, 6 info, 7 debug. */
  level: number;
  /** libdevmapper's source file that logged the line, when it said. */
  file?: string;
  /** The line in {@link LibdmLogLine.file}, when known. */
  line?: number;
  /** The errno libdevmapper attached to the line, 0 when none. */
  errno: number;
  /** The text of the line, formatted. */
  message: string;
}

/**
 * The project's own error codes, for failures that are not a kernel errno.
 * Kernel failures use the errno's name ('EBUSY', 'EEXIST', 'ENXIO', 'ENODATA', ...).
 *
 * Compare {@link DevmapperError.code} against these rather than against the strings. What
 * each one means and what to do about it is in the troubleshooting table of docs/guide.md.
 *
 * @example
 * ```ts
 * try {
 *   await ds.addDevice('c1', 'image');
 * } catch (err) {
 *   if (err instanceof DevmapperError && err.code === ErrorCodes.POOL_LOW_SPACE) {
 *     await ds.resizePool(200 * 2 ** 30); // grow the pool, then retry
 *   } else throw err;
 * }
 * ```
 */
export const ErrorCodes = {
  /** An argument was rejected before anything was asked of the kernel. */
  INVALID_ARGUMENT: 'ERR_INVALID_ARGUMENT',
  /** libdevmapper failed without an errno (out of memory, bad response, ...). */
  DM_FAILED: 'ERR_DM_FAILED',
  /** A status or table line did not have the expected form. */
  PARSE: 'ERR_PARSE',
  /** The operation was aborted: its AbortSignal fired, or a layer tar's reader stopped it. */
  ABORTED: 'ABORT_ERR',
  /** The native addon is not built or could not be loaded. */
  ADDON: 'ERR_ADDON_NOT_LOADED',
  /** The pool is in failure mode, or its status could not be read (thin_check it). */
  POOL_FAILED: 'ERR_POOL_FAILED',
  /** The pool is read-only, out of data space, or needs a check: no change is made. */
  POOL_NOT_WRITABLE: 'ERR_POOL_NOT_WRITABLE',
  /** Free data or metadata space is below dm.min_free_space: the device was not created. */
  POOL_LOW_SPACE: 'ERR_POOL_LOW_SPACE',
  /** The pool's transaction id does not match the metadata's: a different pool than last time. */
  TRANSACTION_MISMATCH: 'ERR_TRANSACTION_MISMATCH',
  /** An existing pool cannot be adopted (it has data or a transaction id, or another root uses it). */
  POOL_NOT_ADOPTABLE: 'ERR_POOL_NOT_ADOPTABLE',
  /** The base device's file system is not the one recorded (UUID or type changed). */
  BASE_DEVICE_CHANGED: 'ERR_BASE_DEVICE_CHANGED',
  /** udev sync is not available and dm.override_udev_sync_check is not set. */
  UDEV_SYNC_UNSUPPORTED: 'ERR_UDEV_SYNC_UNSUPPORTED',
  /** The DeviceSet was shut down. */
  CLOSED: 'ERR_CLOSED',
  /** A known Docker option this library does not implement (dm.directlvm_device, dm.thinp_*). */
  NOT_SUPPORTED: 'ERR_NOT_SUPPORTED',
  /** Every 24-bit thin device id is in use. */
  NO_FREE_DEVICE_ID: 'ERR_NO_FREE_DEVICE_ID',
  /** A metadata file could not be read as what it should hold (bad JSON, wrong field types). */
  METADATA_CORRUPT: 'ERR_METADATA_CORRUPT',
  /**
   * An entry of a layer tar was refused: its path or hard-link target has a `..` component,
   * it would be written through a symlink that leads out of the root, or it cannot be placed
   * (a parent that is not a directory, an unknown entry type). `device` names the entry.
   */
  UNSAFE_LAYER_ENTRY: 'ERR_UNSAFE_LAYER_ENTRY',
  /**
   * The DeviceSet root is open in another DeviceSet (this process or another, named by its
   * pid in the message): two owners of one root would overwrite each other's metadata.
   */
  ROOT_BUSY: 'ERR_ROOT_BUSY',
  /**
   * A program the library runs failed: mkfs, tune2fs, resize2fs or xfs_growfs (or, for the
   * sandbox kernel, apt-get or linux.uml). The message ends with its last stderr lines. A
   * program that is not installed is ENOENT instead.
   */
  COMMAND_FAILED: 'ERR_COMMAND_FAILED',
  /**
   * `dm.xfs_nospace_max_retries` could not be applied: writing the device's
   * `/sys/fs/xfs/dm-N/error/metadata/ENOSPC/max_retries` failed (the kernel's xfs has no such
   * setting, or refused the value; the cause says which). The mount was undone.
   */
  XFS_NOSPACE_RETRIES: 'ERR_XFS_NOSPACE_RETRIES',
  /** The running kernel has no device-mapper driver (the CLI's check of /proc/misc). */
  NO_DEVICE_MAPPER: 'ERR_NO_DEVICE_MAPPER',
  /** A Snapshotter has no snapshot of that key or name (containerd's "not found"). */
  SNAPSHOT_NOT_FOUND: 'ERR_SNAPSHOT_NOT_FOUND',
  /** A Snapshotter already has a snapshot of that key or name (containerd's "already exists"). */
  SNAPSHOT_EXISTS: 'ERR_SNAPSHOT_EXISTS',
  /**
   * The snapshot is in the wrong state for the call (containerd's "failed precondition"):
   * committing a view or a committed snapshot, removing one that has children.
   */
  SNAPSHOT_PRECONDITION: 'ERR_SNAPSHOT_PRECONDITION',
  /**
   * An image source is not what it claims: not a docker-save tarball or an OCI image layout,
   * JSON that does not parse or lacks a field, a blob the manifest names that is missing, a
   * media type or compression this library does not read. `device` names the file.
   */
  IMAGE_FORMAT: 'ERR_IMAGE_FORMAT',
  /**
   * A blob's sha256 is not the digest its descriptor names (manifest, config, compressed
   * layer), or an uncompressed layer's is not the config's diff ID. Nothing of that layer is
   * committed. `device` names the blob.
   */
  IMAGE_DIGEST: 'ERR_IMAGE_DIGEST',
  /** The image source has no manifest for the platform asked for (default linux/amd64). */
  IMAGE_PLATFORM: 'ERR_IMAGE_PLATFORM',
  /** No image record of that name (images.rootDisk, images.remove, `devmapper image rm`). */
  IMAGE_NOT_FOUND: 'ERR_IMAGE_NOT_FOUND',
} as const;

/** One of the values of {@link ErrorCodes}. */
export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

/** What a {@link DevmapperError} is made of; every field is optional. */
export interface DevmapperErrorOptions {
  /** The string code; default: the errno's name when `errno` is given, else ERR_DM_FAILED. */
  code?: string;
  /** The kernel's errno number; 0 and negative values count as none. */
  errno?: number;
  /** What was being done: 'create', 'message create_thin 5', 'loop attach', ... */
  operation?: string;
  /** The device-mapper name, path or file the operation was about. */
  device?: string;
  /** For INVALID_ARGUMENT: the name of the argument or option at fault. */
  argument?: string;
  /** libdevmapper's log lines of the failed call. */
  logs?: LibdmLogLine[];
  /** The underlying error, kept as the standard `Error.cause`. */
  cause?: unknown;
}

const errnoNames: Map<number, string> = new Map(
  Object.entries(osConstants.errno).map(([name, num]) => [num, name]),
);

/**
 * The symbolic name of an errno number ('EBUSY' for 16), or undefined, from Node's
 * `os.constants.errno` for this platform.
 *
 * @param errno a positive errno number
 * @returns its name, or undefined when the platform has none
 */
export function errnoName(errno: number): string | undefined {
  return errnoNames.get(errno);
}

/**
 * Every failure of this library. `code` is a string ('EBUSY', or one of {@link ErrorCodes});
 * `errno` is the kernel's number when the kernel gave one.
 *
 * The native addon constructs this class too (it is handed over once at load time), so
 * `instanceof DevmapperError` holds for errors from every layer. Errors from the addon carry
 * the caller's stack, not the worker thread's.
 *
 * @example
 * ```ts
 * try {
 *   await dm.createDevice('myapp-pool', 5);
 * } catch (err) {
 *   if (!(err instanceof DevmapperError)) throw err;
 *   if (err.code === 'EEXIST') console.log('thin id 5 is taken');
 *   else console.error(err.code, err.operation, err.device, err.logs.map((l) => l.message));
 * }
 * ```
 */
export class DevmapperError extends Error {
  /** Always 'DevmapperError'. */
  override name = 'DevmapperError';
  /**
   * What went wrong, as a string: the kernel's errno name ('EBUSY', 'ENXIO', ...), one of
   * {@link ErrorCodes}, or, for a few file-system failures, an errno name from Node
   * ('ENOENT', 'ENOSPC').
   */
  readonly code: string;
  /** The kernel's errno number, or undefined when the failure did not come with one. */
  readonly errno: number | undefined;
  /** What was being done: 'create_thin 5', 'activate thin 3', 'remove', 'loop attach', ... */
  readonly operation: string | undefined;
  /** The device-mapper name, device path, file or hash the failure was about. */
  readonly device: string | undefined;
  /** For ERR_INVALID_ARGUMENT (and some option errors): the argument or option key at fault. */
  readonly argument: string | undefined;
  /** libdevmapper's log lines of the failed call (empty for failures outside libdevmapper). */
  readonly logs: LibdmLogLine[];

  /**
   * Builds the error; the addon calls this too, with errno, operation, device and logs.
   *
   * @param message the human-readable message
   * @param options code, errno, operation, device, argument, logs and cause
   */
  constructor(message: string, options: DevmapperErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    const errno = options.errno !== undefined && options.errno > 0 ? options.errno : undefined;
    this.code =
      options.code ?? (errno !== undefined ? (errnoName(errno) ?? `E${errno}`) : ErrorCodes.DM_FAILED);
    this.errno = errno;
    this.operation = options.operation;
    this.device = options.device;
    this.argument = options.argument;
    this.logs = options.logs ?? [];
  }
}

/**
 * Shorthand for the error thrown when an argument is rejected before the kernel is asked:
 * code ERR_INVALID_ARGUMENT, `argument` set, and a message "ARG: expected X, got Y".
 *
 * @param argument the argument or option name as the caller wrote it
 * @param expected what would have been accepted, in words
 * @param got the rejected value (strings are shown quoted)
 * @returns the error, for the caller to throw
 */
export function invalidArgument(argument: string, expected: string, got: unknown): DevmapperError {
  let shown: string;
  try {
    shown = typeof got === 'string' ? JSON.stringify(got) : String(got);
  } catch {
    shown = typeof got;
  }
  return new DevmapperError(`${argument}: expected ${expected}, got ${shown}`, {
    code: ErrorCodes.INVALID_ARGUMENT,
    argument,
  });
}
