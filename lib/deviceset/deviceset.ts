/**
 * DeviceSet: Docker's devicemapper DeviceSet for Node. A thin pool, a base device with a file
 * system, and thin snapshots of it (or of each other) named by hash, with Docker's on-disk
 * metadata under root/metadata and Docker's device names.
 */
import { EventEmitter } from 'node:events';
import { chmod, mkdir, readFile, stat } from 'node:fs/promises';
import * as dm from '../dm';
import { DevmapperError, ErrorCodes, invalidArgument } from '../errors';
import { EventQueue, KeyedLock } from '../util';
import { BASE_HASH, setupBaseImage } from './base-image';
import {
  activateIfNeeded,
  checkPoolCanChange,
  checkPoolCanGrow,
  createRegisteredDevice,
  deactivate,
  deleteRegisteredDevice,
  discardBeforeDelete,
  nameOf,
  refuseIfMounted,
  saveDeviceSet,
  unknownDevice,
  withPoolLock,
} from './devices';
import { publishStep, tracedStep, type StepContext } from './diagnostics';
import { defaultFilesystem, growFilesystem, type FilesystemType } from './filesystem';
import { checkDeviceHash, deviceName, devicePrefixFromStat, poolName as poolNameOf } from './hash';
import { DeviceIdAllocator } from './id-allocator';
import { MetadataStore, type DeviceMetadata } from './metadata-store';
import { idleOverBound, mountDevice, unmountDevice, type MountDeviceOptions } from './mounts';
import { resolveOptions, type DeviceSetOptions, type ResolvedOptions } from './options';
import { ReadOnlyDeviceSet } from './read-only';
import { RootLock } from './root-lock';
import { growPool, setupPool } from './pool';
import { PoolEventMonitor, type PoolEventStats } from './pool-events';
import type { PoolEvent } from './pool-transitions';
import { deviceLock, type DeviceSetState } from './state';
import { deviceSetStatus, deviceStatus, type DeviceSetStatus, type DeviceStatus } from './status';
import { TransactionLog } from './transactions';

/** What {@link DeviceSet.open} takes besides the root. */
export interface DeviceSetOpenOptions {
  /** Create the base device when there is none (Docker's doInit). Default true. */
  doInit?: boolean;
  /** Docker's 'dm.key=value' strings, or the typed object. */
  options?: string[] | DeviceSetOptions;
}

/** Options of {@link DeviceSet.addDevice}. */
export interface AddDeviceOptions {
  /** Size in bytes; not below the parent's; above it the file system grows. Default: the parent's. */
  size?: number;
}

/** Options of {@link DeviceSet.deleteDevice}. */
export interface DeleteDeviceOptions {
  /** Wait for the real deletion even when deferred deletion is enabled. */
  sync?: boolean;
  /** Stops the busy retries of the deactivation: rejects with ABORT_ERR. */
  signal?: AbortSignal;
}

/** A device of the root that {@link DeviceSet.shutdown} left active because something holds it open. */
export interface BusyDevice {
  /** The device's hash ('' = the base). */
  hash: string;
  /** Its device-mapper name. */
  name: string;
  /** The kernel's open count: mounts (in any mount namespace), processes, stacked devices. */
  openCount: number;
  /**
   * Where it is mounted in this process's mount namespace; empty when the holder is a mount
   * in another namespace or a process that has it open.
   */
  mountPoints: string[];
}

/** What {@link DeviceSet.shutdown} and {@link DeviceSet.release} left active. */
export interface ShutdownResult {
  /**
   * 'inactive': the pool is gone (deactivated now, or already); 'busy': left active because
   * a thin device still holds it (one of `busyDevices`, or a device another tool made on
   * it); 'external': a dm.thinpooldev pool, never ours to deactivate.
   */
  pool: 'inactive' | 'busy' | 'external';
  /** Devices of this root left active, each held open by someone; empty after a clean stop. */
  busyDevices: BusyDevice[];
}

export interface PoolEventsOptions {
  /** Ends the iteration: the pending read rejects with ABORT_ERR. */
  signal?: AbortSignal;
}

