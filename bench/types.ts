/** The shapes of a run's JSON results (bench/results/results.json holds one per udev mode). */
import type { BenchConfig } from './config';
import type { Stats } from './stats';

/** The single operations measured at the dm level. */
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

/**
 * The udev work a contender's batches left behind (udev-backlog.ts). Absent in results from
 * before it was measured: read as none.
 */
export interface UdevBacklogFields {
  /**
   * Ours (the DeviceSet's calls hand their udev cookies to a reaper and return before udev's
   * rules ran): after each timed batch, the time until this process's reaper (or the served
   * Snapshotter's) had no cookie pending, shared out equally over the batch's lifecycles: one
   * sample per lifecycle, ns, already included in the lifecycle's samples. Absent for
   * contenders that wait for udev inside their calls (raw C, dmsetup, the peers).
   */
  udevBacklog?: OpStats;
  /**
   * With udev, `udevadm settle -t 60` after each batch (and after the timed settle above),
   * ms: untimed, in no figure; how long udev still had events queued before the next batch.
   */
  udevadmSettleMs?: number[];
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

/** The steps of one layer's life, in order; each contender's own calls for them (see lifecycle.ts). */
export const LIFECYCLE_STEPS = ['create', 'mount', 'write', 'unmount', 'delete'] as const;
export type LifecycleStep = (typeof LIFECYCLE_STEPS)[number];

/**
 * raw: the C program making the fewest kernel calls for the sequence (plus the DeviceSet's
 * metadata-file writes); deviceSet: DeviceSet.addDevice/mountDevice/.../deleteDevice;
 * driver: Driver.create/get/put/remove; dmsetup: one process per step, as containerd.
 */
export const LIFECYCLE_CONTENDERS = ['raw', 'deviceSet', 'driver', 'dmsetup'] as const;
export type LifecycleContenderName = (typeof LIFECYCLE_CONTENDERS)[number];

/** The whole lifecycle (its samples: the steps' sum plus the udevBacklog share, if any) and its steps. */
export interface LifecycleStats extends OpStats, UdevBacklogFields {
  /** Per step: statistics and every sample (ns), in LIFECYCLE_STEPS order: caller-visible latency. */
  steps: Record<LifecycleStep, OpStats>;
}

export interface LifecycleResult {
  /** Size of the image device and of each snapshot, bytes. */
  sizeBytes: number;
  /** The DeviceSet and Driver options. */
  options: string[];
  contenders: Partial<Record<LifecycleContenderName, LifecycleStats>>;
  /**
   * Asynchronous resources one untimed lifecycle creates, by async_hooks type: each
   * 'devmapper:task' and 'FSREQPROMISE' / 'FSREQCALLBACK' is one round trip through libuv's
   * thread pool (a thread hop there and one back); PROMISE is left out.
   */
  hops: Partial<Record<'deviceSet' | 'driver', Record<string, number>>>;
  /** The same, step by step. */
  hopsPerStep?: Partial<Record<'deviceSet' | 'driver', Record<LifecycleStep, Record<string, number>>>>;
  /** One thread-pool round trip in this run: fs.promises.stat against fs.statSync, p50 ns. */
  hopCost: { syncNs: number; asyncNs: number };
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

/** Process memory after a full GC (process.memoryUsage()), bytes. */
export interface MemorySnapshot {
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  arrayBuffers: number;
}

/** One timed DeviceSet.open of a filled root, and the memory after it (full GC). */
export interface DsScaleOpen extends MemorySnapshot {
  ms: number;
  /** V8's heap used after a full GC just before the open (no DeviceSet open then). */
  heapUsedBefore: number;
}

export interface DsScalePoint {
  /** Devices registered in bulk after the first open (the filler). */
  devices: number;
  /** Device files the timed opens load: the filler, the base and the image device. */
  registered: number;
  /**
   * How the filler was made: its create_thin messages (raw C: each message, and the wall time
   * of all), the metadata files' wall time, and the two together (ms).
   */
  fill: { createThin: Stats; createThinMs: number; filesMs: number; totalMs: number };
  opens: DsScaleOpen[];
  /** Median of the opens' times, ms. */
  openMedianMs: number;
  /** The DeviceSet lifecycle with the filled DeviceSet open (all sizes' open at once, batches in turn). */
  lifecycle: LifecycleStats;
}

/** DeviceSet scale (deviceset-scale.ts): open time, memory and the lifecycle against registered devices. */
export interface DsScaleResult {
  options: string[];
  /** Size of the base, the image and every filler device, bytes. */
  sizeBytes: number;
  gcExposed: boolean;
  points: DsScalePoint[];
}

/** DeviceSet concurrency (deviceset-concurrency.ts): lifecycles all at once against one after another. */
export interface DsConcurrencyResult {
  options: string[];
  parallel: number;
  repetitions: number;
  /** Wall time of each repetition, ms, the udev backlog's settle after it included. */
  serialMs: number[];
  concurrentMs: number[];
  /**
   * The settle of the udev reaper after each run, ms (udev-backlog.ts): in serialMs and
   * concurrentMs, and shared out equally over the run's lifecycles in serialItem and
   * concurrentItem. Absent in results from before it was measured.
   */
  serialBacklogMs?: number[];
  concurrentBacklogMs?: number[];
  /** With udev, `udevadm settle -t 60` after each run, ms: untimed, in no figure. */
  udevadmSettleMs?: number[];
  eldSerial: DelayStats;
  eldConcurrent: DelayStats;
  eldRuns: { serial: DelayStats[]; concurrent: DelayStats[] };
  /** One lifecycle's time, serially and while all run at once (each with its share of the backlog). */
  serialItem: Stats;
  concurrentItem: Stats;
}

/** The parts of a run (`--only` picks some). */
export const SECTIONS = ['single', 'reference', 'concurrency', 'memory', 'scale', 'lifecycle', 'dsscale', 'dsconcurrency', 'peers', 'snapshotter', 'cli', 'images'] as const;
export type SectionName = (typeof SECTIONS)[number];

/** Sections added after results recorded their sections: results without `sections` did not run them. */
export const LATER_SECTIONS: readonly SectionName[] = ['lifecycle', 'dsscale', 'dsconcurrency', 'peers', 'snapshotter', 'cli', 'images'];

export interface GuestResult {
  schema: 1;
  /** The sections this run measured (absent in results from before --only: all but lifecycle). */
  sections?: SectionName[];
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
  /** The layer-lifecycle rows (absent in results from before they existed). */
  lifecycle?: LifecycleResult | null;
  /** DeviceSet scale and concurrency (absent in results from before they existed). */
  dsscale?: DsScaleResult | null;
  dsconcurrency?: DsConcurrencyResult | null;
  /** The peers (Docker's driver, containerd's snapshotter) against the Driver (absent before they existed). */
  peers?: PeersResult | null;
  /** The Snapshotter's path against containerd's devmapper snapshotter (absent before it existed). */
  snapshotter?: SnapBenchResult | null;
  /** The command line's spawn-to-exit cost (absent before it existed). */
  cli?: CliCostResult | null;
  /** Time to a ready root disk from an imported image, against containerd's snapshotter (absent before it existed). */
  images?: ImagesBenchResult | null;
  /** null when the run left the reference section out (--only). */
  reference: {
    /** Starting /bin/true: posix_spawn from the C program, and spawnSync from node. */
    posixSpawnTrue: Stats;
    nodeSpawnSyncTrue: Stats;
    /** A libuv thread-pool round trip that is not the addon's: fs.promises.stat against fs.statSync. */
    statSync: Stats;
    statAsync: Stats;
  } | null;
}

/**
 * The steps of the peers section, in order, under the Driver's (and dockerdm's) names.
 * containerd's ctrdbench names them prepare, mount, write, unmount, remove (see PEER_STEP_NAMES).
 */
export const PEER_STEPS = ['create', 'get', 'write', 'put', 'remove'] as const;
export type PeerStep = (typeof PEER_STEPS)[number];

/**
 * driver: this library's Driver (create, get, write, put, remove, in this process);
 * deviceSet: its DeviceSet (addDevice, mkdir + mountDevice, write, unmountDevice,
 * deleteDevice), the reference one level down; docker: `dockerdm bench` (moby v24.0.9's
 * driver, its own process); containerd: `ctrdbench` (containerd v1.7.13's devmapper
 * snapshotter, in its process).
 */
export const PEER_CONTENDERS = ['driver', 'deviceSet', 'docker', 'containerd'] as const;
export type PeerContenderName = (typeof PEER_CONTENDERS)[number];

/** defaults: each contender's own defaults (what a user gets); equal: the same discard and deferred removal for all. */
export const PEER_SETTINGS = ['defaults', 'equal'] as const;
export type PeerSetting = (typeof PEER_SETTINGS)[number];

/** Each contender's own name for each step. */
export const PEER_STEP_NAMES: Record<PeerContenderName, Record<PeerStep, string>> = {
  driver: { create: 'create', get: 'get', write: 'write', put: 'put', remove: 'remove' },
  deviceSet: { create: 'addDevice', get: 'mkdir + mountDevice', write: 'write', put: 'unmountDevice', remove: 'deleteDevice' },
  docker: { create: 'create', get: 'get', write: 'write', put: 'put', remove: 'remove' },
  containerd: { create: 'prepare', get: 'mount', write: 'write', put: 'unmount', remove: 'remove' },
};

export interface PeerStream extends UdevBacklogFields {
  contender: PeerContenderName;
  setting: PeerSetting;
  /** The options or flags it ran with (Docker's dm.* keys; ctrdbench's flags). */
  options: string[];
  /** The equal setting is this contender's defaults: the same measurement is shown under both. */
  sameAs?: PeerSetting;
  /** The whole lifecycle: its steps plus, for ours, the udevBacklog share. */
  lifecycle: OpStats;
  /** Each step as the caller saw it. */
  steps: Record<PeerStep, OpStats>;
  /**
   * The peers' processes (one per batch): their own Init (dockerdm's `init ms`, ctrdbench's
   * pool and snapshotter creation), ctrdbench's base snapshot, and each process's wall time
   * from spawn to exit (ms); none for the in-process contenders.
   */
  processes?: { initMs: number[]; baseMs: number[]; wallMs: number[] };
}

export interface PeersResult {
  /** Why the section did not run (the peers' directory or a binary missing); then no streams. */
  skipped?: string;
  peersDir: string;
  /** Lifecycles per batch (each peer process runs one batch) and rounds. */
  batch: number;
  rounds: number;
  /** What every contender's pool and file system is. */
  setup: string;
  streams: PeerStream[];
}

/** One command's spawn-to-exit times. */
export interface CliCommandResult {
  name: string;
  argv: string[];
  stats: OpStats;
  /** For the node commands: what one more (untimed) run loaded: modules in all, the package's own, whether the addon. */
  modules?: { modules: number; own: number; addon: boolean };
}

export interface CliCostResult {
  runs: number;
  /** Commands left out and why (dockerdm without ../shared/peers). */
  skipped: string[];
  commands: CliCommandResult[];
}

/** The steps of the snapshotter section: containerd's lifecycle of a snapshot, as ctrdbench times it. */
export const SNAP_STEPS = ['prepare', 'mount', 'write', 'unmount', 'remove'] as const;
export type SnapStep = (typeof SNAP_STEPS)[number];

/**
 * snapshotter: this library's Snapshotter, in this process (prepare, mount(2), write, umount2,
 * remove); snapshotterGrpc: the same served by `devmapper snapshotter serve` and driven by
 * `ctrdbench --socket`; containerd: `ctrdbench`, containerd v1.7.13's devmapper snapshotter in
 * ctrdbench's process; containerdGrpc: that snapshotter served by `devmapper-proxy`, driven
 * by `ctrdbench --socket` (the gRPC client of both served contenders is the same program).
 */
export const SNAP_CONTENDERS = ['snapshotter', 'snapshotterGrpc', 'containerd', 'containerdGrpc'] as const;
export type SnapContenderName = (typeof SNAP_CONTENDERS)[number];

export interface SnapStream extends UdevBacklogFields {
  contender: SnapContenderName;
  setting: PeerSetting;
  /** Our dm.* options, or ctrdbench's / devmapper-proxy's flags. */
  options: string[];
  /** The equal settings are this contender's defaults: the same measurement, shown under both. */
  sameAs?: PeerSetting;
  /** The whole lifecycle: its steps plus, for ours, the udevBacklog share. */
  lifecycle: OpStats;
  /** Each step as the caller (or ctrdbench) saw it. */
  steps: Record<SnapStep, OpStats>;
  /**
   * ctrdbench's processes (one per batch): their Init (pool and snapshotter, or the gRPC
   * dial), their base snapshot and each process's spawn to exit, ms; for the in-process
   * Snapshotter its open and its base snapshot, once.
   */
  processes?: { initMs: number[]; baseMs: number[]; wallMs: number[] };
  /** A served contender: its server's start until the socket accepts, ms (once, untimed). */
  serverStartMs?: number;
}

export interface SnapBenchResult {
  /** Why the section did not run (the peers' directory or a binary missing); then no streams. */
  skipped?: string;
  peersDir: string;
  batch: number;
  rounds: number;
  setup: string;
  streams: SnapStream[];
}

/**
 * The images section's contenders: images.rootDisk in-process (library), the same Snapshotter
 * over gRPC (served), containerd's devmapper snapshotter over gRPC (containerd).
 */
export const IMAGES_CONTENDERS = ['library', 'served', 'containerd'] as const;
export type ImagesContender = (typeof IMAGES_CONTENDERS)[number];

/** One concurrency level: each contender's per-call latency (ns) with that many calls at once. */
export interface ImagesLevel {
  concurrency: number;
  /** Per call: its latency plus, for ours, its share of the udev backlog. */
  contenders: Partial<Record<ImagesContender, Stats>>;
  /**
   * Ours: the settle of the udev reaper after each round of calls, shared out equally over the
   * round's calls, ns per call (udev-backlog.ts); included in `contenders`. Absent in results
   * from before it was measured.
   */
  udevBacklog?: Partial<Record<ImagesContender, Stats>>;
  /** With udev, `udevadm settle -t 60` after each round (its removals done), ms: untimed, in no figure. */
  udevadmSettleMs?: Partial<Record<ImagesContender, number[]>>;
}

export interface ImagesBenchResult {
  /** Why containerd's side did not run (devmapper-proxy missing); ours still did. */
  skipped?: string;
  peersDir: string;
  setup: string;
  levels: ImagesLevel[];
}
