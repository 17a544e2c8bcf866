/**
 * The snapshotter section: containerd's lifecycle of a snapshot, Prepare(key, base) + mount +
 * write 26 bytes + unmount + Remove(key) on a committed base snapshot with a few files, in the
 * same kernel boot, on the same kind of pool, contenders interleaved batch by batch:
 *
 *   snapshotter       this library's Snapshotter in this process (mount(2) and umount2 through
 *                     lib/sys, as a program using the library would)
 *   snapshotterGrpc   the same served by `devmapper snapshotter serve` (a child process),
 *                     driven by `ctrdbench --socket`
 *   containerd        `ctrdbench`: containerd v1.7.13's devmapper snapshotter in its process
 *   containerdGrpc    that snapshotter served by `devmapper-proxy`, driven by `ctrdbench --socket`
 *
 * containerd's with its defaults (no discard, synchronous remove) and with our defaults'
 * settings (discard before delete, synchronous remove: `--discard`); ours have one setting,
 * their defaults, which are the equal ones. ctrdbench prints mean / p50 / p99 per step; with
 * at most 3 lifecycles per process they give back every sample (peer-output.ts).
 *
 * With udev, ours carry the udev work their calls left behind (udev-backlog.ts): the in-process
 * Snapshotter's through this process's reaper, the served one's through the server's own
 * (SIGUSR2 makes it settle and print how long that took), and udev settles between any two
 * batches.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { accessSync, constants, writeFileSync } from 'node:fs';
import { mkdir, rm, rmdir } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Snapshotter, type SnapshotMount } from '../dist/snapshotter';
import * as sys from '../dist/sys';
import { timeSteps, unmountUnder } from './lifecycle';
import { parseCtrdbenchBatch, parseSettledLine } from './peer-output';
import { CTRD_FLAGS, CTRDBENCH, runProcess } from './peers';
import { summarize } from './stats';
import { backlogFields, type BacklogTaken, emptyBacklog, type Settle, SETTLE_TIMEOUT_MS, settleReaper, UdevBacklog } from './udev-backlog';
import { SNAP_STEPS, type OpStats, type PeerSetting, type SnapBenchResult, type SnapContenderName, type SnapStep, type SnapStream } from './types';

export const DEVMAPPER_PROXY = (dir: string) => join(dir, 'containerd', 'devmapper-proxy');
/** Our command line, as built into dist/. */
const DEVMAPPER_CLI = resolve(__dirname, '..', 'dist', 'cli', 'main.js');

/** Why the section cannot run (a missing directory or binary), or null when it can. */
export function snapPeersMissing(dir: string): string | null {
  for (const f of [CTRDBENCH(dir), DEVMAPPER_PROXY(dir)]) {
    try {
      accessSync(f, constants.X_OK);
    } catch {
      return `${f} is missing or not executable`;
    }
  }
  return null;
}

/** ctrdbench's payload, and its base snapshot's files. */
const PAYLOAD = Buffer.from('abcdefghijklmnopqrstuvwxyz');
const BASE_FILES: Record<string, string | Buffer> = {
  'etc/hostname': 'ctrdbench\n',
  'etc/os-release': 'NAME=ctrdbench\nID=ctrdbench\n',
  'hello.txt': 'hello from the base layer\n',
  'data.bin': Buffer.alloc(64 * 1024),
};

/** The pool every contender makes: what ctrdbench's flags (CTRD_FLAGS) say, in dm.* options. */
const OUR_POOL = ['dm.fs=ext4', 'dm.basesize=16M', 'dm.loopdatasize=512M', 'dm.loopmetadatasize=128M'];

/** Our Snapshotter's options: its defaults on that pool (dm.blkdiscard true, no deferred removal or deletion). */
export function snapshotterOptions(udevSync: boolean): string[] {
  return [...OUR_POOL, ...(udevSync ? [] : ['dm.override_udev_sync_check=true'])];
}

/** containerd's flags per setting: its defaults, or ours (discard before delete; remove is synchronous in both). */
export function containerdFlags(setting: PeerSetting): string[] {
  return [...CTRD_FLAGS, ...(setting === 'equal' ? ['--discard'] : [])];
}

/** containerd's mount.All for one block-device mount: 'ro' becomes MS_RDONLY, the rest the data string. */
export async function mountSnapshot(m: SnapshotMount, target: string): Promise<void> {
  const data = m.options.filter((o) => o !== 'ro' && o !== 'rw');
  await sys.mount(m.source, target, m.type, { readOnly: m.options.includes('ro'), data: data.join(',') });
}

interface Taken {
  lifecycle: number[];
  steps: Record<SnapStep, number[]>;
  initMs: number[];
  baseMs: number[];
  wallMs: number[];
  udev: BacklogTaken;
}

