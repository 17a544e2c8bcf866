/**
 * Named crash points, the crash-safety tests' seam: a test arms a point with
 * {@link armCrashPoint} (test/fixtures/deviceset-child.js does, in a child process), and the
 * DeviceSet's native job then SIGKILLs the process at that point, as a power cut or an OOM
 * kill would. Not exported from the package: tests load this module from dist/ themselves.
 * Unarmed, a point costs one comparison while a job is built.
 */
import { crashStep, type Step } from '../dm';

/**
 * The named points, in the order a create or delete passes them (a delete has no
 * after-register nor after-create-thin, a create no mid-delete).
 */
export const CRASH_POINTS = [
  'after-intent',
  'after-register',
  'after-create-thin',
  'before-set-transaction-id',
  'after-set-transaction-id',
  'mid-delete',
] as const;
/** One of {@link CRASH_POINTS}. */
export type CrashPoint = (typeof CRASH_POINTS)[number];

let armed: CrashPoint | null = null;
let remaining = 0;

/** Arms (or with null disarms) a crash point: the process dies the `after`-th time a job passes it. */
export function armCrashPoint(name: CrashPoint | null, after = 1): void {
  if (name !== null && !CRASH_POINTS.includes(name)) throw new TypeError(`unknown crash point ${String(name)}`);
  armed = name;
  remaining = after;
}

/**
 * The point as steps of a native job: a step that SIGKILLs the process there when the point
 * is due, else none. The count is taken when the job is built.
 */
export function crashSteps(name: CrashPoint): Step[] {
  if (armed !== name || --remaining > 0) return [];
  return [crashStep()];
}