/** The events a DeviceSet emits. */
export interface DeviceSetEvents {
  /** The pool crossed its low-water mark, filled up, went read-only, failed, needs a check, or is writable again. */
  'pool-event': [PoolEvent];
}

/** What this DeviceSet's device-mapper tasks run with, instead of the process's settings. */
const taskSettings = (o: ResolvedOptions): dm.TaskSettings => ({ udevTimeoutMs: o.udevWaitTimeoutMs, logLevel: o.libdmLogLevel });

/**
 * Docker's devicemapper DeviceSet: one thin pool, a base device with a file system, and thin
 * snapshots named by hash, with Docker's on-disk metadata and device names so a root written
 * by Docker (v20-v24) and one written here are interchangeable.
 *
 * Concurrency: calls on different devices run concurrently; a device's own calls run one
 * after another. Locks are always taken device, then parent, then pool, and the pool lock
 * covers only a transaction's kernel messages and metadata writes (never mkfs, mounts or
 * waits), so no two calls can wait on each other.
 *
 * Needs root: device-mapper ioctls, loop devices and mount(2) (see docs/guide.md).
 *
 * Pool events: `events()` is the primary API, an async iterator that ends at shutdown;
 * 'pool-event' listeners get the same events. Either starts the watch (a native thread
 * waiting for the pool's device-mapper events) and the last one gone stops it.
 *
 * @example
 * ```ts
 * await using ds = await DeviceSet.open('/var/lib/myapp/devicemapper', { options: ['dm.basesize=20G'] });
 * await ds.addDevice('image', '');
 * await ds.addDevice('c1', 'image', { size: 40 * 2 ** 30 });
 * await ds.mountDevice('c1', '/mnt/c1');
 * await ds.unmountDevice('c1', '/mnt/c1');
 * await ds.deleteDevice('c1', { sync: true });
 * ```
 */
export class DeviceSet extends EventEmitter<DeviceSetEvents> {
  private deletionTimer: NodeJS.Timeout | null = null;
  private shutdownPromise: Promise<ShutdownResult> | null = null;
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
        this.scoped(() => this.poolEvents.start());
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
   * Resolves once udev has finished with every device this process activated or removed
   * without waiting for it (the `udevReap` option: mounts, unmounts, deletes), or at the
   * timeout: then /dev/mapper matches the kernel for them and their cookies' semaphores are
   * gone. Process-wide (the reaper is one per process); shutdown does it for its own.
   *
   * @returns the cookies still pending (0 unless the timeout passed)
   *
   * @example
   * ```ts
   * await ds.unmountDevice('c1', mnt);
   * await DeviceSet.udevSettle();   // before handing /dev/mapper to another tool
   * ```
   */
  static async udevSettle(timeoutMs = 30_000): Promise<number> {
    return (await dm.udevSettle(timeoutMs)).pending;
  }