function emptyTaken(): Taken {
  return {
    lifecycle: [],
    steps: Object.fromEntries(SNAP_STEPS.map((s) => [s, []])) as unknown as Record<SnapStep, number[]>,
    initMs: [],
    baseMs: [],
    wallMs: [],
    udev: emptyBacklog(),
  };
}

interface Stream {
  contender: SnapContenderName;
  setting: PeerSetting;
  options: string[];
  alsoAs?: PeerSetting;
  serverStartMs?: number;
  /** Ours: waits for the udev work its calls left behind (null: containerd's wait inside their calls). */
  settle: Settle | null;
  run(count: number, into: Taken): Promise<void>;
  close(): Promise<void>;
}

/** One ctrdbench batch's samples into `into`. */
function addCtrdbenchBatch(out: string, count: number, into: Taken, wallMs: number, what: string): void {
  const b = parseCtrdbenchBatch(out, count, what);
  for (const s of SNAP_STEPS) into.steps[s].push(...b.steps[s]);
  into.lifecycle.push(...b.lifecycle);
  if (b.initMs !== undefined) into.initMs.push(b.initMs);
  if (b.baseMs !== undefined) into.baseMs.push(b.baseMs);
  into.wallMs.push(wallMs);
}

/** A server in a child process, its output kept for the error message. */
interface Served {
  child: ChildProcess;
  socket: string;
  startMs: number;
  output(): string;
  stop(): Promise<void>;
  /**
   * `devmapper snapshotter serve` only: SIGUSR2, and the settle time (ns) of the server's udev
   * reaper from the line it prints then (devmapper-proxy would die of the signal).
   */
  settle: Settle;
}

function connects(socket: string): Promise<boolean> {
  return new Promise((ok) => {
    const c = connect(socket);
    c.once('connect', () => {
      c.destroy();
      ok(true);
    });
    c.once('error', () => ok(false));
  });
}

