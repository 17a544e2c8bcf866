/**
 * The images section: time to a ready root disk from an imported image, one call = a
 * snapshot of the image's top layer made and its device activated, with 1, 16 and 64 calls
 * started at once, p50 / p99 of each call's own latency:
 *
 *   library     images.rootDisk in this process (Snapshotter.prepare of the top chain ID)
 *   served      the same Snapshotter served over gRPC (serveSnapshotter), Prepare from a gRPC client
 *   containerd  containerd v1.7.13's devmapper snapshotter served by devmapper-proxy
 *               (../shared/peers/containerd), Prepare from the same gRPC client
 *
 * The same two-layer image is in both: imported with images.import for ours; for containerd
 * committed through its gRPC API as containerd's unpacker does (Prepare, mount, apply the
 * layer tar, unmount, Commit under the chain ID). Each contender has its own pool on sparse
 * loop files in the guest's /tmp: 1 GiB data, 128 MiB metadata, 64 MiB ext4 base.
 * Removal after each round is not timed. With udev, ours' calls carry the udev work they left
 * behind (udev-backlog.ts: the settle of this process's reaper after each round, which serves
 * the gRPC contender too, shared out over the round's calls), and udev settles after each
 * round's removals.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { pack } from 'tar-stream';
import { images, layers, serveSnapshotter, Snapshotter, sys } from '../dist';
import { summarize } from './stats';
import type { ImagesBenchResult, ImagesContender, ImagesLevel } from './types';
import { type BacklogTaken, emptyBacklog, type Settle, settleReaper, UdevBacklog } from './udev-backlog';

const PROTO_DIR = join(__dirname, '..', 'proto');
export const DEVMAPPER_PROXY = (dir: string) => join(dir, 'containerd', 'devmapper-proxy');

type Client = grpc.Client & Record<string, (req: object, cb: (err: grpc.ServiceError | null, res: Record<string, unknown>) => void) => void>;

function client(socket: string): Client {
  const def = protoLoader.loadSync(join('containerd', 'snapshots.proto'), { includeDirs: [PROTO_DIR], keepCase: true, longs: Number, enums: String, defaults: true });
  const pkg = grpc.loadPackageDefinition(def) as unknown as { containerd: { services: { snapshots: { v1: { Snapshots: grpc.ServiceClientConstructor } } } } };
  return new pkg.containerd.services.snapshots.v1.Snapshots(`unix:${socket}`, grpc.credentials.createInsecure()) as unknown as Client;
}

function call(c: Client, method: string, req: object): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => c[method]!(req, (err, res) => (err ? reject(err) : resolve(res))));
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

function tarOf(entries: [string, Buffer | string][]): Promise<Buffer> {
  const p = pack();
  const chunks: Buffer[] = [];
  const done = new Promise<Buffer>((resolve, reject) => {
    p.on('data', (c: unknown) => void chunks.push(c as Buffer));
    p.on('end', () => resolve(Buffer.concat(chunks)));
    p.on('error', reject);
  });
  const mtime = new Date('2026-01-01T00:00:00Z');
  for (const [name, body] of entries) p.entry(name.endsWith('/') ? { name, type: 'directory', mode: 0o755, mtime } : { name, mode: 0o755, mtime }, body);
  p.finalize();
  return done;
}

/** Two small layers: a 1 MiB "binary" and a few files, then an etc/ layer. */
async function imageLayers(): Promise<Buffer[]> {
  const bin = Buffer.alloc(2 ** 20);
  for (let i = 0; i < bin.length; i++) bin[i] = (i * 2654435761) >>> 24;
  return [
    await tarOf([['bin/', ''], ['bin/app', bin], ['etc/', ''], ['etc/os-release', 'ID=bench\n']]),
    await tarOf([['etc/', ''], ['etc/hostname', 'bench\n'], ['srv/', ''], ['srv/index.html', '<p>hi</p>\n']]),
  ];
}

async function writeOci(dir: string, ls: Buffer[]): Promise<void> {
  await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });
  const put = async (b: Buffer) => {
    await writeFile(join(dir, 'blobs', 'sha256', sha(b)), b);
    return { digest: `sha256:${sha(b)}`, size: b.length };
  };
  const config = Buffer.from(JSON.stringify({ architecture: images.hostPlatform().architecture, os: 'linux', rootfs: { type: 'layers', diff_ids: ls.map((l) => `sha256:${sha(l)}`) } }));
  const layerDescs = [];
  for (const l of ls) layerDescs.push({ mediaType: 'application/vnd.oci.image.layer.v1.tar', ...(await put(l)) });
  const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...(await put(config)) }, layers: layerDescs }));
  const m = await put(manifest);
  await writeFile(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  await writeFile(join(dir, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...m, annotations: { 'org.opencontainers.image.ref.name': 'bench' } }] }));
}

