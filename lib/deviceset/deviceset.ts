/**
 * DeviceSet: Docker's devicemapper DeviceSet for Node. A thin pool, a base device with a file
 * system, and thin snapshots of it (or of each other) named by hash, with Docker's on-disk
 * metadata under root/metadata and Docker's device names.
 */
import { EventEmitter } from 'node:events';
import { chmod, mkdir, stat } from 'node:fs/promises';
import * as dm from '../dm';
import { DevmapperError, ErrorCodes, invalidArgument } from '../errors';
import { KeyedLock } from '../dm/keyed-lock';
import { native } from '../native';
import { EventQueue } from '../util/event-queue';
import { BASE_HASH, setupBaseImage } from './base-image';
import {
  activateIfNeeded,
  checkPoolCanGrow,
  createRegisteredDevice,
  deactivate,
  deleteRegisteredDevice,
  discardIfUseful,
  nameOf,
  unknownDevice,
  withPoolLock,
} from './devices';
import { publishStep, tracedStep, type StepContext } from './diagnostics';
import { defaultFilesystem, growFilesystem, type FilesystemType } from './filesystem';
import { checkDeviceHash, devicePrefixFromStat, poolName as poolNameOf } from './hash';
import { DeviceIdAllocator } from './id-allocator';
import { MetadataStore, type DeviceMetadata } from './metadata-store';
import { mountDevice, unmountDevice } from './mounts';
import { resolveOptions, type DeviceSetOptions, type ResolvedOptions } from './options';
import { growPool, setupPool } from './pool';
import { PoolEventMonitor, type PoolEventStats } from './pool-events';
import type { PoolEvent } from './pool-transitions';
import { deviceLock, type DeviceSetState } from './state';
import { deviceSetStatus, deviceStatus, type DeviceSetStatus, type DeviceStatus } from './status';
import { TransactionLog } from './transactions';

export interface DeviceSetOpenOptions {
  /** Create the base device when there is none (Docker's doInit). Default true. */
  doInit?: boolean;
  /** Docker's 'dm.key=value' strings, or the typed object. */
  options?: string[] | DeviceSetOptions;
}

export interface AddDeviceOptions {
  /** Size in bytes; not below the parent's; above it the file system grows. Default: the parent's. */
  size?: number;
}

export interface DeleteDeviceOptions {
  /** Wait for the real deletion even when deferred deletion is enabled. */
  sync?: boolean;
  signal?: AbortSignal;
}

export interface PoolEventsOptions {
  /** Ends the iteration: the pending read rejects with ABORT_ERR. */
  signal?: AbortSignal;
}

/** The events a DeviceSet emits. */
export interface DeviceSetEvents {
  'pool-event': [PoolEvent];
}

/**
 * Pool events: `events()` is the primary API, an async iterator that ends at shutdown;
 * 'pool-event' listeners get the same events. Either starts the watch (a native thread
 * waiting for the pool's device-mapper events) and the last one gone stops it.
 */
export class DeviceSet extends EventEmitter<DeviceSetEvents> {
  private deletionTimer: NodeJS.Timeout | null = null;
  private shutdownPromise: Promise<void> | null = null;
  private readonly poolEvents: PoolEventMonitor;
  private readonly eventQueues = new Set<EventQueue<PoolEvent>>();

  private constructor(private readonly s: DeviceSetState) {
    super();
    this.poolEvents = new PoolEventMonitor(s.pool.name, {
      event: (e) => {
        publishStep({ ...this.stepContext('pool-event'), detail: { type: e.type, eventNr: this.poolEvents.stats().eventNr } }, true);
        try {
          this.emit('pool-event', e);
        } catch (err) {
          // A throwing listener is the application's bug, as with any emitter: uncaught.
          process.nextTick(() => {
            throw err;
          });
        }
      },
      readFailed: (err) => publishStep(this.stepContext('pool-event'), false, err),
      watchFailed: (err) => {
        publishStep({ ...this.stepContext('pool-watch'), detail: { watching: false } }, false, err);
        for (const q of [...this.eventQueues]) q.fail(err);
      },
    });
    this.installWatchHooks();
  }

