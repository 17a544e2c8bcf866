/**
 * The part of the benchmark that runs in a kernel with device-mapper (the sandbox kernel,
 * or the host's as root): `node --expose-gc dist-bench/guest.js --mode full|smoke --out FILE`.
 * bench/cli.ts starts it; it writes one GuestResult as JSON to FILE.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { release } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import * as dm from '../dist/dm';
import { type BenchConfig, CONFIGS, type BenchMode, parseSections } from './config';
import {
  type BenchEnv,
  type Contender,
  dmContender,
  dmsetupContender,
  dmSyncContender,
  rawContender,
  rawHopContender,
} from './contenders';
import { measureConcurrency } from './concurrency';
import { measureDeviceSetConcurrency } from './deviceset-concurrency';
import { measureDeviceSetScale } from './deviceset-scale';
import { measureLifecycle } from './lifecycle';
import { measureCliCost } from './cli-cost';
import { measureMemory } from './memory';
import { measureImages } from './images';
import { defaultPeersDir, measurePeers } from './peers';
import { createBenchPool } from './pool';
import { measureSnapshotters } from './snapshotter';
import { RawClient } from './raw-client';
import { measureScale } from './scale';
import { IdAllocator, measureSingleOps } from './single-ops';
import { summarize } from './stats';
import type { GuestResult, SectionName } from './types';

export const REPO_ROOT = resolve(__dirname, '..');
export const RAW_BINARY = join(REPO_ROOT, 'dist-bench', 'bin', 'dm_raw_bench');

/** Thin devices are 10 GiB (a table size only: nothing is written). */
const THIN_BYTES = 10 * 2 ** 30;

const started = Date.now();
function log(section: string, line: string): void {
  process.stderr.write(`bench [${((Date.now() - started) / 1000).toFixed(1)} s] ${section}: ${line}\n`);
}

function kernelHasDeviceMapper(): boolean {
  try {
    return /^\s*\d+\s+device-mapper\s*$/m.test(readFileSync('/proc/misc', 'utf8'));
  } catch {
    return false;
  }
}

