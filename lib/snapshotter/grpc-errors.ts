/** The gRPC status of a failure, as containerd's clients read it back into their error kinds. */
import { status } from '@grpc/grpc-js';
import { DevmapperError, ErrorCodes } from '../errors';

const BY_CODE: Readonly<Record<string, status>> = {
  [ErrorCodes.SNAPSHOT_NOT_FOUND]: status.NOT_FOUND,
  [ErrorCodes.SNAPSHOT_EXISTS]: status.ALREADY_EXISTS,
  [ErrorCodes.SNAPSHOT_PRECONDITION]: status.FAILED_PRECONDITION,
  [ErrorCodes.INVALID_ARGUMENT]: status.INVALID_ARGUMENT,
  // A device still mounted by someone: the snapshot's state, not a server fault.
  EBUSY: status.FAILED_PRECONDITION,
  [ErrorCodes.POOL_LOW_SPACE]: status.RESOURCE_EXHAUSTED,
  [ErrorCodes.POOL_NOT_WRITABLE]: status.RESOURCE_EXHAUSTED,
  [ErrorCodes.NO_FREE_DEVICE_ID]: status.RESOURCE_EXHAUSTED,
  ENOSPC: status.RESOURCE_EXHAUSTED,
  [ErrorCodes.CLOSED]: status.UNAVAILABLE,
  [ErrorCodes.ABORTED]: status.CANCELLED,
};

export function grpcStatusOf(err: unknown): status {
  return (err instanceof DevmapperError && BY_CODE[err.code]) || status.UNKNOWN;
}

/** The error as grpc-js sends it: the status, and the message with our code in it. */
export function toServiceError(err: unknown): { code: status; details: string } {
  const message = err instanceof Error ? err.message : String(err);
  const code = err instanceof DevmapperError ? ` (${err.code})` : '';
  return { code: grpcStatusOf(err), details: `${message}${code}` };
}
