/**
 * A small image built here, offline, for the microVM demo: Debian's static busybox as
 * /bin/busybox with its applets linked to it (layer 1), and a layer on top with
 * /etc/os-release and an init script (layer 2). Written both as docker save writes it (a tar
 * with manifest.json and uncompressed layers) and as an OCI image layout directory (gzip
 * layers), the two forms images.import reads.
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { pack } from 'tar-stream';
import { images } from '../index';

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');
const mtime = new Date('2026-01-01T00:00:00Z');

function tarOf(entries: [header: Parameters<ReturnType<typeof pack>['entry']>[0], body?: Buffer | string][]): Promise<Buffer> {
  const p = pack();
  const chunks: Buffer[] = [];
  const done = new Promise<Buffer>((resolve, reject) => {
    p.on('data', (c: unknown) => void chunks.push(c as Buffer));
    p.on('end', () => resolve(Buffer.concat(chunks)));
    p.on('error', reject);
  });
  for (const [h, body] of entries) p.entry({ mtime, ...h }, body ?? '');
  p.finalize();
  return done;
}

async function layers(): Promise<Buffer[]> {
  const busybox = await readFile('/bin/busybox');
  const applets = ['sh', 'ls', 'cat', 'echo', 'uname', 'df', 'mount', 'hostname'];
  const bottom = await tarOf([
    [{ name: 'bin/', type: 'directory', mode: 0o755 }],
    [{ name: 'bin/busybox', mode: 0o755 }, busybox],
    ...applets.map((a): [{ name: string; type: 'symlink'; linkname: string }] => [{ name: `bin/${a}`, type: 'symlink', linkname: 'busybox' }]),
    [{ name: 'etc/', type: 'directory', mode: 0o755 }],
    [{ name: 'tmp/', type: 'directory', mode: 0o1777 }],
  ]);
  const top = await tarOf([
    [{ name: 'etc/', type: 'directory', mode: 0o755 }],
    [{ name: 'etc/os-release', mode: 0o644 }, 'NAME="devmapper microVM demo"\nID=busybox\n'],
    [{ name: 'sbin/', type: 'directory', mode: 0o755 }],
    [{ name: 'sbin/init', mode: 0o755 }, '#!/bin/sh\necho "booted from a thin snapshot"\nexec /bin/sh\n'],
  ]);
  return [bottom, top];
}

// The busybox is this machine's: so is the image's architecture.
const ARCH = images.hostPlatform().architecture;

function config(diffIds: string[]): Buffer {
  return Buffer.from(JSON.stringify({ architecture: ARCH, os: 'linux', config: { Cmd: ['/sbin/init'], Env: ['PATH=/bin:/sbin'] }, rootfs: { type: 'layers', diff_ids: diffIds } }));
}

/** docker save's form: <id>/layer.tar, <config digest>.json, manifest.json; returns the tar's path. */
export async function writeDockerSave(path: string, name: string): Promise<string> {
  const ls = await layers();
  const diffIds = ls.map((l) => `sha256:${sha(l)}`);
  const cfg = config(diffIds);
  const entries: [{ name: string }, Buffer | string][] = [];
  const layerPaths = diffIds.map((d, i) => `${sha(`${i}${d}`)}/layer.tar`);
  ls.forEach((layer, i) => entries.push([{ name: layerPaths[i]! }, layer]));
  entries.push([{ name: `${sha(cfg)}.json` }, cfg]);
  entries.push([{ name: 'manifest.json' }, JSON.stringify([{ Config: `${sha(cfg)}.json`, RepoTags: [name], Layers: layerPaths }])]);
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, await tarOf(entries));
  return path;
}

/** An OCI image layout directory with gzip layers; returns its path. */
export async function writeOciLayout(dir: string, name: string): Promise<string> {
  const ls = await layers();
  const blobs = new Map<string, Buffer>();
  const put = (b: Buffer) => {
    blobs.set(sha(b), b);
    return { digest: `sha256:${sha(b)}`, size: b.length };
  };
  const cfg = config(ls.map((l) => `sha256:${sha(l)}`));
  const layerDescs = ls.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...put(gzipSync(l)) }));
  const manifest = Buffer.from(
    JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...put(cfg) }, layers: layerDescs }),
  );
  const m = put(manifest);
  const index = { schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...m, platform: { os: 'linux', architecture: ARCH }, annotations: { 'org.opencontainers.image.ref.name': name } }] };
  await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });
  for (const [hex, b] of blobs) await writeFile(join(dir, 'blobs', 'sha256', hex), b);
  await writeFile(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  await writeFile(join(dir, 'index.json'), JSON.stringify(index));
  return dir;
}