  /** The watch follows the 'pool-event' listeners, through the emitter's own events. */
  private installWatchHooks(): void {
    const emitter = this as EventEmitter;
    emitter.on('newListener', (name: string | symbol) => {
      if (name === 'pool-event' && !this.s.closed && !this.poolEvents.watching) {
        this.poolEvents.start();
        publishStep({ ...this.stepContext('pool-watch'), detail: { watching: true } }, true);
      }
    });
    emitter.on('removeListener', (name: string | symbol) => {
      if (name === 'pool-event' && this.listenerCount('pool-event') === 0) this.stopPoolWatch();
    });
  }

  /**
   * As EventEmitter's, but the DeviceSet's own hooks stay; iterators from events() end when
   * the 'pool-event' listeners go.
   */
  override removeAllListeners(eventName?: Parameters<EventEmitter<DeviceSetEvents>['removeAllListeners']>[0]): this {
    super.removeAllListeners(eventName);
    if (eventName === undefined || eventName === 'pool-event') for (const q of [...this.eventQueues]) q.end();
    if (eventName === undefined) {
      this.installWatchHooks();
      this.stopPoolWatch();
    }
    return this;
  }

  private stepContext(step: StepContext['step'], hash?: string): StepContext {
    const ctx: StepContext = { step, root: this.s.root, poolName: this.s.pool.name };
    if (hash !== undefined) ctx.hash = hash;
    return ctx;
  }

  private stopPoolWatch(): void {
    if (!this.poolEvents.watching) return;
    this.poolEvents.stop();
    publishStep({ ...this.stepContext('pool-watch'), detail: { watching: false } }, true);
  }

  /**
   * Opens (and with doInit, initialises) the DeviceSet rooted at `root`: sets up or finds
   * the pool, rolls back an unfinished transaction, verifies or creates the base device.
   */
  static async open(root: string, openOptions: DeviceSetOpenOptions = {}): Promise<DeviceSet> {
    if (typeof root !== 'string' || !root.startsWith('/')) throw invalidArgument('root', 'an absolute path', root);
    let poolName = '';
    return tracedStep(
      () => ({ step: 'open', root, poolName }),
      () =>
        DeviceSet.doOpen(root, openOptions, (name) => {
          poolName = name;
        }),
    );
  }

  private static async doOpen(root: string, openOptions: DeviceSetOpenOptions, foundPool: (name: string) => void): Promise<DeviceSet> {
    const options = resolveOptions(openOptions.options ?? []);
    native().setLogLevel(options.libdmLogLevel);
    dm.setTaskDefaults({ udevTimeoutMs: options.udevWaitTimeoutMs });

    if (!dm.udevSyncSupported() && !options.overrideUdevSyncCheck)
      throw new DevmapperError(
        'udev sync is not supported here (no udevd running, or DM_DISABLE_UDEV set): device nodes may race. Start udevd, or set dm.override_udev_sync_check=true',
        { code: ErrorCodes.UDEV_SYNC_UNSUPPORTED, argument: 'dm.override_udev_sync_check' },
      );
    if (options.useDeferredRemoval) {
      const [major, minor] = (await dm.getDriverVersion()).split('.').map(Number);
      if (major < 4 || (major === 4 && minor < 27))
        throw new DevmapperError('dm.use_deferred_removal needs device-mapper driver 4.27 or later', {
          code: ErrorCodes.INVALID_ARGUMENT,
          argument: 'dm.use_deferred_removal',
        });
    }

    await mkdir(root, { recursive: true, mode: 0o700 });
    await chmod(root, 0o700);
    const prefix = devicePrefixFromStat(await stat(root, { bigint: true }));

    const store = new MetadataStore(root);
    await store.open();
    const savedSet = await store.readDeviceSet();
    const devices = await store.listDevices();
    const fresh = savedSet === null && devices.size === 0;

    const pool = await setupPool({
      root,
      poolName: options.thinPoolDevice ?? poolNameOf(prefix),
      thinPoolDevice: options.thinPoolDevice,
      dataDevice: options.dataDevice,
      metadataDevice: options.metadataDevice,
      loopDataSizeBytes: options.loopDataSizeBytes,
      loopMetadataSizeBytes: options.loopMetadataSizeBytes,
      blockSizeSectors: options.blockSizeSectors,
      lowWaterMarkBlocks: options.lowWaterMarkBlocks,
      fresh,
    });
    foundPool(pool.name);

    const ids = new DeviceIdAllocator();
    for (const meta of devices.values()) ids.markUsed(meta.deviceId);
    const deviceSet = savedSet ?? { nextDeviceId: 0, baseDeviceUuid: '', baseDeviceFilesystem: '' };
    ids.nextDeviceId = deviceSet.nextDeviceId;

    let filesystem: FilesystemType;
    const recorded = deviceSet.baseDeviceFilesystem;
    if (recorded === 'ext4' || recorded === 'xfs') {
      if (options.fs && options.fs !== recorded)
        process.emitWarning(`dm.fs=${options.fs} ignored: the base device already holds ${recorded}`, { code: 'DEVMAPPER_FS_IGNORED' });
      filesystem = recorded;
    } else {
      filesystem = options.fs ?? (await defaultFilesystem());
    }

    const s: DeviceSetState = {
      root,
      options,
      store,
      ids,
      tx: new TransactionLog(store, pool.name),
      pool,
      prefix,
      devices,
      deviceSet,
      filesystem,
      locks: new KeyedLock(),
      mounts: new Map(),
      activated: new Set(),
      closed: false,
    };
    const ds = new DeviceSet(s);
    try {
      const rolledBack: { hash: string; deviceId: number }[] = [];
      await tracedStep(
        () => ({ step: 'recovery', root, poolName: pool.name, detail: { rolledBack } }),
        () =>
          s.tx.recover((hash, deviceId) => {
            rolledBack.push({ hash, deviceId });
            s.devices.delete(hash);
            s.ids.release(deviceId);
          }),
      );
      if (openOptions.doInit ?? true) await setupBaseImage(s);
    } catch (err) {
      // Leave nothing active behind a refused open: what we activated, and our pool.
      await ds.shutdown().catch(() => undefined);
      throw err;
    }
    ds.scheduleDeferredDeletions();
    return ds;
  }

