/**
 * containerd's snapshot model over a DeviceSet: every snapshot is a thin device of its own
 * (a snapshot of its parent's device, or of the base device), its record in SQLite.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { DeviceSet, type DeviceSetOptions } from '../deviceset';
import { DevmapperError, ErrorCodes, invalidArgument } from '../errors';
import { KeyedLock } from '../util';
import { crashPoint } from './crash-points';
import { ensureEmptyParent } from './empty-parent';
import { parseFilters } from './filters';
import { reconcile, type RecoveryReport } from './reconcile';
import { checkKey, checkLabels, snapshotExists, snapshotNotFound, snapshotPrecondition } from './snapshot-errors';
import { nowMicros, SnapshotStore, type SnapshotRecord } from './store';
import type { SnapshotInfo, SnapshotKind, SnapshotMount, SnapshotOptions, SnapshotUpdate, SnapshotUsage } from './types';
import { updatedLabels } from './update';

/** What {@link Snapshotter.open} takes besides the root. */
export interface SnapshotterOpenOptions {
  /** The DeviceSet options (Docker's dm.* strings or the typed object), when the Snapshotter opens its own. */
  options?: string[] | DeviceSetOptions;
  /**
   * An open DeviceSet to use instead of opening one at root; the Snapshotter's database still
   * goes under root (pass the DeviceSet's own root), and close() leaves the DeviceSet open.
   */
  deviceSet?: DeviceSet;
}

/** The device hash of a snapshot: its record's id, never its key (keys hold '/' and spaces). */
export function snapshotHash(id: number): string {
  return `snap-${id}`;
}

/** The database's place under the root, beside the DeviceSet's metadata/ and devicemapper/. */
export const DATABASE_FILE = join('snapshotter', 'snapshots.db');

/**
 * containerd's Snapshotter over a DeviceSet: prepare (active, writable) and view (read-only)
 * snapshots of committed parents, commit, remove, stat, update, usage, walk. Mounts are the
 * snapshots' block devices, active while the snapshot is active or a view; committed
 * snapshots are deactivated. Every operation is crash-safe across the two stores: SQLite
 * records the intent, the DeviceSet acts, SQLite records the result; open reconciles.
 *
 * @example
 * ```ts
 * const sn = await Snapshotter.open('/var/lib/myapp/snapshots', { options: ['dm.basesize=10G'] });
 * const [m] = await sn.prepare('ns/1/layer', '');    // { type: 'ext4', source: '/dev/mapper/...', options: [] }
 * // ... mount m.source, write, unmount ...
 * await sn.commit('layer-1', 'ns/1/layer');
 * const [v] = await sn.view('ns/2/look', 'layer-1'); // options: ['ro']
 * await sn.close();
 * ```
 */
export class Snapshotter {
  private closed = false;
  private closing: Promise<void> | null = null;
  /** Commit and remove of one snapshot run one after another. */
  private readonly locks = new KeyedLock();

  private constructor(
    private readonly ds: DeviceSet,
    private readonly store: SnapshotStore,
    private readonly fsType: 'ext4' | 'xfs',
    private readonly ownsDeviceSet: boolean,
    /** The device hash snapshots without a parent are made from (see empty-parent.ts). */
    private readonly emptyParent: string,
    /** What open repaired after an earlier process died mid-operation. */
    readonly recovery: RecoveryReport,
    /** The root it was opened at (its database is under root/snapshotter). */
    readonly root: string,
  ) {}

