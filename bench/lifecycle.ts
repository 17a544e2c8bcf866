/**
 * The lifecycle: a layer created as a snapshot of an inactive image device,
 * mounted, written (4 KiB and fsync), unmounted and deleted, per contender, in the same
 * kernel and run, contenders rotating batch by batch:
 *
 *   raw       the C program: create_snap, set_transaction_id, activate, mkdir + mount(2),
 *             write + fsync, umount2 + rmdir, remove, delete, set_transaction_id, plus the
 *             metadata files the DeviceSet writes (temporary file, fsync, rename, fsync of
 *             the directory), all in one thread: the physical limit of the sequence.
 *   deviceSet DeviceSet.addDevice / mkdir + mountDevice / write / unmountDevice / deleteDevice.
 *   driver    Driver.create / get / write / put / remove.
 *   dmsetup   the kernel sequence of raw, one process per step (dmsetup message, create,
 *             remove; mount, umount -l), as containerd's devmapper snapshotter; no metadata
 *             files (containerd keeps its own database).
 *
 * Each contender has its own pool: raw and dmsetup share the run's bench pool (an ext4 image
 * device made there), the DeviceSet and the Driver each open a root of their own (loop files
 * in the guest's /tmp, like the bench pool) with an ext4 base of the same size.
 *
 * With udev, the DeviceSet's and the Driver's lifecycles carry the udev work they left
 * behind (udev-backlog.ts), and udev settles between any two batches.
 */
