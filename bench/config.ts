/** What a run measures, per mode. `full` is `npm run bench`; `smoke` runs in `npm test`. */

import { SECTIONS, type SectionName } from './types';

export type BenchMode = 'full' | 'smoke';

export interface SingleConfig {
  samples: number;
  batch: number;
  dmsetupEvery: number;
}

export interface SnapshotterConfig {
  rounds: number;
  batch: number;
  warmup: number;
  settings: ('defaults' | 'equal')[];
  /** Whether containerd's snapshotter in ctrdbench's own process is measured (the smoke run leaves it to the peers section, which runs the same program in process). */
  containerdInProcess: boolean;
}

export interface BenchConfig {
  mode: BenchMode;
  /**
   * Single operations, every contender: samples per operation and contender, taken in
   * batches. dmsetup (a process per kernel call, a hundred times slower) takes part in every
   * `dmsetupEvery`-th round only, so fewer samples of it, spread over the whole run.
   */
  single: SingleConfig;
  /**
   * The same with udev running: activation, suspend/resume and removal wait for udev's
   * rules (a tenth of a second each in the sandbox kernel), so fewer samples.
   */
  singleUdev: SingleConfig;
  /** Single operations with this many idle thin devices in the pool (raw C and the addon). */
  scale: { sizes: number[]; samples: number; batch: number };
  /** Operations started at once at the dm level, against the same run one after another. */
  concurrency: { parallel: number; repetitions: number };
  /** The same with udev running (each activation and removal waits for udev). */
  concurrencyUdev: { parallel: number; repetitions: number };
  /** Process memory after this many dm calls (checkpoints, each after a full GC). */
  memory: { checkpoints: number[] };
  /**
   * Layer lifecycles per contender (udev off, and with udev running), contenders rotating
   * batch by batch; dmsetup (a process per step) in every `dmsetupEvery`-th batch only.
   */
  lifecycle: { iterations: number; batch: number; dmsetupEvery: number };
  lifecycleUdev: { iterations: number; batch: number; dmsetupEvery: number };
  /**
   * DeviceSet scale: per size, a root whose DeviceSet gets that many devices registered in
   * bulk; `opens` timed opens of it, then `lifecycles` DeviceSet lifecycles with it open,
   * `batch` at a time, the sizes in turn.
   */
  dsscale: { sizes: number[]; opens: number; lifecycles: number; batch: number };
  dsscaleUdev: { sizes: number[]; opens: number; lifecycles: number; batch: number };
  /** DeviceSet lifecycles started at once against the same one after another, on one DeviceSet. */
  dsconcurrency: { parallel: number; repetitions: number };
  dsconcurrencyUdev: { parallel: number; repetitions: number };
  /**
   * Peers: `rounds` rounds of one batch of `batch` lifecycles per contender and setting,
   * rotating (a peer process runs one batch; at most 3, so that its mean, p50 and p99 give
   * back every sample).
   */
  peers: { rounds: number; batch: number; warmup: number };
  peersUdev: { rounds: number; batch: number; warmup: number };
  /**
   * The Snapshotter's path against containerd's snapshotter, in process and over gRPC: as
   * peers (a ctrdbench process runs one batch of at most 3); `settings` the containerd
   * settings measured (the smoke run leaves out the equal ones: two more pools and processes
   * that only add a flag).
   */
  snapshotter: SnapshotterConfig;
  snapshotterUdev: SnapshotterConfig;
  /** The command line's spawn-to-exit: `runs` runs of each command, interleaved. */
  cli: { runs: number; warmup: number };
  cliUdev: { runs: number; warmup: number };
  /** Root disks from an imported image: calls started at once per level, calls per level and contender. */
  images: { levels: number[]; samples: number };
  imagesUdev: { levels: number[]; samples: number };
  /** Untimed samples per operation and contender before measuring (warms caches, JIT, page cache). */
  warmup: number;
  /**
   * References: starting /bin/true (the floor of any process-per-operation tool), and a libuv
   * thread-pool round trip that is not ours (fs.promises.stat against fs.statSync).
   */
  reference: { spawnSamples: number; hopSamples: number };
}

