/**
 * The exit status of `devmapper`, one per class of failure, so a script can tell "no such
 * layer" from "busy" from "this kernel cannot do it" without reading the message.
 */
import { constants as osConstants } from 'node:os';
import { DevmapperError, ErrorCodes, type ErrorCode } from '../errors';

export const ExitCode = {
  OK: 0,
  /**
   * A failure with no class of its own: a bug (an error without a code, ERR_CLOSED), or a
   * system failure nobody can act on from the command line (ERR_DM_FAILED, ERR_PARSE, an
   * errno not listed here, such as EIO).
   */
  UNEXPECTED: 1,
  /** Bad command line, option or argument (also a dm.* option the library refused). */
  USAGE: 2,
  /** No such layer, device or pool. */
  NOT_FOUND: 3,
  /** In use: mounted, held open (EBUSY), or the root is open in another process (ERR_ROOT_BUSY). */
  BUSY: 4,
  /** The pool refuses new data: read-only, out of space, below dm.min_free_space, failed. */
  POOL_SPACE: 5,
  /** Not root, or the system refused (EPERM, EACCES). */
  PERMISSION: 6,
  /** The running kernel has no device-mapper driver: use `devmapper sandbox -- ...`. */
  NO_DEVICE_MAPPER: 7,
  /** The native addon or libdevmapper could not be loaded. */
  ADDON: 8,
  /** The layer already exists (EEXIST). */
  EXISTS: 9,
  /** The root and the pool disagree (transaction id, base device, metadata file): needs a person. */
  INCONSISTENT: 10,
  /** The command was aborted or interrupted (ABORT_ERR), or the kernel timed out (ETIMEDOUT). */
  TIMEOUT: 11,
  /** A program the library runs failed (mkfs, tune2fs, xfs_growfs, ...): ERR_COMMAND_FAILED. */
  COMMAND_FAILED: 12,
} as const;
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

/** For `devmapper --help`: the status, and what it means. */
export const EXIT_CODE_HELP: ReadonlyArray<[ExitCodeValue, string]> = [
  [ExitCode.OK, 'success'],
  [ExitCode.UNEXPECTED, 'unexpected failure'],
  [ExitCode.USAGE, 'bad command line, option or argument'],
  [ExitCode.NOT_FOUND, 'no such layer, device or pool'],
  [ExitCode.BUSY, 'busy: mounted or held open, or the root is open elsewhere'],
  [ExitCode.POOL_SPACE, 'pool not writable: read-only, full, below dm.min_free_space or failed'],
  [ExitCode.PERMISSION, 'not root, or permission denied'],
  [ExitCode.NO_DEVICE_MAPPER, 'the kernel has no device-mapper (try devmapper sandbox -- ...)'],
  [ExitCode.ADDON, 'the native addon or libdevmapper cannot be loaded'],
  [ExitCode.EXISTS, 'the layer already exists'],
  [ExitCode.INCONSISTENT, 'root and pool disagree (transaction id, base device, metadata)'],
  [ExitCode.TIMEOUT, 'aborted or interrupted, or the kernel timed out'],
  [ExitCode.COMMAND_FAILED, 'a program it runs failed (mkfs, tune2fs, xfs_growfs, ...)'],
];

/**
 * Every project code: a Record over {@link ErrorCode}, so a code added to ErrorCodes without
 * a status here does not compile.
 */