  /** The pool's device-mapper name. */
  get poolName(): string {
    return this.s.pool.name;
  }

  /** docker-<major>:<minor>-<inode>, the prefix of every device name of this root. */
  get devicePrefix(): string {
    return this.s.prefix;
  }

  get options(): ResolvedOptions {
    return this.s.options;
  }

  /** The device-mapper name of a device ('' = the base). */
  deviceName(hash: string): string {
    return nameOf(this.s, hash);
  }

  private checkOpen(): void {
    if (this.s.closed) throw new DevmapperError('the DeviceSet was shut down', { code: ErrorCodes.CLOSED });
  }

  private lockDevice<T>(hash: string, fn: () => Promise<T>): Promise<T> {
    return this.s.locks.run(deviceLock(hash), fn);
  }

  /** Creates `hash` as a snapshot of `baseHash` ('' = the base device). */
  async addDevice(hash: string, baseHash: string, opts: AddDeviceOptions = {}): Promise<void> {
    this.checkOpen();
    checkDeviceHash(hash, { devicePrefix: this.s.prefix });
    if (typeof baseHash !== 'string') throw invalidArgument('baseHash', "a device hash ('' for the base)", baseHash);
    if (opts.size !== undefined && (!Number.isSafeInteger(opts.size) || opts.size <= 0 || opts.size % 512 !== 0))
      throw invalidArgument('size', 'a positive size in bytes, a multiple of 512', opts.size);
    await tracedStep(this.stepContext('create', hash), () => this.doAddDevice(hash, baseHash, opts));
  }

  private async doAddDevice(hash: string, baseHash: string, opts: AddDeviceOptions): Promise<void> {
    await this.lockDevice(hash, async () => {
      // Checked before the parent's lock is taken: with it, no two calls can wait on each
      // other's device (the parent always exists, the new device never does).
      if (this.s.devices.has(hash))
        throw new DevmapperError(`device ${hash} already exists`, { code: 'EEXIST', device: hash });
      await this.lockDevice(baseHash, async () => {
        const parent = this.s.devices.get(baseHash);
        if (!parent || parent.deleted) throw unknownDevice(baseHash);
        const size = opts.size ?? parent.size;
        if (size < parent.size)
          throw invalidArgument('size', `at least the parent's size (${parent.size} bytes)`, size);
        await checkPoolCanGrow(this.s);
        const meta = await withPoolLock(this.s, () => createRegisteredDevice(this.s, hash, size, { hash: baseHash, meta: parent }));
        if (size > parent.size) {
          const path = await activateIfNeeded(this.s, hash, meta);
          try {
            await growFilesystem(path, this.s.filesystem);
          } finally {
            await deactivate(this.s, hash, { deferred: false });
          }
        }
      });
    });
  }

