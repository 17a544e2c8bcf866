/** Mounting what a Snapshotter hands out, as containerd would: the mount's type, source and options. */
import { mkdir, rm } from 'node:fs/promises';
import { sys } from '../../lib';
import type { SnapshotMount } from '../../lib/snapshotter';

/** Mounts m at dir ('ro' becomes MS_RDONLY, the rest mount data), runs fn, unmounts. */
export async function withMount<T>(m: SnapshotMount, dir: string, fn: (dir: string) => Promise<T>): Promise<T> {
  await mkdir(dir, { recursive: true });
  const ro = m.options.includes('ro');
  await sys.mount(m.source, dir, m.type, { readOnly: ro, data: m.options.filter((o) => o !== 'ro').join(',') });
  try {
    return await fn(dir);
  } finally {
    await sys.unmount(dir);
    await rm(dir, { recursive: true, force: true });
  }
}