import { createHook } from 'node:async_hooks';
import { statSync } from 'node:fs';
import { mkdir, open, readFile, rm, rmdir, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as dm from '../dist/dm';
import { DeviceSet } from '../dist/deviceset';
import { makeFilesystem } from '../dist/internal';
import { Driver } from '../dist/driver';
import * as sys from '../dist/sys';
import type { RawClient } from './raw-client';
import type { IdAllocator } from './single-ops';
import { summarize } from './stats';
import { backlogFields, type BacklogTaken, emptyBacklog, type Settle, settleReaper, UdevBacklog } from './udev-backlog';
import {
  LIFECYCLE_STEPS,
  type LifecycleContenderName,
  type LifecycleResult,
  type LifecycleStats,
  type LifecycleStep,
} from './types';

/** The image and every layer: 512 MiB of ext4, the size Docker's figures were measured with. */
export const LAYER_BYTES = 512 * 2 ** 20;

export interface LifecyclePlan {
  pool: string;
  raw: RawClient;
  /** Starts dmsetup, mount and umount (posix_spawn), and makes the dmsetup contender's write. */
  spawner: RawClient;
  ids: IdAllocator;
  /** The bench pool's transaction id (raw and dmsetup move it on by two per lifecycle). */
  transactionId: { value: number };
  /** Device names in the bench pool start with this. */
  prefix: string;
  udevSync: boolean;
  iterations: number;
  batch: number;
  dmsetupEvery: number;
  warmup: number;
  progress?: (line: string) => void;
}

export interface Timed {
  /** ns per lifecycle, and per step of each (LIFECYCLE_STEPS order). */
  ns: number[];
  steps: number[][];
  /** The udev backlog's share of each lifecycle (ours; in `ns` already) and the udevadm settles after the batches (udev-backlog.ts). */
  udev?: BacklogTaken;
}

interface LifecycleContender {
  name: LifecycleContenderName;
  /** Ours: waits for the udev work its calls left behind (null: it waits inside its calls). */
  settle: Settle | null;
  run(count: number): Promise<Timed>;
}

const BLOCK = Buffer.alloc(4096, 'x');

/** The user's write into the mounted layer, as a node program makes it. */
export async function write4k(path: string): Promise<void> {
  const fh = await open(path, 'w', 0o644);
  try {
    await fh.write(BLOCK);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * The DeviceSet options of every DeviceSet the benchmark opens: a 512 MiB ext4 base on loop
 * files in the guest's /tmp; no discard before a delete (the C program and dmsetup discard
 * nothing either); without udev, the override that lets the DeviceSet run at all.
 */
export function deviceSetOptions(udevSync: boolean): string[] {
  return [
    'dm.basesize=512M',
    'dm.fs=ext4',
    'dm.loopdatasize=2G',
    'dm.loopmetadatasize=200M',
    'dm.blkdiscard=false',
    ...(udevSync ? [] : ['dm.override_udev_sync_check=true']),
  ];
}

/**
 * One DeviceSet lifecycle in LIFECYCLE_STEPS order: addDevice (a snapshot of `parent`),
 * mkdir + mountDevice at `mountPoint`, 4 KiB written and fsynced, unmountDevice,
 * deleteDevice { sync: true }.
 */
export function deviceSetSteps(ds: DeviceSet, hash: string, mountPoint: string, parent = 'image'): (() => Promise<unknown>)[] {
  return [
    () => ds.addDevice(hash, parent),
    async () => {
      await mkdir(mountPoint);
      await ds.mountDevice(hash, mountPoint);
    },
    () => write4k(join(mountPoint, 'file')),
    () => ds.unmountDevice(hash, mountPoint),
    () => ds.deleteDevice(hash, { sync: true }),
  ];
}

function now(): bigint {
  return process.hrtime.bigint();
}

/** Times the steps of one lifecycle: fns in LIFECYCLE_STEPS order. */
export async function timeSteps(fns: (() => Promise<unknown>)[]): Promise<{ ns: number; steps: number[] }> {
  const steps: number[] = [];
  const t0 = now();
  let t = t0;
  for (const fn of fns) {
    await fn();
    const t1 = now();
    steps.push(Number(t1 - t));
    t = t1;
  }
  return { ns: Number(t - t0), steps };
}

async function serially(count: number, one: () => Promise<{ ns: number; steps: number[] }>): Promise<Timed> {
  const out: Timed = { ns: [], steps: [] };
  for (let i = 0; i < count; i++) {
    const r = await one();
    out.ns.push(r.ns);
    out.steps.push(r.steps);
  }
  return out;
}

/**
 * Async resources each step creates, by type (promises left out): its thread hops. One
 * untimed lifecycle, the hook on around each step.
 */
async function countHops(fns: (() => Promise<unknown>)[]): Promise<Record<LifecycleStep, Record<string, number>>> {
  const perStep = {} as Record<LifecycleStep, Record<string, number>>;
  let counts: Record<string, number> = {};
  const hook = createHook({
    init(_id, type) {
      if (type !== 'PROMISE') counts[type] = (counts[type] ?? 0) + 1;
    },
  });
  for (const [k, fn] of fns.entries()) {
    counts = {};
    hook.enable();
    try {
      await fn();
    } finally {
      hook.disable();
    }
    perStep[LIFECYCLE_STEPS[k] as LifecycleStep] = counts;
  }
  return perStep;
}

function sumSteps(perStep: Record<LifecycleStep, Record<string, number>>): Record<string, number> {
  const total: Record<string, number> = {};
  for (const c of Object.values(perStep)) for (const [t, n] of Object.entries(c)) total[t] = (total[t] ?? 0) + n;
  return total;
}

/** Detaches whatever a failed run left mounted under dir, so that nothing holds its devices. */
export async function unmountUnder(dir: string): Promise<void> {
  const info = await readFile('/proc/self/mountinfo', 'utf8');
  const points = info
    .split('\n')
    .map((l) => (l.split(' ')[4] ?? '').replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))))
    .filter((p) => p.startsWith(`${dir}/`))
    .reverse();
  for (const p of points) await sys.unmount(p, { detach: true }).catch(() => undefined);
}

/**
 * What one libuv thread-pool round trip costs in this kernel and run: the p50 of
 * fs.promises.stat less that of fs.statSync (the same system call without the hop).
 */