  /**
   * Deletes a device: deactivates it (bounded retries), discards its blocks when useful and
   * enabled, deletes the thin id and the metadata. With deferred deletion, a device still
   * held open is marked deleted and retried in the background (unless sync).
   */
  async deleteDevice(hash: string, opts: DeleteDeviceOptions = {}): Promise<void> {
    this.checkOpen();
    if (hash === BASE_HASH) throw invalidArgument('hash', 'a device other than the base', hash);
    await tracedStep(this.stepContext('delete', hash), () => this.doDeleteDevice(hash, opts));
  }

  private async doDeleteDevice(hash: string, opts: DeleteDeviceOptions): Promise<void> {
    await this.lockDevice(hash, async () => {
      const meta = this.s.devices.get(hash);
      if (!meta) throw unknownDevice(hash);
      if (this.s.mounts.has(hash))
        throw new DevmapperError(`device ${hash} is mounted at ${this.s.mounts.get(hash)}: unmount it first`, { code: 'EBUSY', device: hash });
      if (this.s.options.blkDiscard && !meta.deleted) await discardIfUseful(this.s, hash, meta);
      const deferredOk = this.s.options.useDeferredDeletion && !opts.sync;
      try {
        await deactivate(this.s, hash, { signal: opts.signal, deferred: this.s.options.useDeferredRemoval && !opts.sync });
        await withPoolLock(this.s, () => deleteRegisteredDevice(this.s, hash, meta));
      } catch (err) {
        if (!(deferredOk && err instanceof DevmapperError && err.code === 'EBUSY')) throw err;
        if (!meta.deleted) {
          meta.deleted = true;
          await this.s.store.writeDevice(hash, meta);
        }
        this.scheduleDeferredDeletions();
      }
    });
  }

  /** Retries devices marked deleted, in the background, until they go. */
  private scheduleDeferredDeletions(): void {
    if (this.deletionTimer || this.s.closed) return;
    if (![...this.s.devices.values()].some((m) => m.deleted)) return;
    this.deletionTimer = setTimeout(() => {
      this.deletionTimer = null;
      void this.retryDeferredDeletions().finally(() => this.scheduleDeferredDeletions());
    }, this.s.options.deferredDeletionRetryMs);
    this.deletionTimer.unref();
  }

  /** One pass over the devices marked deleted; returns how many are gone now. */
  async retryDeferredDeletions(): Promise<number> {
    let done = 0;
    for (const [hash, meta] of [...this.s.devices]) {
      if (!meta.deleted || this.s.closed) continue;
      try {
        await this.lockDevice(hash, async () => {
          await deactivate(this.s, hash, { deferred: false, retryBudgetMs: 0 });
          await withPoolLock(this.s, () => deleteRegisteredDevice(this.s, hash, meta));
        });
        done++;
      } catch {
        // Still busy: the next pass tries again.
      }
    }
    return done;
  }

  /** Activates (if needed) and mounts the device at path, which must exist. */
  async mountDevice(hash: string, path: string, mountLabel?: string): Promise<void> {
    this.checkOpen();
    if (typeof path !== 'string' || !path.startsWith('/')) throw invalidArgument('path', 'an absolute path', path);
    await tracedStep(this.stepContext('mount', hash), () => this.lockDevice(hash, () => mountDevice(this.s, hash, path, mountLabel)));
  }

  /** Unmounts (MNT_DETACH), removes the mount point, deactivates. */
  async unmountDevice(hash: string, path: string): Promise<void> {
    this.checkOpen();
    if (typeof path !== 'string' || !path.startsWith('/')) throw invalidArgument('path', 'an absolute path', path);
    await tracedStep(this.stepContext('unmount', hash), () => this.lockDevice(hash, () => unmountDevice(this.s, hash, path)));
  }

  /** Whether the device exists and is not marked deleted. */
  async hasDevice(hash: string): Promise<boolean> {
    const meta = this.s.devices.get(hash);
    return meta !== undefined && !meta.deleted;
  }

  /** The hashes of all devices but the base, sorted. */
  async list(): Promise<string[]> {
    return [...this.s.devices.entries()]
      .filter(([hash, meta]) => hash !== BASE_HASH && !meta.deleted)
      .map(([hash]) => hash)
      .sort();
  }

