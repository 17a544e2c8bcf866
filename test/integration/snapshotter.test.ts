/**
 * The Snapshotter on a real pool: containerd's model (kinds, parents by name, refusals with
 * typed codes), mounts that are real block devices with the right file systems, views
 * read-only, committed devices inactive, usage from mapped blocks, labels and walk, and a
 * reopen that finds everything as it was, with the active devices active again.
 */
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { dm, ErrorCodes } from '../../lib';
import { Snapshotter, type SnapshotInfo } from '../../lib/snapshotter';
import { newRoot, testOptions, thinCheck } from '../helpers/deviceset';
import { describeKernel } from '../helpers/kernel-env';
import { withMount } from '../helpers/snapshotter';

describeKernel('Snapshotter', () => {
  jest.setTimeout(120_000);

  test('prepare, write, commit, view, children, refusals, usage, labels, walk, reopen, remove', async () => {
    const root = await newRoot();
    const work = join(root, '..', 'work');
    let sn = await Snapshotter.open(root, { options: testOptions() });
    try {
      // A key with '/' and spaces, as containerd sends them.
      const key = 'default/1/a layer';
      const [m] = await sn.prepare(key, '', { labels: { 'containerd.io/gc.root': 'yes' } });
      expect(m).toMatchObject({ type: 'ext4', options: [] });
      expect(m!.source).toMatch(/^\/dev\/mapper\/docker-\d+:\d+-\d+-snap-\d+$/);
      expect((await stat(m!.source)).isBlockDevice()).toBe(true);
      await withMount(m!, join(work, 'a'), async (dir) => {
        // Without a parent, a snapshot is empty: no lost+found from mkfs.
        expect(await readdir(dir)).toEqual([]);
        await writeFile(join(dir, 'hello'), 'world');
        await writeFile(join(dir, 'big'), Buffer.alloc(2 * 2 ** 20, 1));
      });
      const activeUsage = await sn.usage(key);
      expect(activeUsage.sizeBytes).toBeGreaterThanOrEqual(2 * 2 ** 20);
      expect(await sn.mounts(key)).toEqual([m]);

      await sn.commit('layer-1', key, { labels: { tier: 'base' } });
      await expect(sn.stat(key)).rejects.toMatchObject({ code: ErrorCodes.SNAPSHOT_NOT_FOUND });
      const committed = await sn.stat('layer-1');
      expect(committed).toMatchObject({ kind: 'committed', name: 'layer-1', parent: '', labels: { tier: 'base' } });
      // Committed devices are not active; their usage is what it was at commit.
      expect(await dm.getInfo(m!.source.slice('/dev/mapper/'.length))).toBeNull();
      expect(await sn.usage('layer-1')).toEqual(activeUsage);
      await expect(sn.mounts('layer-1')).rejects.toMatchObject({ code: ErrorCodes.SNAPSHOT_PRECONDITION });

      const [v] = await sn.view('default/2/look', 'layer-1');
      expect(v!.options).toEqual(['ro']);
      await withMount(v!, join(work, 'v'), async (dir) => {
        expect(await readFile(join(dir, 'hello'), 'utf8')).toBe('world');
        await expect(writeFile(join(dir, 'x'), 'no')).rejects.toMatchObject({ code: 'EROFS' });
      });
      const [c] = await sn.prepare('default/3/child', 'layer-1');
      await withMount(c!, join(work, 'c'), async (dir) => {
        expect(await readFile(join(dir, 'hello'), 'utf8')).toBe('world');
        await writeFile(join(dir, 'hello'), 'changed');
      });
      expect(await sn.stat('default/3/child')).toMatchObject({ kind: 'active', parent: 'layer-1' });

      // Refusals, each with the code that maps to containerd's kind.
      await expect(sn.prepare('default/3/child', 'layer-1')).rejects.toMatchObject({ code: ErrorCodes.SNAPSHOT_EXISTS });
      await expect(sn.prepare('x', 'no-such')).rejects.toMatchObject({ code: ErrorCodes.SNAPSHOT_NOT_FOUND });
      await expect(sn.prepare('x', 'default/3/child')).rejects.toMatchObject({ code: ErrorCodes.INVALID_ARGUMENT, argument: 'parent' });
      await expect(sn.commit('n', 'default/2/look')).rejects.toMatchObject({ code: ErrorCodes.SNAPSHOT_PRECONDITION });
      await expect(sn.commit('n', 'layer-1')).rejects.toMatchObject({ code: ErrorCodes.SNAPSHOT_PRECONDITION });
      await expect(sn.commit('layer-1', 'default/3/child')).rejects.toMatchObject({ code: ErrorCodes.SNAPSHOT_EXISTS });
      await expect(sn.remove('layer-1')).rejects.toMatchObject({ code: ErrorCodes.SNAPSHOT_PRECONDITION });
      await expect(sn.remove('nope')).rejects.toMatchObject({ code: ErrorCodes.SNAPSHOT_NOT_FOUND });
      await expect(sn.prepare('', '')).rejects.toMatchObject({ code: ErrorCodes.INVALID_ARGUMENT, argument: 'key' });
      // A refused prepare leaves nothing behind: the same devices as before.
      const devices = await sn.deviceSet.list();

      const updated = await sn.update({ name: 'default/3/child', labels: { a: '1', b: '2' } }, []);
      expect(updated.labels).toEqual({ a: '1', b: '2' });
      expect(updated.updatedMicros).toBeGreaterThan(updated.createdMicros);
      expect((await sn.update({ name: 'default/3/child', labels: {} }, ['labels.a'])).labels).toEqual({ b: '2' });

      const seen: SnapshotInfo[] = [];
      await sn.walk((i) => void seen.push(i));
      expect(seen.map((i) => [i.name, i.kind]).sort()).toEqual([
        ['default/2/look', 'view'],
        ['default/3/child', 'active'],
        ['layer-1', 'committed'],
      ]);
      const parented: string[] = [];
      await sn.walk((i) => void parented.push(i.name), ['parent==layer-1,kind==view']);
      expect(parented).toEqual(['default/2/look']);

      // Reopen: the records and the devices agree, the active ones are active again.
      await sn.close();
      await expect(sn.stat('layer-1')).rejects.toMatchObject({ code: ErrorCodes.CLOSED });
      sn = await Snapshotter.open(root, { options: testOptions() });
      expect(sn.recovery).toEqual({ rolledBack: [], removed: [], orphanDevices: [], droppedRecords: [], reactivated: ['default/2/look', 'default/3/child'] });
      expect(await sn.deviceSet.list()).toEqual(devices);
      const [c2] = await sn.mounts('default/3/child');
      await withMount(c2!, join(work, 'c2'), async (dir) => expect(await readFile(join(dir, 'hello'), 'utf8')).toBe('changed'));

      await sn.remove('default/3/child');
      await sn.remove('default/2/look');
      await sn.remove('layer-1');
      expect(sn.counts()).toEqual({ active: 0, view: 0, committed: 0 });
      // Only the internal empty parent stays.
      expect(await sn.deviceSet.list()).toEqual(['snap-empty']);
    } finally {
      await sn.close();
    }
    await thinCheck(join(root, 'devicemapper', 'metadata'));
  });

  test('a failed prepare leaves neither a record nor a device', async () => {
    const root = await newRoot();
    await (await Snapshotter.open(root, { options: testOptions() })).close();
    // Reopened with a free-space floor the pool cannot meet: the DeviceSet refuses the new device.
    const sn = await Snapshotter.open(root, { options: testOptions(['dm.min_free_space=99%']) });
    try {
      const before = await sn.deviceSet.list();
      await expect(sn.prepare('k', '')).rejects.toMatchObject({ code: ErrorCodes.POOL_LOW_SPACE });
      await expect(sn.stat('k')).rejects.toMatchObject({ code: ErrorCodes.SNAPSHOT_NOT_FOUND });
      expect(await sn.deviceSet.list()).toEqual(before);
      // The key is free again.
      expect(sn.counts()).toEqual({ active: 0, view: 0, committed: 0 });
    } finally {
      await sn.close();
    }
  });

  test('xfs: mounts carry nouuid, so a parent\'s view and a child, sharing one UUID, mount side by side', async () => {
    const root = await newRoot();
    const work = join(root, '..', 'work');
    // mkfs.xfs wants at least 300 MiB.
    const sn = await Snapshotter.open(root, { options: testOptions(['dm.fs=xfs', 'dm.basesize=320M']) });
    try {
      const [m] = await sn.prepare('p', '');
      expect(m).toMatchObject({ type: 'xfs', options: ['nouuid'] });
      await withMount(m!, join(work, 'p'), async (dir) => {
        expect(await readdir(dir)).toEqual([]);
        await writeFile(join(dir, 'f'), 'x');
      });
      await sn.commit('base', 'p');
      const [v] = await sn.view('v', 'base');
      const [c] = await sn.prepare('c', 'base');
      expect(v!.options).toEqual(['nouuid', 'ro']);
      await withMount(v!, join(work, 'v'), () =>
        withMount(c!, join(work, 'c'), async (dir) => expect(await readFile(join(dir, 'f'), 'utf8')).toBe('x')),
      );
      for (const k of ['v', 'c', 'base']) await sn.remove(k);
    } finally {
      await sn.close();
    }
  });

  test('concurrent calls, as containerd makes them: one winner per key, children of one parent, removes', async () => {
    const root = await newRoot();
    const sn = await Snapshotter.open(root, { options: testOptions() });
    try {
      await sn.prepare('p', '');
      await sn.commit('base', 'p');
      const keys = ['a', 'b', 'c', 'd', 'a', 'b'];
      const results = await Promise.allSettled(keys.map((k, i) => (i % 2 ? sn.view(k, 'base') : sn.prepare(k, 'base'))));
      const refused = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
      expect(refused.map((r) => (r.reason as { code: string }).code)).toEqual([ErrorCodes.SNAPSHOT_EXISTS, ErrorCodes.SNAPSHOT_EXISTS]);
      expect(sn.counts().active + sn.counts().view).toBe(4);
      // Removing the parent while its children go: refused until the last one is gone.
      const removes = await Promise.allSettled([...['a', 'b', 'c', 'd'].map((k) => sn.remove(k)), sn.remove('base')]);
      const baseRemove = removes[4]!;
      if (baseRemove.status === 'rejected') {
        expect(baseRemove.reason).toMatchObject({ code: ErrorCodes.SNAPSHOT_PRECONDITION });
        await sn.remove('base');
      }
      expect(removes.slice(0, 4).every((r) => r.status === 'fulfilled')).toBe(true);
      expect(await sn.deviceSet.list()).toEqual(['snap-empty']);
    } finally {
      await sn.close();
    }
  });
});
