/**
 * The udev work a batch leaves behind, counted against the contender that left it, and a
 * quiet udev between batches. Every section that runs our DeviceSet with udev uses this.
 *
 * With udevd running, the DeviceSet's mounts, unmounts and deletes return before udev's rules
 * ran for them (the `udevReap` option, on by default): one native thread per process collects
 * their udev cookies later, and udev's own work for them (in the sandbox kernel a
 * `dmsetup udevflags` and a `dmsetup udevcomplete` process per cookie) goes on after the call
 * returned. So after each timed batch of ours the settle of that reaper is timed
 * (`dm.udevSettle`; for a Snapshotter served by another process, that process's own settle) and
 * shared out equally over the batch's lifecycles: the whole-lifecycle figures carry it, the
 * steps stay as the caller saw them. The peers, raw C and dmsetup wait for udev inside their
 * calls: nothing to add for them.
 *
 * Then, for every contender, an untimed `udevadm settle -t 60`, so that no batch starts while
 * udev still works on events an earlier batch (of whoever) queued.
 */
import { execFile } from 'node:child_process';
import * as dm from '../dist/dm';
import { summarize } from './stats';
import type { UdevBacklogFields } from './types';

/** Waits until a contender's udev work is done; resolves with the time it took, ns (0 when nothing was pending). */
export type Settle = () => Promise<number>;

/** The longest a settle may take before the run fails (each cookie is bounded by udevWaitTimeoutMs, 30 s by default). */
export const SETTLE_TIMEOUT_MS = 60_000;

/** This process's reaper: the time until no reaped cookie is pending, ns; 0 without a pending one (always, without udev). */
export const settleReaper: Settle = async () => {
  if (dm.udevReaperStats().pending === 0) return 0;
  const t0 = process.hrtime.bigint();
  const s = await dm.udevSettle(SETTLE_TIMEOUT_MS);
  const ns = Number(process.hrtime.bigint() - t0);
  if (s.pending > 0) throw new Error(`udev reaper: ${s.pending} cookie(s) still pending after ${SETTLE_TIMEOUT_MS / 1000} s`);
  return ns;
};

/** `udevadm settle -t 60`: until udev's event queue is empty; ms from spawn to exit. */
export function udevadmSettle(): Promise<number> {
  const t0 = process.hrtime.bigint();
  return new Promise((resolve, reject) => {
    execFile('udevadm', ['settle', '-t', String(SETTLE_TIMEOUT_MS / 1000)], (err, _stdout, stderr) => {
      if (err) reject(new Error(`udevadm settle: ${err.message.split('\n')[0]}: ${stderr.trim()}`));
      else resolve(Number(process.hrtime.bigint() - t0) / 1e6);
    });
  });
}

/** One contender's record: its backlog share per lifecycle (ns), and the udevadm settles after its batches (ms). */
export interface BacklogTaken {
  backlog: number[];
  udevadmMs: number[];
}

export function emptyBacklog(): BacklogTaken {
  return { backlog: [], udevadmMs: [] };
}

export class UdevBacklog {
  /** udevSync: whether udev runs (then the udevadm settles happen). */
  constructor(readonly udevSync: boolean) {}

  /**
   * After a timed batch whose `count` lifecycles (or calls) are the last `count` entries of
   * `samples` (ns): for ours (`settle` given) the settle is timed and its equal share added to
   * each of those entries and pushed `count` times onto `into.backlog`. Returns the settle's ns
   * (0 without `settle`).
   */
  async charge(samples: number[], count: number, settle: Settle | null, into: BacklogTaken): Promise<number> {
    if (!settle || count <= 0) return 0;
    if (samples.length < count) throw new Error(`udev backlog: ${count} lifecycles in the batch, ${samples.length} samples`);
    const ns = await settle();
    const share = ns / count;
    for (let i = samples.length - count; i < samples.length; i++) samples[i] = (samples[i] as number) + share;
    for (let i = 0; i < count; i++) into.backlog.push(share);
    return ns;
  }

  /** charge, then the untimed settle of udev's queue (recorded in `into.udevadmMs`). Returns the charged ns. */
  async afterBatch(samples: number[], count: number, settle: Settle | null, into: BacklogTaken): Promise<number> {
    const ns = await this.charge(samples, count, settle, into);
    await this.quiesce(null, into);
    return ns;
  }

  /**
   * Nothing charged: ours' settle (if given), then with udev `udevadm settle`, its time pushed
   * onto `into.udevadmMs` if given. After a batch, a warm-up, a setup or an untimed cleanup.
   */
  async quiesce(settle: Settle | null = null, into?: BacklogTaken): Promise<void> {
    if (settle) await settle();
    if (!this.udevSync) return;
    const ms = await udevadmSettle();
    into?.udevadmMs.push(ms);
  }
}

/** The result fields of one contender's record: none of what was not measured. */
export function backlogFields(t: BacklogTaken): UdevBacklogFields {
  return {
    ...(t.backlog.length ? { udevBacklog: { ...summarize(t.backlog), samples: t.backlog } } : {}),
    ...(t.udevadmMs.length ? { udevadmSettleMs: t.udevadmMs } : {}),
  };
}