const BY_PROJECT_CODE: Readonly<Record<ErrorCode, ExitCodeValue>> = {
  [ErrorCodes.INVALID_ARGUMENT]: ExitCode.USAGE,
  [ErrorCodes.NOT_SUPPORTED]: ExitCode.USAGE,
  [ErrorCodes.UNSAFE_LAYER_ENTRY]: ExitCode.USAGE,
  [ErrorCodes.UDEV_SYNC_UNSUPPORTED]: ExitCode.USAGE,
  // The knob belongs to dm.xfs_nospace_max_retries: leaving the option out is the remedy.
  [ErrorCodes.XFS_NOSPACE_RETRIES]: ExitCode.USAGE,
  [ErrorCodes.ROOT_BUSY]: ExitCode.BUSY,
  [ErrorCodes.POOL_NOT_WRITABLE]: ExitCode.POOL_SPACE,
  [ErrorCodes.POOL_LOW_SPACE]: ExitCode.POOL_SPACE,
  [ErrorCodes.POOL_FAILED]: ExitCode.POOL_SPACE,
  [ErrorCodes.NO_FREE_DEVICE_ID]: ExitCode.POOL_SPACE,
  [ErrorCodes.NO_DEVICE_MAPPER]: ExitCode.NO_DEVICE_MAPPER,
  [ErrorCodes.ADDON]: ExitCode.ADDON,
  [ErrorCodes.TRANSACTION_MISMATCH]: ExitCode.INCONSISTENT,
  [ErrorCodes.POOL_NOT_ADOPTABLE]: ExitCode.INCONSISTENT,
  [ErrorCodes.BASE_DEVICE_CHANGED]: ExitCode.INCONSISTENT,
  [ErrorCodes.METADATA_CORRUPT]: ExitCode.INCONSISTENT,
  [ErrorCodes.SNAPSHOT_NOT_FOUND]: ExitCode.NOT_FOUND,
  [ErrorCodes.SNAPSHOT_EXISTS]: ExitCode.EXISTS,
  // Children hold it, or it is not active: the same class as a mounted layer.
  [ErrorCodes.SNAPSHOT_PRECONDITION]: ExitCode.BUSY,
  // A source that cannot be imported as it is: the command line named the wrong thing.
  [ErrorCodes.IMAGE_FORMAT]: ExitCode.USAGE,
  [ErrorCodes.IMAGE_PLATFORM]: ExitCode.NOT_FOUND,
  [ErrorCodes.IMAGE_NOT_FOUND]: ExitCode.NOT_FOUND,
  // The bytes are not the ones the image names: damaged or tampered with, nothing to retry.
  [ErrorCodes.IMAGE_DIGEST]: ExitCode.INCONSISTENT,
  [ErrorCodes.ABORTED]: ExitCode.TIMEOUT,
  [ErrorCodes.COMMAND_FAILED]: ExitCode.COMMAND_FAILED,
  // No command-line remedy: libdevmapper said nothing more, the kernel printed a status line
  // the parser does not know, or a closed DeviceSet was used (a bug).
  [ErrorCodes.DM_FAILED]: ExitCode.UNEXPECTED,
  [ErrorCodes.PARSE]: ExitCode.UNEXPECTED,
  [ErrorCodes.CLOSED]: ExitCode.UNEXPECTED,
};

/** The errno names with a class of their own; any other errno is UNEXPECTED. */
const BY_ERRNO: Readonly<Record<string, ExitCodeValue>> = {
  EINVAL: ExitCode.USAGE,
  ENOENT: ExitCode.NOT_FOUND,
  ENOTDIR: ExitCode.NOT_FOUND,
  ENXIO: ExitCode.NOT_FOUND,
  ENODEV: ExitCode.NOT_FOUND,
  ENODATA: ExitCode.NOT_FOUND,
  EBUSY: ExitCode.BUSY,
  ENOSPC: ExitCode.POOL_SPACE,
  EROFS: ExitCode.POOL_SPACE,
  EPERM: ExitCode.PERMISSION,
  EACCES: ExitCode.PERMISSION,
  EEXIST: ExitCode.EXISTS,
  ETIMEDOUT: ExitCode.TIMEOUT,
};

const BY_CODE: Readonly<Record<string, ExitCodeValue>> = { ...BY_ERRNO, ...BY_PROJECT_CODE };

/** The error's string code: DevmapperError's, a Node system error's ('ENOENT'), or undefined. */
export function errorCode(err: unknown): string | undefined {
  if (err instanceof DevmapperError) return err.code;
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string') return code;
  const errno = (err as { errno?: unknown } | null)?.errno;
  if (typeof errno === 'number') {
    const name = Object.entries(osConstants.errno).find(([, n]) => n === Math.abs(errno))?.[0];
    return name;
  }
  return undefined;
}

/** The exit status for a failure. */
export function exitCodeFor(err: unknown): ExitCodeValue {
  const code = errorCode(err);
  return (code !== undefined ? BY_CODE[code] : undefined) ?? ExitCode.UNEXPECTED;
}
