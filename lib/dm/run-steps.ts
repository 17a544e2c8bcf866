/**
 * Runs a sequence of steps as one native job (src-native/step_plan.cc): one thread hop for
 * the whole sequence. Every dm task among them is reported on the diagnostics channels as
 * if it had run alone, and a udev timeout warns as it would.
 */
import type { DevmapperError } from '../errors';
import { dmChannel } from '../log';
import { native, type NativeTaskResult } from '../native';
import { reportTask } from './diagnostics';
import type { Phase, Step } from './steps';
import { attachCallerStack, libdmLevel, withTaskDefaults } from './task';
import { warnIfUdevTimedOut } from './udev-timeout';

/**
 * What one step did.
 *
 * @internal
 */
export interface StepResult {
  phase: Phase;
  /** False for a step skipped after a failure. */
  ran: boolean;
  /** It ran and found nothing to do (a discard of a thin device with nothing mapped). */
  skipped?: boolean;
  /** A tolerated errno, 0 when the call succeeded. */
  errno: number;
  /** Its time, in ns (0 unless someone listened to devmapper:dm when the job started). */
  ns: number;
  /** A dm task's result. */
  task?: NativeTaskResult;
}

/**
 * What ran: per-step results, and the first failure (the steps after it did not run, but `always` ones).
 *
 * @internal
 */
export interface StepsOutcome {
  results: StepResult[];
  /** The phase of the first failed step, null when all succeeded. */
  failedPhase: Phase | null;
  error: DevmapperError | null;
}

/** @internal */
export async function runSteps(steps: Step[]): Promise<StepsOutcome> {
  const caller: { stack?: string } = {};
  Error.captureStackTrace(caller, runSteps);
  const sent = steps.map((s) => {
    if (s.kind === 'task' && s.task) return { ...s, task: withTaskDefaults(s.task) };
    if (s.unlessUnmapped) return { ...s, unlessUnmapped: withTaskDefaults(s.unlessUnmapped) };
    return s;
  });
  // Each step timed only for the operation records (devmapper:dm), when someone listens.
  const out = await native().runSteps(sent, dmChannel.hasSubscribers);
  out.results.forEach((r, i) => {
    const s = sent[i];
    // A step's dm task: a task step's own, or the status a discard asked first.
    const task = s.kind === 'task' ? s.task : s.unlessUnmapped;
    if (!task || !r.ran) return;
    if (i === out.failedStep && (s.kind === 'task' || !r.task)) {
      reportTask(task, r.ns / 1e6, { ok: false, error: out.error }, libdmLevel);
    } else if (r.task) {
      reportTask(task, r.ns / 1e6, { ok: true, result: r.task }, libdmLevel);
      warnIfUdevTimedOut(r.task, task.operation ?? task.type, task.name ?? '');
    }
  });
  if (out.error) attachCallerStack(out.error, caller.stack);
  return {
    results: out.results.map((r, i) => ({ ...r, phase: steps[i].phase })),
    failedPhase: out.failedStep >= 0 ? steps[out.failedStep].phase : null,
    error: out.error,
  };
}

/**
 * {@link runSteps}, throwing the first failure.
 *
 * @internal
 */
export async function runStepsOrThrow(steps: Step[]): Promise<StepResult[]> {
  const out = await runSteps(steps);
  if (out.error) throw out.error;
  return out.results;
}

/**
 * Whether every step of `phase` ran and succeeded without a tolerated errno (it made what it makes).
 *
 * @internal
 */
export function madeIn(out: StepsOutcome, phase: Phase): boolean {
  const mine = out.results.filter((r) => r.phase === phase);
  return mine.length > 0 && mine.every((r) => r.ran && r.errno === 0);
}
