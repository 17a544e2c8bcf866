/** DeviceSet status, typed; the Driver prints Docker's rows from it. */
import { statfs } from 'node:fs/promises';
import { dirname } from 'node:path';
import * as dm from '../dm';
import type { ThinPoolStatus } from '../dm';
import { nameOf } from './devices';
import { BASE_HASH } from './base-image';
import type { DeviceSetState } from './state';

/** dm-thin's metadata block size. */
export const METADATA_BLOCK_BYTES = 4096;

/** Data or metadata space of the pool, in bytes. */
export interface SpaceUsage {
  /** In use: data blocks times the block size, or 4 KiB metadata blocks. */
  usedBytes: number;
  /** The pool's total, from its status line. */
  totalBytes: number;
  /** Free in the pool, capped (loopback) by the free space of the file system under the loop file. */
  availableBytes: number;
}

/**
 * What {@link DeviceSet.status} reports: the pool (kind, block size, full status line), space
 * used and available, options in force, and warnings a user should see. Docker's status rows
 * ({@link statusRows}) are a view of it.
 */
export interface DeviceSetStatus {
  /** The pool's device-mapper name. */
  poolName: string;
  /** 'loopback': our pool on sparse files; 'direct': ours on dm.datadev/dm.metadatadev; 'external': dm.thinpooldev. */
  poolKind: 'loopback' | 'direct' | 'external';
  /** The pool's data block size in bytes (64 KiB by default). */
  poolBlockSizeBytes: number;
  /** The base device's size (and so the default size of new devices), in bytes. */
  baseDeviceSizeBytes: number;
  /** The base device's file system: 'ext4' or 'xfs'. */
  backingFilesystem: string;
  /** Whether libdevmapper synchronises with udev in this process ({@link dm.udevSyncSupported}). */
  udevSyncSupported: boolean;
  /** Loopback: the loop devices ('Data file' in Docker's rows) and their files ('Data loop file'). */
  dataDevice: string | null;
  /** The metadata device (a loop device for loopback); null when unknown (dm.thinpooldev). */
  metadataDevice: string | null;
  /** Loopback: root/devicemapper/data; otherwise null. */
  dataLoopFile: string | null;
  /** Loopback: root/devicemapper/metadata; otherwise null. */
  metadataLoopFile: string | null;
  /** Data space; all zero when the pool status is not 'ok'. */
  data: SpaceUsage;
  /** Metadata space (4 KiB metadata blocks); all zero when the pool status is not 'ok'. */
  metadata: SpaceUsage;
  /** The whole thin-pool status line: mode rw/ro/out_of_data_space, needs_check, no-space policy, ... */
  pool: ThinPoolStatus;
  /** dm.min_free_space of the data space, in bytes: below it new devices are refused. */
  minFreeSpaceBytes: number;
  /** dm.use_deferred_removal. */
  deferredRemovalEnabled: boolean;
  /** dm.use_deferred_deletion. */
  deferredDeletionEnabled: boolean;
  /** Devices marked deleted and waiting for their holders to close them. */
  deferredDeletedDeviceCount: number;
  /** libdevmapper's version. */
  libraryVersion: string;
  /** Registered devices, the base device and devices marked deleted included. */
  deviceCount: number;
  /** Plain-language warnings: pool not rw, needs_check, failed status, loopback in use, a file system under the loop files with less free space than the pool promises. */
  warnings: string[];
}

async function freeBytesUnder(file: string): Promise<number | null> {
  try {
    const st = await statfs(dirname(file));
    return st.bavail * st.bsize;
  } catch {
    return null;
  }
}

