/**
 * Process memory against the number of dm calls: checkpoints after a full GC, and the
 * least-squares growth per call. A leak in the addon (a dm_task, a log line, a promise)
 * shows as a slope well above zero; V8's own warm-up shows between the first checkpoints.
 */
import * as dm from '../dist/dm';
import { slope } from './stats';
import type { MemoryCheckpoint, MemoryResult } from './types';

export interface MemoryPlan {
  pool: string;
  thinId: number;
  checkpoints: number[];
  progress?: (line: string) => void;
}

async function settle(): Promise<boolean> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) return false;
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((r) => setImmediate(r));
  }
  return true;
}

export async function measureMemory(plan: MemoryPlan): Promise<MemoryResult> {
  const checkpoints: MemoryCheckpoint[] = [];
  let calls = 0;
  let created = false;
  let gcExposed = false;
  try {
    for (const target of [...plan.checkpoints].sort((a, b) => a - b)) {
      while (calls < target) {
        switch (calls % 3) {
          case 0:
            await dm.getInfo(plan.pool);
            break;
          case 1:
            await dm.createDevice(plan.pool, plan.thinId);
            created = true;
            break;
          default:
            await dm.deleteDevice(plan.pool, plan.thinId);
            created = false;
        }
        calls++;
      }
      gcExposed = await settle();
      const m = process.memoryUsage();
      checkpoints.push({ calls, rss: m.rss, heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external, arrayBuffers: m.arrayBuffers });
      plan.progress?.(`${calls} calls: rss ${(m.rss / 2 ** 20).toFixed(1)} MiB, heap used ${(m.heapUsed / 2 ** 20).toFixed(2)} MiB`);
    }
  } finally {
    if (created) await dm.deleteDevice(plan.pool, plan.thinId);
  }
  // The early checkpoints still hold V8's and the allocator's warm-up (JIT code, malloc
  // arenas of the pool threads): the slope is taken over the second half of the run.
  const last = checkpoints[checkpoints.length - 1]?.calls ?? 0;
  const late = checkpoints.filter((c) => c.calls >= last / 2);
  const steady = late.length >= 2 ? late : checkpoints;
  return {
    workload: 'getInfo(pool), createDevice(id), deleteDevice(id), in turn',
    gcExposed,
    checkpoints,
    heapUsedBytesPerCall: slope(steady.map((c) => ({ x: c.calls, y: c.heapUsed }))),
    rssBytesPerCall: slope(steady.map((c) => ({ x: c.calls, y: c.rss }))),
  };
}