  /**
   * Opens the Snapshotter at root: the DeviceSet there (unless one is given), the database
   * root/snapshotter/snapshots.db, then reconciles them: an unfinished prepare is rolled back,
   * an unfinished remove finished, a device of ours without a record deleted, a record whose
   * device is gone dropped; active snapshots and views get their devices active again.
   *
   * @throws {@link DevmapperError} what DeviceSet.open throws (ERR_ROOT_BUSY while another
   *   process has the root); ERR_METADATA_CORRUPT when the database cannot be opened
   */
  static async open(root: string, opts: SnapshotterOpenOptions = {}): Promise<Snapshotter> {
    if (typeof root !== 'string' || !root.startsWith('/')) throw invalidArgument('root', 'an absolute path', root);
    const ds = opts.deviceSet ?? (await DeviceSet.open(root, { doInit: true, options: opts.options }));
    let store: SnapshotStore | null = null;
    try {
      await mkdir(join(root, 'snapshotter'), { recursive: true, mode: 0o700 });
      store = new SnapshotStore(join(root, DATABASE_FILE));
      const fs = (await ds.status()).backingFilesystem;
      const recovery = await reconcile(ds, store);
      const emptyParent = await ensureEmptyParent(ds, store, root);
      return new Snapshotter(ds, store, fs === 'xfs' ? 'xfs' : 'ext4', opts.deviceSet === undefined, emptyParent, recovery, root);
    } catch (err) {
      store?.close();
      if (!opts.deviceSet) await ds.shutdown().catch(() => undefined);
      throw err;
    }
  }

  /** The DeviceSet under this Snapshotter (its devices are named snap-<id>). */
  get deviceSet(): DeviceSet {
    return this.ds;
  }

  private checkOpen(): void {
    if (this.closed) throw new DevmapperError('the Snapshotter was closed', { code: ErrorCodes.CLOSED });
  }

  /** The ready record of a key or name. */
  private record(key: string, what = 'snapshot'): SnapshotRecord {
    const r = this.store.byName(key);
    if (!r || r.state !== 'ready') throw snapshotNotFound(what, key);
    return r;
  }

  private info(r: SnapshotRecord): SnapshotInfo {
    const parent = r.parentId === null ? null : this.store.byId(r.parentId);
    return {
      kind: r.kind,
      name: r.name,
      parent: parent?.name ?? '',
      labels: { ...r.labels },
      created: new Date(Math.floor(r.createdMicros / 1000)),
      updated: new Date(Math.floor(r.updatedMicros / 1000)),
      createdMicros: r.createdMicros,
      updatedMicros: r.updatedMicros,
    };
  }

  private mountsOf(r: SnapshotRecord): SnapshotMount[] {
    const options = this.fsType === 'xfs' ? ['nouuid'] : [];
    if (r.kind === 'view') options.push('ro');
    return [{ type: this.fsType, source: `/dev/mapper/${this.ds.deviceName(snapshotHash(r.id))}`, options }];
  }

  /**
   * An active (writable) snapshot at key, of the committed snapshot `parent` ('' = an empty
   * file system: a snapshot of the DeviceSet's base device without lost+found). Its device is active when this resolves.
   * `opts.size` makes the device (and its file system) bigger than the parent's, as the
   * DeviceSet's addDevice does; it can never be smaller.
   *
   * @throws {@link DevmapperError} ERR_INVALID_ARGUMENT (key, labels; a parent that is not
   *   committed); ERR_SNAPSHOT_EXISTS; ERR_SNAPSHOT_NOT_FOUND for the parent; the DeviceSet's
   *   errors (pool full, ...), after which nothing is left of the snapshot
   */
  prepare(key: string, parent = '', opts: SnapshotOptions = {}): Promise<SnapshotMount[]> {
    return this.create('active', key, parent, opts);
  }

  /** A read-only snapshot at key of the committed `parent`; as {@link Snapshotter.prepare}, its mounts carry 'ro'. */
  view(key: string, parent = '', opts: SnapshotOptions = {}): Promise<SnapshotMount[]> {
    return this.create('view', key, parent, opts);
  }