/** Starts argv, waits until its socket accepts a connection (or it exits, or timeoutMs passes). */
async function startServer(argv: string[], socket: string, env: NodeJS.ProcessEnv, timeoutMs: number): Promise<Served> {
  const t0 = process.hrtime.bigint();
  const child = spawn(argv[0] as string, argv.slice(1), { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let text = '';
  const keep = (b: Buffer) => {
    text = (text + b.toString('utf8')).slice(-4000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  // One SIGUSR2 at a time, answered by one line on stderr.
  let partial = '';
  let onSettleLine: ((line: string) => void) | null = null;
  child.stderr?.on('data', (b: Buffer) => {
    const lines = (partial + b.toString('utf8')).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) if (onSettleLine && /udev settle/.test(line)) onSettleLine(line);
  });
  let exited: string | null = null;
  const exit = new Promise<void>((done) => {
    child.once('exit', (code, signal) => {
      exited = `exit status ${code ?? signal}`;
      onSettleLine?.(`udev settle: ${argv[0]} ended with ${exited}`);
      done();
    });
    child.once('error', (err) => {
      exited = err.message;
      done();
    });
  });
  const stop = async () => {
    if (exited === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
      await exit;
      clearTimeout(timer);
    }
    if (exited !== 'exit status 0') throw new Error(`${argv[0]} ended with ${exited ?? 'nothing'}: ${text.trim().split('\n').slice(-3).join(' | ')}`);
  };
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (exited !== null) throw new Error(`${argv.join(' ')}: ${exited} before its socket answered: ${text.trim()}`);
    if (await connects(socket)) break;
    if (Date.now() > deadline) {
      await stop().catch(() => undefined);
      throw new Error(`${argv.join(' ')}: no answer on ${socket} after ${timeoutMs / 1000} s: ${text.trim()}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const settle: Settle = () =>
    new Promise((resolvePromise, reject) => {
      if (exited !== null) return reject(new Error(`${argv[0]} ended (${exited}) before its udev settle`));
      const timer = setTimeout(() => {
        onSettleLine = null;
        reject(new Error(`${argv.join(' ')}: no "udev settled" line ${(SETTLE_TIMEOUT_MS + 30_000) / 1000} s after SIGUSR2: ${text.trim().split('\n').slice(-3).join(' | ')}`));
      }, SETTLE_TIMEOUT_MS + 30_000);
      onSettleLine = (line) => {
        onSettleLine = null;
        clearTimeout(timer);
        const s = parseSettledLine(line);
        if (!s) reject(new Error(`${argv[0]}: ${line}`));
        else if (s.pending > 0) reject(new Error(`${argv[0]}: ${s.pending} udev cookie(s) still pending after ${SETTLE_TIMEOUT_MS / 1000} s`));
        else resolvePromise(Math.round(s.ms * 1e6));
      };
      child.kill('SIGUSR2');
    });
  return { child, socket, startMs: Number(process.hrtime.bigint() - t0) / 1e6, output: () => text, stop, settle };
}

export interface SnapPlan {
  udevSync: boolean;
  peersDir: string;
  rounds: number;
  batch: number;
  warmup: number;
  /** containerd's settings to measure (ours are the same measurement under both). */
  settings: readonly PeerSetting[];
  /** Whether containerd's snapshotter in ctrdbench's process is a contender (the served one always is). */
  containerdInProcess: boolean;
  progress?: (line: string) => void;
}

function rotate<T>(a: readonly T[], by: number): T[] {
  const k = by % a.length;
  return [...a.slice(k), ...a.slice(0, k)];
}

function withSamples(samples: number[]): OpStats {
  return { ...summarize(samples), samples };
}

const ms = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e6;

export async function measureSnapshotters(plan: SnapPlan): Promise<SnapBenchResult> {
  const log = plan.progress ?? (() => undefined);
  const setup =
    "each contender its own thin pool on sparse loop files in the guest's /tmp (tmpfs): 512 MiB data, 128 MiB metadata, 64 KiB blocks; a 16 MiB ext4 base; " +
    'the lifecycle on a committed base snapshot with a few files (4 files, 64 KiB), made once per ctrdbench process and once for the in-process Snapshotter';
  const result: SnapBenchResult = { peersDir: plan.peersDir, batch: plan.batch, rounds: plan.rounds, setup, streams: [] };
  const missing = snapPeersMissing(plan.peersDir);
  if (missing) return { ...result, skipped: missing };
  if (plan.batch > 3) throw new Error('snapshotter: batch must be at most 3 (a ctrdbench batch gives back its samples only then)');

  const dir = join(tmpdir(), `devmapper-bench-${process.pid}-snap`);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  // Without udev, containerd's dmsetup processes would leave the /dev/mapper nodes to a udev that is not there.
  const env = plan.udevSync ? process.env : { ...process.env, DM_DISABLE_UDEV: '1' };
  const options = snapshotterOptions(plan.udevSync);
  const streams: Stream[] = [];
  const servers: Served[] = [];
  let sn: Snapshotter | null = null;
  try {
    // 1. Our Snapshotter in this process.
    log(`Snapshotter in process: ${options.join(' ')}`);
    let t0 = process.hrtime.bigint();
    const theSn = await Snapshotter.open(join(dir, 'lib'), { options });
    sn = theSn;
    const openMs = ms(t0);
    const mnt = join(dir, 'mnt-lib');
    await mkdir(join(mnt, 'base'), { recursive: true });
    t0 = process.hrtime.bigint();
    const [bm] = await theSn.prepare('bench-base-prep', '');
    await mountSnapshot(bm as SnapshotMount, join(mnt, 'base'));
    try {
      await mkdir(join(mnt, 'base', 'etc'));
      for (const [name, data] of Object.entries(BASE_FILES)) writeFileSync(join(mnt, 'base', name), data, { mode: 0o644 });
    } finally {
      await sys.unmount(join(mnt, 'base'));
    }
    await theSn.commit('bench-base', 'bench-base-prep');
    const baseMs = ms(t0);
    let serial = 0;
    streams.push({
      contender: 'snapshotter',
      setting: 'defaults',
      ...(plan.settings.includes('equal') ? { alsoAs: 'equal' as const } : {}),
      options,
      settle: settleReaper,
      async run(count, into) {
        for (let i = 0; i < count; i++) {
          const key = `bench-${++serial}`;
          const target = join(mnt, `m${serial}`);
          await mkdir(target);
          let mounts: SnapshotMount[] = [];
          const t = await timeSteps([
            async () => {
              mounts = await theSn.prepare(key, 'bench-base');
            },
            () => mountSnapshot(mounts[0] as SnapshotMount, target),
            async () => writeFileSync(join(target, 'bench.txt'), PAYLOAD, { mode: 0o644 }),
            () => sys.unmount(target),
            () => theSn.remove(key),
          ]);
          await rmdir(target);
          into.lifecycle.push(t.ns);
          SNAP_STEPS.forEach((s, k) => into.steps[s].push(t.steps[k] as number));
        }
      },
      async close() {
        await theSn.remove('bench-base');
        await theSn.close();
      },
    });
    const libInit = { initMs: [openMs], baseMs: [baseMs] };

    // ctrdbench against a socket: a batch is one process, its own base snapshot on the server.
    // --keep leaves that base there (until the server stops): its removal after the lifecycles
    // would otherwise add its udev work (ours: a discard's activation and removal) to the
    // backlog charged to them. The base's commit comes before them and is not kept out.
    const overSocket = (socket: string, what: string) => async (count: number, into: Taken) => {
      const r = await runProcess([CTRDBENCH(plan.peersDir), '-n', String(count), '--socket', socket, '--keep'], env);
      addCtrdbenchBatch(r.stdout, count, into, r.wallMs, what);
    };

    // 2. Our Snapshotter served by the command line.
    const ourSocket = join(dir, 'ours.sock');
    const ourArgv = [process.execPath, DEVMAPPER_CLI, '--root', join(dir, 'served'), ...options.flatMap((o) => ['-o', o]), 'snapshotter', 'serve', '--socket', ourSocket];
    log(`devmapper snapshotter serve: ${ourArgv.slice(2).join(' ')}`);
    const ours = await startServer(ourArgv, ourSocket, env, 180_000);
    servers.push(ours);
    streams.push({
      contender: 'snapshotterGrpc',
      setting: 'defaults',
      ...(plan.settings.includes('equal') ? { alsoAs: 'equal' as const } : {}),
      options,
      serverStartMs: ours.startMs,
      // The settle starts when ctrdbench has exited, a few tens of ms after its last Remove returned: udev's work meanwhile is not counted.
      settle: ours.settle,
      run: overSocket(ourSocket, 'ctrdbench --socket (devmapper snapshotter serve)'),
      async close() {
        await ours.stop();
      },
    });

    for (const setting of plan.settings) {
      const flags = containerdFlags(setting);
      // 3. containerd's snapshotter in ctrdbench's process: a fresh root (and pool) per process.
      let run = 0;
      if (plan.containerdInProcess)
        streams.push({
          contender: 'containerd',
          setting,
          options: flags,
          settle: null,
          async run(count, into) {
            const root = join(dir, `ctrd-${setting}-${++run}`);
            try {
              const r = await runProcess([CTRDBENCH(plan.peersDir), '-n', String(count), '--root', root, ...flags], env);
              addCtrdbenchBatch(r.stdout, count, into, r.wallMs, 'ctrdbench');
            } finally {
              await rm(root, { recursive: true, force: true });
            }
          },
          async close() {
            return undefined;
          },
        });
      // 4. The same snapshotter served by devmapper-proxy, one pool for the whole run.
      const socket = join(dir, `proxy-${setting}.sock`);
      const argv = [DEVMAPPER_PROXY(plan.peersDir), '--root', join(dir, `proxy-${setting}`), '--socket', socket, ...flags];
      log(`devmapper-proxy ${setting}: ${argv.slice(1).join(' ')}`);
      const proxy = await startServer(argv, socket, env, 180_000);
      servers.push(proxy);
      streams.push({
        contender: 'containerdGrpc',
        setting,
        options: flags,
        serverStartMs: proxy.startMs,
        settle: null,
        run: overSocket(socket, 'ctrdbench --socket (devmapper-proxy)'),
        async close() {
          await proxy.stop();
        },
      });
    }

    // The setup's udev work (pools, bases, the servers' starts) done before anything is timed.
    const udev = new UdevBacklog(plan.udevSync);
    for (const s of streams) if (s.settle) await s.settle();
    await udev.quiesce();
    if (plan.warmup > 0) {
      log(`warm-up: ${plan.warmup} lifecycle per contender and setting`);
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
          if (err instanceof Error) err.message = `snapshotter ${s.contender} ${s.setting} (round ${r + 1}): ${err.message}`;
          throw err;
        }
      }
      log(`round ${r + 1}/${plan.rounds}`);
    }
    const out: SnapStream[] = [];
    for (const s of streams) {
      const t = taken.get(s)!;
      const processes = s.contender === 'snapshotter' ? { ...libInit, wallMs: [] } : { initMs: t.initMs, baseMs: t.baseMs, wallMs: t.wallMs };
      const stream: SnapStream = {
        contender: s.contender,
        setting: s.setting,
        options: s.options,
        lifecycle: withSamples(t.lifecycle),
        steps: Object.fromEntries(SNAP_STEPS.map((k) => [k, withSamples(t.steps[k])])) as Record<SnapStep, OpStats>,
        ...backlogFields(t.udev),
        processes,
        ...(s.serverStartMs === undefined ? {} : { serverStartMs: s.serverStartMs }),
      };
      out.push(stream);
      if (s.alsoAs) out.push({ ...stream, setting: s.alsoAs, sameAs: s.setting });
    }
    // Closed here, not only in finally, so that a server that does not exit 0 on SIGTERM fails the run.
    while (streams.length) await (streams.shift() as Stream).close();
    return { ...result, streams: out };
  } finally {
    for (const s of streams) await s.close().catch((err: unknown) => log(`${s.contender} ${s.setting} close: ${String(err)}`));
    for (const s of servers) if (s.child.exitCode === null && s.child.signalCode === null) s.child.kill('SIGKILL');
    await sn?.close().catch(() => undefined);
    await unmountUnder(dir);
    await rm(dir, { recursive: true, force: true }).catch(() => undefined);
  }
}
