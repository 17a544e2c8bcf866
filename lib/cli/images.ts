/**
 * The image commands: import (docker save or OCI layout into layer snapshots), ls, rm, and
 * disk (a root disk of an image for a VM or a container), with rmdisk to remove one. They
 * open the Snapshotter at --root; the library is loaded inside each command.
 */
import { resolve } from 'node:path';
import { parseSize } from '../util';
import type { ImportProgress, ImageRecord } from '../images';
import type { Snapshotter } from '../snapshotter';
import { usageError } from './args';
import { arg, type CommandContext, type CommandSpec, type ParsedCommand } from './command';

async function withSnapshotter<T>(cmd: ParsedCommand, ctx: CommandContext, fn: (sn: Snapshotter) => Promise<T>): Promise<T> {
  const { Snapshotter } = await import('../snapshotter');
  const { root, options } = cmd.global;
  const sn = await ctx.out.progress.during(`opening ${root}`, () => Snapshotter.open(root, { options }));
  try {
    return await fn(sn);
  } finally {
    await sn.close();
  }
}

const MIB = 2 ** 20;

/** "layer 2/3 [#######.............] 3.1/8.0 MiB": the import's progress line on a terminal. */
export function progressLine(p: ImportProgress, width = 20): string {
  const fraction = p.totalBytes === 0 ? 1 : Math.min(1, p.bytes / p.totalBytes);
  const filled = Math.round(fraction * width);
  const what = p.state === 'reused' ? 'reused' : `${(p.bytes / MIB).toFixed(1)}/${(p.totalBytes / MIB).toFixed(1)} MiB`;
  return `layer ${p.layer + 1}/${p.layers} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${what}`;
}

function platformOf(cmd: ParsedCommand): string | undefined {
  const p = cmd.values.platform;
  if (p === undefined) return undefined;
  if (typeof p !== 'string' || !/^[a-z0-9_.-]+\/[a-z0-9_.-]+(\/[a-z0-9_.-]+)?$/.test(p))
    throw usageError(`image import: --platform must be os/arch[/variant] such as linux/arm64, not ${JSON.stringify(p)}`, '--platform');
  return p;
}

function sizeOf(cmd: ParsedCommand): number | undefined {
  const text = cmd.values.size;
  if (text === undefined) return undefined;
  let bytes: number;
  try {
    bytes = parseSize(String(text), '--size');
  } catch {
    throw usageError(`image disk: --size must be a size such as 2G or 512M, not ${JSON.stringify(text)}`, '--size');
  }
  if (bytes <= 0 || bytes % 512 !== 0) throw usageError(`image disk: --size must be positive and a multiple of 512 bytes, not ${JSON.stringify(text)}`, '--size');
  return bytes;
}

export interface ImageImportOutput {
  name: string;
  format: string;
  platform: string;
  manifestDigest: string | null;
  configDigest: string;
  chainIds: string[];
  unpacked: number;
  reused: number;
  seconds: number;
}

async function imageImport(cmd: ParsedCommand, ctx: CommandContext): Promise<void> {
  const source = resolve(arg(cmd, 'SOURCE'));
  const platform = platformOf(cmd);
  const { import: importImage } = await import('../images');
  const started = performance.now();
  const out = await withSnapshotter(cmd, ctx, async (sn): Promise<ImageImportOutput> => {
    ctx.out.progress.start(`importing ${source}`);
    try {
      const r = await importImage(source, {
        snapshotter: sn,
        name: cmd.values.name as string | undefined,
        ref: cmd.values.ref as string | undefined,
        platform,
        onProgress: (p) => ctx.out.progress.update(progressLine(p)),
      });
      const i = r.image;
      return { name: i.name, format: i.format, platform: i.platform, manifestDigest: i.manifestDigest, configDigest: i.configDigest, chainIds: i.chainIds, unpacked: r.unpacked, reused: r.reused, seconds: (performance.now() - started) / 1000 };
    } finally {
      ctx.out.progress.stop();
    }
  });
  ctx.out.result(out, (r) =>
    ctx.out.line(`${r.name}: ${r.chainIds.length} layer${r.chainIds.length === 1 ? '' : 's'} (${r.unpacked} unpacked, ${r.reused} reused), ${r.platform}, in ${r.seconds.toFixed(1)}s`),
  );
}

function listRow(i: ImageRecord): { name: string; format: string; platform: string; layers: number; top: string; configDigest: string; created: string } {
  return { name: i.name, format: i.format, platform: i.platform, layers: i.chainIds.length, top: i.chainIds[i.chainIds.length - 1] ?? '', configDigest: i.configDigest, created: i.created.toISOString() };
}