/** How a contender's rounds end: its udev backlog charged (ours: `settle`), udev settled after the removals. */
interface Udev {
  backlog: UdevBacklog;
  settle: Settle | null;
}

/**
 * c calls started at once, `rounds` times; each call's own latency in ns plus, for ours, its
 * share of the udev backlog the round left (in `into`); cleanup after each round untimed.
 */
async function measureLevel(
  c: number,
  rounds: number,
  make: (key: string) => Promise<void>,
  drop: (key: string) => Promise<void>,
  tag: string,
  udev: Udev,
  into: BacklogTaken,
): Promise<number[]> {
  const samples: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const keys = Array.from({ length: c }, (_, i) => `${tag}-c${c}-r${r}-${i}`);
    const times = await Promise.all(
      keys.map(async (k) => {
        const t = process.hrtime.bigint();
        await make(k);
        return Number(process.hrtime.bigint() - t);
      }),
    );
    samples.push(...times);
    await udev.backlog.charge(samples, c, udev.settle, into);
    for (const k of keys) await drop(k);
    await udev.backlog.quiesce(udev.settle, into);
  }
  return samples;
}

async function waitForSocket(path: string, child: ChildProcess, ms: number): Promise<void> {
  const until = Date.now() + ms;
  while (!existsSync(path)) {
    if (child.exitCode !== null) throw new Error(`devmapper-proxy exited with ${child.exitCode} before listening`);
    if (Date.now() > until) throw new Error(`devmapper-proxy did not listen on ${path} within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export interface ImagesPlan {
  udevSync: boolean;
  peersDir: string;
  levels: number[];
  /** Calls per level and contender (rounds of `level` calls: at least one round). */
  samples: number;
  progress?: (line: string) => void;
}

export async function measureImages(plan: ImagesPlan): Promise<ImagesBenchResult> {
  const log = plan.progress ?? (() => undefined);
  const dir = join(tmpdir(), `devmapper-bench-${process.pid}-images`);
  const setup =
    "each contender its own thin pool on sparse loop files in the guest's /tmp (tmpfs): 1 GiB data, 128 MiB metadata; a 64 MiB ext4 base; " +
    'the image: two uncompressed layers (a 1 MiB file and a few small ones), imported (ours) or committed through gRPC (containerd)';
  const result: ImagesBenchResult = { setup, peersDir: plan.peersDir, levels: [] };
  const ls = await imageLayers();
  const contenders: Partial<Record<ImagesContender, Record<number, number[]>>> = {};
  const backlogs: Partial<Record<ImagesContender, Record<number, BacklogTaken>>> = {};
  const backlog = new UdevBacklog(plan.udevSync);
  /** The backlog record of contender `name` at level `c`. */
  const taken = (name: ImagesContender, c: number): BacklogTaken => ((backlogs[name] ??= {})[c] ??= emptyBacklog());
  const ours: Udev = { backlog, settle: settleReaper };
  const theirs: Udev = { backlog, settle: null };
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const rounds = (c: number) => Math.max(1, Math.ceil(plan.samples / c));
  try {
    // Ours: the library in-process, then the same Snapshotter over gRPC.
    await writeOci(join(dir, 'oci'), ls);
    const options = ['dm.fs=ext4', 'dm.basesize=64M', 'dm.loopdatasize=1G', 'dm.loopmetadatasize=128M', ...(plan.udevSync ? [] : ['dm.override_udev_sync_check=true'])];
    const sn = await Snapshotter.open(join(dir, 'ours'), { options });
    try {
      const { image } = await images.import(join(dir, 'oci'), { snapshotter: sn, name: 'bench' });
      const top = image.chainIds[image.chainIds.length - 1]!;
      log(`library: image imported (${image.chainIds.length} layers); levels ${plan.levels.join(', ')}`);
      await backlog.quiesce(settleReaper);
      const lib: Record<number, number[]> = {};
      for (const c of plan.levels) {
        lib[c] = await measureLevel(c, rounds(c), async (k) => void (await images.rootDisk('bench', k, { snapshotter: sn })), (k) => sn.remove(k), 'lib', ours, taken('library', c));
        log(`library, ${c} at once: p50 ${(summarize(lib[c]!).p50 / 1e6).toFixed(1)} ms`);
      }
      contenders.library = lib;
      const socket = join(dir, 'ours.sock');
      const server = await serveSnapshotter(sn, { socket });
      const cl = client(socket);
      try {
        const served: Record<number, number[]> = {};
        for (const c of plan.levels) {
          // The server is in this process: its calls' cookies go to this process's reaper.
          served[c] = await measureLevel(
            c,
            rounds(c),
            async (k) => void (await call(cl, 'Prepare', { key: k, parent: top })),
            async (k) => void (await call(cl, 'Remove', { key: k })),
            'srv',
            ours,
            taken('served', c),
          );
          log(`served, ${c} at once: p50 ${(summarize(served[c]!).p50 / 1e6).toFixed(1)} ms`);
        }
        contenders.served = served;
      } finally {
        cl.close();
        await server.close();
      }
    } finally {
      await sn.close();
    }

    // containerd's devmapper snapshotter, served by devmapper-proxy.
    const proxy = DEVMAPPER_PROXY(plan.peersDir);
    if (!existsSync(proxy)) result.skipped = `${proxy} is missing (containerd's side skipped; ours ran)`;
    else {
      const socket = join(dir, 'ctrd.sock');
      // Without udev, the dmsetup processes it starts would leave the /dev/mapper nodes to a udev that is not there.
      const env = plan.udevSync ? process.env : { ...process.env, DM_DISABLE_UDEV: '1' };
      const child = spawn(proxy, ['--root', join(dir, 'ctrd'), '--socket', socket, '--data-size', '1GB', '--meta-size', '128MB', '--base-size', '64MB', '--fs', 'ext4'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr!.on('data', (c: Buffer) => (stderr = (stderr + c.toString()).slice(-2000)));
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      try {
        await waitForSocket(socket, child, 60_000);
        const cl = client(socket);
        try {
          // containerd's unpack of each layer: Prepare, mount, apply, unmount, Commit under the chain ID.
          const chain = images.chainIds(ls.map((l) => `sha256:${sha(l)}`));
          const mnt = join(dir, 'ctrd-mnt');
          await mkdir(mnt, { recursive: true });
          for (const [i, l] of ls.entries()) {
            const key = `unpack-${i}`;
            const res = await call(cl, 'Prepare', { key, parent: i === 0 ? '' : chain[i - 1] });
            const m = (res.mounts as { type: string; source: string; options: string[] }[])[0]!;
            await sys.mount(m.source, mnt, m.type, { data: m.options.filter((o) => o !== 'ro').join(',') });
            try {
              await layers.applyLayer(mnt, Readable.from([l]), { scratchParent: mnt });
            } finally {
              await sys.unmount(mnt);
            }
            await call(cl, 'Commit', { name: chain[i], key });
          }
          log(`containerd: image committed (${chain.length} layers) through gRPC`);
          await backlog.quiesce();
          const top = chain[chain.length - 1]!;
          const ctrd: Record<number, number[]> = {};
          for (const c of plan.levels) {
            ctrd[c] = await measureLevel(
              c,
              rounds(c),
              async (k) => void (await call(cl, 'Prepare', { key: k, parent: top })),
              async (k) => void (await call(cl, 'Remove', { key: k })),
              'ctrd',
              theirs,
              taken('containerd', c),
            );
            log(`containerd, ${c} at once: p50 ${(summarize(ctrd[c]!).p50 / 1e6).toFixed(1)} ms`);
          }
          contenders.containerd = ctrd;
          for (let i = chain.length - 1; i >= 0; i--) await call(cl, 'Remove', { key: chain[i] });
        } finally {
          cl.close();
        }
      } catch (err) {
        throw new Error(`containerd's side failed: ${(err as Error).message}; devmapper-proxy said: ${stderr.trim().split('\n').slice(-3).join(' | ')}`);
      } finally {
        child.kill('SIGTERM');
        await exited;
      }
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  for (const c of plan.levels) {
    const level: Required<ImagesLevel> = { concurrency: c, contenders: {}, udevBacklog: {}, udevadmSettleMs: {} };
    for (const [name, byLevel] of Object.entries(contenders) as [ImagesContender, Record<number, number[]>][]) {
      level.contenders[name] = summarize(byLevel[c] ?? []);
      const t = backlogs[name]?.[c];
      if (t?.backlog.length) level.udevBacklog[name] = summarize(t.backlog);
      if (t?.udevadmMs.length) level.udevadmSettleMs[name] = t.udevadmMs;
    }
    result.levels.push(level);
  }
  return result;
}
