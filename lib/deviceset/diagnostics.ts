/** DeviceSet steps on the devmapper:deviceset diagnostics channel (see ../log/channels.ts). */
import { performance } from 'node:perf_hooks';
import { deviceSetChannel, publish, type DeviceSetRecord, type DeviceSetStep } from '../log';

export interface StepContext {
  step: DeviceSetStep;
  root: string;
  poolName: string;
  hash?: string;
  detail?: Record<string, unknown>;
}

/** Publishes a record for an instant step (a pool event, the watch starting), when subscribed. */
export function publishStep(ctx: StepContext, ok: boolean, error?: unknown): void {
  publish(deviceSetChannel, (): DeviceSetRecord => (ok ? { ...ctx, ok } : { ...ctx, ok, error }));
}

/**
 * Runs a step and publishes its duration and outcome. Whether anyone listens is asked once,
 * before: without a subscriber the step runs untimed.
 */
export async function tracedStep<T>(ctx: StepContext | (() => StepContext), fn: () => Promise<T>): Promise<T> {
  if (!deviceSetChannel.hasSubscribers) return fn();
  const started = performance.now();
  const context = () => (typeof ctx === 'function' ? ctx() : ctx);
  try {
    const value = await fn();
    deviceSetChannel.publish({ ...context(), durationMs: performance.now() - started, ok: true } satisfies DeviceSetRecord);
    return value;
  } catch (err) {
    deviceSetChannel.publish({ ...context(), durationMs: performance.now() - started, ok: false, error: err } satisfies DeviceSetRecord);
    throw err;
  }
}
