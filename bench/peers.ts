/**
 * The peers section: this library's Driver lifecycle against what a user would pick instead,
 * in the same kernel boot, on the same kind of pool, interleaved batch by batch:
 *
 *   driver      Driver.create (a snapshot of an image layer) / get / write 26 bytes / put / remove
 *   deviceSet   DeviceSet.addDevice / mkdir + mountDevice / write / unmountDevice / deleteDevice
 *               (the level below, as a reference)
 *   docker      `dockerdm --root R bench N`: moby v24.0.9's devicemapper driver, the same five
 *               steps in its own process (../shared/peers/docker)
 *   containerd  `ctrdbench -n N`: containerd v1.7.13's devmapper snapshotter in its own
 *               process: Prepare / mount / write / unmount / Remove (../shared/peers/containerd)
 *
 * each with its own defaults and with equal settings (no discard, no deferred removal or
 * deletion). The peers print only mean / p50 / p99 per step; with at most 3 lifecycles per
 * process those give back every sample (n = 3: max = p99, median = p50, min = 3 mean - p50 - p99),
 * so that the statistics over all batches are computed from samples, as for our contenders.
 * With udev, the Driver's and the DeviceSet's lifecycles carry the udev work they left behind
 * (udev-backlog.ts), and udev settles between any two batches.
 */
