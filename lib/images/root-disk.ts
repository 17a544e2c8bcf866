/**
 * images.rootDisk: a copy-on-write disk of an imported image for a VM or a container: an
 * active snapshot (or, read-only, a view) of the image's top layer, its device active.
 */
import { invalidArgument } from '../errors';
import type { Snapshotter, SnapshotMount } from '../snapshotter';
import { imageNotFound } from './errors';
import { ImageRecords, type ImageRecord } from './records';

/** The label a root disk's snapshot carries: the image's name. */
export const DISK_LABEL = 'devmapper.io/image';

/** What images.rootDisk takes besides the image and the key. */
export interface RootDiskOptions {
  /** The Snapshotter the image was imported into. */
  snapshotter: Snapshotter;
  /** The disk's size in bytes (a multiple of 512); bigger than the image's grows its file system. Default: the DeviceSet's base size. */
  size?: number;
  /** A read-only view instead of a writable snapshot. */
  readOnly?: boolean;
  /** More labels for the snapshot. */
  labels?: Record<string, string>;
}

/** What images.rootDisk hands back. */
export interface RootDisk {
  /** The snapshot's key: snapshotter.remove(key) removes the disk. */
  key: string;
  /** The block device: /dev/mapper/NAME, for a VM's disk. */
  device: string;
  /** How to mount it, for a container (the file system's type, 'ro' for a read-only disk). */
  mounts: SnapshotMount[];
  /** A view (its mounts carry 'ro'). */
  readOnly: boolean;
  /** The image it was made from. */
  image: string;
}

/** The record of an image by name, or the record itself. */
export async function imageRecord(sn: Snapshotter, image: string | ImageRecord): Promise<ImageRecord> {
  const name = typeof image === 'string' ? image : image?.name;
  if (typeof name !== 'string' || name === '') throw invalidArgument('image', "an image's name or record", image);
  const r = await ImageRecords.open(sn.root, (db) => db.get(name));
  if (!r) throw imageNotFound(name);
  return r;
}

/**
 * A root disk of `image` (its name or record) at `key`.
 *
 * @throws {@link DevmapperError} ERR_IMAGE_NOT_FOUND; ERR_SNAPSHOT_EXISTS for the key;
 *   ERR_INVALID_ARGUMENT (size smaller than the image's device, not a multiple of 512); the
 *   DeviceSet's errors (pool full, ...), after which nothing is left of the disk
 */
export async function rootDisk(image: string | ImageRecord, key: string, opts: RootDiskOptions): Promise<RootDisk> {
  if (typeof opts !== 'object' || opts === null || typeof opts.snapshotter?.prepare !== 'function')
    throw invalidArgument('snapshotter', 'an open Snapshotter', opts?.snapshotter);
  const sn = opts.snapshotter;
  const rec = await imageRecord(sn, image);
  const top = rec.chainIds[rec.chainIds.length - 1] ?? '';
  const snapOpts = { labels: { ...opts.labels, [DISK_LABEL]: rec.name }, ...(opts.size === undefined ? {} : { size: opts.size }) };
  const mounts = opts.readOnly ? await sn.view(key, top, snapOpts) : await sn.prepare(key, top, snapOpts);
  return { key, device: mounts[0]!.source, mounts, readOnly: opts.readOnly === true, image: rec.name };
}
