/**
 * A DeviceSet root end to end: Docker's layout and metadata, the seed's image / init /
 * container chain, mounts, reopening from another process, thin_check after shutdown,
 * status, and ids that must never become paths.
 */
import { mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { DevmapperError, dm } from '../../lib';
import { DeviceSet } from '../../lib/deviceset';
import { describeKernel } from '../helpers/kernel-env';
import { newRoot, readJson, runChild, testOptions, withDeviceSet, thinCheck } from '../helpers/deviceset';


async function mode(path: string): Promise<string> {
  return ((await stat(path)).mode & 0o777).toString(8);
}

describeKernel('DeviceSet life cycle', () => {
  jest.setTimeout(300_000);

  test("a fresh root has Docker's layout, names and metadata; the seed's chain works", async () => {
    const root = await newRoot();
    let lastId = 0;
    await withDeviceSet(async (ds) => {
      const st = await stat(root);
      const prefix = ds.devicePrefix;
      expect(prefix).toMatch(/^docker-\d+:\d+-\d+$/);
      expect(prefix).toBe(`docker-${Math.floor(st.dev / 256) & 0xfff}:${(st.dev & 0xff) | ((st.dev >> 12) & ~0xff)}-${st.ino}`);
      expect(ds.poolName).toBe(`${prefix}-pool`);
      expect(await mode(root)).toBe('700');
      expect(await mode(join(root, 'devicemapper'))).toBe('700');
      expect(await mode(join(root, 'metadata'))).toBe('700');
      expect(await mode(join(root, 'devicemapper', 'data'))).toBe('600');

      await ds.addDevice('image', '');
      await ds.addDevice('c1-init', 'image');
      await ds.addDevice('c1', 'c1-init');

      const files = (await readdir(join(root, 'metadata'))).sort();
      expect(files).toEqual(['base', 'c1', 'c1-init', 'deviceset-metadata', 'image', 'transaction-metadata']);
      for (const f of files) expect(await mode(join(root, 'metadata', f))).toBe('600');

      // Byte for byte the shape Docker writes: no spaces, no newline, its field order.
      const raw = await readFile(join(root, 'metadata', 'c1'), 'utf8');
      expect(raw).toMatch(/^\{"device_id":\d+,"size":67108864,"transaction_id":\d+,"initialized":false,"deleted":false\}$/);
      const base = await readJson(join(root, 'metadata', 'base'));
      const image = await readJson(join(root, 'metadata', 'image'));
      const init = await readJson(join(root, 'metadata', 'c1-init'));
      const c1 = await readJson(join(root, 'metadata', 'c1'));
      expect(base).toMatchObject({ initialized: true, deleted: false, size: 64 << 20 });
      // Ids and transaction ids grow together, one transaction per device, as in the seed.
      const chain = [base, image, init, c1];
      for (let i = 1; i < chain.length; i++) {
        expect(chain[i].device_id).toBe((chain[i - 1].device_id as number) + 1);
        expect(chain[i].transaction_id).toBe((chain[i - 1].transaction_id as number) + 1);
      }
      const set = await readJson(join(root, 'metadata', 'deviceset-metadata'));
      expect(Object.keys(set)).toEqual(['next_device_id', 'BaseDeviceUUID', 'BaseDeviceFilesystem']);
      // As Docker: saved with the base's UUID, and again at shutdown (below), not per device.
      expect(set.next_device_id).toBe(base.device_id);
      lastId = c1.device_id as number;
      expect(set.BaseDeviceFilesystem).toBe('ext4');
      expect(set.BaseDeviceUUID).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
      const tx = await readJson(join(root, 'metadata', 'transaction-metadata'));
      expect(tx).toEqual({ open_transaction_id: c1.transaction_id, device_hash: 'c1', device_id: c1.device_id });
      const pool = await dm.getPoolStatus(ds.poolName);
      expect(pool.state === 'ok' && pool.transactionId).toBe(c1.transaction_id);

      // The pool table is Docker's.
      const [line] = await dm.getTable(ds.poolName);
      expect(line.params).toMatch(/^\d+:\d+ \d+:\d+ 128 32768 1 skip_block_zeroing$/);

      // Mount, write, unmount: the mount point is removed; the device stays active, idle
      // (keepActive), until its delete.
      const mnt = join(root, 'mnt', 'c1');
      await mkdir(mnt, { recursive: true });
      await ds.mountDevice('c1', mnt);
      await writeFile(join(mnt, 'hello'), 'from c1');
      expect((await ds.getDeviceStatus('c1')).active).toBe(true);
      await ds.unmountDevice('c1', mnt);
      await expect(stat(mnt)).rejects.toMatchObject({ code: 'ENOENT' });
      expect(await dm.getInfo(ds.deviceName('c1'))).toMatchObject({ exists: true, openCount: 0 });

      expect(await ds.list()).toEqual(['c1', 'c1-init', 'image']);
      expect(await ds.hasDevice('c1')).toBe(true);
      await expect(ds.addDevice('c1', 'image')).rejects.toMatchObject({ code: 'EEXIST' });
      await expect(ds.addDevice('c2', 'nope')).rejects.toMatchObject({ code: 'ENOENT' });

      await ds.deleteDevice('c1');
      expect(await dm.getInfo(ds.deviceName('c1'))).toBeNull();
      await ds.deleteDevice('c1-init');
      await ds.deleteDevice('image');
      expect(await ds.list()).toEqual([]);
    }, { root });
    // Shutdown saved where the allocator got to.
    expect((await readJson(join(root, 'metadata', 'deviceset-metadata'))).next_device_id).toBe(lastId);
    await rm(join(root, '..'), { recursive: true, force: true });
  });

  test('a root made by one process is reopened by another with every device and file; thin_check is clean', async () => {
    const root = await newRoot();
    const options = testOptions();
    await withDeviceSet(
      async (ds) => {
        await ds.addDevice('image', '');
        await ds.addDevice('ctr', 'image');
        const mnt = join(root, 'mnt', 'ctr');
        await mkdir(mnt, { recursive: true });
        await ds.mountDevice('ctr', mnt);
        await writeFile(join(mnt, 'note.txt'), 'kept across processes');
        await ds.unmountDevice('ctr', mnt);
      },
      { root, options },
    );
    // The pool is gone after shutdown; its metadata must be clean.
    await thinCheck(join(root, 'devicemapper', 'metadata'));

    const child = await runChild({
      root,
      options,
      ops: [{ op: 'list' }, { op: 'read', hash: 'ctr', file: 'note.txt' }, { op: 'add', hash: 'ctr2', base: 'ctr' }],
    });
    expect(child.result).toEqual({ ok: true, out: [['ctr', 'image'], 'kept across processes'] });
    await thinCheck(join(root, 'devicemapper', 'metadata'));

    await withDeviceSet(
      async (ds) => {
        expect(await ds.list()).toEqual(['ctr', 'ctr2', 'image']);
        for (const h of ['ctr2', 'ctr', 'image']) await ds.deleteDevice(h);
      },
      { root, options },
    );
  });

  test('one DeviceSet per root: a second open, here or in another process, is ERR_ROOT_BUSY and touches nothing', async () => {
    const root = await newRoot();
    const options = testOptions();
    await withDeviceSet(
      async (ds) => {
        await ds.addDevice('a', '');
        const files = (await readdir(join(root, 'metadata'))).sort();
        const busy = await DeviceSet.open(root, { options }).then(
          () => null,
          (e: unknown) => e,
        );
        expect(busy).toBeInstanceOf(DevmapperError);
        expect(busy).toMatchObject({ code: 'ERR_ROOT_BUSY', device: root });
        expect((busy as Error).message).toContain(`pid ${process.pid}`);
        const child = await runChild({ root, options, ops: [{ op: 'list' }] });
        expect(child.result).toMatchObject({ ok: false, code: 'ERR_ROOT_BUSY' });
        // The refused opens changed nothing: the first owner carries on.
        expect((await readdir(join(root, 'metadata'))).sort()).toEqual(files);
        expect(await dm.getInfo(ds.poolName)).not.toBeNull();
        await ds.addDevice('b', 'a');
      },
      { root, options },
    );
    // Released at shutdown; and a holder that dies (SIGKILL) leaves no lock behind.
    const next = await runChild({ root, options, ops: [{ op: 'list' }] });
    expect(next.result).toEqual({ ok: true, out: [['a', 'b']] });
    const crashed = await runChild({ root, options, ops: [{ op: 'add', hash: 'c', base: 'a' }] }, { point: 'after-intent' });
    expect(crashed.signal).toBe('SIGKILL');
    await withDeviceSet(async (ds) => expect(await ds.list()).toEqual(['a', 'b']), { root, options });
  });

  test('ids that are not safe names are refused before anything is written', async () => {
    await withDeviceSet(async (ds, root) => {
      const before = (await readdir(join(root, 'metadata'))).sort();
      const longId = 'x'.repeat(128 - ds.devicePrefix.length - 1);
      for (const bad of ['../x', 'a/b', '', '.', '..', '.hidden', 'base', 'deviceset-metadata', 'transaction-metadata', 'x.migrated', 'nul\0', longId]) {
        const err = await ds.addDevice(bad, '').then(
          () => null,
          (e: unknown) => e,
        );
        expect(err).toBeInstanceOf(DevmapperError);
        expect((err as DevmapperError).code).toBe('ERR_INVALID_ARGUMENT');
      }
      expect((await readdir(join(root, 'metadata'))).sort()).toEqual(before);
      expect((await dm.listDevices()).filter((d) => d.name.startsWith(ds.devicePrefix)).map((d) => d.name)).toEqual([ds.poolName]);
      // One byte shorter fits a device-mapper name.
      await ds.addDevice(longId.slice(1), '');
      // A mount's options are checked before the job: no mount point, no activation.
      const mp = join(root, 'mnt-bad');
      const refusals: [object, string][] = [
        [{ mountPointMode: -1 }, 'mountPointMode'],
        [{ mountPointMode: 0o755, layout: [{ path: '../escape', mode: 0o755 }] }, 'layout.path'],
        [{ mountPointMode: 0o755, layout: [{ path: 'id', mode: 1.5, content: 'x' }] }, 'layout.mode'],
      ];
      for (const [opts, argument] of refusals)
        await expect(ds.mountDevice(longId.slice(1), mp, undefined, opts)).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT', argument });
      expect(existsSync(mp)).toBe(false);
      expect(await dm.getInfo(ds.deviceName(longId.slice(1)))).toBeNull();
      await ds.deleteDevice(longId.slice(1));
    });
  });

  test('a stray temp file in the metadata directory does not break open, and is cleaned', async () => {
    const root = await newRoot();
    const options = testOptions();
    await withDeviceSet(async (ds) => ds.addDevice('a', ''), { root, options });
    await writeFile(join(root, 'metadata', '.tmp123'), '{"device_id":');
    await withDeviceSet(
      async (ds) => {
        expect(await ds.list()).toEqual(['a']);
        expect(await readdir(join(root, 'metadata'))).not.toContain('.tmp123');
        await ds.deleteDevice('a');
      },
      { root, options },
    );
  });

  test('an open and shutdown that change nothing leave deviceset-metadata alone; a create rewrites it', async () => {
    const root = await newRoot();
    const options = testOptions();
    const file = join(root, 'metadata', 'deviceset-metadata');
    await withDeviceSet(async (ds) => ds.addDevice('a', ''), { root, options });
    const before = await stat(file);
    await withDeviceSet(async (ds) => expect(await ds.list()).toEqual(['a']), { root, options });
    // Every write is a rename of a new file: the same inode means no write.
    expect((await stat(file)).ino).toBe(before.ino);
    await withDeviceSet(async (ds) => ds.addDevice('b', 'a'), { root, options });
    const after = await stat(file);
    expect(after.ino).not.toBe(before.ino);
    expect((await readJson(file)).next_device_id).toBe((await readJson(join(root, 'metadata', 'b'))).device_id);
  });

  test('status is typed, warns about loopback, caps available by the file system under the files', async () => {
    await withDeviceSet(async (ds) => {
      const st = await ds.status();
      expect(st.poolName).toBe(ds.poolName);
      expect(st.poolBlockSizeBytes).toBe(65536);
      expect(st.baseDeviceSizeBytes).toBe(64 << 20);
      expect(st.backingFilesystem).toBe('ext4');
      expect(st.poolKind).toBe('loopback');
      expect(st.dataLoopFile).toMatch(/devicemapper\/data$/);
      expect(st.data.totalBytes).toBe(1 << 30);
      expect(st.pool.state).toBe('ok');
      expect(st.warnings.some((w) => /loopback/.test(w))).toBe(true);
      // The scratch tmpfs is smaller than the sparse 1 GiB file promises? Either way available
      // never exceeds what the file system under the loop file has free.
      const { statfs } = await import('node:fs/promises');
      const fsFree = await statfs(st.dataLoopFile as string);
      expect(st.data.availableBytes).toBeLessThanOrEqual(Math.max(fsFree.bavail * fsFree.bsize, 0) + 0);
      expect(st.udevSyncSupported).toBe(dm.udevSyncSupported());
      expect(st.libraryVersion).toMatch(/^1\.02\./);
    });
  });

  test('open refuses without udev sync unless overridden', async () => {
    if (dm.udevSyncSupported()) {
      // With udev running the check passes on its own; nothing to refuse.
      return;
    }
    const root = await newRoot();
    await expect(DeviceSet.open(root, { options: ['dm.basesize=64M', 'dm.fs=ext4'] })).rejects.toMatchObject({
      code: 'ERR_UDEV_SYNC_UNSUPPORTED',
    });
  });
});