async function references(spawner: RawClient, cfg: BenchConfig['reference']): Promise<GuestResult['reference']> {
  const posix: number[] = [];
  const node: number[] = [];
  for (let i = 0; i < cfg.spawnSamples; i++) {
    posix.push(await spawner.spawn(['/bin/true']));
    const t0 = process.hrtime.bigint();
    const r = spawnSync('/bin/true', [], { stdio: 'ignore' });
    node.push(Number(process.hrtime.bigint() - t0));
    if (r.status !== 0) throw new Error('/bin/true failed');
  }
  const sync: number[] = [];
  const async: number[] = [];
  for (let i = 0; i < cfg.hopSamples; i++) {
    let t0 = process.hrtime.bigint();
    statSync('/proc/self');
    sync.push(Number(process.hrtime.bigint() - t0));
    t0 = process.hrtime.bigint();
    await stat('/proc/self');
    async.push(Number(process.hrtime.bigint() - t0));
  }
  return {
    posixSpawnTrue: summarize(posix),
    nodeSpawnSyncTrue: summarize(node),
    statSync: summarize(sync),
    statAsync: summarize(async),
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { mode: { type: 'string', default: 'smoke' }, out: { type: 'string' }, only: { type: 'string' }, peers: { type: 'string' }, 'cli-ref-main': { type: 'string' }, 'cli-ref-name': { type: 'string' } },
  });
  const sections = parseSections(values.only);
  const has = (s: SectionName) => sections.includes(s);
  const mode = values.mode as BenchMode;
  const config = CONFIGS[mode];
  if (!config) throw new Error(`--mode must be full or smoke, not ${values.mode}`);
  if (!values.out) throw new Error('--out FILE is required');
  if (process.getuid?.() !== 0 || !kernelHasDeviceMapper()) {
    throw new Error('needs root and a kernel with device-mapper: run it through bench/cli.ts (npm run bench)');
  }
  const peersDir = resolve(values.peers ?? defaultPeersDir());
  const udevSync = dm.udevSyncSupported();
  const udev = udevSync ? 'on' : 'off';
  const single = udevSync ? config.singleUdev : config.single;
  log('start', `mode ${mode}, udev ${udev}, kernel ${release()}, libdevmapper ${dm.getLibraryVersion()}`);

  const prefix = `dmb${process.pid}-`;
  const pool = await createBenchPool(prefix, 'a', { dataBytes: 2 ** 30, metadataBytes: 256 * 2 ** 20 });
  const clients: RawClient[] = [];
  try {
    const { client: raw, hello } = await RawClient.start(RAW_BINARY, pool.name);
    clients.push(raw);
    // Without udev, dmsetup leaves the /dev/mapper nodes to udev unless told otherwise.
    const spawnerEnv = udevSync ? process.env : { ...process.env, DM_DISABLE_UDEV: '1' };
    const { client: spawner } = await RawClient.start(RAW_BINARY, pool.name, spawnerEnv);
    clients.push(spawner);
    if (hello.udevSync !== udevSync) throw new Error(`udev sync: the addon says ${udevSync}, the C program ${hello.udevSync}`);

    const env: BenchEnv = { pool: pool.name, raw, spawner };
    const all: Contender[] = [rawContender(env), rawHopContender(env), dmContender(env), dmSyncContender(env), dmsetupContender(env)];
    const ids = new IdAllocator(1000);
    const status = await dm.getPoolStatus(pool.name);
    if (status.state !== 'ok') throw new Error(`the new pool reports ${status.state}`);
    const transactionId = { value: status.transactionId };
    const base = { ids, transactionId, prefix: pool.prefix, sizeBytes: THIN_BYTES };

    let singleOps: GuestResult['single'] = [];
    if (has('single')) {
      log('warm-up', 'one small round of every contender');
      await measureSingleOps({ ...base, contenders: all, samples: config.warmup, batch: config.warmup });

      log('single', `${single.samples} samples per operation and contender (dmsetup in every ${single.dmsetupEvery}. round), batches of ${single.batch}`);
      singleOps = await measureSingleOps({
        ...base,
        contenders: all,
        samples: single.samples,
        batch: single.batch,
        every: { dmsetup: single.dmsetupEvery },
        progress: (l) => log('single', l),
      });
    }

    let reference: GuestResult['reference'] | null = null;
    if (has('reference')) {
      log('reference', 'process start of /bin/true, libuv thread-pool round trip of fs.stat');
      reference = await references(spawner, config.reference);
    }

    let lifecycle: GuestResult['lifecycle'] = null;
    if (has('lifecycle')) {
      const lc = udevSync ? config.lifecycleUdev : config.lifecycle;
      log('lifecycle', `${lc.iterations} layer lifecycles per contender (dmsetup in every ${lc.dmsetupEvery}. batch), batches of ${lc.batch}`);
      lifecycle = await measureLifecycle({
        pool: pool.name,
        raw,
        spawner,
        ids,
        transactionId,
        prefix: `${pool.prefix}lc-`,
        udevSync,
        ...lc,
        warmup: 1,
        progress: (l) => log('lifecycle', l),
      });
    }

    const conc = udevSync ? config.concurrencyUdev : config.concurrency;
    let concurrency: GuestResult['concurrency'] = [];
    if (has('concurrency')) {
      log('concurrency', `${conc.parallel} at once`);
      concurrency = await measureConcurrency({
        pool: pool.name,
        raw,
        ids,
        ...conc,
        prefix: `${pool.prefix}conc-`,
        sizeBytes: THIN_BYTES,
        progress: (l) => log('concurrency', l),
      });
    }

    let memory: GuestResult['memory'] = null;
    if (!udevSync && has('memory')) {
      log('memory', `checkpoints at ${config.memory.checkpoints.join(', ')} calls`);
      memory = await measureMemory({ pool: pool.name, thinId: ids.take(1), ...config.memory, progress: (l) => log('memory', l) });
    }

    let scale: GuestResult['scale'] = [];
    if (!udevSync && has('scale')) {
      log('scale', `sizes ${config.scale.sizes.join(', ')}, one pool each, interleaved`);
      scale = await measureScale({
        ...config.scale,
        ids,
        sizeBytes: THIN_BYTES,
        fillerIds: new IdAllocator(1_000_000),
        async makePool(size) {
          const p = await createBenchPool(prefix, `s${size}`, { dataBytes: 2 ** 30, metadataBytes: 256 * 2 ** 20 });
          try {
            const { client } = await RawClient.start(RAW_BINARY, p.name);
            const penv: BenchEnv = { pool: p.name, raw: client, spawner };
            return {
              raw: client,
              contenders: [rawContender(penv), dmContender(penv), dmSyncContender(penv)],
              prefix: p.prefix,
              async destroy() {
                await client.close();
                await p.destroy();
              },
            };
          } catch (err) {
            await p.destroy();
            throw err;
          }
        },
        progress: (l) => log('scale', l),
      });
    }

    let dsscale: GuestResult['dsscale'] = null;
    if (has('dsscale')) {
      const c = udevSync ? config.dsscaleUdev : config.dsscale;
      log('dsscale', `DeviceSet with ${c.sizes.join(', ')} devices registered: ${c.opens} opens, ${c.lifecycles} lifecycles (batches of ${c.batch}) each`);
      dsscale = await measureDeviceSetScale({ rawBinary: RAW_BINARY, udevSync, ...c, progress: (l) => log('dsscale', l) });
    }

    let dsconcurrency: GuestResult['dsconcurrency'] = null;
    if (has('dsconcurrency')) {
      const c = udevSync ? config.dsconcurrencyUdev : config.dsconcurrency;
      log(
        'dsconcurrency',
        `${c.parallel} DeviceSet lifecycles at once against one after another, ${c.repetitions} repetition(s)` +
          (udevSync ? ` (with udev fewer than the ${config.dsconcurrency.parallel} without: each lifecycle waits for udev twice)` : ''),
      );
      dsconcurrency = await measureDeviceSetConcurrency({ udevSync, ...c, progress: (l) => log('dsconcurrency', l) });
    }

    let peers: GuestResult['peers'] = null;
    if (has('peers')) {
      const c = udevSync ? config.peersUdev : config.peers;
      peers = await measurePeers({ udevSync, peersDir, ...c, progress: (l) => log('peers', l) });
      if (peers.skipped) log('peers', `SKIPPED: ${peers.skipped} (looked for the peers in ${peersDir}; the rest of the benchmark runs)`);
    }

    let snapshotter: GuestResult['snapshotter'] = null;
    if (has('snapshotter')) {
      const c = udevSync ? config.snapshotterUdev : config.snapshotter;
      snapshotter = await measureSnapshotters({ udevSync, peersDir, ...c, progress: (l) => log('snapshotter', l) });
      if (snapshotter.skipped) log('snapshotter', `SKIPPED: ${snapshotter.skipped} (looked for the peers in ${peersDir}; the rest of the benchmark runs)`);
    }

    let cli: GuestResult['cli'] = null;
    if (has('cli')) {
      const c = udevSync ? config.cliUdev : config.cli;
      log('cli', `spawn to exit of node -e 0, devmapper --version, --help, pool status and dockerdm status, ${c.runs} runs each, interleaved`);
      const ref = values['cli-ref-main'] ? { main: values['cli-ref-main'], name: values['cli-ref-name'] ?? 'ref' } : undefined;
      cli = await measureCliCost({ spawner, udevSync, peersDir, ...c, ...(ref ? { ref } : {}), progress: (l) => log('cli', l) });
      for (const s of cli.skipped) log('cli', `SKIPPED: ${s}`);
    }

    let imagesResult: GuestResult['images'] = null;
    if (has('images')) {
      const c = udevSync ? config.imagesUdev : config.images;
      log('images', `time to a ready root disk (prepare + activate), ${c.levels.join(', ')} at once, ${c.samples} calls per level and contender`);
      imagesResult = await measureImages({ udevSync, peersDir, ...c, progress: (l) => log('images', l) });
      if (imagesResult.skipped) log('images', `SKIPPED: ${imagesResult.skipped}`);
    }

    const result: GuestResult = {
      schema: 1,
      sections,
      mode,
      udev,
      udevSync,
      kernel: { release: release(), sandbox: process.env.DEVMAPPER_SANDBOX === '1' },
      node: process.version,
      library: dm.getLibraryVersion(),
      uvThreadpoolSize: Number(process.env.UV_THREADPOOL_SIZE ?? 4),
      startedAt: new Date(started).toISOString(),
      durationMs: Date.now() - started,
      config,
      single: singleOps,
      scale,
      concurrency,
      memory,
      lifecycle,
      dsscale,
      dsconcurrency,
      peers,
      snapshotter,
      cli,
      images: imagesResult,
      reference,
    };
    writeFileSync(values.out, `${JSON.stringify(result)}\n`);
    log('done', `results in ${values.out}`);
  } finally {
    for (const c of clients) await c.close();
    await pool.destroy();
    log('cleanup', 'pool and devices removed');
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
