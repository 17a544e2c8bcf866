/**
 * A one-layer OCI image-layout tar built offline, for `ctr images import`: the layer holds
 * Debian's static busybox as /bin/busybox with /bin/sh, /bin/echo and /bin/cat linked to it,
 * and /etc/hello. Returns the tar's path and the layer's chain id (one layer: its diff id).
 */
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import tar from 'tar-stream';

async function tarBuffer(fill: (pack: tar.Pack) => void): Promise<Buffer> {
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

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

export async function writeBusyboxImage(path: string, name: string): Promise<{ chainId: string; hello: string }> {
  const busybox = await readFile('/bin/busybox');
  const hello = 'hello from a thin device\n';
  const layer = await tarBuffer((p) => {
    p.entry({ name: 'bin/', type: 'directory', mode: 0o755 });
    p.entry({ name: 'bin/busybox', mode: 0o755 }, busybox);
    for (const l of ['sh', 'echo', 'cat']) p.entry({ name: `bin/${l}`, type: 'symlink', linkname: 'busybox' });
    p.entry({ name: 'etc/', type: 'directory', mode: 0o755 });
    p.entry({ name: 'etc/hello', mode: 0o644 }, hello);
  });
  const layerDigest = sha(layer);
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config: { Cmd: ['/bin/sh'], Env: ['PATH=/bin'] },
      rootfs: { type: 'layers', diff_ids: [`sha256:${layerDigest}`] },
    }),
  );
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: `sha256:${sha(config)}`, size: config.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: `sha256:${layerDigest}`, size: layer.length }],
    }),
  );
  const index = JSON.stringify({
    schemaVersion: 2,
    manifests: [
      {
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        digest: `sha256:${sha(manifest)}`,
        size: manifest.length,
        annotations: { 'io.containerd.image.name': name, 'org.opencontainers.image.ref.name': 'latest' },
      },
    ],
  });
  const image = await tarBuffer((p) => {
    p.entry({ name: 'oci-layout' }, JSON.stringify({ imageLayoutVersion: '1.0.0' }));
    p.entry({ name: 'index.json' }, index);
    for (const blob of [layer, config, manifest]) p.entry({ name: `blobs/sha256/${sha(blob)}` }, blob);
  });
  await writeFile(path, image);
  return { chainId: `sha256:${layerDigest}`, hello };
}