  /** A device's metadata as stored (a copy). */
  getDeviceMetadata(hash: string): DeviceMetadata | null {
    const meta = this.s.devices.get(hash);
    return meta ? { ...meta } : null;
  }

  /** A device's metadata and the kernel's view of it. */
  async getDeviceStatus(hash: string): Promise<DeviceStatus> {
    const meta = this.s.devices.get(hash);
    if (!meta) throw unknownDevice(hash);
    return deviceStatus(this.s, hash, meta);
  }

  async status(): Promise<DeviceSetStatus> {
    this.checkOpen();
    return deviceSetStatus(this.s);
  }

  /**
   * Grows the pool's data to `bytes` (loopback: the data file; direct: re-reads the data
   * device when bytes is null). While pool events are watched, the pool's status is read
   * again before this resolves, so the events the growth caused ('writable') have gone out.
   */
  async resizePool(bytes: number | null): Promise<void> {
    this.checkOpen();
    if (bytes !== null && (!Number.isSafeInteger(bytes) || bytes <= 0)) throw invalidArgument('bytes', 'a positive size in bytes', bytes);
    await tracedStep(this.stepContext('resize'), async () => {
      await withPoolLock(this.s, () => growPool(this.s.pool, bytes));
      // The kernel signals a change of mode, but not a pool that is simply no longer below
      // its low-water mark: read it now so that the next crossing is reported.
      await this.poolEvents.refresh();
    });
  }

  /**
   * Pool events as an async iterator: 'low-water' (free data blocks fell to the table's
   * low-water mark), 'out-of-data-space', 'read-only', 'failed', 'needs-check', and
   * 'writable' (back to rw). Each carries the parsed pool status and the time it was read.
   * Driven by the kernel's device-mapper events on the pool, never by a timer. The first
   * status is compared with a healthy pool: a pool already out of space is reported at once.
   * Ends at shutdown; `break` or the signal ends it earlier. Several may run at once.
   */
  events(opts: PoolEventsOptions = {}): AsyncIterableIterator<PoolEvent> {
    this.checkOpen();
    const listener = (e: PoolEvent) => queue.push(e);
    const queue: EventQueue<PoolEvent> = new EventQueue<PoolEvent>(
      () => {
        this.eventQueues.delete(queue);
        this.off('pool-event', listener);
      },
      opts.signal,
      'pool events',
    );
    if (queue.closed) return queue;
    try {
      this.on('pool-event', listener);
    } catch (err) {
      void queue.return();
      throw err;
    }
    this.eventQueues.add(queue);
    return queue;
  }

  /** The pool watch's counters: the native thread's wake-ups and the pool's own events. */
  poolEventStats(): PoolEventStats {
    return this.poolEvents.stats();
  }

  /**
   * Unmounts and deactivates every device this DeviceSet mounted or activated, deactivates
   * the pool when it is ours, and saves the metadata. Idempotent; the set is closed after.
   */
  shutdown(): Promise<void> {
    this.shutdownPromise ??= tracedStep(this.stepContext('shutdown'), () => this.doShutdown());
    return this.shutdownPromise;
  }

  private async doShutdown(): Promise<void> {
    const s = this.s;
    s.closed = true;
    for (const q of [...this.eventQueues]) q.end();
    this.stopPoolWatch();
    if (this.deletionTimer) clearTimeout(this.deletionTimer);
    this.deletionTimer = null;
    let failure: unknown;
    const attempt = async (fn: () => Promise<unknown>) => {
      try {
        await fn();
      } catch (err) {
        failure ??= err;
      }
    };
    for (const [hash, path] of [...s.mounts]) await attempt(() => s.locks.run(deviceLock(hash), () => unmountDevice(s, hash, path)));
    for (const hash of [...s.activated]) await attempt(() => s.locks.run(deviceLock(hash), () => deactivate(s, hash, { deferred: false })));
    await attempt(() => s.store.writeDeviceSet({ ...s.deviceSet, nextDeviceId: s.ids.nextDeviceId }));
    if (s.pool.owned) {
      await attempt(async () => {
        if (await dm.getInfo(s.pool.name)) await dm.removeDevice(s.pool.name, { retryBudgetMs: s.options.removeRetryBudgetMs });
      });
    }
    if (failure !== undefined) throw failure;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.shutdown();
  }
}
