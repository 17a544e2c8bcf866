/**
 * Images built offline for the image import tests: three small layers with a whiteout, an
 * opaque directory, a hard link and a symlink, written as a docker save tarball, an OCI image
 * layout directory or an OCI layout tar, with the layers plain, gzip or zstd (zstd by the
 * `zstd` program, run without a shell).
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import tar from 'tar-stream';

type Header = Parameters<tar.Pack['entry']>[0];

const run = promisify(execFile);

export type FixtureFormat = 'docker' | 'oci-dir' | 'oci-tar';
export type FixtureCompression = 'none' | 'gzip' | 'zstd';

export async function tarBuffer(fill: (pack: tar.Pack) => void): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const done = new Promise<Buffer>((resolve, reject) => {
    pack.on('data', (c: unknown) => void chunks.push(c as Buffer));
    pack.on('end', () => resolve(Buffer.concat(chunks)));
    pack.on('error', reject);
  });
  fill(pack);
  pack.finalize();
  return done;
}

export const sha = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');
const mtime = new Date('2024-01-02T03:04:05Z');

/** A file of n pseudo-random bytes (so that compression does not hide a wrong decoder). */
function noise(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

/**
 * The three layers of the test image; `variant` changes the top one (a second image sharing
 * the bottom two), `salt` the bottom one (an image sharing nothing with the others).
 */
export async function fixtureLayers(variant = 'a', opts: { salt?: string; bigBytes?: number } = {}): Promise<Buffer[]> {
  const bigBytes = opts.bigBytes ?? 256 * 1024;
  const e = (p: tar.Pack, h: Header, body: Buffer | string = '') => p.entry({ mtime, mode: 0o644, ...h }, body);
  const l0 = await tarBuffer((p) => {
    for (const d of ['bin/', 'etc/', 'var/', 'var/cache/', 'usr/', 'usr/share/', 'usr/share/doc/']) e(p, { name: d, type: 'directory', mode: 0o755 });
    e(p, { name: 'etc/hello', mode: 0o644 }, 'hello from layer 0\n');
    if (opts.salt !== undefined) e(p, { name: 'etc/salt' }, opts.salt);
    e(p, { name: 'etc/old', mode: 0o600 }, 'whited out by layer 1\n');
    e(p, { name: 'var/cache/a' }, 'a');
    e(p, { name: 'var/cache/b' }, 'b');
    e(p, { name: 'usr/share/doc/README' }, 'docs\n');
    e(p, { name: 'bin/tool', mode: 0o755 }, noise(bigBytes, 1));
    e(p, { name: 'bin/tool-link', type: 'link', linkname: 'bin/tool' });
    e(p, { name: 'bin/sh', type: 'symlink', linkname: 'tool' });
  });
  const l1 = await tarBuffer((p) => {
    e(p, { name: 'etc/', type: 'directory', mode: 0o755 });
    e(p, { name: 'etc/.wh.old' });
    e(p, { name: 'etc/hello' }, 'hello from layer 1\n');
    e(p, { name: 'var/cache/', type: 'directory', mode: 0o755 });
    e(p, { name: 'var/cache/.wh..wh..opq' });
    e(p, { name: 'var/cache/c' }, 'c');
    e(p, { name: 'var/data', mode: 0o640, uid: 1000, gid: 1000 }, noise(bigBytes * 4, 2));
  });
  const l2 = await tarBuffer((p) => {
    e(p, { name: 'usr/share/', type: 'directory', mode: 0o755 });
    e(p, { name: 'usr/share/.wh.doc' });
    e(p, { name: 'app/', type: 'directory', mode: 0o755 });
    e(p, { name: 'app/run.sh', mode: 0o755 }, `#!/bin/sh\necho variant ${variant}\n`);
  });
  return [l0, l1, l2];
}

/** What the image's tree holds after all three layers (path → content), for checks. */
export const EXPECTED_FILES: Readonly<Record<string, string>> = {
  'etc/hello': 'hello from layer 1\n',
  'var/cache/c': 'c',
  'app/run.sh': '#!/bin/sh\necho variant a\n',
};
/** Paths the whiteouts and the opaque directory removed. */
export const REMOVED_PATHS = ['etc/old', 'var/cache/a', 'var/cache/b', 'usr/share/doc'];

async function compress(layer: Buffer, how: FixtureCompression, scratch: string): Promise<Buffer> {
  if (how === 'none') return layer;
  if (how === 'gzip') return gzipSync(layer);
  await mkdir(scratch, { recursive: true });
  const input = join(scratch, `layer-${sha(layer)}.tar`);
  await writeFile(input, layer);
  await run('zstd', ['-q', '-f', '-3', input, '-o', `${input}.zst`]);
  const out = await readFile(`${input}.zst`);
  await rm(input, { force: true });
  await rm(`${input}.zst`, { force: true });
  return out;
}

const LAYER_TYPES: Record<FixtureCompression, string> = {
  none: 'application/vnd.oci.image.layer.v1.tar',
  gzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  zstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
};

export interface BuiltImage {
  path: string;
  diffIds: string[];
  /** The layer blobs' file names inside the source (to damage one). */
  layerFiles: string[];
}

export interface BuildOptions {
  format: FixtureFormat;
  compression?: FixtureCompression;
  name?: string;
  layers?: Buffer[];
  /** Writes this diff ID for layer 1 instead of the real one (digests of config and manifest stay right). */
  wrongDiffId?: string;
  /** A multi-platform index: an arm64 manifest first, then the amd64 one (OCI only). */
  multiPlatform?: boolean;
}

/** Writes the image at path (a directory for oci-dir, else a tar file). */
export async function buildImage(path: string, opts: BuildOptions): Promise<BuiltImage> {
  const layers = opts.layers ?? (await fixtureLayers());
  const compression = opts.compression ?? 'none';
  const diffIds = layers.map((l) => `sha256:${sha(l)}`);
  const configDiffIds = [...diffIds];
  if (opts.wrongDiffId) configDiffIds[1] = opts.wrongDiffId;
  const files = new Map<string, Buffer>();
  const configFor = (architecture: string) =>
    Buffer.from(JSON.stringify({ architecture, os: 'linux', config: { Cmd: ['/app/run.sh'], Env: ['PATH=/bin'] }, rootfs: { type: 'layers', diff_ids: configDiffIds } }));
  const config = configFor('amd64');
  const name = opts.name ?? 'test/image:latest';
  const layerFiles: string[] = [];
  if (opts.format === 'docker') {
    const layerPaths: string[] = [];
    for (const [i, l] of layers.entries()) {
      const id = sha(`${i} ${diffIds[i]}`);
      const blob = await compress(l, compression, join(dirname(path), '.zstd'));
      files.set(`${id}/layer.tar`, blob);
      files.set(`${id}/VERSION`, Buffer.from('1.0'));
      layerPaths.push(`${id}/layer.tar`);
    }
    files.set(`${sha(config)}.json`, config);
    files.set('manifest.json', Buffer.from(JSON.stringify([{ Config: `${sha(config)}.json`, RepoTags: [name], Layers: layerPaths }])));
    layerFiles.push(...layerPaths);
  } else {
    const manifestFor = async (cfg: Buffer) => {
      const descs = [];
      for (const l of layers) {
        const blob = await compress(l, compression, join(dirname(path), '.zstd'));
        files.set(`blobs/sha256/${sha(blob)}`, blob);
        descs.push({ mediaType: LAYER_TYPES[compression], digest: `sha256:${sha(blob)}`, size: blob.length });
      }
      files.set(`blobs/sha256/${sha(cfg)}`, cfg);
      const m = Buffer.from(
        JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: `sha256:${sha(cfg)}`, size: cfg.length }, layers: descs }),
      );
      files.set(`blobs/sha256/${sha(m)}`, m);
      return { m, descs };
    };
    const { m, descs } = await manifestFor(config);
    layerFiles.push(...descs.map((d) => `blobs/sha256/${d.digest.slice(7)}`));
    const desc = (mb: Buffer, architecture: string) => ({ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: `sha256:${sha(mb)}`, size: mb.length, platform: { os: 'linux', architecture } });
    let top: object;
    if (opts.multiPlatform) {
      const arm = await manifestFor(configFor('arm64'));
      const inner = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [desc(arm.m, 'arm64'), desc(m, 'amd64')] }));
      files.set(`blobs/sha256/${sha(inner)}`, inner);
      top = { mediaType: 'application/vnd.oci.image.index.v1+json', digest: `sha256:${sha(inner)}`, size: inner.length };
    } else top = { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: `sha256:${sha(m)}`, size: m.length };
    files.set('oci-layout', Buffer.from(JSON.stringify({ imageLayoutVersion: '1.0.0' })));
    files.set('index.json', Buffer.from(JSON.stringify({ schemaVersion: 2, manifests: [{ ...top, annotations: { 'io.containerd.image.name': name, 'org.opencontainers.image.ref.name': 'latest' } }] })));
  }
  if (opts.format === 'oci-dir') {
    for (const [f, b] of files) {
      await mkdir(dirname(join(path, f)), { recursive: true });
      await writeFile(join(path, f), b);
    }
  } else {
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, await tarBuffer((p) => {
      for (const [f, b] of files) p.entry({ name: f, mode: 0o644, mtime }, b);
    }));
  }
  return { path, diffIds, layerFiles };
}
