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

let remaining: number | undefined;

export function crashPoint(name: CrashPoint): void {
  if (process.env.DEVMAPPER_CRASH_POINT !== name) return;
  remaining ??= Number(process.env.DEVMAPPER_CRASH_AFTER ?? '1');
  remaining -= 1;
  if (remaining <= 0) process.kill(process.pid, 'SIGKILL');
}
