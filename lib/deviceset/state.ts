/** The state one open DeviceSet shares between its parts (pool, devices, mounts, status). */
import { KeyedLock } from '../util';
import type { DeviceIdAllocator } from './id-allocator';
import type { DeviceMetadata, DeviceSetMetadata, MetadataStore } from './metadata-store';
import type { ResolvedOptions } from './options';
import type { PoolHandle } from './pool';
import type { RootLock } from './root-lock';
import type { TransactionLog } from './transactions';
import type { FilesystemType } from './filesystem';

export interface DeviceSetState {
  root: string;
  options: ResolvedOptions;
  store: MetadataStore;
  ids: DeviceIdAllocator;
  tx: TransactionLog;
  pool: PoolHandle;
  /** docker-<major>:<minor>-<inode>: every device name starts with it. */
  prefix: string;
  /** Registered devices by hash; '' is the base device. */
  devices: Map<string, DeviceMetadata>;
  deviceSet: DeviceSetMetadata;
  /** deviceset-metadata holds `deviceSet` (false for a root an old Docker left without the file). */
  deviceSetOnDisk: boolean;
  filesystem: FilesystemType;
  /**
   * Lock order, always: a device's hash, then its parent's, then POOL_LOCK. A device's calls
   * are ordered; different devices only meet at the pool lock, held for the kernel messages
   * and metadata writes of a transaction, never for mkfs, mounts or waits.
   */
  locks: KeyedLock;
  /** Where we mounted each device (hash -> path). */
  mounts: Map<string, string>;
  /**
   * Devices of this root active in the kernel (hash), to deactivate at shutdown: those we
   * activated, and those found active at open (left by a process that died holding the root).
   */
  activated: Set<string>;
  /**
   * Unmounted devices left active (keepActive), least recently unmounted first (a Set keeps
   * insertion order). Each is in `activated` too; a mount takes it out again.
   */
  idle: Set<string>;
  closed: boolean;
  /** This DeviceSet's hold on the root, dropped at the end of shutdown or release. */
  lock: RootLock;
}

/** The key of the pool lock in `locks`; no hash can take it (hashes are checked file names). */
export const POOL_LOCK = '\0pool';
/** The key of a device's lock. */
export const deviceLock = (hash: string): string => `dev:${hash}`;
