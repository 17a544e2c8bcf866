/**
 * The graph Driver: Docker's devicemapper graphdriver facade over a DeviceSet (moby v24
 * daemon/graphdriver/devmapper/driver.go), with mount reference counts that survive a
 * restart by starting from what the kernel says is mounted (a statx of the mount point).
 *
 * Layout under home (the DeviceSet's root, 0700): mnt/ (0755; bind-mounted onto itself with
 * private propagation from init to cleanup) and, while a layer is in use,
 * mnt/<id>/ (0755) with the device mounted on it. The device's file system holds `id` (the
 * id, 0600, no newline) and `rootfs/` (0755), which is what get() returns: a volume made by
 * Docker and one made here look the same.
 *
 * Layer diffs (applyDiff, diff, changes, diffSize) are Docker's naive diff over the rootfs
 * directories, done by lib/layers on the mounted volumes through get()/put().
 */
import { existsSync, statSync } from 'node:fs';
import { chmod, mkdir, rmdir } from 'node:fs/promises';
import { constants as osConstants } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { KeyedLock } from '../util';
import { DevmapperError, ErrorCodes, invalidArgument } from '../errors';
import * as sys from '../sys';
import { checkDeviceHash, DeviceSet, unknownDevice, type DeviceSetOptions, type LayoutEntry, type ShutdownResult } from '../deviceset';
import { driverMetadata, statusRows, type DriverMetadata, type StatusRow } from './status-rows';
import { parseStorageOpt, type StorageOpt } from './storage-opt';
import { applyLayer, byPath, emptyDir, exportChanges, flatten, readTree, treeChanges, type Change, type TreeNode } from '../layers';

/** Options of {@link Driver.create}. */
export interface CreateOptions {
  /** Docker's storage options: only `size` ("20G"), at least the parent's size. */
  storageOpt?: StorageOpt;
}

/**
 * Docker's devicemapper graph driver over a {@link DeviceSet}: layers are thin snapshots,
 * get() mounts a layer at home/mnt/<id> and returns its rootfs/, with a reference count per
 * layer so that nested gets share one mount. The counts start, after a restart, from what
 * the kernel says is mounted (a statx of the mount point), so nothing is mounted twice.
 *
 * @example
 * ```ts
 * const driver = await Driver.init('/var/lib/myapp/devicemapper', ['dm.basesize=20G']);
 * await driver.create('image', '');
 * await driver.create('c1', 'image', { storageOpt: { size: '40G' } });
 * const rootfs = await driver.get('c1');   // /var/lib/myapp/devicemapper/mnt/c1/rootfs
 * await driver.put('c1');
 * await driver.remove('c1');
 * await driver.cleanup();
 * ```
 */
export class Driver {
  /** Mount reference counts by id; an id absent here has count 0. */
  private readonly refs = new Map<string, number>();
  private readonly locks = new KeyedLock();
  private cleanupPromise: Promise<ShutdownResult> | null = null;
  private closed = false;
  /** home/mnt is a bind mount of itself that a Driver made: cleanup unmounts it. */
  private ownMntMount = false;

  private constructor(
    /** The driver's home: the DeviceSet's root. */
    readonly home: string,
    /** The DeviceSet underneath (for status, lists and low-level use). */
    readonly deviceSet: DeviceSet,
  ) {}

  /**
   * Opens (creating when new) the DeviceSet rooted at home (0700) with the base device, and
   * creates home/mnt (0755), made a private mount (a bind of itself) so that layer mounts do
   * not propagate into other mount namespaces; cleanup unmounts it again. Options as DeviceSet.open takes them: Docker's 'dm.*' strings or
   * the typed object.
   *
   * @param home absolute path of the driver's home (the DeviceSet's root)
   * @param options Docker's 'dm.key=value' strings or a {@link DeviceSetOptions} object
   * @throws {@link DevmapperError} ERR_INVALID_ARGUMENT for a relative home; everything
   *   {@link DeviceSet.open} throws
   *
   * @example
   * ```ts
   * const driver = await Driver.init('/var/lib/myapp/devicemapper', ['dm.fs=xfs', 'dm.basesize=20G']);
   * ```
   */
  static async init(home: string, options: string[] | DeviceSetOptions = []): Promise<Driver> {
    if (typeof home !== 'string' || !home.startsWith('/')) throw invalidArgument('home', 'an absolute path', home);
    const ds = await DeviceSet.open(home, { doInit: true, options });
    const mnt = join(home, 'mnt');
    let ownMount: boolean;
    try {
      await mkdir(mnt, { recursive: true, mode: 0o755 });
      await chmod(mnt, 0o755);
      // Private, so that layer mounts are not copied into other mount namespaces, where they
      // would hold the devices open (see sys.makePrivateMount).
      ownMount = (await sys.makePrivateMount(mnt)) || isSelfBind(home, mnt);
    } catch (err) {
      await ds.shutdown().catch(() => undefined);
      throw err;
    }
    const driver = new Driver(home, ds);
    driver.ownMntMount = ownMount;
    return driver;
  }

