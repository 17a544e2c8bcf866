/**
 * Which pool events a change of pool status makes: the pool's condition (failed, mode,
 * needs_check, below its low-water mark) before and after, compared. Pure functions.
 */
import type { ThinPoolMode, ThinPoolStatus } from '../dm';

/** What happened to the pool: each is reported once when the pool enters that state. */
export type PoolEventType = 'low-water' | 'out-of-data-space' | 'read-only' | 'failed' | 'needs-check' | 'writable';

/** A change of the pool's condition, reported when a device-mapper event on the pool showed it. */
export interface PoolEvent {
  /** What happened. */
  type: PoolEventType;
  /** The pool status read after the event (the whole thin-pool status line, parsed). */
  status: ThinPoolStatus;
  /** When the status was read. */
  at: Date;
}

export interface PoolCondition {
  /** The kernel prints Fail (failure mode) or Error (metadata unreadable). */
  failed: boolean;
  /** null while failed: the status line then has no mode. */
  mode: ThinPoolMode | null;
  needsCheck: boolean;
  /** Free data blocks at or below the table's low-water mark, the kernel's own test. */
  belowLowWater: boolean;
}

/** What a pool is taken to be before its first status is read: a new watch reports any difference. */
export const HEALTHY_POOL: Readonly<PoolCondition> = Object.freeze({ failed: false, mode: 'rw', needsCheck: false, belowLowWater: false });

/**
 * The condition a status shows. A failed pool's status says nothing of needs_check or free
 * space: those are kept from `previous`.
 */
export function poolCondition(status: ThinPoolStatus, lowWaterMarkBlocks: number, previous: PoolCondition = HEALTHY_POOL): PoolCondition {
  if (status.state !== 'ok') return { failed: true, mode: null, needsCheck: previous.needsCheck, belowLowWater: previous.belowLowWater };
  return {
    failed: false,
    mode: status.mode,
    needsCheck: status.needsCheck,
    belowLowWater: status.dataTotalBlocks - status.dataUsedBlocks <= lowWaterMarkBlocks,
  };
}

/**
 * The events from one condition to the next, in this order: failed, low-water,
 * out-of-data-space, read-only, needs-check, writable. Only changes count: a pool that
 * stays out of space reports it once; leaving a state re-arms it (growing the pool above
 * its low-water mark, then filling it again, reports low-water again).
 */
export function poolTransitions(prev: PoolCondition, next: PoolCondition): PoolEventType[] {
  const out: PoolEventType[] = [];
  if (next.failed && !prev.failed) out.push('failed');
  if (next.belowLowWater && !prev.belowLowWater) out.push('low-water');
  if (next.mode !== prev.mode) {
    if (next.mode === 'out_of_data_space') out.push('out-of-data-space');
    if (next.mode === 'ro') out.push('read-only');
  }
  if (next.needsCheck && !prev.needsCheck) out.push('needs-check');
  if (next.mode === 'rw' && next.mode !== prev.mode) out.push('writable');
  return out;
}
