import type { NativeTaskResult } from '../native';

/**
 * udev did not answer within the bound: the kernel operation itself succeeded and
 * libdevmapper's own node check has run, so the operation stands; say so once per call.
 */
export function warnIfUdevTimedOut(result: NativeTaskResult, operation: string, device: string): void {
  if (!result.udevTimedOut) return;
  process.emitWarning(`${operation} on ${device}: udev did not confirm within the timeout; carried on without it`, {
    code: 'DEVMAPPER_UDEV_TIMEOUT',
  });
}
