/**
 * From an image source to the one image to import: the format (OCI layout, or docker save's
 * manifest.json), the manifest for the platform (through nested indexes), its config, and
 * each layer's blob and diff ID. Every JSON blob named by digest is checked against it here;
 * layer blobs are checked while they stream (unpack.ts).
 */
import { chainIds, digestOf, isDigest } from './digest';
import { imageDigest, imageFormat, imagePlatform } from './errors';
import { isIndexType, isManifestType, layerCompression } from './media-types';
import { formatPlatform, platformMatches, type Platform } from './platform';
import type { ImageSource } from './source';

/** One layer to unpack, bottom first. */
export interface LayerBlob {
  /** The member of the source holding it. */
  file: string;
  /** The compressed blob's digest, null when the source does not say (docker save's `<id>/layer.tar`). */
  digest: string | null;
  mediaType: string;
  /** The blob's size in bytes. */
  size: number;
  /** The uncompressed tar's digest, from the config's rootfs.diff_ids. */
  diffId: string;
}

export interface ResolvedImage {
  format: 'oci' | 'docker';
  /** The name the source gives the image (a ref annotation, a RepoTag), or null. */
  sourceName: string | null;
  /** The manifest's digest; null for docker save's manifest.json, which has no manifest blob. */
  manifestDigest: string | null;
  configDigest: string;
  /** The config's os/architecture/variant. */
  platform: Platform;
  layers: LayerBlob[];
  /** chainIds[i] names layers 0..i: the committed snapshot's name. */
  chainIds: string[];
  /** The config as parsed (Cmd, Env, ... for whoever starts the image). */
  config: Record<string, unknown>;
}

export interface ResolveOptions {
  platform: Platform;
  /** Picks one image of several by its ref (OCI `org.opencontainers.image.ref.name` or `io.containerd.image.name`, docker's RepoTags). */
  ref?: string;
}

interface Descriptor {
  mediaType?: unknown;
  digest?: unknown;
  size?: unknown;
  platform?: { os?: unknown; architecture?: unknown; variant?: unknown };
  annotations?: Record<string, unknown>;
}

function parseJson(bytes: Buffer, file: string, what: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw imageFormat(file, `${what} is not JSON: ${(err as Error).message}`, err);
  }
  return v as Record<string, unknown>;
}

function blobFile(digest: string): string {
  return `blobs/${digest.replace(':', '/')}`;
}

/** A JSON blob named by a descriptor, its size and digest checked. */
async function readBlob(src: ImageSource, d: Descriptor, what: string): Promise<{ json: Record<string, unknown>; digest: string }> {
  if (!isDigest(d.digest)) throw imageFormat(src.path, `the ${what}'s descriptor has no sha256 digest: ${JSON.stringify(d.digest)}`);
  const file = blobFile(d.digest);
  const bytes = await src.read(file);
  const actual = digestOf(bytes);
  if (actual !== d.digest) throw imageDigest(d.digest, `the ${what} blob`, d.digest, actual);
  if (typeof d.size === 'number' && d.size !== bytes.length) throw imageFormat(src.path, `the ${what} ${d.digest} has ${bytes.length} bytes, its descriptor says ${d.size}`);
  return { json: parseJson(bytes, `${src.path}/${file}`, `the ${what}`), digest: d.digest };
}

function refOf(d: Descriptor): string | null {
  const a = d.annotations ?? {};
  const n = a['io.containerd.image.name'] ?? a['org.opencontainers.image.ref.name'];
  return typeof n === 'string' ? n : null;
}

function refMatches(d: Descriptor, ref: string): boolean {
  const a = d.annotations ?? {};
  return a['io.containerd.image.name'] === ref || a['org.opencontainers.image.ref.name'] === ref;
}

function platformOfConfig(config: Record<string, unknown>): Platform {
  return {
    os: typeof config.os === 'string' ? config.os : '',
    architecture: typeof config.architecture === 'string' ? config.architecture : '',
    variant: typeof config.variant === 'string' ? config.variant : '',
  };
}