  /**
   * Opens (and with doInit, initialises) the DeviceSet rooted at `root`: sets up or finds
   * the pool, rolls back an unfinished transaction, verifies or creates the base device.
   *
   * The pool is, by default, on two sparse files under root/devicemapper/ attached to loop
   * devices with autoclear; with dm.datadev and dm.metadatadev on raw devices; with
   * dm.thinpooldev an existing pool (adopted only while it has no used data blocks and
   * transaction id 0). An active pool of our name is reused: a restart adopts, it does not
   * create. The root is made 0700. The udev wait bound (udevWaitTimeoutMs) and the libdm log
   * level (dm.libdm_log_level) apply to this DeviceSet's own device-mapper tasks only
   * ({@link dm.withTaskSettings}); the process-wide settings ({@link dm.setTaskDefaults},
   * {@link dm.setLogLevel}) are left alone. A refused open deactivates what it activated.
   * The root is locked (root/.devmapper-lock, flock) until shutdown or release: one
   * DeviceSet per root at a time, across processes. With the lock held, devices of this root
   * that the kernel has active were left by a process that died: open takes them over (they
   * stay as they are; shutdown deactivates those nobody holds).
   *
   * @param root absolute path of the root directory (created if missing)
   * @param openOptions doInit (default true) and the options
   * @throws {@link DevmapperError} ERR_INVALID_ARGUMENT (root, an option, dm.basesize smaller
   *   than the base, dm.use_deferred_removal on device-mapper before 4.27, dm.thinpooldev not
   *   a thin pool); ERR_NOT_SUPPORTED; ERR_UDEV_SYNC_UNSUPPORTED; ERR_POOL_FAILED;
   *   ERR_TRANSACTION_MISMATCH; ERR_POOL_NOT_ADOPTABLE; ERR_BASE_DEVICE_CHANGED;
   *   ERR_ROOT_BUSY while another DeviceSet (in any process) has the root open;
   *   ERR_METADATA_CORRUPT; ERR_COMMAND_FAILED or ENOENT when mkfs fails or is missing;
   *   ENXIO for a dm.thinpooldev that does not exist; ERR_ADDON_NOT_LOADED; kernel and file
   *   system errnos (EACCES without root, ENOSPC, ...)
   *
   * @example
   * ```ts
   * const ds = await DeviceSet.open('/var/lib/myapp/devicemapper', {
   *   doInit: true,
   *   options: ['dm.basesize=20G', 'dm.fs=ext4', 'dm.loopdatasize=200G'],
   * });
   * // or typed: { options: { baseSize: '20G', fs: 'ext4', loopDataSize: '200G' } }
   * ```
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

  /**
   * Opens a root read-only: its devices' metadata, and their file systems mounted read-only
   * for a moment ({@link ReadOnlyDeviceSet.withVolume}). Takes no lock and writes nothing to
   * the root; the root may be open in a DeviceSet elsewhere, whose mounted devices it refuses.
   *
   * @param root the root's absolute path
   * @param options the options the root was opened with (dm.thinpooldev, dm.blocksize matter here)
   * @throws {@link DevmapperError} ENOENT when there is no root; ERR_INVALID_ARGUMENT for an option
   *
   * @example
   * ```ts
   * const ro = await DeviceSet.openReadOnly('/var/lib/myapp/devicemapper');
   * const top = await ro.withVolume('c1', (dir) => readdir(dir));   // ['id', 'lost+found', 'rootfs']
   * ```
   */
  static openReadOnly(root: string, options: string[] | DeviceSetOptions = []): Promise<ReadOnlyDeviceSet> {
    if (typeof root !== 'string' || !root.startsWith('/')) throw invalidArgument('root', 'an absolute path', root);
    return ReadOnlyDeviceSet.open(root, options);
  }

  private static async doOpen(root: string, openOptions: DeviceSetOpenOptions, foundPool: (name: string) => void): Promise<DeviceSet> {
    const options = resolveOptions(openOptions.options ?? []);
    return dm.withTaskSettings(taskSettings(options), () => DeviceSet.openResolved(root, openOptions, options, foundPool));
  }

  private static async openResolved(
    root: string,
    openOptions: DeviceSetOpenOptions,
    options: ResolvedOptions,
    foundPool: (name: string) => void,
  ): Promise<DeviceSet> {
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
    const lock = RootLock.acquire(root);
    try {
      return await DeviceSet.openLocked(root, openOptions, options, lock, foundPool);
    } catch (err) {
      // A refused open leaves the root free (a DeviceSet that was made has released it).
      lock.release();
      throw err;
    }
  }

