/**
 * A DeviceSet root opened read-only, to look into a stopped container's volume the way a
 * person would by hand: without taking the root's lock and without writing to the root at
 * all. Each look reads the device's metadata file, maps its thin id from the pool read-only
 * (bringing the pool up read-only from its loop files, under a name of its own, when it is not
 * active), mounts it read-only on a temporary directory, and afterwards unmounts, unmaps and
 * removes everything it made, whatever happened.
 */
import { mkdtemp, readFile, rmdir, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as dm from '../dm';
import { DevmapperError, ErrorCodes } from '../errors';
import * as sys from '../sys';
import { unknownDevice } from './devices';
import { probeFilesystem } from './filesystem';
import { checkDeviceHash, deviceName, devicePrefixFromStat, poolName as poolNameOf } from './hash';
import { decodeDevice, decodeDeviceSet, DEVICE_SET_FILE, type DeviceMetadata } from './metadata-store';
import { resolveOptions, type DeviceSetOptions, type ResolvedOptions } from './options';

async function readText(file: string): Promise<string | null> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

/** Undo steps run last-in first-out; every one runs, the first failure is kept. */
class Cleanup {
  private readonly steps: Array<() => Promise<void>> = [];
  push(step: () => Promise<void>): void {
    this.steps.push(step);
  }
  async run(): Promise<unknown> {
    let failure: unknown;
    for (const step of this.steps.reverse()) {
      try {
        await step();
      } catch (err) {
        failure ??= err;
      }
    }
    return failure;
  }
}

/**
 * A DeviceSet root opened read-only ({@link DeviceSet.openReadOnly}): its devices' metadata,
 * and their file systems mounted read-only for a moment. Holds nothing between calls.
 *
 * @example
 * ```ts
 * const ro = await DeviceSet.openReadOnly('/var/lib/myapp/devicemapper');
 * const names = await ro.withVolume('c1', (dir) => readdir(join(dir, 'rootfs')));
 * ```
 */
export class ReadOnlyDeviceSet {
  private constructor(
    /** The root. */
    readonly root: string,
    private readonly prefix: string,
    private readonly options: ResolvedOptions,
  ) {}

  /** See {@link DeviceSet.openReadOnly}. */
  static async open(root: string, options: string[] | DeviceSetOptions = []): Promise<ReadOnlyDeviceSet> {
    const resolved = resolveOptions(options);
    const rootStat = await stat(root, { bigint: true }).catch(() => null);
    if (!rootStat?.isDirectory()) throw new DevmapperError(`no devmapper root at ${root}`, { code: 'ENOENT', device: root });
    return new ReadOnlyDeviceSet(root, devicePrefixFromStat(rootStat), resolved);
  }

  /**
   * A device's metadata as its file says.
   *
   * @throws {@link DevmapperError} ERR_INVALID_ARGUMENT for a bad hash; ENOENT for an unknown
   *   or deleted device; ERR_METADATA_CORRUPT for a file that does not hold device metadata
   */
  async getDeviceMetadata(hash: string): Promise<DeviceMetadata> {
    checkDeviceHash(hash, { devicePrefix: this.prefix });
    const file = join(this.root, 'metadata', hash);
    const text = await readText(file);
    if (text === null) throw unknownDevice(hash);
    const meta = decodeDevice(text, file);
    if (meta.deleted) throw unknownDevice(hash);
    return meta;
  }

  /**
   * Mounts the device's file system read-only on a temporary directory (its journal never
   * replayed), runs fn with that directory and the device's metadata, then unmounts and unmaps everything this call
   * made, whatever happened. A device in use (its mapping open: mounted by its DeviceSet) is
   * refused: look at it where it is mounted.
   *
   * @throws {@link DevmapperError} what {@link getDeviceMetadata} throws; EBUSY for a device
   *   in use; ENXIO when the pool is not active and cannot be brought up (no loop files, or a
   *   dm.thinpooldev pool that is down); ERR_BASE_DEVICE_CHANGED when no ext4 or xfs file
   *   system is found; whatever fn throws
   */
  async withVolume<T>(hash: string, fn: (dir: string, meta: DeviceMetadata) => Promise<T>): Promise<T> {
    const meta = await this.getDeviceMetadata(hash);
    const own = await dm.getInfo(deviceName(this.prefix, hash));
    if (own && own.openCount > 0)
      throw new DevmapperError(`${hash} is in use (its device ${own.name} is open, mounted?): look at it where it is mounted`, {
        code: 'EBUSY',
        device: hash,
      });
    const setText = await readText(join(this.root, 'metadata', DEVICE_SET_FILE));
    const recordedFs = setText === null ? '' : decodeDeviceSet(setText, DEVICE_SET_FILE).baseDeviceFilesystem;

    const cleanup = new Cleanup();
    let result: { value: T } | undefined;
    let failure: unknown;
    try {
      const pool = await this.poolFor(cleanup);
      const name = `devmapper-ro-${process.pid}-${meta.deviceId}`;
      await dm.activateDevice(pool, name, meta.deviceId, meta.size, { readOnly: true, udevPrivate: true });
      cleanup.push(() => dm.removeDevice(name));
      const device = `/dev/mapper/${name}`;
      const fs = recordedFs === 'ext4' || recordedFs === 'xfs' ? recordedFs : (await probeFilesystem(device)).type;
      if (fs !== 'ext4' && fs !== 'xfs') throw new DevmapperError(`no ext4 or xfs file system on ${hash}`, { code: ErrorCodes.BASE_DEVICE_CHANGED, device: hash });
      const dir = await mkdtemp(join(tmpdir(), 'devmapper-ro-'));
      cleanup.push(() => rmdir(dir));
      // Never replay a journal: the device is read-only, and the volume must stay as it was.
      await sys.mount(device, dir, fs, { readOnly: true, data: fs === 'xfs' ? 'nouuid,norecovery' : 'noload' });
      cleanup.push(() => sys.unmount(dir));
      result = { value: await fn(dir, meta) };
    } catch (err) {
      failure = err;
    }
    const cleanupFailure = await cleanup.run();
    if (failure !== undefined) throw failure;
    if (cleanupFailure !== undefined) throw cleanupFailure;
    return result!.value;
  }

  /** The pool, found active or brought up read-only from the root's loop files (undone by cleanup). */
  private async poolFor(cleanup: Cleanup): Promise<string> {
    const external = this.options.thinPoolDevice !== null;
    const poolName = this.options.thinPoolDevice ?? poolNameOf(this.prefix);
    if (await dm.getInfo(poolName)) return poolName;
    if (external)
      throw new DevmapperError(`the pool ${poolName} (dm.thinpooldev) is not active`, { code: 'ENXIO', device: poolName, argument: 'dm.thinpooldev' });
    const dataFile = join(this.root, 'devicemapper', 'data');
    const metadataFile = join(this.root, 'devicemapper', 'metadata');
    for (const f of [dataFile, metadataFile]) {
      if (!(await stat(f).catch(() => null))?.isFile())
        throw new DevmapperError(`the pool ${poolName} is not active and ${f} does not exist: bring the pool up first (devmapper pool status)`, {
          code: 'ENXIO',
          device: poolName,
        });
    }
    // A name of our own, so nothing takes this read-only pool for the root's real one.
    const tempPool = `devmapper-ro-${process.pid}-pool`;
    const loops = [];
    try {
      // The loop devices stay writable (the thin-pool target opens its data device read-write);
      // the pool's read_only feature is what keeps its metadata and data untouched.
      for (const f of [dataFile, metadataFile]) {
        const found = (await sys.findLoopDevices(f))[0];
        loops.push(found ? { path: found.path, release: () => undefined } : await sys.attachLoopDevice(f));
      }
      await dm.createPool(tempPool, loops[0]!.path, loops[1]!.path, {
        blockSizeSectors: this.options.blockSizeSectors,
        features: ['read_only', 'skip_block_zeroing'],
      });
    } finally {
      // From here the pool holds the loop devices; with autoclear they go when it goes.
      for (const l of loops) l.release();
    }
    cleanup.push(() => dm.removeDevice(tempPool));
    return tempPool;
  }
}
