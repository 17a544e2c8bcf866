/**
 * images.import: an image source (docker save tarball, OCI layout directory or tar) into
 * committed snapshots named by chain ID, one per layer, then the image's record. Layers
 * already committed (by this image before an interruption, or by another image sharing
 * them) are reused; a layer is unpacked by one call at a time per Snapshotter.
 */
import { invalidArgument } from '../errors';
import type { Snapshotter } from '../snapshotter';
import { KeyedLock } from '../util';
import { pruneReplaced } from './manage';
import { formatPlatform, parsePlatform } from './platform';
import { ImageRecords, type ImageRecord } from './records';
import { resolveImage } from './resolve';
import { openSource } from './source';
import { unpackLayer } from './unpack';

/** What onProgress is told, per layer. */
export interface ImportProgress {
  /** The layer's position, 0 = bottom. */
  layer: number;
  /** How many layers the image has. */
  layers: number;
  /** The chain ID the layer is committed under. */
  chainId: string;
  /** 'reused': committed already; 'unpacking': bytes are flowing; 'done': committed now. */
  state: 'reused' | 'unpacking' | 'done';
  /** Compressed bytes of this layer read so far. */
  bytes: number;
  /** The layer blob's size. */
  totalBytes: number;
}

export interface ImportOptions {
  /** The Snapshotter the layers are committed into. */
  snapshotter: Snapshotter;
  /**
   * The record's name; default: the source's own (OCI ref annotation, docker RepoTag), else
   * the config digest. A name already taken moves to this image; the old image's layers that
   * no other image names are removed then, unless root disks of it still hold them.
   */
  name?: string;
  /** "os/arch[/variant]"; default linux and this machine's architecture (linux/amd64 on x86-64). */
  platform?: string;
  /** Picks one image of a source that holds several, by its ref annotation or RepoTag. */
  ref?: string;
  /** Aborts the import between or inside layers (ABORT_ERR); committed layers stay for the next run. */
  signal?: AbortSignal;
  /** Called as each layer's bytes flow, and once per layer when it is committed or reused. */
  onProgress?: (p: ImportProgress) => void;
}

/** What images.import resolves to. */
export interface ImportResult {
  /** The record written for the image. */
  image: ImageRecord;
  /** How many layers were unpacked now, and how many were found committed already. */
  unpacked: number;
  /** Layers whose chain ID was committed already. */
  reused: number;
}

const locks = new WeakMap<Snapshotter, KeyedLock>();

function lockFor(sn: Snapshotter): KeyedLock {
  let l = locks.get(sn);
  if (!l) locks.set(sn, (l = new KeyedLock()));
  return l;
}

/**
 * Imports the image at `source` (an absolute path) into opts.snapshotter.
 *
 * @throws {@link DevmapperError} ERR_INVALID_ARGUMENT; ENOENT; ERR_IMAGE_FORMAT,
 *   ERR_IMAGE_DIGEST, ERR_IMAGE_PLATFORM; ABORT_ERR; the Snapshotter's and DeviceSet's errors
 *   (pool full, ...). A failed layer leaves nothing; the layers below it stay committed.
 *
 * @example
 * ```ts
 * const sn = await Snapshotter.open('/var/lib/vms');
 * const { image } = await images.import('/srv/busybox.tar', { snapshotter: sn, name: 'busybox' });
 * const disk = await images.rootDisk('busybox', 'vm-1', { snapshotter: sn, size: 2 * 2 ** 30 });
 * // disk.device: /dev/mapper/...-snap-N, a writable copy-on-write disk of the image
 * ```
 */
export async function importImage(source: string, opts: ImportOptions): Promise<ImportResult> {
  if (typeof opts !== 'object' || opts === null || typeof opts.snapshotter?.prepare !== 'function')
    throw invalidArgument('snapshotter', 'an open Snapshotter', opts?.snapshotter);
  if (opts.name !== undefined && (typeof opts.name !== 'string' || opts.name.length === 0 || opts.name.includes('\0')))
    throw invalidArgument('name', 'a non-empty string', opts.name);
  const sn = opts.snapshotter;
  const platform = parsePlatform(opts.platform);
  const src = await openSource(source);
  const img = await resolveImage(src, { platform, ref: opts.ref });
  const name = opts.name ?? img.sourceName ?? img.configDigest;
  let unpacked = 0;
  let reused = 0;
  const n = img.layers.length;
  for (const [i, layer] of img.layers.entries()) {
    const chainId = img.chainIds[i]!;
    const report = (state: ImportProgress['state'], bytes: number) =>
      opts.onProgress?.({ layer: i, layers: n, chainId, state, bytes, totalBytes: layer.size });
    const result = await lockFor(sn).run(chainId, () =>
      unpackLayer({ sn, src, signal: opts.signal, onBytes: (b) => report('unpacking', b) }, layer, i === 0 ? '' : img.chainIds[i - 1]!, chainId),
    );
    if (result === 'reused') reused++;
    else unpacked++;
    report(result === 'reused' ? 'reused' : 'done', layer.size);
  }
  const image: ImageRecord = {
    name,
    format: img.format,
    manifestDigest: img.manifestDigest,
    configDigest: img.configDigest,
    platform: formatPlatform(img.platform),
    diffIds: img.layers.map((l) => l.diffId),
    chainIds: img.chainIds,
    config: img.config,
    created: new Date(),
  };
  // Last: a record is there only when every layer it names is committed.
  const replaced = await ImageRecords.open(sn.root, (db) => {
    const old = db.get(name);
    db.put(image);
    return old;
  });
  // The name moved to another image: the old one's layers go unless something else holds them.
  if (replaced) await pruneReplaced(sn, replaced);
  return { image, unpacked, reused };
}