export const CONFIGS: Record<BenchMode, BenchConfig> = {
  full: {
    mode: 'full',
    single: { samples: 200, batch: 20, dmsetupEvery: 4 },
    singleUdev: { samples: 20, batch: 5, dmsetupEvery: 2 },
    scale: { sizes: [10, 1_000, 10_000], samples: 100, batch: 10 },
    concurrency: { parallel: 64, repetitions: 3 },
    concurrencyUdev: { parallel: 16, repetitions: 1 },
    memory: { checkpoints: [100, 1_000, 2_500, 5_000, 10_000, 15_000, 20_000] },
    lifecycle: { iterations: 50, batch: 5, dmsetupEvery: 2 },
    lifecycleUdev: { iterations: 30, batch: 5, dmsetupEvery: 2 },
    dsscale: { sizes: [10, 1_000, 10_000], opens: 3, lifecycles: 20, batch: 5 },
    // With udev each lifecycle waits for udev twice (about 1.5 s here): fewer of them.
    dsscaleUdev: { sizes: [10, 1_000, 10_000], opens: 3, lifecycles: 10, batch: 5 },
    dsconcurrency: { parallel: 64, repetitions: 3 },
    dsconcurrencyUdev: { parallel: 16, repetitions: 1 },
    peers: { rounds: 12, batch: 3, warmup: 1 },
    peersUdev: { rounds: 6, batch: 3, warmup: 1 },
    snapshotter: { rounds: 12, batch: 3, warmup: 1, settings: ['defaults', 'equal'], containerdInProcess: true },
    snapshotterUdev: { rounds: 6, batch: 3, warmup: 1, settings: ['defaults', 'equal'], containerdInProcess: true },
    cli: { runs: 10, warmup: 1 },
    cliUdev: { runs: 8, warmup: 1 },
    images: { levels: [1, 16, 64], samples: 64 },
    imagesUdev: { levels: [1, 16, 64], samples: 64 },
    warmup: 2,
    reference: { spawnSamples: 40, hopSamples: 400 },
  },
  smoke: {
    mode: 'smoke',
    single: { samples: 3, batch: 3, dmsetupEvery: 1 },
    singleUdev: { samples: 2, batch: 2, dmsetupEvery: 1 },
    scale: { sizes: [10, 100], samples: 3, batch: 3 },
    concurrency: { parallel: 16, repetitions: 1 },
    concurrencyUdev: { parallel: 4, repetitions: 1 },
    memory: { checkpoints: [100, 300] },
    lifecycle: { iterations: 3, batch: 3, dmsetupEvery: 1 },
    lifecycleUdev: { iterations: 2, batch: 2, dmsetupEvery: 1 },
    dsscale: { sizes: [10, 100], opens: 3, lifecycles: 2, batch: 1 },
    dsscaleUdev: { sizes: [10, 100], opens: 3, lifecycles: 2, batch: 1 },
    dsconcurrency: { parallel: 8, repetitions: 1 },
    dsconcurrencyUdev: { parallel: 4, repetitions: 1 },
    peers: { rounds: 1, batch: 2, warmup: 0 },
    peersUdev: { rounds: 1, batch: 2, warmup: 0 },
    snapshotter: { rounds: 1, batch: 1, warmup: 0, settings: ['defaults'], containerdInProcess: false },
    snapshotterUdev: { rounds: 1, batch: 1, warmup: 0, settings: ['defaults'], containerdInProcess: false },
    cli: { runs: 1, warmup: 0 },
    cliUdev: { runs: 1, warmup: 0 },
    images: { levels: [1, 4], samples: 4 },
    imagesUdev: { levels: [1, 4], samples: 4 },
    warmup: 1,
    reference: { spawnSamples: 3, hopSamples: 20 },
  },
};

/** --only a,b: those sections (comma-separated); without it, all. */
export function parseSections(only: string | undefined): SectionName[] {
  if (only === undefined) return [...SECTIONS];
  const names = only.split(',').map((x) => x.trim()).filter(Boolean);
  const bad = names.filter((n) => !(SECTIONS as readonly string[]).includes(n));
  if (names.length === 0 || bad.length) throw new Error(`--only takes sections among ${SECTIONS.join(', ')}, not ${only}`);
  return SECTIONS.filter((x) => names.includes(x));
}
