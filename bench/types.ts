/** The shapes of a run's JSON results (bench/results/results.json holds one per udev mode). */
import type { BenchConfig } from './config';
import type { Stats } from './stats';

/** The single operations of issue 5, at the dm level. */
export const OPS = [
  'create_thin',
  'create_snap',
  'create_snap_active',
  'delete',
  'set_transaction_id',
  'activate',
  'suspend_resume',
  'remove',
  'info',
  'pool_status',
] as const;
export type OpName = (typeof OPS)[number];

/**
 * raw: the C program over libdevmapper (bench/raw/dm_raw_bench.c); rawHop: the same with
 * each operation run on a worker thread while the caller waits in epoll_wait (the cheapest
 * possible async design: one thread hop per operation); dm: this project's `dm` API (one
 * promise per call, each task on the libuv pool); dmSync: the addon's runTaskSync with the
 * same tasks the dm call sends (no thread hop); dmsetup: one process per kernel call.
 */
export const CONTENDERS = ['raw', 'rawHop', 'dm', 'dmSync', 'dmsetup'] as const;
export type ContenderName = (typeof CONTENDERS)[number];

export interface OpStats extends Stats {
  /** Every sample, ns, in the order taken. */
  samples: number[];
}

export interface OpResult {
  op: OpName;
  contenders: Partial<Record<ContenderName, OpStats>>;
}

export interface ScalePoint {
  /** Idle thin devices put in the pool before measuring (the run's own come on top). */
  devices: number;
  /** create_thin latency while filling the pool up to `devices` (raw C). */
  fill: Stats;
  ops: OpResult[];
}

export interface DelayStats {
  /**
   * Event-loop delay, ms (perf_hooks.monitorEventLoopDelay, 1 ms resolution, a fresh monitor
   * per repetition). Across repetitions: the median of their p50, p99 and mean, the largest max.
   */
  p50: number;
  p99: number;
  max: number;
  mean: number;
}

export interface ConcurrencyResult {
  /** The last is a control without device-mapper: libuv thread-pool calls of node's own. */
  workload: 'activate+remove' | 'create_snap+delete' | 'fs.stat x10 (control, no dm)';
  parallel: number;
  /** Wall time of each repetition, ms. */
  serialMs: number[];
  concurrentMs: number[];
  /** The same kernel calls from the C program, one after another. */
  rawMs: number[];
  eldSerial: DelayStats;
  eldConcurrent: DelayStats;
  /**
   * The event loop's delay while node only waits for the C program doing the same kernel
   * calls: what the kernel's own work costs the process, with no JavaScript or addon involved.
   */
  eldRaw: DelayStats;
  /** Each repetition's own figures. */
  eldRuns: { serial: DelayStats[]; concurrent: DelayStats[]; raw: DelayStats[] };
  /** Latency of one workload item (both calls) while all run at once. */
  concurrentItem: Stats;
}

export interface MemoryCheckpoint {
  calls: number;
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  arrayBuffers: number;
}

export interface MemoryResult {
  /** The calls: getInfo(pool), createDevice, deleteDevice, in turn. */
  workload: string;
  gcExposed: boolean;
  checkpoints: MemoryCheckpoint[];
  /** Least-squares slopes over the checkpoints of the second half of the run (steady state), bytes per call. */
  heapUsedBytesPerCall: number;
  rssBytesPerCall: number;
}

export interface GuestResult {
  schema: 1;
  mode: BenchConfig['mode'];
  udev: 'on' | 'off';
  udevSync: boolean;
  kernel: { release: string; sandbox: boolean };
  node: string;
  library: string;
  uvThreadpoolSize: number;
  startedAt: string;
  durationMs: number;
  config: BenchConfig;
  single: OpResult[];
  scale: ScalePoint[];
  concurrency: ConcurrencyResult[];
  memory: MemoryResult | null;
  reference: {
    /** Starting /bin/true: posix_spawn from the C program, and spawnSync from node. */
    posixSpawnTrue: Stats;
    nodeSpawnSyncTrue: Stats;
    /** A libuv thread-pool round trip that is not the addon's: fs.promises.stat against fs.statSync. */
    statSync: Stats;
    statAsync: Stats;
  };
}
