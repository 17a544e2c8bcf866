/**
 * Named crash points for the crash-safety tests: when DEVMAPPER_CRASH_POINT names a point
 * (and DEVMAPPER_CRASH_AFTER, default 1, counts down to it), the process SIGKILLs itself
 * there, as a power cut or an OOM kill would. Without the variable this costs one lookup.
 */
import type { NativeStep } from '../native';
import { crashStep } from '../steps/builders';

/** The named points, in the order a create or delete passes them. */
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

/** Counts this point down; true when the process is to die here. */
function due(name: CrashPoint): boolean {
  if (armed !== name) return false;
  remaining ??= Number(process.env.DEVMAPPER_CRASH_AFTER ?? '1');
  remaining -= 1;
  return remaining <= 0;
}

/** Called at each named point: SIGKILLs the process when this point is armed and its count is reached. */
export function crashPoint(name: CrashPoint): void {
  if (due(name)) process.kill(process.pid, 'SIGKILL');
}

/**
 * The same point inside a native job of several steps: a step that SIGKILLs the process
 * there when the point is due, else nothing. The count is taken when the job is built.
 */
export function crashSteps(name: CrashPoint): NativeStep[] {
  return due(name) ? [crashStep()] : [];
}