  private mountPoint(id: string): string {
    return join(this.home, 'mnt', id);
  }

  private checkOpen(): void {
    if (this.closed) throw new DevmapperError('the Driver was cleaned up', { code: ErrorCodes.CLOSED });
  }

  /** Throws ERR_INVALID_ARGUMENT for an id that is not a safe device hash, before any path is built from it. */
  private checkId(id: unknown, argument = 'id'): string {
    return checkDeviceHash(id, { devicePrefix: this.deviceSet.devicePrefix, argument });
  }

  /**
   * Creates layer `id` as a snapshot of `parent` ('' or null: of the base device).
   *
   * @param id the new layer's id, a safe file and device name (`../x`, `.hidden`, `base`,
   *   names too long for device-mapper are refused before anything is touched)
   * @param parent the parent layer, or '' / null for the base device
   * @param opts `storageOpt.size`: a size such as "20G", at least the parent's
   * @throws {@link DevmapperError} ERR_CLOSED; ERR_INVALID_ARGUMENT (id, parent, an unknown
   *   storage option, a bad or too small size); EEXIST; ENOENT for an unknown parent; the
   *   pool refusals of {@link DeviceSet.addDevice} (ERR_POOL_LOW_SPACE, ...)
   *
   * @example
   * ```ts
   * await driver.create('c1-init', 'image');
   * await driver.create('c1', 'c1-init', { storageOpt: { size: '40G' } });
   * ```
   */
  async create(id: string, parent: string | null | undefined, opts: CreateOptions = {}): Promise<void> {
    this.checkOpen();
    this.checkId(id);
    const { size } = parseStorageOpt(opts?.storageOpt);
    const base = this.checkParent(parent);
    await this.deviceSet.addDevice(id, base, size === undefined ? {} : { size });
  }

  /**
   * The same as create for devicemapper: every layer is writable.
   *
   * @throws {@link DevmapperError} as {@link Driver.create}
   */
  createReadWrite(id: string, parent: string | null | undefined, opts: CreateOptions = {}): Promise<void> {
    return this.create(id, parent, opts);
  }

  /**
   * Mounts the layer at home/mnt/<id> on first use (later calls only count) and returns
   * home/mnt/<id>/rootfs, creating `rootfs/` (0755) and the `id` file (0600) on the device
   * when missing. A mount left by a process that died is taken over, not mounted again.
   *
   * @param id the layer
   * @param mountLabel SELinux context for the mount, when wanted
   * @returns home/mnt/<id>/rootfs
   * @throws {@link DevmapperError} ERR_CLOSED; ERR_INVALID_ARGUMENT for a bad id; ENOENT for
   *   an unknown layer; the errors of {@link DeviceSet.mountDevice} (nothing is left mounted)
   *
   * @example
   * ```ts
   * const rootfs = await driver.get('c1');
   * await writeFile(join(rootfs, 'hello'), 'hi');
   * await driver.put('c1');
   * ```
   */
  async get(id: string, mountLabel?: string): Promise<string> {
    this.checkOpen();
    this.checkId(id);
    return this.locks.run(id, async () => {
      this.checkOpen();
      const mp = this.mountPoint(id);
      const rootfs = join(mp, 'rootfs');
      const count = this.refs.get(id) ?? 0;
      if (count > 0) {
        this.refs.set(id, count + 1);
        return rootfs;
      }
      if (!(await this.deviceSet.hasDevice(id))) throw unknownDevice(id);
      if (sys.isMountPoint(mp)) {
        // Mounted by a predecessor that died without its put: count it as ours now.
        this.refs.set(id, 1);
        return rootfs;
      }
      // Docker's Get: the mount point, the mount, then rootfs/ (0755) and the id file (0600,
      // the id, no newline) when missing: one native job, undone as a whole when it fails.
      const mount = () => this.deviceSet.mountDevice(id, mp, mountLabel, { mountPointMode: 0o755, layout: layoutOf(id) });
      try {
        await mount();
      } catch (err) {
        // home/mnt itself is missing (removed behind our back): make it again.
        if (!(err instanceof DevmapperError && err.code === 'ENOENT' && err.device === mp)) throw err;
        await mkdir(join(this.home, 'mnt'), { recursive: true, mode: 0o755 });
        await mount();
      }
      this.refs.set(id, 1);
      return rootfs;
    });
  }

