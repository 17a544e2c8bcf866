/**
 * The single operations with many thin devices already in the pool: the pool is filled with
 * idle thin devices (create_thin from the C program) up to each size in turn, and the
 * operations are measured again at each size (raw C and the addon; dmsetup's cost is its
 * process start, which the pool's size does not change).
 *
 * Extension point: DeviceSet.open time and memory per registered device at each size
 * (issue 5) belong here once the DeviceSet lands.
 */
import type { Contender } from './contenders';
import type { RawClient } from './raw-client';
import { measureSingleOps, type IdAllocator } from './single-ops';
import { summarize } from './stats';
import type { ScalePoint } from './types';

export interface ScalePlan {
  sizes: number[];
  samples: number;
  batch: number;
  contenders: Contender[];
  raw: RawClient;
  /** Filler ids come from here, the measured operations' from `ids`. */
  fillerIds: IdAllocator;
  ids: IdAllocator;
  transactionId: { value: number };
  prefix: string;
  sizeBytes: number;
  progress?: (line: string) => void;
}

const FILL_CHUNK = 1000;

export async function measureScale(plan: ScalePlan): Promise<ScalePoint[]> {
  const points: ScalePoint[] = [];
  let filled = 0;
  let fill: number[] = [];
  for (const size of [...plan.sizes].sort((a, b) => a - b)) {
    while (filled < size) {
      const n = Math.min(FILL_CHUNK, size - filled);
      fill = fill.concat(await plan.raw.batch('create_thin', n, { id: plan.fillerIds.take(n) }));
      filled += n;
    }
    plan.progress?.(`${size} thin devices in the pool; measuring`);
    const ops = await measureSingleOps({
      contenders: plan.contenders,
      samples: plan.samples,
      batch: plan.batch,
      ids: plan.ids,
      transactionId: plan.transactionId,
      prefix: plan.prefix,
      sizeBytes: plan.sizeBytes,
    });
    points.push({ devices: size, fill: summarize(fill), ops });
    fill = [];
  }
  return points;
}
