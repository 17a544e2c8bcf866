/**
 * Single operations, contenders interleaved: each round gives every contender one batch of
 * each operation, the order of the contenders rotating from batch to batch, so that noise
 * from the rest of the machine (two cores, other sandbox kernels) falls on all of them alike.
 *
 * A round for one contender, with B = batch and a fresh block of 3B thin ids X, Y, Z:
 *   create_thin X; create_snap Y of X (origins inactive); activate X; suspend_resume X;
 *   info X; pool_status (B times); create_snap_active Z of the active X; remove X;
 *   delete X, Y and Z (3B samples); set_transaction_id (B steps).
 */
import type { Batch, Contender } from './contenders';
import { summarize } from './stats';
import { type ContenderName, OPS, type OpName, type OpResult } from './types';

export class IdAllocator {
  constructor(private next: number) {}
  take(n: number): number {
    const first = this.next;
    this.next += n;
    return first;
  }
}

export interface RoundPlan {
  contenders: Contender[];
  samples: number;
  batch: number;
  ids: IdAllocator;
  /** The pool's transaction id; set_transaction_id batches move it on. */
  transactionId: { value: number };
  /** Device names are prefix + contender + '-' + id. */
  prefix: string;
  sizeBytes: number;
  /** A contender named here takes part only in every n-th round (the first included). */
  every?: Partial<Record<ContenderName, number>>;
  progress?: (line: string) => void;
}

type StepBatch = Omit<Batch, 'prefix' | 'sizeBytes'>;

function steps(first: number, b: number): { op: OpName; batch: (tid: number) => StepBatch }[] {
  const x = first;
  const y = first + b;
  const z = first + 2 * b;
  return [
    { op: 'create_thin', batch: () => ({ op: 'create_thin', count: b, firstId: x }) },
    { op: 'create_snap', batch: () => ({ op: 'create_snap', count: b, firstId: y, baseId: x }) },
    { op: 'activate', batch: () => ({ op: 'activate', count: b, firstId: x }) },
    { op: 'suspend_resume', batch: () => ({ op: 'suspend_resume', count: b, firstId: x }) },
    { op: 'info', batch: () => ({ op: 'info', count: b, firstId: x }) },
    { op: 'pool_status', batch: () => ({ op: 'pool_status', count: b, firstId: x }) },
    { op: 'create_snap_active', batch: () => ({ op: 'create_snap_active', count: b, firstId: z, baseId: x }) },
    { op: 'remove', batch: () => ({ op: 'remove', count: b, firstId: x }) },
    { op: 'delete', batch: () => ({ op: 'delete', count: 3 * b, firstId: x }) },
    { op: 'set_transaction_id', batch: (tid) => ({ op: 'set_transaction_id', count: b, firstId: x, fromTransactionId: tid }) },
  ];
}

function rotate<T>(a: readonly T[], by: number): T[] {
  const k = by % a.length;
  return [...a.slice(k), ...a.slice(0, k)];
}

export async function measureSingleOps(plan: RoundPlan): Promise<OpResult[]> {
  const samples = new Map<OpName, Map<ContenderName, number[]>>();
  for (const op of OPS) samples.set(op, new Map(plan.contenders.map((c) => [c.name, []])));
  const rounds = Math.ceil(plan.samples / plan.batch);
  for (let r = 0; r < rounds; r++) {
    const b = Math.min(plan.batch, plan.samples - r * plan.batch);
    const active = plan.contenders.filter((c) => r % (plan.every?.[c.name] ?? 1) === 0);
    const stepsOf = new Map(active.map((c) => [c.name, steps(plan.ids.take(3 * b), b)]));
    const kinds = steps(0, b).length;
    for (let k = 0; k < kinds; k++) {
      for (const c of rotate(active, r + k)) {
        const step = stepsOf.get(c.name)![k];
        const batch: Batch = { ...step.batch(plan.transactionId.value), prefix: `${plan.prefix}${c.name}-`, sizeBytes: plan.sizeBytes };
        let ns: number[];
        try {
          ns = await c.run(batch);
        } catch (err) {
          if (err instanceof Error) err.message = `${c.name} ${batch.op} (round ${r + 1}): ${err.message}`;
          throw err;
        }
        if (batch.op === 'set_transaction_id') plan.transactionId.value += batch.count;
        samples.get(step.op)?.get(c.name)?.push(...ns);
      }
    }
    plan.progress?.(`round ${r + 1}/${rounds}`);
  }
  return OPS.map((op) => ({
    op,
    contenders: Object.fromEntries(
      [...(samples.get(op) ?? new Map<ContenderName, number[]>())].map(([name, s]) => [name, { ...summarize(s), samples: s }]),
    ),
  }));
}
