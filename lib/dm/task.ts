/**
 * Runs one native dm task and gives its errors the caller's stack: an error created when
 * the libuv work completes has no useful stack of its own.
 */
import { performance } from 'node:perf_hooks';
import { DevmapperError, invalidArgument } from '../errors';
import { native, type NativeTaskResult, type NativeTaskSpec } from '../native';
import { dmChannel } from '../log/channels';
import { reportTask } from './diagnostics';

/** Process-wide settings of the dm layer (see {@link setTaskDefaults}). */
export interface TaskDefaults {
  /**
   * Upper bound on each wait for udev after create, resume, remove and rename (ms). Default
   * 30000; 0 gives up at the first poll. Past it the cookie is completed and freed by the
   * addon, the operation stands, and a `DEVMAPPER_UDEV_TIMEOUT` warning is emitted.
   */
  udevTimeoutMs: number;
}

const defaults: TaskDefaults = { udevTimeoutMs: 30_000 };

/**
 * Changes the process-wide defaults of the dm layer. DeviceSet.open sets `udevTimeoutMs`
 * from its `udevWaitTimeoutMs` option, so the last DeviceSet opened decides for the process.
 *
 * @throws {@link DevmapperError} ERR_INVALID_ARGUMENT (argument `udevTimeoutMs`) for a
 *   udevTimeoutMs that is not a non-negative integer
 *
 * @example
 * ```ts
 * dm.setTaskDefaults({ udevTimeoutMs: 10_000 });   // wait at most 10 s for udev per operation
 * ```
 */
export function setTaskDefaults(next: Partial<TaskDefaults>): void {
  if (next.udevTimeoutMs !== undefined) {
    if (!Number.isInteger(next.udevTimeoutMs) || next.udevTimeoutMs < 0)
      throw invalidArgument('udevTimeoutMs', 'a non-negative integer (ms)', next.udevTimeoutMs);
    defaults.udevTimeoutMs = next.udevTimeoutMs;
  }
}

/** A copy of the current process-wide defaults. */
export function getTaskDefaults(): Readonly<TaskDefaults> {
  return { ...defaults };
}

export function attachCallerStack(err: unknown, callerStack: string | undefined): unknown {
  if (err instanceof DevmapperError && callerStack) {
    const frames = callerStack.split('\n').slice(1).join('\n');
    err.stack = `${err.name} [${err.code}]: ${err.message}\n${frames}`;
  }
  return err;
}

export const libdmLevel = (): number => native().getLogLevel();

/** The spec with the process-wide defaults filled in, as every task path sends it. */
export function withTaskDefaults(spec: NativeTaskSpec): NativeTaskSpec {
  return { udevTimeoutMs: defaults.udevTimeoutMs, ...spec };
}

/**
 * A clock for the operation records, read only while devmapper:dm has subscribers: where
 * the clock is a system call (user-mode Linux has no vDSO) two reads cost as much as a query.
 */
const now = (): number => (dmChannel.hasSubscribers ? performance.now() : 0);
/** ms since `started` (0 when the clock was not read: nobody was listening then). */
const since = (started: number): number => (started === 0 ? 0 : performance.now() - started);

export async function runTask(spec: NativeTaskSpec): Promise<NativeTaskResult> {
  const caller: { stack?: string } = {};
  Error.captureStackTrace(caller, runTask);
  const started = now();
  try {
    const result = await native().runTask(withTaskDefaults(spec));
    reportTask(spec, since(started), { ok: true, result }, libdmLevel);
    return result;
  } catch (err) {
    reportTask(spec, since(started), { ok: false, error: err }, libdmLevel);
    throw attachCallerStack(err, caller.stack);
  }
}

/** The same on the JS thread, for queries cheaper than a thread hop. */
export function runTaskSync(spec: NativeTaskSpec): NativeTaskResult {
  const started = now();
  try {
    const result = native().runTaskSync(withTaskDefaults(spec));
    reportTask(spec, since(started), { ok: true, result }, libdmLevel);
    return result;
  } catch (err) {
    reportTask(spec, since(started), { ok: false, error: err }, libdmLevel);
    throw err;
  }
}

/**
 * A query (no udev cookie, no I/O: info, table, status without a flush) on the JS thread
 * when the libdm lock is free and this turn's few sync slots are not taken: an ioctl there costs far less than a thread hop (about a
 * tenth in the sandbox kernel). When another thread holds the lock (its ioctl may be a
 * suspend waiting for I/O), it hops instead, so the event loop never waits behind it.
 */
/**
 * At most this many queries run on the JS thread per turn of the event loop; the rest hop.
 * Sixty-four operations started at once would otherwise ask their first question back to
 * back in one turn (in the sandbox kernel half a millisecond each) and stall the loop.
 */
const SYNC_QUERIES_PER_TURN = 4;
let syncQueriesThisTurn = 0;

function takeSyncSlot(): boolean {
  if (syncQueriesThisTurn >= SYNC_QUERIES_PER_TURN) return false;
  if (syncQueriesThisTurn++ === 0)
    setImmediate(() => {
      syncQueriesThisTurn = 0;
    });
  return true;
}

export async function runQuery(spec: NativeTaskSpec): Promise<NativeTaskResult> {
  if (!takeSyncSlot()) return runTask(spec);
  const started = now();
  let result: NativeTaskResult | null;
  try {
    result = native().tryRunTaskSync(spec);
  } catch (err) {
    reportTask(spec, since(started), { ok: false, error: err }, libdmLevel);
    const caller: { stack?: string } = {};
    Error.captureStackTrace(caller, runQuery);
    throw attachCallerStack(err, caller.stack);
  }
  if (result === null) return runTask(spec);
  reportTask(spec, since(started), { ok: true, result }, libdmLevel);
  return result;
}