  /**
   * Drops one reference; the last one unmounts (MNT_DETACH) and removes home/mnt/<id>; the
   * device stays active, idle, as {@link DeviceSet.unmountDevice} leaves it (keepActive 0:
   * deactivated, Docker's Put). A put with no reference left does nothing, except that a mount
   * left by a process that died is released.
   *
   * @throws {@link DevmapperError} ERR_CLOSED; ERR_INVALID_ARGUMENT for a bad id; EBUSY when
   *   the device stays open after the unmount (the count is kept right either way)
   */
  async put(id: string): Promise<void> {
    this.checkOpen();
    this.checkId(id);
    await this.locks.run(id, async () => {
      this.checkOpen();
      const mp = this.mountPoint(id);
      const count = this.refs.get(id) ?? 0;
      if (count > 1) {
        this.refs.set(id, count - 1);
        return;
      }
      if (count === 0 && !sys.isMountPoint(mp)) return;
      if (!(await this.deviceSet.hasDevice(id))) {
        this.refs.delete(id);
        return;
      }
      try {
        await this.deviceSet.unmountDevice(id, mp);
      } catch (err) {
        // Unmounted but not deactivated (held elsewhere): the count must not claim a mount.
        if (!sys.isMountPoint(mp)) this.refs.delete(id);
        throw err;
      }
      this.refs.delete(id);
    });
  }

  /**
   * Deletes the layer (Docker's Remove: deleteDevice without sync, so with deferred deletion a
   * busy device is marked deleted and retried) and removes home/mnt/<id> if left. A missing
   * id is a no-op; a mounted one is refused with EBUSY.
   *
   * @throws {@link DevmapperError} ERR_CLOSED; EBUSY while mounted (put it first) or while
   *   something else holds the device past the retry budget; the errors of
   *   {@link DeviceSet.deleteDevice}
   */
  async remove(id: string): Promise<void> {
    this.checkOpen();
    if (!(await this.deviceSet.hasDevice(id))) return;
    this.checkId(id);
    await this.locks.run(id, async () => {
      this.checkOpen();
      if (!(await this.deviceSet.hasDevice(id))) return;
      const mp = this.mountPoint(id);
      const count = this.refs.get(id) ?? 0;
      if (count > 0 || sys.isMountPoint(mp))
        throw new DevmapperError(`layer ${id} is mounted at ${mp} (${count || 'left by another process'}): put it first`, {
          code: 'EBUSY',
          errno: osConstants.errno.EBUSY,
          device: id,
          operation: 'remove',
        });
      await this.deviceSet.deleteDevice(id, { sync: false });
      // put's unmount removed the mount point; one is left only when something held it then.
      if (!existsSync(mp)) return;
      await rmdir(mp).catch((err: NodeJS.ErrnoException) => {
        // Not important for the removal itself, as in Docker: a leaked mount elsewhere can hold it.
        if (err.code !== 'ENOENT' && err.code !== 'ENOTEMPTY' && err.code !== 'EBUSY') throw err;
      });
    });
  }

  /** Whether the layer exists (and is not marked for deferred deletion). */
  async exists(id: string): Promise<boolean> {
    return this.deviceSet.hasDevice(id);
  }