export async function deviceSetStatus(s: DeviceSetState): Promise<DeviceSetStatus> {
  const pool = await dm.getPoolStatus(s.pool.name);
  const blockBytes = s.pool.blockSizeSectors * 512;
  const warnings: string[] = [];
  let data: SpaceUsage = { usedBytes: 0, totalBytes: 0, availableBytes: 0 };
  let metadata: SpaceUsage = { usedBytes: 0, totalBytes: 0, availableBytes: 0 };
  if (pool.state === 'ok') {
    data = {
      usedBytes: pool.dataUsedBlocks * blockBytes,
      totalBytes: pool.dataTotalBlocks * blockBytes,
      availableBytes: (pool.dataTotalBlocks - pool.dataUsedBlocks) * blockBytes,
    };
    metadata = {
      usedBytes: pool.metadataUsedBlocks * METADATA_BLOCK_BYTES,
      totalBytes: pool.metadataTotalBlocks * METADATA_BLOCK_BYTES,
      availableBytes: (pool.metadataTotalBlocks - pool.metadataUsedBlocks) * METADATA_BLOCK_BYTES,
    };
    if (pool.mode !== 'rw') warnings.push(`the pool is ${pool.mode}: new devices are refused until space is freed or the pool grows`);
    if (pool.needsCheck) warnings.push('the pool metadata is flagged needs_check: deactivate the pool and run thin_check (thin_repair if it fails) before it can be written again');
  } else {
    warnings.push(`the pool status is ${pool.state}: run thin_check on its metadata`);
  }
  if (s.pool.kind === 'loopback') {
    warnings.push('loopback devices back the pool: slow and able to over-promise space; use dm.thinpooldev or dm.datadev/dm.metadatadev in production');
    for (const [usage, file] of [
      [data, s.pool.dataFile],
      [metadata, s.pool.metadataFile],
    ] as const) {
      const free = file ? await freeBytesUnder(file) : null;
      if (free !== null && free < usage.availableBytes) {
        usage.availableBytes = free;
        warnings.push(`the file system under ${file} has less free space (${free} bytes) than the pool promises`);
      }
    }
  }
  let deleted = 0;
  for (const meta of s.devices.values()) if (meta.deleted) deleted++;
  return {
    poolName: s.pool.name,
    poolKind: s.pool.kind,
    poolBlockSizeBytes: blockBytes,
    baseDeviceSizeBytes: s.devices.get(BASE_HASH)?.size ?? s.options.baseSizeBytes,
    backingFilesystem: s.filesystem,
    udevSyncSupported: dm.udevSyncSupported(),
    dataDevice: s.pool.dataDevice ?? null,
    metadataDevice: s.pool.metadataDevice ?? null,
    dataLoopFile: s.pool.dataFile ?? null,
    metadataLoopFile: s.pool.metadataFile ?? null,
    data,
    metadata,
    pool,
    minFreeSpaceBytes: Math.floor((data.totalBytes * s.options.minFreeSpacePercent) / 100),
    deferredRemovalEnabled: s.options.useDeferredRemoval,
    deferredDeletionEnabled: s.options.useDeferredDeletion,
    deferredDeletedDeviceCount: deleted,
    libraryVersion: dm.getLibraryVersion(),
    deviceCount: s.devices.size,
    warnings,
  };
}

/** One device: its metadata and the kernel's view side by side. */
export interface DeviceStatus {
  /** The device's hash ('' for the base device). */
  hash: string;
  /** Its device-mapper name, `docker-MAJ:MIN-INO-<hash>`. */
  deviceName: string;
  /** Its 24-bit thin id in the pool. */
  deviceId: number;
  /** Its size in bytes, as recorded. */
  sizeBytes: number;
  /** The pool transaction id that created it. */
  transactionId: number;
  /** The metadata's `initialized` flag (true for a base device with its file system). */
  initialized: boolean;
  /** Marked for deferred deletion. */
  deleted: boolean;
  /** Whether its mapping exists in the kernel now. */
  active: boolean;
  /** The kernel's open count (mounts and holders); 0 when inactive. */
  openCount: number;
  /** Bytes the pool has allocated to it (mapped sectors x 512); null when inactive or the status is not 'ok'. */
  mappedBytes: number | null;
  /** Last sector of its highest mapped block; null when inactive, nothing is mapped, or the status is not 'ok'. */
  highestMappedSector: number | null;
  /** Where this DeviceSet mounted it, or null. */
  mountPath: string | null;
}

export async function deviceStatus(s: DeviceSetState, hash: string, meta: import('./metadata-store').DeviceMetadata): Promise<DeviceStatus> {
  const name = nameOf(s, hash);
  const info = await dm.getInfo(name);
  let mappedBytes: number | null = null;
  let highest: number | null = null;
  if (info) {
    const st = await dm.getThinStatus(name);
    if (st.state === 'ok') {
      mappedBytes = st.mappedSectors * 512;
      highest = st.highestMappedSector;
    }
  }
  return {
    hash,
    deviceName: name,
    deviceId: meta.deviceId,
    sizeBytes: meta.size,
    transactionId: meta.transactionId,
    initialized: meta.initialized,
    deleted: meta.deleted,
    active: info !== null,
    openCount: info?.openCount ?? 0,
    mappedBytes,
    highestMappedSector: highest,
    mountPath: s.mounts.get(hash) ?? null,
  };
}