  private async create(kind: 'active' | 'view', key: string, parent: string, opts: SnapshotOptions): Promise<SnapshotMount[]> {
    this.checkOpen();
    checkKey('key', key);
    if (typeof parent !== 'string') throw invalidArgument('parent', "a committed snapshot's name, or ''", parent);
    const labels = checkLabels(opts.labels);
    // Checked by addDevice (one place); a refused size undoes the intent as any failure there.
    const size = opts.size;
    // Intent: the key is taken (and the parent pinned, it has a child now) before the device exists.
    const { id, parentHash } = this.store.transaction(() => {
      if (this.store.byName(key)) throw snapshotExists(key);
      let parentRecord: SnapshotRecord | null = null;
      if (parent !== '') {
        parentRecord = this.record(parent, 'parent snapshot');
        if (parentRecord.kind !== 'committed')
          throw invalidArgument('parent', 'a committed snapshot', `${parent} (${parentRecord.kind})`);
      }
      const micros = nowMicros();
      const id = this.store.insert({
        name: key,
        kind,
        parentId: parentRecord?.id ?? null,
        state: 'creating',
        createdMicros: micros,
        updatedMicros: micros,
        labels,
        sizeBytes: null,
      });
      return { id, parentHash: parentRecord ? snapshotHash(parentRecord.id) : this.emptyParent };
    });
    const hash = snapshotHash(id);
    await crashPoint('prepare-after-intent');
    try {
      await this.ds.addDevice(hash, parentHash, size === undefined ? {} : { size });
      await crashPoint('prepare-after-device');
      await this.ds.activateDevice(hash);
      await crashPoint('prepare-after-activate');
    } catch (err) {
      // Undo what exists, then the intent; if the undo fails too, open finishes it.
      try {
        if (await this.ds.hasDevice(hash)) await this.ds.deleteDevice(hash, { sync: true });
        this.store.transaction(() => this.store.delete(id));
      } catch {
        // Left as 'creating': rolled back at the next open.
      }
      throw err;
    }
    this.store.transaction(() => this.store.setState(id, 'ready'));
    return this.mountsOf(this.record(key));
  }

  /**
   * The mounts of an active snapshot or a view.
   *
   * @throws {@link DevmapperError} ERR_SNAPSHOT_NOT_FOUND; ERR_SNAPSHOT_PRECONDITION for a committed snapshot
   */
  async mounts(key: string): Promise<SnapshotMount[]> {
    this.checkOpen();
    checkKey('key', key);
    const r = this.record(key);
    if (r.kind === 'committed') throw snapshotPrecondition(key, 'is committed: it has no mounts (prepare or view a child of it)');
    return this.mountsOf(r);
  }

  /**
   * Commits the active snapshot at key as `name`: its mapped bytes are recorded as its
   * usage, its device deactivated (unless still mounted: then later), and it becomes an
   * immutable parent. The key is gone after.
   *
   * @throws {@link DevmapperError} ERR_SNAPSHOT_NOT_FOUND; ERR_SNAPSHOT_EXISTS for the name;
   *   ERR_SNAPSHOT_PRECONDITION for a view or a committed snapshot
   */
  async commit(name: string, key: string, opts: SnapshotOptions = {}): Promise<void> {
    this.checkOpen();
    checkKey('name', name);
    checkKey('key', key);
    const labels = checkLabels(opts.labels);
    const first = this.record(key);
    await this.locks.run(String(first.id), async () => {
      const r = this.record(key);
      if (r.kind !== 'active') throw snapshotPrecondition(key, `is a ${r.kind === 'view' ? 'view' : 'committed snapshot'}: only active snapshots can be committed`);
      if (this.store.byName(name)) throw snapshotExists(name);
      const hash = snapshotHash(r.id);
      const status = await this.ds.getDeviceStatus(hash);
      // The device's data stays as it is: committing changes only who may write it.
      // Deactivating first means a crash leaves an active record whose device open activates
      // again. A device still open (containerd may commit before it unmounts) stays active:
      // it goes at remove, reopen or shutdown, and a child's create_snap suspends it, which
      // flushes the file system, so the child sees what was written.
      if (status.openCount === 0) await this.ds.deactivateDevice(hash);
      await crashPoint('commit-after-deactivate');
      try {
        this.store.transaction(() => {
          if (this.store.byName(name)) throw snapshotExists(name);
          this.store.commit(r.id, name, labels, status.mappedBytes ?? 0, nowMicros());
        });
      } catch (err) {
        await this.ds.activateDevice(hash).catch(() => undefined);
        throw err;
      }
      await crashPoint('commit-after-record');
    });
  }