async function hopCost(samples: number): Promise<{ syncNs: number; asyncNs: number }> {
  const sync: number[] = [];
  const async: number[] = [];
  for (let i = 0; i < samples; i++) {
    let t0 = now();
    statSync('/proc/self');
    sync.push(Number(now() - t0));
    t0 = now();
    await stat('/proc/self');
    async.push(Number(now() - t0));
  }
  return { syncNs: summarize(sync).p50, asyncNs: summarize(async).p50 };
}

function rotate<T>(a: readonly T[], by: number): T[] {
  const k = by % a.length;
  return [...a.slice(k), ...a.slice(0, k)];
}

/** Whole-lifecycle and per-step statistics of timed lifecycles, and their udev backlog. */
export function lifecycleStats(t: Timed): LifecycleStats {
  const steps = Object.fromEntries(
    LIFECYCLE_STEPS.map((s, k) => {
      const samples = t.steps.map((row) => row[k] as number);
      return [s, { ...summarize(samples), samples }];
    }),
  ) as Record<LifecycleStep, LifecycleStats['steps'][LifecycleStep]>;
  return { ...summarize(t.ns), samples: t.ns, steps, ...(t.udev ? backlogFields(t.udev) : {}) };
}

export async function measureLifecycle(plan: LifecyclePlan): Promise<LifecycleResult> {
  const log = plan.progress ?? (() => undefined);
  const dir = join(tmpdir(), `devmapper-bench-${process.pid}-lifecycle`);
  const options = deviceSetOptions(plan.udevSync);
  const mnt = { raw: join(dir, 'mnt-raw'), dmsetup: join(dir, 'mnt-dmsetup'), deviceSet: join(dir, 'mnt-ds') };
  const metaDir = join(dir, 'raw-metadata');
  for (const d of [...Object.values(mnt), metaDir]) await mkdir(d, { recursive: true, mode: 0o700 });

  const sectors = LAYER_BYTES / 512;
  const imageId = plan.ids.take(1);
  const imageName = `${plan.prefix}image`;
  let ds: DeviceSet | null = null;
  let driver: Driver | null = null;
  try {
    log('an ext4 image device in the bench pool (raw C, dmsetup)');
    await dm.createDevice(plan.pool, imageId);
    await dm.activateDevice(plan.pool, imageName, imageId, LAYER_BYTES);
    try {
      await makeFilesystem(`/dev/mapper/${imageName}`, 'ext4', []);
    } finally {
      await dm.removeDevice(imageName, { retryBudgetMs: 3000 });
    }
    log(`a DeviceSet and a Driver, each on its own root (${options.join(' ')})`);
    ds = await DeviceSet.open(join(dir, 'ds'), { options });
    await ds.addDevice('image', '');
    driver = await Driver.init(join(dir, 'driver'), options);
    await driver.create('image', '');
    const theDs = ds;
    const theDriver = driver;

    let serial = 0;
    const rawC: LifecycleContender = {
      name: 'raw',
      settle: null,
      async run(count) {
        const from = plan.transactionId.value;
        const r = await plan.raw.lifecycle(count, {
          id: plan.ids.take(count),
          base: imageId,
          prefix: `${plan.prefix}raw-`,
          size: sectors,
          from,
          mnt: mnt.raw,
          meta: metaDir,
        });
        plan.transactionId.value = from + 2 * count;
        return r;
      },
    };
    const dsSteps = () => {
      const hash = `layer${++serial}`;
      return deviceSetSteps(theDs, hash, join(mnt.deviceSet, hash));
    };
    const driverSteps = () => {
      const id = `layer${++serial}`;
      let rootfs = '';
      return [
        () => theDriver.create(id, 'image'),
        async () => {
          rootfs = await theDriver.get(id);
        },
        () => write4k(join(rootfs, 'file')),
        () => theDriver.put(id),
        () => theDriver.remove(id),
      ];
    };
    const dsLife = () => timeSteps(dsSteps());
    const driverLife = () => timeSteps(driverSteps());
    const sh = (argv: string[]) => plan.spawner.spawn(argv);
    const dmsetupLife = async () => {
      const id = plan.ids.take(1);
      const t = plan.transactionId.value;
      plan.transactionId.value += 2;
      const name = `${plan.prefix}sh-${id}`;
      const mp = join(mnt.dmsetup, String(id));
      const msg = (m: string) => sh(['dmsetup', 'message', plan.pool, '0', m]);
      return timeSteps([
        async () => {
          await msg(`create_snap ${id} ${imageId}`);
          await msg(`set_transaction_id ${t} ${t + 1}`);
        },
        async () => {
          await sh(['dmsetup', 'create', name, '--table', `0 ${sectors} thin /dev/mapper/${plan.pool} ${id}`]);
          await mkdir(mp);
          await sh(['mount', '-t', 'ext4', `/dev/mapper/${name}`, mp]);
        },
        () => plan.spawner.batch('write4k', 1, { name: join(mp, 'file') }),
        async () => {
          await sh(['umount', '-l', mp]);
          await rmdir(mp);
          await sh(['dmsetup', 'remove', name]);
        },
        async () => {
          await msg(`delete ${id}`);
          await msg(`set_transaction_id ${t + 1} ${t + 2}`);
        },
      ]);
    };
    const contenders: LifecycleContender[] = [
      rawC,
      { name: 'deviceSet', settle: settleReaper, run: (n) => serially(n, dsLife) },
      { name: 'driver', settle: settleReaper, run: (n) => serially(n, driverLife) },
      { name: 'dmsetup', settle: null, run: (n) => serially(n, dmsetupLife) },
    ];

    // The setup's udev work done before anything is timed, and after every untimed lifecycle.
    const udev = new UdevBacklog(plan.udevSync);
    await udev.quiesce(settleReaper);
    log(`warm-up: ${plan.warmup} lifecycle per contender`);
    for (const c of contenders) {
      await c.run(plan.warmup);
      await udev.quiesce(c.settle);
    }
    const hopsPerStep: LifecycleResult['hopsPerStep'] = {
      deviceSet: await countHops(dsSteps()),
      driver: await countHops(driverSteps()),
    };
    await udev.quiesce(settleReaper);
    const hops: LifecycleResult['hops'] = {
      deviceSet: sumSteps(hopsPerStep.deviceSet!),
      driver: sumSteps(hopsPerStep.driver!),
    };

    const taken = new Map<LifecycleContenderName, Timed>(contenders.map((c) => [c.name, { ns: [], steps: [], udev: emptyBacklog() }]));
    const rounds = Math.ceil(plan.iterations / plan.batch);
    for (let r = 0; r < rounds; r++) {
      const b = Math.min(plan.batch, plan.iterations - r * plan.batch);
      const active = contenders.filter((c) => c.name !== 'dmsetup' || r % plan.dmsetupEvery === 0);
      for (const c of rotate(active, r)) {
        const into = taken.get(c.name)!;
        try {
          const t = await c.run(b);
          into.ns.push(...t.ns);
          into.steps.push(...t.steps);
          await udev.afterBatch(into.ns, b, c.settle, into.udev!);
        } catch (err) {
          if (err instanceof Error) err.message = `lifecycle ${c.name} (round ${r + 1}): ${err.message}`;
          throw err;
        }
      }
      log(`round ${r + 1}/${rounds}`);
    }
    const hop = await hopCost(200);
    return {
      hopCost: hop,
      hopsPerStep,
      sizeBytes: LAYER_BYTES,
      options,
      contenders: Object.fromEntries([...taken].map(([name, t]) => [name, lifecycleStats(t)])),
      hops,
    };
  } finally {
    // The bench pool's devices (image, layers left by a failure) go with the pool's teardown.
    await driver?.cleanup().catch((err: unknown) => log(`driver cleanup: ${String(err)}`));
    await ds?.shutdown().catch((err: unknown) => log(`DeviceSet shutdown: ${String(err)}`));
    await unmountUnder(dir);
    await rm(dir, { recursive: true, force: true });
  }
}