  /**
   * Unpacks a layer tar (uncompressed; whiteouts and opaque directories apply) into layer
   * `id`'s rootfs and returns the bytes of file content written. Docker's naive ApplyDiff:
   * `parent` is only checked, the layer is expected to be a snapshot of it. A refused entry
   * (ERR_UNSAFE_LAYER_ENTRY) or a broken tar (ERR_INVALID_ARGUMENT) leaves the rootfs as it
   * was: the undo scratch directory lives on the volume, beside rootfs, and is removed.
   */
  async applyDiff(id: string, parent: string | null | undefined, tarStream: Readable): Promise<number> {
    this.checkOpen();
    this.checkId(id);
    this.checkParent(parent);
    if (tarStream === null || typeof tarStream !== 'object' || typeof (tarStream as Readable).pipe !== 'function')
      throw invalidArgument('tarStream', 'a readable stream', tarStream);
    const rootfs = await this.get(id);
    try {
      return await applyLayer(rootfs, tarStream, { scratchParent: this.mountPoint(id) });
    } finally {
      await this.put(id);
    }
  }

  /**
   * The changes of layer `id` against `parent` ('' or null: an empty tree), sorted by path,
   * like Docker's archive.Change list. Both are mounted for the walk (through get/put).
   */
  async changes(id: string, parent: string | null | undefined): Promise<Change[]> {
    const { list } = await this.withTrees(id, parent, async (_root, layer, base) => ({ list: treeChanges(layer, base) }));
    return list;
  }

  /** The total size of the added and changed regular files of `id` against `parent` (a hard-linked file once). */
  async diffSize(id: string, parent: string | null | undefined): Promise<number> {
    return this.withTrees(id, parent, async (_root, layer, base) => {
      const nodes = flatten(layer);
      const seen = new Set<string>();
      let total = 0;
      for (const c of treeChanges(layer, base)) {
        const node = nodes.get(c.path);
        if (c.kind === 'D' || node?.type !== 'file' || seen.has(node.inode)) continue;
        seen.add(node.inode);
        total += node.size;
      }
      return total;
    });
  }

  /**
   * An uncompressed tar of the changes of `id` against `parent`, which applyDiff on a fresh
   * snapshot of `parent` turns back into `id`. The layer stays mounted (one reference) until
   * the stream ends or is destroyed: read it to the end or destroy it.
   */
  async diff(id: string, parent: string | null | undefined): Promise<Readable> {
    this.checkOpen();
    this.checkId(id);
    const base = this.checkParent(parent);
    const rootfs = await this.get(id);
    let handedOver = false;
    try {
      const [layer, old] = await this.readTrees(rootfs, base);
      const exported = exportChanges(rootfs, layer, treeChanges(layer, old).sort(byPath));
      let released: Promise<void> | undefined;
      // The unmount waits for the writer to close the layer's files.
      const release = (): Promise<void> => (released ??= exported.finished.then(() => this.put(id)));
      const out = Readable.from(releasedAfter(exported.stream, release));
      // A stream destroyed before its first read never runs the generator: release here too.
      out.once('close', () => {
        exported.abort();
        release().catch(() => undefined);
      });
      handedOver = true;
      return out;
    } finally {
      if (!handedOver) await this.put(id);
    }
  }

  /** '' for none, or a checked parent id. */
  private checkParent(parent: string | null | undefined): string {
    const base = parent ?? '';
    if (base !== '') this.checkId(base, 'parent');
    return base;
  }

  /** Mounts `id` and `parent` (when any), reads both trees, runs fn, and puts both back. */
  private async withTrees<T>(
    id: string,
    parent: string | null | undefined,
    fn: (root: string, layer: TreeNode, base: TreeNode) => Promise<T>,
  ): Promise<T> {
    this.checkOpen();
    this.checkId(id);
    const base = this.checkParent(parent);
    const rootfs = await this.get(id);
    try {
      const [layer, old] = await this.readTrees(rootfs, base);
      return await fn(rootfs, layer, old);
    } finally {
      await this.put(id);
    }
  }

  /** The trees of a mounted layer's rootfs and of `base` ('' = an empty tree), which is mounted only while it is read. */
  private async readTrees(rootfs: string, base: string): Promise<[TreeNode, TreeNode]> {
    if (base === '') return [await readTree(rootfs), emptyDir()];
    const parentRoot = await this.get(base);
    try {
      return await Promise.all([readTree(rootfs), readTree(parentRoot)]);
    } finally {
      await this.put(base);
    }
  }