import { execFile } from 'node:child_process';
import { accessSync, constants, writeFileSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { DeviceSet } from '../dist/deviceset';
import { Driver } from '../dist/driver';
import { timeSteps, unmountUnder } from './lifecycle';
import { parseBenchOutput, samplesOf } from './peer-output';
import { summarize } from './stats';
import { backlogFields, type BacklogTaken, emptyBacklog, type Settle, settleReaper, UdevBacklog } from './udev-backlog';
import { PEER_STEPS, type OpStats, type PeerContenderName, type PeerSetting, type PeersResult, type PeerStep, type PeerStream } from './types';

/** Where the prebuilt peers live: ../shared/peers beside the repository. */
export function defaultPeersDir(): string {
  return resolve(__dirname, '..', '..', 'shared', 'peers');
}

export const DOCKERDM = (dir: string) => join(dir, 'docker', 'dockerdm');
export const CTRDBENCH = (dir: string) => join(dir, 'containerd', 'ctrdbench');

/** Why the peers cannot run (a missing directory or binary), or null when they can. */
export function peersMissing(dir: string): string | null {
  for (const f of [DOCKERDM(dir), CTRDBENCH(dir)]) {
    try {
      accessSync(f, constants.X_OK);
    } catch {
      return `${f} is missing or not executable`;
    }
  }
  return null;
}

/** The 26 bytes every contender writes (dockerdm's and ctrdbench's payload), no fsync. */
const PAYLOAD = Buffer.from('abcdefghijklmnopqrstuvwxyz');

/** One pool for all: 512 MiB data, 128 MiB metadata (sparse loop files in the guest's /tmp), a 16 MiB ext4 base. */
const COMMON = ['dm.fs=ext4', 'dm.basesize=16M', 'dm.loopdatasize=512M', 'dm.loopmetadatasize=128M'];
/** What makes the settings equal: no discard before a delete, no deferred removal or deletion. */
export const EQUAL = ['dm.blkdiscard=false', 'dm.use_deferred_removal=false', 'dm.use_deferred_deletion=false'];
/** ctrdbench's flags for the same pool; its defaults are discard off and async remove off, the equal settings. */
export const CTRD_FLAGS = ['--fs', 'ext4', '--base-size', '16MB', '--data-size', '512MB', '--meta-size', '128MB'];

/** The Driver's and DeviceSet's options, and dockerdm's --opt values, per setting. */
export function peerOptions(setting: PeerSetting, udevSync: boolean): string[] {
  return [...COMMON, ...(setting === 'equal' ? EQUAL : []), ...(udevSync ? [] : ['dm.override_udev_sync_check=true'])];
}

interface Taken {
  lifecycle: number[];
  steps: Record<PeerStep, number[]>;
  initMs: number[];
  baseMs: number[];
  wallMs: number[];
  udev: BacklogTaken;
}

function emptyTaken(): Taken {
  return {
    lifecycle: [],
    steps: Object.fromEntries(PEER_STEPS.map((s) => [s, []])) as unknown as Record<PeerStep, number[]>,
    initMs: [],
    baseMs: [],
    wallMs: [],
    udev: emptyBacklog(),
  };
}

interface Stream {
  contender: PeerContenderName;
  setting: PeerSetting;
  options: string[];
  /** Also reported under this setting (the same measurement). */
  alsoAs?: PeerSetting;
  /** Ours: waits for the udev work its calls left behind (null: the contender waits inside its calls). */
  settle: Settle | null;
  run(count: number, into: Taken): Promise<void>;
  close(): Promise<unknown>;
}

/** Runs argv to its end: its stdout and its spawn-to-exit time; a failure carries its last stderr lines. */
export function runProcess(argv: string[], env: NodeJS.ProcessEnv): Promise<{ stdout: string; wallMs: number }> {
  return new Promise((resolvePromise, reject) => {
    const t0 = process.hrtime.bigint();
    execFile(argv[0] as string, argv.slice(1), { env, maxBuffer: 16 * 2 ** 20, encoding: 'utf8' }, (err, stdout, stderr) => {
      const wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
      if (err) {
        const last = stderr.trim().split('\n').slice(-3).join(' | ');
        reject(new Error(`${argv.join(' ')}: ${err.message.split('\n')[0]}: ${last}`));
      } else resolvePromise({ stdout, wallMs });
    });
  });
}

/** Parses one peer batch and adds its samples; `names` maps our step names onto the peer's. */
function addPeerBatch(out: string, count: number, names: Record<PeerStep, string>, into: Taken, wallMs: number, what: string): void {
  const p = parseBenchOutput(out);
  if (p.n !== count) throw new Error(`${what}: expected "bench n=${count}" in its output:\n${out}`);
  for (const s of PEER_STEPS) {
    const row = p.rows[names[s]];
    if (!row) throw new Error(`${what}: no "${names[s]}" line in its output:\n${out}`);
    into.steps[s].push(...samplesOf(count, row));
  }
  const life = p.rows.lifecycle;
  if (!life) throw new Error(`${what}: no "lifecycle" line in its output:\n${out}`);
  into.lifecycle.push(...samplesOf(count, life));
  if (p.values.init !== undefined) into.initMs.push(p.values.init);
  if (p.values.base !== undefined) into.baseMs.push(p.values.base);
  into.wallMs.push(wallMs);
}

export interface PeersPlan {
  udevSync: boolean;
  peersDir: string;
  rounds: number;
  batch: number;
  warmup: number;
  progress?: (line: string) => void;
}

function rotate<T>(a: readonly T[], by: number): T[] {
  const k = by % a.length;
  return [...a.slice(k), ...a.slice(0, k)];
}

function withSamples(samples: number[]): OpStats {
  return { ...summarize(samples), samples };
}

export async function measurePeers(plan: PeersPlan): Promise<PeersResult> {
  const log = plan.progress ?? (() => undefined);
  const setup =
    'each contender its own thin pool on sparse loop files in the guest\'s /tmp (tmpfs): 512 MiB data, 128 MiB metadata, 64 KiB blocks; a 16 MiB ext4 base; ' +
    'the layer a snapshot of an image layer (Driver, DeviceSet and dockerdm: a layer made from the base; ctrdbench: a committed base snapshot with a few files)';
  const base: PeersResult = { peersDir: plan.peersDir, batch: plan.batch, rounds: plan.rounds, setup, streams: [] };
  const missing = peersMissing(plan.peersDir);
  if (missing) return { ...base, skipped: missing };
  if (plan.batch > 3) throw new Error('peers: batch must be at most 3 (a peer batch gives back its samples only then)');

  const dir = join(tmpdir(), `devmapper-bench-${process.pid}-peers`);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  // Without udev, the dmsetup processes containerd starts would leave the /dev/mapper nodes to a udev that is not there.
  const peerEnv = plan.udevSync ? process.env : { ...process.env, DM_DISABLE_UDEV: '1' };
  const streams: Stream[] = [];
  let serial = 0;
  try {
    for (const setting of ['defaults', 'equal'] as const) {
      const options = peerOptions(setting, plan.udevSync);
      log(`Driver and DeviceSet, ${setting}: ${options.join(' ')}`);
      const driver = await Driver.init(join(dir, `driver-${setting}`), options);
      streams.push({
        contender: 'driver',
        setting,
        options,
        settle: settleReaper,
        async run(count, into) {
          for (let i = 0; i < count; i++) {
            const id = `peer${++serial}`;
            let rootfs = '';
            const t = await timeSteps([
              () => driver.create(id, 'image'),
              async () => {
                rootfs = await driver.get(id);
              },
              async () => writeFileSync(join(rootfs, 'bench.txt'), PAYLOAD, { mode: 0o644 }),
              () => driver.put(id),
              () => driver.remove(id),
            ]);
            into.lifecycle.push(t.ns);
            PEER_STEPS.forEach((s, k) => into.steps[s].push(t.steps[k] as number));
          }
        },
        close: () => driver.cleanup(),
      });
      await driver.create('image', '');

      const ds = await DeviceSet.open(join(dir, `ds-${setting}`), { options });
      const mnt = join(dir, `mnt-ds-${setting}`);
      await mkdir(mnt);
      streams.push({
        contender: 'deviceSet',
        setting,
        options,
        settle: settleReaper,
        async run(count, into) {
          for (let i = 0; i < count; i++) {
            const hash = `peer${++serial}`;
            const mp = join(mnt, hash);
            const t = await timeSteps([
              () => ds.addDevice(hash, 'image'),
              async () => {
                await mkdir(mp);
                await ds.mountDevice(hash, mp);
              },
              async () => writeFileSync(join(mp, 'bench.txt'), PAYLOAD, { mode: 0o644 }),
              () => ds.unmountDevice(hash, mp),
              () => ds.deleteDevice(hash, { sync: true }),
            ]);
            await rm(mp, { recursive: true, force: true });
            into.lifecycle.push(t.ns);
            PEER_STEPS.forEach((s, k) => into.steps[s].push(t.steps[k] as number));
          }
        },
        async close() {
          await ds.shutdown();
        },
      });
      await ds.addDevice('image', '');

      const dockerRoot = join(dir, `docker-${setting}`);
      streams.push({
        contender: 'docker',
        setting,
        options,
        settle: null,
        async run(count, into) {
          const argv = [DOCKERDM(plan.peersDir), '--root', dockerRoot, ...options.flatMap((o) => ['--opt', o]), 'bench', String(count)];
          const r = await runProcess(argv, peerEnv);
          addPeerBatch(r.stdout, count, { create: 'create', get: 'get', write: 'write', put: 'put', remove: 'remove' }, into, r.wallMs, 'dockerdm');
        },
        async close() {
          return undefined;
        },
      });
    }
    let ctrdRun = 0;
    streams.push({
      contender: 'containerd',
      setting: 'defaults',
      alsoAs: 'equal',
      options: CTRD_FLAGS,
      settle: null,
      async run(count, into) {
        // A fresh root each run: ctrdbench makes a new pool (its name has the pid) and removes it at the end.
        const root = join(dir, `ctrd-${++ctrdRun}`);
        try {
          const r = await runProcess([CTRDBENCH(plan.peersDir), '-n', String(count), '--root', root, ...CTRD_FLAGS], peerEnv);
          addPeerBatch(r.stdout, count, { create: 'prepare', get: 'mount', write: 'write', put: 'unmount', remove: 'remove' }, into, r.wallMs, 'ctrdbench');
        } finally {
          await rm(root, { recursive: true, force: true });
        }
      },
      async close() {
        return undefined;
      },
    });

    // The setup's udev work (pools, bases, image layers) done before anything is timed.
    const udev = new UdevBacklog(plan.udevSync);
    await udev.quiesce(settleReaper);
    if (plan.warmup > 0) {
      log(`warm-up: ${plan.warmup} lifecycle per contender and setting (dockerdm makes its pool and bench-image)`);
      for (const s of streams) {
        await s.run(plan.warmup, emptyTaken());
        await udev.quiesce(s.settle);
      }
    }
    const taken = new Map<Stream, Taken>(streams.map((s) => [s, emptyTaken()]));
    for (let r = 0; r < plan.rounds; r++) {
      for (const s of rotate(streams, r)) {
        const into = taken.get(s)!;
        try {
          await s.run(plan.batch, into);
          await udev.afterBatch(into.lifecycle, plan.batch, s.settle, into.udev);
        } catch (err) {
          if (err instanceof Error) err.message = `peers ${s.contender} ${s.setting} (round ${r + 1}): ${err.message}`;
          throw err;
        }
      }
      log(`round ${r + 1}/${plan.rounds}`);
    }
    const out: PeerStream[] = [];
    for (const s of streams) {
      const t = taken.get(s)!;
      const stream: PeerStream = {
        contender: s.contender,
        setting: s.setting,
        options: s.options,
        lifecycle: withSamples(t.lifecycle),
        steps: Object.fromEntries(PEER_STEPS.map((k) => [k, withSamples(t.steps[k])])) as Record<PeerStep, OpStats>,
        ...backlogFields(t.udev),
        ...(t.wallMs.length ? { processes: { initMs: t.initMs, baseMs: t.baseMs, wallMs: t.wallMs } } : {}),
      };
      out.push(stream);
      if (s.alsoAs) out.push({ ...stream, setting: s.alsoAs, sameAs: s.setting });
    }
    return { ...base, streams: out };
  } finally {
    for (const s of streams) await s.close().catch((err: unknown) => log(`${s.contender} ${s.setting} close: ${String(err)}`));
    await unmountUnder(dir);
    await rm(dir, { recursive: true, force: true }).catch(() => undefined);
  }
}
