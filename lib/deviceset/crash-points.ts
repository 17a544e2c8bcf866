/**
 * Named crash points for the crash-safety tests: when DEVMAPPER_CRASH_POINT names a point
 * (and DEVMAPPER_CRASH_AFTER, default 1, counts down to it), the process SIGKILLs itself
 * there, as a power cut or an OOM kill would. Without the variable this costs one lookup.
 */
export const CRASH_POINTS = [
  'after-intent',
  'after-create-thin',
  'after-register',
  'before-set-transaction-id',
  'after-set-transaction-id',
  'mid-delete',
] as const;
/** One of {@link CRASH_POINTS}. */
export type CrashPoint = (typeof CRASH_POINTS)[number];

let armed: string | undefined = process.env.DEVMAPPER_CRASH_POINT;
let remaining: number | undefined;

/**
 * Arms (or with null disarms) a crash point in this process, as DEVMAPPER_CRASH_POINT and
 * DEVMAPPER_CRASH_AFTER do at start: a test that runs several cycles in one process arms
 * each cycle's point itself.
 */
export function armCrashPoint(name: CrashPoint | null, after = 1): void {
  armed = name ?? undefined;
  remaining = after;
}

/** Called at each named point: SIGKILLs the process when this point is armed and its count is reached. */
export function crashPoint(name: CrashPoint): void {
  if (armed !== name) return;
  remaining ??= Number(process.env.DEVMAPPER_CRASH_AFTER ?? '1');
  remaining -= 1;
  if (remaining <= 0) process.kill(process.pid, 'SIGKILL');
}
