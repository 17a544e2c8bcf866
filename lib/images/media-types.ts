/** The media types an image import reads, and how a layer blob is compressed. */

export const MediaTypes = {
  OCI_INDEX: 'application/vnd.oci.image.index.v1+json',
  OCI_MANIFEST: 'application/vnd.oci.image.manifest.v1+json',
  DOCKER_MANIFEST_LIST: 'application/vnd.docker.distribution.manifest.list.v2+json',
  DOCKER_MANIFEST: 'application/vnd.docker.distribution.manifest.v2+json',
} as const;

export type Compression = 'none' | 'gzip' | 'zstd';

/** Layer media types, and the compression each announces. */
const LAYER_TYPES: Readonly<Record<string, Compression>> = {
  'application/vnd.oci.image.layer.v1.tar': 'none',
  'application/vnd.oci.image.layer.v1.tar+gzip': 'gzip',
  'application/vnd.oci.image.layer.v1.tar+zstd': 'zstd',
  'application/vnd.oci.image.layer.nondistributable.v1.tar': 'none',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip': 'gzip',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd': 'zstd',
  'application/vnd.docker.image.rootfs.diff.tar': 'none',
  'application/vnd.docker.image.rootfs.diff.tar.gzip': 'gzip',
  'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip': 'gzip',
};

/** The compression a layer media type announces, or undefined for a type that is not a layer we read. */
export function layerCompression(mediaType: string): Compression | undefined {
  return LAYER_TYPES[mediaType];
}

export function isIndexType(mediaType: unknown): boolean {
  return mediaType === MediaTypes.OCI_INDEX || mediaType === MediaTypes.DOCKER_MANIFEST_LIST;
}

export function isManifestType(mediaType: unknown): boolean {
  return mediaType === MediaTypes.OCI_MANIFEST || mediaType === MediaTypes.DOCKER_MANIFEST;
}

/**
 * The compression the first bytes show: gzip's 1f 8b, zstd's frame magic 28 b5 2f fd
 * (little-endian 0xFD2FB528), anything else is taken as a plain tar (whose check is the
 * diff ID). Layers are labelled wrongly often enough that the bytes decide.
 */
export function sniffCompression(head: Buffer): Compression {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.length >= 4 && head.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
  return 'none';
}