  /**
   * Docker's status rows, in Docker's order and formatting (see {@link statusRows}); the typed
   * view is `driver.deviceSet.status()`.
   *
   * @throws {@link DevmapperError} ERR_CLOSED
   */
  async status(): Promise<StatusRow[]> {
    this.checkOpen();
    return statusRows(await this.deviceSet.status());
  }

  /**
   * Docker's GetMetadata: { DeviceId, DeviceSize, DeviceName }, all strings.
   *
   * @throws {@link DevmapperError} ERR_CLOSED; ENOENT for an unknown or deleted layer
   */
  async getMetadata(id: string): Promise<DriverMetadata> {
    this.checkOpen();
    const meta = this.deviceSet.getDeviceMetadata(id);
    if (!meta || meta.deleted || id === '') throw unknownDevice(id);
    return driverMetadata(meta, this.deviceSet.deviceName(id));
  }

  /** The mount reference count of a layer (0 when not mounted by this Driver). */
  refCount(id: string): number {
    return this.refs.get(id) ?? 0;
  }

  /**
   * Unmounts every layer this Driver holds (whatever its count) and the bind mount of
   * home/mnt, then shuts the DeviceSet down (its pool deactivated when ours). Idempotent; the Driver is closed after.
   *
   * @returns what stayed active, as {@link DeviceSet.shutdown} reports it (devices someone
   *   else still holds, and the pool they need)
   */
  cleanup(): Promise<ShutdownResult> {
    this.cleanupPromise ??= this.doCleanup();
    return this.cleanupPromise;
  }

  /**
   * Closes the Driver but leaves every mounted layer mounted for a later process (a
   * command-line tool between invocations): a later Driver's get counts such a mount as its
   * own and its put unmounts it. The DeviceSet is released (DeviceSet.release): its pool stays
   * active while a layer is mounted, and so does the bind mount of home/mnt. Shares cleanup's promise: the first of the two decides.
   *
   * @returns what stayed active ({@link DeviceSet.release}'s report: the mounted layers, and the pool)
   */
  release(): Promise<ShutdownResult> {
    this.cleanupPromise ??= (async () => {
      this.closed = true;
      this.refs.clear();
      await this.unmountMnt();
      return this.deviceSet.release();
    })();
    return this.cleanupPromise;
  }

  /**
   * Unmounts the bind of home/mnt that a Driver made, unless a layer is still mounted under
   * it: a plain umount2 of a mount with mounts below it fails (EBUSY), and that is left so.
   */
  private async unmountMnt(): Promise<void> {
    if (this.ownMntMount) await sys.unmount(join(this.home, 'mnt')).catch(() => undefined);
  }

  private async doCleanup(): Promise<ShutdownResult> {
    this.closed = true;
    let failure: unknown;
    for (const id of [...this.refs.keys()]) {
      try {
        await this.locks.run(id, async () => {
          await this.deviceSet.unmountDevice(id, this.mountPoint(id));
          this.refs.delete(id);
        });
      } catch (err) {
        failure ??= err;
      }
    }
    await this.unmountMnt();
    let result: ShutdownResult;
    try {
      result = await this.deviceSet.shutdown();
    } catch (err) {
      // An unmount that failed first is the error to report.
      throw failure ?? err;
    }
    if (failure !== undefined) throw failure;
    return result;
  }

  /** {@link Driver.cleanup}, for `await using`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.cleanup();
  }
}

/**
 * The chunks of `source`, then `release` before the stream ends (so a reader that saw the end
 * sees the reference dropped); also when the reader stops early or destroys the stream.
 */
async function* releasedAfter(source: Readable, release: () => Promise<void>): AsyncGenerator<Buffer> {
  try {
    for await (const chunk of source) yield chunk as Buffer;
  } finally {
    await release();
  }
}

/** What Docker's Get leaves on a layer's volume: rootfs/ (0755) and the id file (0600, the id, no newline). */
function layoutOf(id: string): LayoutEntry[] {
  return [
    { path: 'rootfs', mode: 0o755 },
    { path: 'id', mode: 0o600, content: id },
  ];
}

/**
 * Whether home/mnt is a mount point on home's own file system: the bind mount of itself that
 * an earlier Driver made (a released one leaves it for the layers it left mounted). A file
 * system of the user's mounted there has a device of its own, and is left alone.
 */
function isSelfBind(home: string, mnt: string): boolean {
  return statSync(mnt).dev === statSync(home).dev;
}