function diffIdsOf(config: Record<string, unknown>, file: string): string[] {
  const rootfs = config.rootfs as { type?: unknown; diff_ids?: unknown } | undefined;
  const ids = rootfs?.diff_ids;
  if (rootfs?.type !== 'layers' || !Array.isArray(ids) || !ids.every(isDigest))
    throw imageFormat(file, 'the config has no rootfs of type "layers" with sha256 diff_ids');
  return ids;
}

/** Finds the image's manifest: through nested indexes, by ref and platform. */
async function findManifest(
  src: ImageSource,
  index: Record<string, unknown>,
  opts: ResolveOptions,
  seen: string[],
  depth: number,
  top: boolean,
): Promise<{ descriptor: Descriptor; name: string | null } | null> {
  if (depth > 4) throw imageFormat(src.path, 'indexes nested more than 4 deep');
  const list = index.manifests;
  if (!Array.isArray(list)) throw imageFormat(src.path, 'an index without a manifests list');
  let candidates = list as Descriptor[];
  if (top && opts.ref !== undefined) {
    candidates = candidates.filter((d) => refMatches(d, opts.ref!));
    if (candidates.length === 0) throw imageFormat(src.path, `has no image with the ref ${JSON.stringify(opts.ref)}`);
  }
  for (const d of candidates) {
    if (isIndexType(d.mediaType)) {
      const inner = await readBlob(src, d, 'index');
      const found = await findManifest(src, inner.json, opts, seen, depth + 1, false);
      if (found) return { descriptor: found.descriptor, name: found.name ?? refOf(d) };
      continue;
    }
    if (!isManifestType(d.mediaType)) continue; // attestations and other artifacts
    if (d.platform) {
      seen.push(formatPlatform(platformOfConfig(d.platform as Record<string, unknown>)));
      if (!platformMatches(opts.platform, d.platform)) continue;
    }
    return { descriptor: d, name: refOf(d) };
  }
  return null;
}

async function resolveOci(src: ImageSource, opts: ResolveOptions): Promise<ResolvedImage> {
  const layout = parseJson(await src.read('oci-layout'), `${src.path}/oci-layout`, 'oci-layout');
  if (typeof layout.imageLayoutVersion !== 'string') throw imageFormat(`${src.path}/oci-layout`, 'has no imageLayoutVersion');
  const index = parseJson(await src.read('index.json'), `${src.path}/index.json`, 'index.json');
  const seen: string[] = [];
  const found = await findManifest(src, index, opts, seen, 0, true);
  if (!found) throw platformMissing(src.path, opts.platform, seen);
  const manifest = await readBlob(src, found.descriptor, 'manifest');
  const m = manifest.json as { config?: Descriptor; layers?: unknown };
  if (!m.config || !Array.isArray(m.layers)) throw imageFormat(src.path, `the manifest ${manifest.digest} has no config or layers`);
  const config = await readBlob(src, m.config, 'config');
  const platform = platformOfConfig(config.json);
  // A manifest the index gave no platform for is checked by its config's.
  if (!found.descriptor.platform && platform.os !== '' && !platformMatches(opts.platform, platform))
    throw platformMissing(src.path, opts.platform, [formatPlatform(platform)]);
  const diffIds = diffIdsOf(config.json, `${src.path}/${blobFile(config.digest)}`);
  const layers = m.layers as Descriptor[];
  if (layers.length !== diffIds.length)
    throw imageFormat(src.path, `the manifest has ${layers.length} layers but the config ${diffIds.length} diff_ids`);
  const out: LayerBlob[] = [];
  for (const [i, l] of layers.entries()) {
    if (!isDigest(l.digest)) throw imageFormat(src.path, `layer ${i} has no sha256 digest`);
    if (typeof l.mediaType !== 'string' || layerCompression(l.mediaType) === undefined)
      throw imageFormat(src.path, `layer ${i} has the media type ${JSON.stringify(l.mediaType)}, which is not a layer tar this library reads`);
    const file = blobFile(l.digest);
    if (!(await src.has(file))) throw imageFormat(src.path, `has no blob for layer ${i} (${l.digest})`);
    out.push({ file, digest: l.digest, mediaType: l.mediaType, size: await src.size(file), diffId: diffIds[i]! });
  }
  return { format: 'oci', sourceName: found.name, manifestDigest: manifest.digest, configDigest: config.digest, platform, layers: out, chainIds: chainIds(diffIds), config: config.json };
}

