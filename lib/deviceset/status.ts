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

export interface SpaceUsage {
  usedBytes: number;
  totalBytes: number;
  /** Free in the pool, capped (loopback) by the free space of the file system under the loop file. */
  availableBytes: number;
}

export interface DeviceSetStatus {
  poolName: string;
  poolKind: 'loopback' | 'direct' | 'external';
  poolBlockSizeBytes: number;
  baseDeviceSizeBytes: number;
  backingFilesystem: string;
  udevSyncSupported: boolean;
  /** Loopback: the loop devices ('Data file' in Docker's rows) and their files ('Data loop file'). */
  dataDevice: string | null;
  metadataDevice: string | null;
  dataLoopFile: string | null;
  metadataLoopFile: string | null;
  data: SpaceUsage;
  metadata: SpaceUsage;
  /** The whole thin-pool status line: mode rw/ro/out_of_data_space, needs_check, no-space policy, ... */
  pool: ThinPoolStatus;
  minFreeSpaceBytes: number;
  deferredRemovalEnabled: boolean;
  deferredDeletionEnabled: boolean;
  deferredDeletedDeviceCount: number;
  libraryVersion: string;
  deviceCount: number;
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
  hash: string;
  deviceName: string;
  deviceId: number;
  sizeBytes: number;
  transactionId: number;
  initialized: boolean;
  deleted: boolean;
  active: boolean;
  openCount: number;
  mappedBytes: number | null;
  highestMappedSector: number | null;
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
