/**
 * One layer into one committed snapshot: prepare an active snapshot on the chain below,
 * mount its device, stream the blob through its digest check, the decompressor and the
 * diff-ID check into applyLayer, unmount, and commit it under its chain ID only when both
 * digests are the ones named. Any failure removes the extraction snapshot: nothing of the
 * layer is left. A snapshot of that chain ID already committed is reused as it is.
 */
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { DevmapperError, ErrorCodes } from '../errors';
import { applyLayer } from '../layers';
import type { Snapshotter } from '../snapshotter';
import { isMountPoint, mount, unmount } from '../sys';
import { abortError } from '../util';
import { imageDigest, imageFormat } from './errors';
import { sniffCompression } from './media-types';
import type { LayerBlob } from './resolve';
import type { ImageSource } from './source';
import { decompressor, Sha256Counter } from './streams';

/** The label a committed layer snapshot carries: its diff ID (images.remove prunes by it). */
export const LAYER_LABEL = 'devmapper.io/image.diff-id';

/** The key of a layer's extraction snapshot: one per chain ID, so a leftover is found again. */
export function extractionKey(chainId: string): string {
  return `images/extract/${chainId}`;
}

/** Where the extraction snapshot is mounted while its layer is applied. */
export function extractionDir(root: string, chainId: string): string {
  return join(root, 'images', 'extract', chainId.replace(':', '-'));
}

export interface UnpackContext {
  sn: Snapshotter;
  src: ImageSource;
  signal?: AbortSignal;
  /** Compressed bytes read so far of this layer. */
  onBytes?: (bytes: number) => void;
}

async function exists(sn: Snapshotter, name: string): Promise<boolean> {
  return sn.stat(name).then(
    () => true,
    (err: unknown) => {
      if (err instanceof DevmapperError && err.code === ErrorCodes.SNAPSHOT_NOT_FOUND) return false;
      throw err;
    },
  );
}

/** Removes what an interrupted import of this chain ID left: its mount and its extraction snapshot. */
export async function dropExtraction(sn: Snapshotter, chainId: string): Promise<void> {
  const dir = extractionDir(sn.root, chainId);
  if (isMountPoint(dir)) await unmount(dir);
  if (await exists(sn, extractionKey(chainId))) await sn.remove(extractionKey(chainId));
  await rm(dir, { recursive: true, force: true });
}

/**
 * Unpacks layer onto parentChain ('' for the bottom layer) as chainId. Resolves to
 * 'reused' when chainId was committed already, else to 'unpacked'.
 *
 * @throws {@link DevmapperError} ERR_IMAGE_DIGEST, ERR_IMAGE_FORMAT (not gzip, zstd or tar),
 *   ABORT_ERR, what applyLayer and the Snapshotter throw; nothing of the layer is left then
 */
export async function unpackLayer(ctx: UnpackContext, layer: LayerBlob, parentChain: string, chainId: string): Promise<'reused' | 'unpacked'> {
  const { sn, signal } = ctx;
  if (await exists(sn, chainId)) return 'reused';
  await dropExtraction(sn, chainId);
  if (signal?.aborted) throw abortError('image import', layer.file, signal);
  const key = extractionKey(chainId);
  const dir = extractionDir(sn.root, chainId);
  const [m] = await sn.prepare(key, parentChain, { labels: { [LAYER_LABEL]: layer.diffId } });
  let mounted = false;
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await mount(m!.source, dir, m!.type, { data: m!.options.filter((o) => o !== 'ro').join(',') });
    mounted = true;
    await applyBlob(ctx, layer, dir);
    await unmount(dir);
    mounted = false;
    await sn.commit(chainId, key, { labels: { [LAYER_LABEL]: layer.diffId } });
  } catch (err) {
    if (mounted) await unmount(dir).catch(() => unmount(dir, { detach: true }));
    await sn.remove(key).catch(() => undefined);
    await rm(dir, { recursive: true, force: true }).catch(() => undefined);
    throw err;
  }
  await rm(dir, { recursive: true, force: true });
  return 'unpacked';
}

/** The blob through its checks into the mounted file system (exported for the host-side unit test: any directory will do). */
export async function applyBlob(ctx: UnpackContext, layer: LayerBlob, dir: string): Promise<void> {
  const { src, signal } = ctx;
  const compression = sniffCompression(await src.head(layer.file, 4));
  const raw = src.stream(layer.file);
  const blobSum = new Sha256Counter(ctx.onBytes);
  const tarSum = new Sha256Counter();
  const onAbort = () => raw.destroy(abortError('image import', layer.file, signal));
  signal?.addEventListener('abort', onAbort, { once: true });
  let feedError: unknown = null;
  // The tar side ends when applyLayer has read it; the blob side when every byte went through.
  const feeding = pipeline(raw, blobSum, decompressor(compression), tarSum).catch((err: unknown) => {
    feedError = err;
  });
  try {
    await applyLayer(dir, tarSum, { scratchParent: dir }).catch((err: unknown) => {
      throw feedError ?? err;
    });
    // Whatever follows the tar's end marker still counts for the digests.
    tarSum.resume();
    await feeding;
  } catch (err) {
    raw.destroy();
    await feeding;
    if (signal?.aborted) throw abortError('image import', layer.file, signal);
    const file = `${src.path}/${layer.file}`;
    if (feedError !== null && !(feedError instanceof DevmapperError))
      throw imageFormat(file, `the layer could not be read as ${compression === 'none' ? 'a tar' : compression}: ${(feedError as Error).message}`, feedError);
    // applyLayer's "not a tar": for an image, a layer blob that is damaged or not a layer.
    if (err instanceof DevmapperError && err.code === ErrorCodes.INVALID_ARGUMENT) throw imageFormat(file, `the layer is not a readable tar: ${err.message}`, err);
    throw err;
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
  if (feedError !== null) throw feedError;
  const blobDigest = blobSum.digest();
  if (layer.digest !== null && blobDigest !== layer.digest) throw imageDigest(layer.digest, 'the layer blob', layer.digest, blobDigest ?? '(unread)');
  const diffId = tarSum.digest();
  if (diffId !== layer.diffId) throw imageDigest(layer.diffId, `the uncompressed layer ${layer.file}`, layer.diffId, diffId ?? '(unread)');
}
