/**
 * The single operations with many thin devices already in the pool: one pool per size,
 * each filled with idle thin devices (create_thin from the C program; none activated),
 * then the operations measured round by round with the pools interleaved (the order
 * rotating), so that a slow spell of the machine does not land on one size. Raw C and the
 * addon; dmsetup's cost is its process start, which the pool's size does not change.
 *
 * The DeviceSet at scale (open time, memory per registered device) is deviceset-scale.ts.
 */
import type { Contender } from './contenders';
import type { RawClient } from './raw-client';
import { measureSingleOps, type IdAllocator } from './single-ops';
import { summarize } from './stats';
import type { ContenderName, OpResult, OpStats, ScalePoint } from './types';

/** A pool of its own for one size, with contenders bound to it. */
export interface ScalePool {
  raw: RawClient;
  contenders: Contender[];
  prefix: string;
  destroy(): Promise<void>;
}

export interface ScalePlan {
  sizes: number[];
  samples: number;
  batch: number;
  makePool(size: number): Promise<ScalePool>;
  /** Filler ids come from here, the measured operations' from `ids`. */
  fillerIds: IdAllocator;
  ids: IdAllocator;
  sizeBytes: number;
  progress?: (line: string) => void;
}

const FILL_CHUNK = 1000;

function merge(into: Map<string, number[]>, ops: OpResult[]): void {
  for (const o of ops) {
    for (const [name, s] of Object.entries(o.contenders) as [ContenderName, OpStats][]) {
      const key = `${o.op}\t${name}`;
      into.set(key, [...(into.get(key) ?? []), ...s.samples]);
    }
  }
}

export async function measureScale(plan: ScalePlan): Promise<ScalePoint[]> {
  const sizes = [...plan.sizes].sort((a, b) => a - b);
  const pools: { size: number; pool: ScalePool; fill: number[]; transactionId: { value: number }; samples: Map<string, number[]>; template: OpResult[] }[] = [];
  try {
    for (const size of sizes) {
      const pool = await plan.makePool(size);
      const entry = { size, pool, fill: [] as number[], transactionId: { value: 0 }, samples: new Map<string, number[]>(), template: [] as OpResult[] };
      pools.push(entry);
      for (let filled = 0; filled < size; ) {
        const n = Math.min(FILL_CHUNK, size - filled);
        entry.fill.push(...(await pool.raw.batch('create_thin', n, { id: plan.fillerIds.take(n) })));
        filled += n;
      }
      plan.progress?.(`pool with ${size} idle thin devices ready`);
    }
    const rounds = Math.ceil(plan.samples / plan.batch);
    for (let r = 0; r < rounds; r++) {
      const b = Math.min(plan.batch, plan.samples - r * plan.batch);
      for (let k = 0; k < pools.length; k++) {
        const p = pools[(r + k) % pools.length]!;
        const ops = await measureSingleOps({
          contenders: p.pool.contenders,
          samples: b,
          batch: b,
          ids: plan.ids,
          transactionId: p.transactionId,
          prefix: p.pool.prefix,
          sizeBytes: plan.sizeBytes,
        });
        merge(p.samples, ops);
        p.template = ops;
      }
      plan.progress?.(`round ${r + 1}/${rounds}`);
    }
    return pools.map((p) => ({
      devices: p.size,
      fill: summarize(p.fill),
      ops: p.template.map((o) => ({
        op: o.op,
        contenders: Object.fromEntries(
          Object.keys(o.contenders).map((name) => {
            const s = p.samples.get(`${o.op}\t${name}`) ?? [];
            return [name, { ...summarize(s), samples: s }];
          }),
        ),
      })),
    }));
  } finally {
    for (const p of pools) await p.pool.destroy();
  }
}
