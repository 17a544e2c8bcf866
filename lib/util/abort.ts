import { DevmapperError, ErrorCodes } from '../errors';

/** The error every aborted operation rejects with. */
export function abortError(operation: string, device?: string, signal?: AbortSignal): DevmapperError {
  return new DevmapperError(`${operation}${device ? ` on ${device}` : ''} aborted`, {
    code: ErrorCodes.ABORTED,
    operation,
    device,
    cause: signal?.reason,
  });
}

/** Waits ms, or rejects with ABORT_ERR as soon as the signal aborts. */
export function sleep(ms: number, signal?: AbortSignal, operation = 'wait', device?: string): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortError(operation, device, signal));
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortError(operation, device, signal));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
