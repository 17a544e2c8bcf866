/**
 * Many dm operations started at once against the same work one after another: wall time,
 * throughput, and the event loop's delay meanwhile (perf_hooks.monitorEventLoopDelay). The
 * C program's serial time for the same kernel calls is the floor.
 *
 * A third workload without device-mapper (node's own fs.stat on the thread pool) is the
 * control: what the event loop suffers in this kernel from thread-pool work alone. Its "raw"
 * column is the same calls made synchronously (fs.statSync).
 *
 * The "64 lifecycles at once" target at the DeviceSet level is deviceset-concurrency.ts.
 */
import { stat } from 'node:fs/promises';
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { statSync } from 'node:fs';
import * as dm from '../dist/dm';
import type { RawClient } from './raw-client';
import type { IdAllocator } from './single-ops';
import { summarize } from './stats';
import type { ConcurrencyResult, DelayStats } from './types';

export interface ConcurrencyPlan {
  pool: string;
  raw: RawClient;
  ids: IdAllocator;
  parallel: number;
  repetitions: number;
  prefix: string;
  sizeBytes: number;
  progress?: (line: string) => void;
}

interface Workload {
  name: ConcurrencyResult['workload'];
  /** One item: both calls for thin id `id`. */
  item(id: number): Promise<void>;
  /** The same kernel calls from the C program, for ids first..first+n-1; total ns. */
  raw(first: number, n: number): Promise<number>;
  /** Ids the items use (made before, removed after, not timed). */
  setup(n: number): Promise<number>;
  teardown(first: number, n: number): Promise<void>;
}

const sum = (a: number[]): number => a.reduce((s, v) => s + v, 0);

function delayStats(h: IntervalHistogram): DelayStats {
  const ms = (ns: number) => ns / 1e6;
  return { p50: ms(h.percentile(50)), p99: ms(h.percentile(99)), max: ms(h.max), mean: ms(h.mean) };
}

/**
 * Runs fn with a fresh event-loop delay monitor. (One monitor disabled and enabled again
 * records the whole time it was off as one delay, so each run gets its own.)
 */
export async function monitored(into: DelayStats[], fn: () => Promise<void>): Promise<void> {
  const h = monitorEventLoopDelay({ resolution: 1 });
  h.enable();
  try {
    await fn();
  } finally {
    h.disable();
    into.push(delayStats(h));
  }
}

function median(a: number[]): number {
  const s = [...a].sort((x, y) => x - y);
  return s.length ? (s[Math.floor((s.length - 1) / 2)] as number) : NaN;
}

/** Per-repetition figures combined: the median of the p50s, p99s and means, the largest max. */
export function combine(runs: DelayStats[]): DelayStats {
  return {
    p50: median(runs.map((r) => r.p50)),
    p99: median(runs.map((r) => r.p99)),
    max: Math.max(...runs.map((r) => r.max)),
    mean: median(runs.map((r) => r.mean)),
  };
}

function workloads(plan: ConcurrencyPlan): Workload[] {
  const { pool, raw, prefix, sizeBytes } = plan;
  const name = (id: number) => `${prefix}${id}`;
  let origin = -1;
  return [
    {
      name: 'activate+remove',
      async item(id) {
        await dm.activateDevice(pool, name(id), id, sizeBytes);
        await dm.removeDevice(name(id));
      },
      async raw(first, n) {
        const a = await raw.batch('activate', n, { id: first, prefix, size: sizeBytes / 512 });
        const r = await raw.batch('remove', n, { id: first, prefix });
        return sum(a) + sum(r);
      },
      async setup(n) {
        const first = plan.ids.take(n);
        await raw.batch('create_thin', n, { id: first });
        return first;
      },
      async teardown(first, n) {
        await raw.batch('delete', n, { id: first });
      },
    },
    {
      name: 'create_snap+delete',
      async item(id) {
        await dm.createSnapDevice(pool, id, null, origin);
        await dm.deleteDevice(pool, id);
      },
      async raw(first, n) {
        const c = await raw.batch('create_snap', n, { id: first, base: origin, base_step: 0 });
        const d = await raw.batch('delete', n, { id: first });
        return sum(c) + sum(d);
      },
      async setup(n) {
        origin = plan.ids.take(1);
        await raw.batch('create_thin', 1, { id: origin });
        return plan.ids.take(n);
      },
      async teardown() {
        await raw.batch('delete', 1, { id: origin });
      },
    },
    {
      // No device-mapper at all: the same number of node's own thread-pool calls (ten
      // fs.stat each), against the same calls made synchronously by a C-free baseline.
      name: 'fs.stat x10 (control, no dm)',
      async item() {
        for (let i = 0; i < 10; i++) await stat('/proc/self');
      },
      async raw(_first, n) {
        const t0 = process.hrtime.bigint();
        for (let i = 0; i < n * 10; i++) statSync('/proc/self');
        return Number(process.hrtime.bigint() - t0);
      },
      async setup() {
        return 0;
      },
      async teardown() {},
    },
  ];
}

export async function measureConcurrency(plan: ConcurrencyPlan): Promise<ConcurrencyResult[]> {
  const results: ConcurrencyResult[] = [];
  const n = plan.parallel;
  for (const w of workloads(plan)) {
    const first = await w.setup(n);
    const ids = Array.from({ length: n }, (_, i) => first + i);
    const eld = { serial: [] as DelayStats[], concurrent: [] as DelayStats[], raw: [] as DelayStats[] };
    const serialMs: number[] = [];
    const concurrentMs: number[] = [];
    const rawMs: number[] = [];
    const itemNs: number[] = [];
    const runs: Record<'serial' | 'concurrent' | 'raw', () => Promise<void>> = {
      serial: () =>
        monitored(eld.serial, async () => {
          const t0 = process.hrtime.bigint();
          for (const id of ids) await w.item(id);
          serialMs.push(Number(process.hrtime.bigint() - t0) / 1e6);
        }),
      concurrent: () =>
        monitored(eld.concurrent, async () => {
          const t0 = process.hrtime.bigint();
          await Promise.all(
            ids.map(async (id) => {
              const s = process.hrtime.bigint();
              await w.item(id);
              itemNs.push(Number(process.hrtime.bigint() - s));
            }),
          );
          concurrentMs.push(Number(process.hrtime.bigint() - t0) / 1e6);
        }),
      raw: () =>
        monitored(eld.raw, async () => {
          rawMs.push((await w.raw(first, n)) / 1e6);
        }),
    };
    const order = ['serial', 'concurrent', 'raw'] as const;
    try {
      for (let r = 0; r < plan.repetitions; r++) {
        for (let k = 0; k < order.length; k++) await runs[order[(r + k) % order.length]]();
        plan.progress?.(`${w.name}: repetition ${r + 1}/${plan.repetitions}`);
      }
    } finally {
      await w.teardown(first, n);
    }
    results.push({
      workload: w.name,
      parallel: n,
      serialMs,
      concurrentMs,
      rawMs,
      eldSerial: combine(eld.serial),
      eldConcurrent: combine(eld.concurrent),
      eldRaw: combine(eld.raw),
      eldRuns: eld,
      concurrentItem: summarize(itemNs),
    });
  }
  return results;
}