  private static async openLocked(
    root: string,
    openOptions: DeviceSetOpenOptions,
    options: ResolvedOptions,
    lock: RootLock,
    foundPool: (name: string) => void,
  ): Promise<DeviceSet> {
    const prefix = devicePrefixFromStat(await stat(root, { bigint: true }));

    const store = new MetadataStore(root);
    await store.open();
    // Every metadata file is read and checked before anything is set up: a corrupt one
    // refuses the open with no pool, loop file or metadata made.
    const savedSet = await store.readDeviceSet();
    const devices = await store.listDevices();
    const savedTransaction = await store.readTransaction();
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
      errorIfNoSpace: options.errorIfNoSpace,
      lowWaterMarkBlocks: options.lowWaterMarkBlocks,
      fresh,
    });
    foundPool(pool.name);
    // The root lock is ours, so every device of this root the kernel has active was left by a
    // process that died holding it: they are ours to deactivate at shutdown, as if we had
    // activated them (those still mounted by someone stay, and are reported then).
    const leftovers = await activeDevicesOfRoot(prefix, [pool.name, poolNameOf(prefix)]);
    // A process that died while udev worked on its devices (a SIGKILL after a call whose cookie
    // the reaper held) left a semaphore nobody collects: free those udev finished long ago.
    dm.sweepAbandonedUdevCookies(abandonedCookieAgeSeconds(options.udevWaitTimeoutMs));

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
      deviceSetOnDisk: savedSet !== null,
      lock,
      filesystem,
      locks: new KeyedLock(),
      mounts: new Map(),
      activated: new Set(leftovers),
      idle: new Set(),
      closed: false,
    };
    const ds = new DeviceSet(s);
    try {
      const rolledBack: { hash: string; deviceId: number; deferred: boolean }[] = [];
      await tracedStep(
        () => ({ step: 'recovery', root, poolName: pool.name, detail: { rolledBack } }),
        async () => {
          const forget = (hash: string, deviceId: number): void => {
            s.devices.delete(hash);
            s.ids.release(deviceId);
          };
          const r = await s.tx.recover(savedTransaction, { forget, hide: (hash) => s.devices.delete(hash) });
          if (r) rolledBack.push(r);
          rolledBack.push(...(await s.tx.dropUncommitted(s.devices, forget)));
        },
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

  /** The options in force, parsed and with defaults (frozen). */
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
    return this.scoped(() => this.s.locks.run(deviceLock(hash), fn));
  }

  /** Runs fn with this DeviceSet's udev wait bound and libdm log level on each task it starts. */
  private scoped<T>(fn: () => T): T {
    return dm.withTaskSettings(taskSettings(this.s.options), fn);
  }

  /**
   * Creates `hash` as a snapshot of `baseHash` ('' = the base device) in one crash-safe
   * transaction: intent saved, `create_snap` (an active parent is suspended for the message
   * only), metadata written, `set_transaction_id`. A size above the parent's grows the
   * device's file system (resize2fs or xfs_growfs on a private temporary mount).
   *
   * @param hash the new device's id: a safe file name and dm name part (checked)
   * @param baseHash the parent's hash, '' for the base device
   * @throws {@link DevmapperError} ERR_CLOSED; ERR_INVALID_ARGUMENT (hash, baseHash, size
   *   below the parent's or not a multiple of 512); EEXIST when `hash` exists; ENOENT when
   *   the parent does not; ERR_POOL_FAILED, ERR_POOL_NOT_WRITABLE, ERR_POOL_LOW_SPACE before
   *   anything is created; ERR_NO_FREE_DEVICE_ID; the kernel's errno of a failed message
   *   (nothing is left registered then)
   *
   * @example
   * ```ts
   * await ds.addDevice('image', '');                          // snapshot of the base device
   * await ds.addDevice('c1', 'image', { size: 40 * 2 ** 30 }); // bigger: the file system grows
   * ```
   */
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
        // An idle origin would be suspended and resumed around create_snap, and with udev
        // every resume waits for its rules: deactivated once instead, it costs no later
        // snapshot anything (a parent of many layers is typically idle).
        if (this.s.idle.has(baseHash)) await deactivate(this.s, baseHash, { deferred: false });
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
   *
   * @throws {@link DevmapperError} ERR_CLOSED; ERR_INVALID_ARGUMENT for the base device;
   *   ENOENT for an unknown hash; EBUSY when this DeviceSet has it mounted, or when it stayed
   *   busy past the retry budget (dm.use_deferred_deletion turns that into a background
   *   retry); ABORT_ERR; the kernel's errno
   */
  async deleteDevice(hash: string, opts: DeleteDeviceOptions = {}): Promise<void> {
    this.checkOpen();
    if (hash === BASE_HASH) throw invalidArgument('hash', 'a device other than the base', hash);
    // The record says whether the blocks were discarded first (dm.blkdiscard), once known.
    const detail: { discarded?: boolean } = {};
    await tracedStep(
      () => ({ ...this.stepContext('delete', hash), ...(detail.discarded === undefined ? {} : { detail }) }),
      () => this.doDeleteDevice(hash, opts, detail),
    );
  }

  private async doDeleteDevice(hash: string, opts: DeleteDeviceOptions, detail: { discarded?: boolean }): Promise<void> {
    await this.lockDevice(hash, async () => {
      const meta = this.s.devices.get(hash);
      if (!meta) throw unknownDevice(hash);
      refuseIfMounted(this.s, hash);
      await checkPoolCanChange(this.s);
      let gone = false;
      if (this.s.options.blkDiscard && !meta.deleted) ({ discarded: detail.discarded, gone } = await discardBeforeDelete(this.s, hash, meta));
      const deferredOk = this.s.options.useDeferredDeletion && !opts.sync;
      try {
        // The discard's job removed the mapping already, when it could.
        if (!gone) await deactivate(this.s, hash, { signal: opts.signal, deferred: this.s.options.useDeferredRemoval && !opts.sync });
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

  /**
   * One pass over the devices marked deleted; returns how many are gone now. The background
   * retry calls this every `deferredDeletionRetryMs`; call it to retry at once.
   */
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

  /**
   * Activates (if needed) and mounts the device at path, which must exist unless
   * `opts.mountPointMode` asks to make it. Mount options: `nouuid` on xfs (snapshots share
   * the base's UUID), dm.mountopt, and `context="LABEL"` for an SELinux mount label. A
   * pending deferred remove is cancelled instead of re-activating. Mounting again at the same
   * path is a no-op. The mount point, the activation, the mount and `opts.layout` run as one
   * native job; a failure undoes what the job made. With udev running and `udevReap` (the
   * default) the mount does not wait for udev's rules: it mounts the kernel's /dev/dm-N, and
   * /dev/mapper/NAME appears once udev is done ({@link DeviceSet.activateDevice} of the
   * mounted device, or {@link DeviceSet.udevSettle}, waits for it).
   *
   * @param hash the device ('' for the base)
   * @param path an existing directory, or one to make (`opts.mountPointMode`)
   * @param mountLabel SELinux context, when wanted
   * @param opts the mount point to make and the entries to make on the mounted file system
   * @throws {@link DevmapperError} ERR_CLOSED; ERR_INVALID_ARGUMENT (path, mountLabel, a layout entry);
   *   ENOENT for an unknown or deleted device; EBUSY when mounted at another path; the errno
   *   of mount(2) (the device is deactivated again); ERR_XFS_NOSPACE_RETRIES when
   *   dm.xfs_nospace_max_retries cannot be applied (the mount is undone)
   *
   * @example
   * ```ts
   * await mkdir('/mnt/c1', { recursive: true });
   * await ds.mountDevice('c1', '/mnt/c1');
   * ```
   */
  async mountDevice(hash: string, path: string, mountLabel?: string, opts: MountDeviceOptions = {}): Promise<void> {
    this.checkOpen();
    if (typeof path !== 'string' || !path.startsWith('/')) throw invalidArgument('path', 'an absolute path', path);
    await tracedStep(this.stepContext('mount', hash), () => this.lockDevice(hash, () => mountDevice(this.s, hash, path, mountLabel, opts)));
  }

  /**
   * Unmounts (MNT_DETACH) and removes the mount point. The device stays active, idle, for a
   * quick remount or delete, unless keepActive is 0 (then it is deactivated, as Docker did);
   * past keepActive idle devices, the least recently unmounted is deactivated. The lazy
   * unmount also takes away copies of the mount leaked into other mount namespaces, which
   * would otherwise keep the device busy.
   *
   * @throws {@link DevmapperError} ERR_CLOSED; ERR_INVALID_ARGUMENT (path); ENOENT for an
   *   unknown device; EBUSY when the device stays open past the retry budget
   */
  async unmountDevice(hash: string, path: string): Promise<void> {
    this.checkOpen();
    if (typeof path !== 'string' || !path.startsWith('/')) throw invalidArgument('path', 'an absolute path', path);
    await tracedStep(this.stepContext('unmount', hash), () => this.lockDevice(hash, () => unmountDevice(this.s, hash, path)));
    await this.evictIdle(idleOverBound(this.s));
  }

  /**
   * Deactivates every device left active after its unmount (see the keepActive option): for
   * a caller about to hand the pool to another program, or to free the kernel's device
   * nodes. A device something else holds open stays active (shutdown reports it).
   *
   * @returns how many were deactivated
   * @throws {@link DevmapperError} ERR_CLOSED
   */
  async deactivateIdleDevices(): Promise<number> {
    this.checkOpen();
    return this.evictIdle([...this.s.idle]);
  }

  /**
   * Deactivates these idle devices, each under its own lock and only while still idle (a
   * mount meanwhile took it back). A failure only ends its idleness: it stays in `activated`
   * for shutdown, and the unmount that evicted it is not failed by another device's trouble.
   */
  private async evictIdle(hashes: string[]): Promise<number> {
    let done = 0;
    for (const hash of hashes) {
      await this.lockDevice(hash, async () => {
        if (!this.s.idle.delete(hash) || this.s.mounts.has(hash)) return;
        try {
          await deactivate(this.s, hash, { deferred: this.s.options.useDeferredRemoval });
          done++;
        } catch {
          // Held open by someone else: shutdown deactivates or reports it.
        }
      });
    }
    return done;
  }

  /**
   * Activates the device without mounting it, for callers that hand out the block device
   * itself (a snapshotter's mounts, a VM's disk). Activating an active device is a no-op; a
   * pending deferred remove is cancelled. Shutdown deactivates it unless something holds it.
   *
   * @returns its block device path, /dev/mapper/NAME, which exists when this resolves (also
   *   for a device a mount activated without waiting for udev)
   * @throws {@link DevmapperError} ERR_CLOSED; ENOENT for an unknown or deleted device; the kernel's errno
   */
  async activateDevice(hash: string): Promise<string> {
    this.checkOpen();
    return tracedStep(this.stepContext('activate', hash), () =>
      this.lockDevice(hash, async () => {
        const meta = this.s.devices.get(hash);
        if (!meta || meta.deleted) throw unknownDevice(hash);
        return activateIfNeeded(this.s, hash, meta);
      }),
    );
  }

  /**
   * Removes the mapping of a device activated by {@link DeviceSet.activateDevice} (bounded
   * retries, never deferred). An inactive device is a no-op.
   *
   * @throws {@link DevmapperError} ERR_CLOSED; ENOENT for an unknown device; EBUSY when this
   *   DeviceSet has it mounted, or when it stays open past the retry budget; ABORT_ERR
   */
  async deactivateDevice(hash: string, opts: { signal?: AbortSignal } = {}): Promise<void> {
    this.checkOpen();
    await tracedStep(this.stepContext('deactivate', hash), () =>
      this.lockDevice(hash, async () => {
        if (!this.s.devices.has(hash)) throw unknownDevice(hash);
        refuseIfMounted(this.s, hash);
        await deactivate(this.s, hash, { deferred: false, signal: opts.signal });
      }),
    );
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
    return this.scoped(() => deviceStatus(this.s, hash, meta));
  }

  /**
   * The pool and the set, typed: pool kind and full status line, space, options in force,
   * warnings. A pool in 'fail' or 'error' state is reported, not thrown.
   *
   * @throws {@link DevmapperError} ERR_CLOSED; ENXIO when the pool is gone
   */
  async status(): Promise<DeviceSetStatus> {
    this.checkOpen();
    return this.scoped(() => deviceSetStatus(this.s));
  }

  /**
   * Grows the pool's data to `bytes` (loopback: the data file; direct: re-reads the data
   * device when bytes is null). While pool events are watched, the pool's status is read
   * again before this resolves, so the events the growth caused ('writable') have gone out.
   * Loopback: the sparse file grows, the loop device re-reads its size, the pool table is
   * reloaded (keeping the live table's features) and resumed; a pool that was out of data
   * space goes back to rw.
   *
   * @throws {@link DevmapperError} ERR_CLOSED; ERR_INVALID_ARGUMENT (bytes, a shrink, a
   *   dm.thinpooldev pool that is not ours); ENODEV when the loop devices are gone
   */
  async resizePool(bytes: number | null): Promise<void> {
    this.checkOpen();
    if (bytes !== null && (!Number.isSafeInteger(bytes) || bytes <= 0)) throw invalidArgument('bytes', 'a positive size in bytes', bytes);
    await tracedStep(this.stepContext('resize'), () =>
      this.scoped(async () => {
        await withPoolLock(this.s, () => growPool(this.s.pool, bytes));
        // The kernel signals a change of mode, but not a pool that is simply no longer below
        // its low-water mark: read it now so that the next crossing is reported.
        await this.poolEvents.refresh();
      }),
    );
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
   * Leaves the kernel as a clean stop would: unmounts what this DeviceSet mounted, deactivates
   * every device of the root that is active (those it activated, and those a process that
   * died left active, found at open), deactivates the pool when it is ours, and saves the
   * metadata. Idempotent; the set is closed after.
   *
   * A device that something else still holds open (a mount made by another process, a
   * process reading it) stays active and is reported in `busyDevices`, never thrown; the
   * pool it sits on then stays too (`pool: 'busy'`). A device held only for a moment (udev
   * probing it) is retried within dm's removal budget first; a device still mounted in this
   * mount namespace is not retried.
   *
   * @returns what was left active: `{ pool: 'inactive', busyDevices: [] }` after a clean stop
   * @throws {@link DevmapperError} only for what this DeviceSet did itself: an unmount of its
   *   own mount, or writing the metadata, that failed (every step is still tried; the first
   *   failure is thrown at the end)
   *
   * @example
   * ```ts
   * const { pool, busyDevices } = await ds.shutdown();
   * for (const d of busyDevices) console.warn(`${d.name} still held (mounted at ${d.mountPoints.join(', ') || 'another namespace'})`);
   * ```
   */
  shutdown(): Promise<ShutdownResult> {
    this.shutdownPromise ??= tracedStep(this.stepContext('shutdown'), () => this.scoped(() => this.doShutdown(false)));
    return this.shutdownPromise;
  }

  /**
   * Closes this handle but leaves what it mounted mounted, for a later process to take over
   * (a command-line tool between invocations; Driver.get/put adopt such mounts). Otherwise as
   * {@link DeviceSet.shutdown}: every other device of the root that nobody holds is
   * deactivated, the metadata saved, and the pool, when ours, deactivated unless a thin
   * device still holds it. Kept mounts are reported in `busyDevices`. Shares shutdown's
   * promise: the first of the two called decides.
   */
  release(): Promise<ShutdownResult> {
    this.shutdownPromise ??= this.scoped(() => this.doShutdown(true));
    return this.shutdownPromise;
  }

  private async doShutdown(keepMounts: boolean): Promise<ShutdownResult> {
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
    if (!keepMounts)
      for (const [hash, path] of [...s.mounts]) await attempt(() => s.locks.run(deviceLock(hash), () => unmountDevice(s, hash, path)));
    const busyDevices: BusyDevice[] = [];
    const mountPoints = await mountPointsByDevice();
    for (const hash of [...s.activated].sort()) {
      await attempt(() =>
        s.locks.run(deviceLock(hash), async () => {
          const busy = await this.deactivateUnlessHeld(hash, mountPoints, keepMounts && s.mounts.has(hash));
          if (busy) busyDevices.push(busy);
        }),
      );
    }
    s.idle.clear();
    // next_device_id, as Docker saved it at shutdown: only when it moved or was never written.
    // A hint (open finds the used ids in the device files), so not saving it only warns.
    if (!s.deviceSetOnDisk || s.ids.nextDeviceId !== s.deviceSet.nextDeviceId)
      await saveDeviceSet(s).catch((err: unknown) =>
        process.emitWarning(`next_device_id not saved in ${s.root}/metadata/deviceset-metadata: ${err instanceof Error ? err.message : String(err)}`, {
          code: 'DEVMAPPER_METADATA_NOT_SAVED',
        }),
      );
    let pool: ShutdownResult['pool'] = s.pool.owned ? 'inactive' : 'external';
    if (s.pool.owned) {
      await attempt(async () => {
        const info = await dm.getInfo(s.pool.name);
        if (!info) return;
        // Its thin devices that stay need it; not an error (Docker's Shutdown neither).
        if (busyDevices.length > 0) {
          pool = 'busy';
          return;
        }
        try {
          await dm.removeDevice(s.pool.name, { retryBudgetMs: s.options.removeRetryBudgetMs });
        } catch (err) {
          if (!(err instanceof DevmapperError)) throw err;
          if (err.code === 'EBUSY') pool = 'busy';
          else if (err.code !== 'ENXIO') throw err;
        }
      });
    }
    // udev's work on what this DeviceSet removed without waiting (udevReap), within the bound:
    // the nodes match the kernel and no semaphore is left when the caller goes on.
    if (dm.udevReaperStats().pending > 0) await attempt(() => dm.udevSettle(s.options.udevWaitTimeoutMs));
    // Last: another process may take the root once this one has let go of everything.
    s.lock.release();
    if (failure !== undefined) throw failure;
    return { pool, busyDevices };
  }

  /**
   * Deactivates a device of the root at shutdown unless something holds it: a device mounted
   * in this namespace is left at once, one held otherwise after dm's busy retries. Returns it
   * when it stays active.
   */
  private async deactivateUnlessHeld(hash: string, mountPoints: Map<string, string[]>, keep: boolean): Promise<BusyDevice | null> {
    const s = this.s;
    const name = nameOf(s, hash);
    const held = async (): Promise<BusyDevice | null> => {
      const info = await dm.getInfo(name);
      if (!info) {
        s.activated.delete(hash);
        return null;
      }
      const where = mountPoints.get(`${info.major}:${info.minor}`) ?? [];
      return info.openCount > 0 && (keep || where.length > 0) ? { hash, name, openCount: info.openCount, mountPoints: where } : null;
    };
    const mounted = await held();
    if (mounted || !s.activated.has(hash)) return mounted;
    try {
      await deactivate(s, hash, { deferred: false });
      return null;
    } catch (err) {
      if (!(err instanceof DevmapperError)) throw err;
      // Gone meanwhile (a deferred remove completed): as good as deactivated.
      if (err.code === 'ENXIO') {
        s.activated.delete(hash);
        return null;
      }
      if (err.code !== 'EBUSY') throw err;
      const info = await dm.getInfo(name);
      if (!info) return null;
      return { hash, name, openCount: info.openCount, mountPoints: mountPoints.get(`${info.major}:${info.minor}`) ?? [] };
    }
  }

  /** {@link DeviceSet.shutdown}, for `await using`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.shutdown();
  }
}

/**
 * The hashes of the devices of a root the kernel has active, from their names
 * (`<prefix>-<hash>`, `<prefix>-base` for the base), leaving out the pool names given.
 */
async function activeDevicesOfRoot(prefix: string, poolNames: string[]): Promise<string[]> {
  const start = `${prefix}-`;
  const base = deviceName(prefix, BASE_HASH);
  return (await dm.listDevices())
    .map((d) => d.name)
    .filter((n) => n.startsWith(start) && !poolNames.includes(n))
    .map((n) => (n === base ? BASE_HASH : n.slice(start.length)));
}

/**
 * How long after udev completed it a cookie nobody collected counts as abandoned: well past
 * any waiter's bound (ours is the udev wait bound; libdevmapper's own waiters collect within
 * milliseconds of udev), and never under a minute.
 */
function abandonedCookieAgeSeconds(udevWaitTimeoutMs: number): number {
  return Math.max(60, Math.ceil((2 * udevWaitTimeoutMs) / 1000));
}

/** The mount points of this mount namespace by device ("major:minor"), from /proc/self/mountinfo. */
async function mountPointsByDevice(): Promise<Map<string, string[]>> {
  const byDevice = new Map<string, string[]>();
  const text = await readFile('/proc/self/mountinfo', 'utf8').catch(() => '');
  for (const line of text.split('\n')) {
    // id parent major:minor root mount-point ...; spaces and the like are octal escapes.
    const fields = line.split(' ');
    if (fields.length < 5) continue;
    const point = fields[4].replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
    const list = byDevice.get(fields[2]);
    if (list) list.push(point);
    else byDevice.set(fields[2], [point]);
  }
  return byDevice;
}
