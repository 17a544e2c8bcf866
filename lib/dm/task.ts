/**
 * Runs one native dm task and gives its errors the caller's stack: an error created when
 * the libuv work completes has no useful stack of its own.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { performance } from 'node:perf_hooks';
import { DevmapperError, invalidArgument } from '../errors';
import { native, type NativeTaskResult, type NativeTaskSpec } from '../native';
import { dmChannel } from '../log';
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
 * Changes the process-wide defaults of the dm layer, for every task that runs outside a
 * {@link withTaskSettings} scope. A DeviceSet does not change them: it runs its own tasks
 * with its `udevWaitTimeoutMs` option.
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

/** libdm's log levels: 2 fatal, 3 error, 4 warning, 5 notice, 6 info, 7 debug. */
const LOG_LEVEL_MIN = 2;
const LOG_LEVEL_MAX = 7;

/**
 * Sets the process-wide libdm log level: the highest level of libdevmapper's lines captured
 * (beyond errors, which are always kept in a failed call's `err.logs`) and forwarded to the
 * `devmapper:libdm` channel, for every task that runs outside a {@link withTaskSettings}
 * scope. The addon starts at 5 (notice). A DeviceSet does not change it: its
 * `dm.libdm_log_level` applies to its own tasks only.
 *
 * @param level 2 (fatal) to 7 (debug); debug lines cost formatting on every call
 * @throws {@link DevmapperError} ERR_INVALID_ARGUMENT for another level
 *
 * @example
 * ```ts
 * dm.setLogLevel(7);   // every libdevmapper debug line of direct dm calls on devmapper:libdm
 * ```
 */
export function setLogLevel(level: number): void {
  native().setLogLevel(checkLogLevel(level, 'level'));
}

/** The process-wide libdm log level (see {@link setLogLevel}). */
export function getLogLevel(): number {
  return native().getLogLevel();
}

function checkLogLevel(level: unknown, argument: string): number {
  if (typeof level !== 'number' || !Number.isInteger(level) || level < LOG_LEVEL_MIN || level > LOG_LEVEL_MAX)
    throw invalidArgument(argument, `a libdm log level from ${LOG_LEVEL_MIN} (fatal) to ${LOG_LEVEL_MAX} (debug)`, level);
  return level;
}

/**
 * Settings for the dm tasks of one caller, in place of the process-wide ones
 * ({@link setTaskDefaults}, {@link setLogLevel}); an unset field keeps the process's.
 */
export interface TaskSettings {
  /** Upper bound on each wait for udev, in ms (as {@link TaskDefaults.udevTimeoutMs}). */
  udevTimeoutMs?: number;
  /** libdm log level of these tasks, 2 (fatal) to 7 (debug) (as {@link setLogLevel}). */
  logLevel?: number;
}

const scope = new AsyncLocalStorage<TaskSettings>();

/**
 * Runs `fn` with these settings for every dm task it starts, at once or later in the same
 * asynchronous flow (awaits, timers, callbacks it sets up), and for no other task: two
 * callers with different settings in one process do not change each other's, nor the
 * process's. Each DeviceSet runs its operations this way with its `udevWaitTimeoutMs` and
 * `dm.libdm_log_level`. Scopes nest; the innermost wins.
 *
 * @returns what `fn` returns
 * @throws {@link DevmapperError} ERR_INVALID_ARGUMENT for a setting out of range
 *
 * @example
 * ```ts
 * await dm.withTaskSettings({ udevTimeoutMs: 5_000, logLevel: 7 }, () => dm.activateDevice(pool, 'thin1', 1, size));
 * ```
 */
export function withTaskSettings<T>(settings: TaskSettings, fn: () => T): T {
  const checked: TaskSettings = { ...scope.getStore() };
  if (settings.udevTimeoutMs !== undefined) {
    const ms = settings.udevTimeoutMs;
    if (!Number.isInteger(ms) || ms < 0) throw invalidArgument('udevTimeoutMs', 'a non-negative integer of ms', ms);
    checked.udevTimeoutMs = ms;
  }
  if (settings.logLevel !== undefined) checked.logLevel = checkLogLevel(settings.logLevel, 'logLevel');
  return scope.run(checked, fn);
}

/** The libdm log level that applies here: the scope's, else the process's. */
export const libdmLevel = (): number => scope.getStore()?.logLevel ?? native().getLogLevel();

/** The spec with the scope's settings, else the process-wide defaults, filled in, as every task path sends it. */
export function withTaskDefaults(spec: NativeTaskSpec): NativeTaskSpec {
  const own = scope.getStore();
  if (own === undefined) return { udevTimeoutMs: defaults.udevTimeoutMs, ...spec };
  const filled: NativeTaskSpec = { udevTimeoutMs: own.udevTimeoutMs ?? defaults.udevTimeoutMs, ...spec };
  if (own.logLevel !== undefined && spec.logLevel === undefined) filled.logLevel = own.logLevel;
  return filled;
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
    result = native().tryRunTaskSync(withTaskDefaults(spec));
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
