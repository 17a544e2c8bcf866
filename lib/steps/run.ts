/**
 * Runs a sequence of steps as one native job (src-native/step_plan.cc): one thread hop for
 * the whole sequence. Every dm task among them is reported on the diagnostics channels as
 * if it had run alone, and a udev timeout warns as it would.
 */
import { reportTask } from '../dm/diagnostics';
import { attachCallerStack, libdmLevel, withTaskDefaults } from '../dm/task';
import { warnIfUdevTimedOut } from '../dm/udev-timeout';
import type { DevmapperError } from '../errors';
import { native, type NativeStep, type NativeStepResult } from '../native';

/** What ran: per-step results, and the first failure (the steps after it did not run, but `always` ones). */
export interface StepsOutcome {
  results: NativeStepResult[];
  /** Index of the first failed step, -1 when all succeeded. */
  failedStep: number;
  error: DevmapperError | null;
}

export async function runSteps(steps: NativeStep[]): Promise<StepsOutcome> {
  const caller: { stack?: string } = {};
  Error.captureStackTrace(caller, runSteps);
  const sent = steps.map((s) => (s.kind === 'task' && s.task ? { ...s, task: withTaskDefaults(s.task) } : s));
  const out = await native().runSteps(sent);
  out.results.forEach((r, i) => {
    const s = sent[i];
    if (s.kind !== 'task' || !s.task || !r.ran) return;
    if (i === out.failedStep) {
      reportTask(s.task, r.ns / 1e6, { ok: false, error: out.error }, libdmLevel);
    } else if (r.task) {
      reportTask(s.task, r.ns / 1e6, { ok: true, result: r.task }, libdmLevel);
      warnIfUdevTimedOut(r.task, s.task.operation ?? s.task.type, s.task.name ?? '');
    }
  });
  if (out.error) attachCallerStack(out.error, caller.stack);
  return out;
}

/** {@link runSteps}, throwing the first failure. */
export async function runStepsOrThrow(steps: NativeStep[]): Promise<NativeStepResult[]> {
  const out = await runSteps(steps);
  if (out.error) throw out.error;
  return out.results;
}