/** The digest a docker-save member's name carries: `blobs/sha256/<hex>` or `<hex>.json`. */
function digestInName(file: string): string | null {
  const m = /^(?:blobs\/sha256\/([0-9a-f]{64})|([0-9a-f]{64})\.json)$/.exec(file);
  return m ? `sha256:${m[1] ?? m[2]}` : null;
}

async function resolveDocker(src: ImageSource, opts: ResolveOptions): Promise<ResolvedImage> {
  const file = `${src.path}/manifest.json`;
  let list: unknown;
  try {
    list = JSON.parse((await src.read('manifest.json')).toString('utf8'));
  } catch (err) {
    if ((err as { code?: string }).code === 'ERR_IMAGE_FORMAT') throw err;
    throw imageFormat(file, `is not JSON: ${(err as Error).message}`, err);
  }
  if (!Array.isArray(list) || list.length === 0) throw imageFormat(file, 'is not a non-empty list of images');
  type Entry = { Config?: unknown; RepoTags?: unknown; Layers?: unknown };
  const entries = list as Entry[];
  const tags = (e: Entry): string[] => (Array.isArray(e.RepoTags) ? e.RepoTags.filter((t): t is string => typeof t === 'string') : []);
  const entry = opts.ref === undefined ? entries[0]! : entries.find((e) => tags(e).includes(opts.ref!));
  if (!entry) throw imageFormat(file, `has no image tagged ${JSON.stringify(opts.ref)}`);
  if (typeof entry.Config !== 'string' || !Array.isArray(entry.Layers) || !entry.Layers.every((l) => typeof l === 'string'))
    throw imageFormat(file, 'an entry without Config and Layers');
  const configBytes = await src.read(entry.Config);
  const configDigest = digestOf(configBytes);
  const named = digestInName(entry.Config);
  if (named !== null && named !== configDigest) throw imageDigest(named, 'the config blob', named, configDigest);
  const config = parseJson(configBytes, `${src.path}/${entry.Config}`, 'the config');
  const platform = platformOfConfig(config);
  if (platform.os !== '' && !platformMatches(opts.platform, platform)) throw platformMissing(src.path, opts.platform, [formatPlatform(platform)]);
  const diffIds = diffIdsOf(config, `${src.path}/${entry.Config}`);
  const layerFiles = entry.Layers as string[];
  if (layerFiles.length !== diffIds.length) throw imageFormat(file, `lists ${layerFiles.length} layers but the config has ${diffIds.length} diff_ids`);
  const layers: LayerBlob[] = [];
  for (const [i, f] of layerFiles.entries()) {
    if (!(await src.has(f))) throw imageFormat(src.path, `has no ${f} (layer ${i})`);
    // docker save writes layers uncompressed; the bytes decide anyway (unpack.ts).
    layers.push({ file: f, digest: digestInName(f), mediaType: 'application/vnd.docker.image.rootfs.diff.tar', size: await src.size(f), diffId: diffIds[i]! });
  }
  return { format: 'docker', sourceName: tags(entry)[0] ?? null, manifestDigest: null, configDigest, platform, layers, chainIds: chainIds(diffIds), config };
}

function platformMissing(path: string, want: Platform, seen: string[]): Error {
  return imagePlatform(path, formatPlatform(want), seen.length === 0 ? 'none named' : [...new Set(seen)].join(', '));
}

/**
 * The image a source holds for the platform: an OCI layout when it has oci-layout and
 * index.json (newer docker save writes both: the layout says more), else docker save's
 * manifest.json.
 *
 * @throws {@link DevmapperError} ERR_IMAGE_FORMAT, ERR_IMAGE_DIGEST, ERR_IMAGE_PLATFORM
 */
export async function resolveImage(src: ImageSource, opts: ResolveOptions): Promise<ResolvedImage> {
  if ((await src.has('oci-layout')) && (await src.has('index.json'))) return resolveOci(src, opts);
  if (await src.has('manifest.json')) return resolveDocker(src, opts);
  throw imageFormat(src.path, 'is neither an OCI image layout (oci-layout, index.json) nor a docker save (manifest.json)');
}