  /**
   * Removes a snapshot (any kind) and deletes its device.
   *
   * @throws {@link DevmapperError} ERR_SNAPSHOT_NOT_FOUND; ERR_SNAPSHOT_PRECONDITION when it
   *   has children; EBUSY when its device is still mounted (the snapshot stays)
   */
  async remove(key: string): Promise<void> {
    this.checkOpen();
    checkKey('key', key);
    const first = this.record(key);
    await this.locks.run(String(first.id), async () => {
      const r = this.store.transaction(() => {
        const r = this.record(key);
        const children = this.store.childCount(r.id);
        if (children > 0) throw snapshotPrecondition(key, `has ${children} child snapshot${children === 1 ? '' : 's'}: remove them first`);
        this.store.setState(r.id, 'removing');
        return r;
      });
      await crashPoint('remove-after-intent');
      const hash = snapshotHash(r.id);
      try {
        if (await this.ds.hasDevice(hash)) await this.ds.deleteDevice(hash, { sync: true });
      } catch (err) {
        // Still there (busy): the snapshot stays as it was.
        if (await this.ds.hasDevice(hash)) this.store.transaction(() => this.store.setState(r.id, 'ready'));
        else this.store.transaction(() => this.store.delete(r.id));
        throw err;
      }
      await crashPoint('remove-after-delete');
      this.store.transaction(() => this.store.delete(r.id));
    });
  }

  /**
   * The info of a snapshot by key (active, view) or name (committed).
   *
   * @throws {@link DevmapperError} ERR_SNAPSHOT_NOT_FOUND
   */
  async stat(key: string): Promise<SnapshotInfo> {
    this.checkOpen();
    checkKey('key', key);
    return this.info(this.record(key));
  }

  /**
   * Changes a snapshot's labels (nothing else can change): all of them without field paths
   * or with 'labels', one each with 'labels.KEY'. Returns the info after.
   *
   * @throws {@link DevmapperError} ERR_SNAPSHOT_NOT_FOUND; ERR_INVALID_ARGUMENT for other field paths or bad labels
   */
  async update(info: SnapshotUpdate, fieldPaths: readonly string[] = []): Promise<SnapshotInfo> {
    this.checkOpen();
    if (typeof info !== 'object' || info === null) throw invalidArgument('info', 'an object with the name', info);
    checkKey('info.name', info.name);
    return this.store.transaction(() => {
      const r = this.record(info.name);
      this.store.setLabels(r.id, updatedLabels(r.labels, info.labels, fieldPaths), nowMicros());
      return this.info(this.record(info.name));
    });
  }

  /**
   * The bytes a snapshot holds in the pool: its thin device's mapped blocks now (active,
   * view), or as recorded at commit (committed).
   *
   * @throws {@link DevmapperError} ERR_SNAPSHOT_NOT_FOUND
   */
  async usage(key: string): Promise<SnapshotUsage> {
    this.checkOpen();
    checkKey('key', key);
    const r = this.record(key);
    if (r.kind === 'committed') return { sizeBytes: r.sizeBytes ?? 0, inodes: 0 };
    const st = await this.ds.getDeviceStatus(snapshotHash(r.id));
    return { sizeBytes: st.mappedBytes ?? 0, inodes: 0 };
  }

  /**
   * Calls fn with the info of every snapshot that matches the filters (containerd's syntax:
   * any filter of the list; in one, every ',' selector), in creation order. fn may be async.
   *
   * @throws {@link DevmapperError} ERR_INVALID_ARGUMENT for a filter that does not parse; what fn throws
   */
  async walk(fn: (info: SnapshotInfo) => void | Promise<void>, filters: readonly string[] = []): Promise<void> {
    this.checkOpen();
    const match = parseFilters(filters);
    for (const r of this.store.all()) {
      if (r.state !== 'ready') continue;
      const info = this.info(r);
      if (match(info)) await fn(info);
    }
  }

  /** The kinds of the snapshots, counted (for status lines and tests). */
  counts(): Record<SnapshotKind, number> {
    const out: Record<SnapshotKind, number> = { active: 0, view: 0, committed: 0 };
    for (const r of this.store.all()) if (r.state === 'ready') out[r.kind]++;
    return out;
  }

  /**
   * Closes the database and, when the Snapshotter opened it, shuts the DeviceSet down (which
   * deactivates the devices nobody holds). Idempotent; calls after it throw ERR_CLOSED.
   */
  close(): Promise<void> {
    this.closed = true;
    this.closing ??= (async () => {
      try {
        if (this.ownsDeviceSet) await this.ds.shutdown();
      } finally {
        this.store.close();
      }
    })();
    return this.closing;
  }

  /** `await using` support: {@link Snapshotter.close}. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
