/** images.list, images.get and images.remove: the records, and the layers only they hold. */
import { DevmapperError, ErrorCodes } from '../errors';
import type { SnapshotInfo, Snapshotter } from '../snapshotter';
import { imageNotFound } from './errors';
import { ImageRecords, type ImageRecord } from './records';
import { imageRecord } from './root-disk';
import { LAYER_LABEL } from './unpack';

/** Every image record of the Snapshotter's root, by name. */
export async function list(opts: { snapshotter: Snapshotter }): Promise<ImageRecord[]> {
  return ImageRecords.open(opts.snapshotter.root, (db) => db.all());
}

/**
 * The record of one image.
 *
 * @throws {@link DevmapperError} ERR_IMAGE_NOT_FOUND
 */
export async function get(name: string, opts: { snapshotter: Snapshotter }): Promise<ImageRecord> {
  return imageRecord(opts.snapshotter, name);
}

/** What images.remove did. */
export interface RemoveResult {
  /** The image removed. */
  name: string;
  /** The layer snapshots removed (chain IDs, top first); the ones other images use stay. */
  removedLayers: string[];
}

/**
 * Removes an image's record, then its layer snapshots that no other image names, top down.
 * Refused while a snapshot other than a layer (a root disk, a view) is a child of one of
 * them: remove the disks first.
 *
 * @throws {@link DevmapperError} ERR_IMAGE_NOT_FOUND; ERR_SNAPSHOT_PRECONDITION when root disks use it
 */
export async function remove(name: string, opts: { snapshotter: Snapshotter }): Promise<RemoveResult> {
  const sn = opts.snapshotter;
  const rec = await imageRecord(sn, name);
  const all: SnapshotInfo[] = [];
  await sn.walk((i) => void all.push(i));
  const others = await ImageRecords.open(sn.root, (db) => db.all().filter((r) => r.name !== rec.name));
  const kept = new Set(others.flatMap((r) => r.chainIds));
  const mine = rec.chainIds.filter((c) => !kept.has(c));
  const users = all.filter((i) => mine.includes(i.parent) && !(i.kind === 'committed' && i.labels[LAYER_LABEL] !== undefined));
  if (users.length > 0)
    throw new DevmapperError(
      `image ${JSON.stringify(rec.name)} has ${users.length} snapshot${users.length === 1 ? '' : 's'} on it (${users
        .slice(0, 5)
        .map((u) => JSON.stringify(u.name))
        .join(', ')}${users.length > 5 ? ', ...' : ''}): remove them first`,
      { code: ErrorCodes.SNAPSHOT_PRECONDITION, device: rec.name },
    );
  await ImageRecords.open(sn.root, (db) => {
    if (!db.delete(rec.name)) throw imageNotFound(rec.name);
  });
  return { name: rec.name, removedLayers: await pruneChain(sn, mine) };
}

/**
 * After a name was given to another image: the old image's layers that no record names any
 * more, top down, as far as no snapshot (a root disk of the old image) still needs them.
 */
export async function pruneReplaced(sn: Snapshotter, old: ImageRecord): Promise<string[]> {
  const kept = new Set((await ImageRecords.open(sn.root, (db) => db.all())).flatMap((r) => r.chainIds));
  return pruneChain(sn, old.chainIds.filter((c) => !kept.has(c)));
}

/** Removes the chain's committed layers top down, stopping at one that another image or snapshot still needs. */
async function pruneChain(sn: Snapshotter, chain: string[]): Promise<string[]> {
  const removed: string[] = [];
  for (const c of [...chain].reverse()) {
    try {
      await sn.remove(c);
      removed.push(c);
    } catch (err) {
      if (err instanceof DevmapperError && err.code === ErrorCodes.SNAPSHOT_NOT_FOUND) continue;
      // A child made meanwhile (another image's layer): it and everything below stay.
      if (err instanceof DevmapperError && err.code === ErrorCodes.SNAPSHOT_PRECONDITION) break;
      throw err;
    }
  }
  return removed;
}
