/**
 * Images into thin snapshots: import a docker-save tarball or an OCI image layout (gzip,
 * zstd or plain layers, every digest checked while streaming) into committed snapshots named
 * by chain ID, and make copy-on-write root disks of it for microVMs and containers.
 */
export { importImage as import, type ImportOptions, type ImportProgress, type ImportResult } from './import';
export { rootDisk, DISK_LABEL, type RootDisk, type RootDiskOptions } from './root-disk';
export { list, get, remove, type RemoveResult } from './manage';
export type { ImageRecord } from './records';
export { chainIds, digestOf, isDigest } from './digest';
export { parsePlatform, formatPlatform, hostPlatform, platformMatches, type Platform } from './platform';
export { LAYER_LABEL } from './unpack';
