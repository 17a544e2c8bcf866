/**
 * The parent of snapshots prepared without one: the DeviceSet's base device holds a fresh
 * file system, but mkfs.ext4 leaves lost+found in it, and containerd's model says a snapshot
 * without a parent is empty. So one internal device, a snapshot of the base with lost+found
 * removed, stands in as the parent. Made once per root; every step can be redone after a crash.
 */
import { readdir, rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { DeviceSet } from '../deviceset';
import type { SnapshotStore } from './store';

/** Its device hash: outside the snap-<id> names, so reconcile never takes it for an orphan. */
export const EMPTY_PARENT_HASH = 'snap-empty';
const READY = 'empty-parent-ready';

export async function ensureEmptyParent(ds: DeviceSet, store: SnapshotStore, root: string): Promise<string> {
  if (store.setting(READY) === '1' && (await ds.hasDevice(EMPTY_PARENT_HASH))) return EMPTY_PARENT_HASH;
  if (!(await ds.hasDevice(EMPTY_PARENT_HASH))) await ds.addDevice(EMPTY_PARENT_HASH, '');
  const mnt = join(root, 'snapshotter', 'empty-parent');
  await ds.mountDevice(EMPTY_PARENT_HASH, mnt, undefined, { mountPointMode: 0o700 });
  try {
    const entries = await readdir(mnt);
    if (entries.includes('lost+found')) await rmdir(join(mnt, 'lost+found'));
  } finally {
    await ds.unmountDevice(EMPTY_PARENT_HASH, mnt);
  }
  store.transaction(() => store.setSetting(READY, '1'));
  return EMPTY_PARENT_HASH;
}