async function imageList(cmd: ParsedCommand, ctx: CommandContext): Promise<void> {
  const images = await import('../images');
  const rows = await withSnapshotter(cmd, ctx, async (sn) => (await images.list({ snapshotter: sn })).map(listRow));
  ctx.out.result(rows, (r) =>
    ctx.out.table(
      ['NAME', 'FORMAT', 'PLATFORM', 'LAYERS', 'CONFIG', 'CREATED'],
      r.map((x) => [x.name, x.format, x.platform, x.layers, x.configDigest.slice(0, 19), x.created]),
      { align: ['left', 'left', 'left', 'right'] },
    ),
  );
}

async function imageRemove(cmd: ParsedCommand, ctx: CommandContext): Promise<void> {
  const name = arg(cmd, 'NAME');
  const images = await import('../images');
  const r = await withSnapshotter(cmd, ctx, (sn) => images.remove(name, { snapshotter: sn }));
  ctx.out.result(r, (x) => ctx.out.line(`${x.name}: removed, with ${x.removedLayers.length} layer snapshot${x.removedLayers.length === 1 ? '' : 's'} no other image uses`));
}

async function imageDisk(cmd: ParsedCommand, ctx: CommandContext): Promise<void> {
  const name = arg(cmd, 'NAME');
  const key = arg(cmd, 'KEY');
  const size = sizeOf(cmd);
  const images = await import('../images');
  const disk = await withSnapshotter(cmd, ctx, (sn) =>
    images.rootDisk(name, key, { snapshotter: sn, readOnly: cmd.values['read-only'] === true, ...(size === undefined ? {} : { size }) }),
  );
  ctx.out.result(disk, (d) => ctx.out.line(d.device));
}

async function imageRemoveDisk(cmd: ParsedCommand, ctx: CommandContext): Promise<void> {
  const key = arg(cmd, 'KEY');
  await withSnapshotter(cmd, ctx, (sn) => sn.remove(key));
  ctx.out.result({ key, removed: true }, () => undefined);
}

export const imageCommands: CommandSpec[] = [
  {
    name: 'image import',
    summary: 'imports a docker save tarball or an OCI image layout (directory or tar) into layer snapshots',
    description:
      'Each layer becomes a committed snapshot named by its chain ID; layers already there (shared with another image, or from an\n' +
      'interrupted import) are reused. Layers may be plain, gzip or zstd. Every blob is checked against its digest and every layer\n' +
      'against its diff ID while it streams: a mismatch is ERR_IMAGE_DIGEST (exit 10) and leaves nothing of that layer.\n' +
      'A progress bar shows on a terminal.',
    positionals: [{ name: 'SOURCE', required: true, description: 'the image: a tar file (docker save, OCI archive) or an OCI layout directory' }],
    options: {
      name: { type: 'string', value: 'NAME', description: "the image's name (default: the source's own ref or tag)" },
      platform: { type: 'string', value: 'OS/ARCH', description: "the platform to pick from a multi-platform index (default linux/this machine's architecture)" },
      ref: { type: 'string', value: 'REF', description: 'the image to pick from a source holding several (its ref annotation or tag)' },
    },
    check: (cmd) => void platformOf(cmd),
    examples: ['devmapper --root /var/lib/vms image import busybox.tar --name busybox', 'devmapper image import ./oci-layout --platform linux/arm64'],
    run: imageImport,
  },
  {
    name: 'image ls',
    summary: 'lists the imported images',
    examples: ['devmapper --root /var/lib/vms image ls --json'],
    run: imageList,
  },
  {
    name: 'image rm',
    summary: "removes an image's record and the layer snapshots no other image uses",
    description: 'Refused (ERR_SNAPSHOT_PRECONDITION, exit 4) while root disks of the image exist: remove them first with image rmdisk.',
    positionals: [{ name: 'NAME', required: true, description: 'the image' }],
    run: imageRemove,
  },
  {
    name: 'image disk',
    summary: "makes a copy-on-write root disk KEY of image NAME and prints its block device",
    description: 'The disk is an active snapshot of the image (a view with --read-only); --size grows the device and its file system.',
    positionals: [
      { name: 'NAME', required: true, description: 'the image' },
      { name: 'KEY', required: true, description: "the disk's key (remove it with image rmdisk KEY)" },
    ],
    options: {
      size: { type: 'string', value: 'SIZE', description: "the disk's size, such as 2G (default: the image's, dm.basesize)" },
      'read-only': { type: 'boolean', description: 'a read-only view instead of a writable disk' },
    },
    check: (cmd) => void sizeOf(cmd),
    examples: ['devmapper --root /var/lib/vms image disk busybox vm-1 --size 2G', 'devmapper image disk busybox vm-2 --json'],
    run: imageDisk,
  },
  {
    name: 'image rmdisk',
    summary: 'removes root disk KEY (its snapshot and device)',
    positionals: [{ name: 'KEY', required: true, description: "the disk's key" }],
    run: imageRemoveDisk,
  },
];
