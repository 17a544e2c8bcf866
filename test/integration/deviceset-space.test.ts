/**
 * Space and sizes: deletion returns space, base and device sizes, the min_free_space guard
 * and pool growth, adopting a pool and refusing a foreign one.
 */
import { randomBytes } from 'node:crypto';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { mkdir, open, readFile, rm, stat, statfs, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CHANNELS, dm, sys, type DeviceSetRecord } from '../../lib';
import { DeviceSet } from '../../lib/deviceset';
import { describeKernel } from '../helpers/kernel-env';
import { newRoot, testOptions, withDeviceSet, thinCheck } from '../helpers/deviceset';
import { withPool } from '../helpers/pool';

const MiB = 1024 * 1024;

async function writeRandom(path: string, bytes: number): Promise<void> {
  const fh = await open(path, 'w');
  try {
    for (let done = 0; done < bytes; done += MiB) await fh.write(randomBytes(MiB));
    await fh.sync();
  } finally {
    await fh.close();
  }
}

async function withMounted<T>(ds: DeviceSet, root: string, hash: string, fn: (mnt: string) => Promise<T>): Promise<T> {
  const mnt = join(root, 'mnt', hash);
  await mkdir(mnt, { recursive: true });
  await ds.mountDevice(hash, mnt);
  try {
    return await fn(mnt);
  } finally {
    await ds.unmountDevice(hash, mnt);
  }
}

async function dataUsedBlocks(pool: string): Promise<number> {
  const st = await dm.getPoolStatus(pool);
  if (st.state !== 'ok') throw new Error(`pool state ${st.state}`);
  return st.dataUsedBlocks;
}

describeKernel('DeviceSet space and sizes', () => {
  jest.setTimeout(600_000);

  test('deleting a written device returns its blocks to the pool and to the loop file; the id is free again', async () => {
    await withDeviceSet(async (ds, root) => {
      await ds.addDevice('w', '');
      await withMounted(ds, root, 'w', (mnt) => writeRandom(join(mnt, 'blob'), 16 * MiB));
      const id = ds.getDeviceMetadata('w')!.deviceId;
      const usedBefore = await dataUsedBlocks(ds.poolName);
      const fileBlocksBefore = (await stat(join(root, 'devicemapper', 'data'))).blocks;
      const records: DeviceSetRecord[] = [];
      const onRecord = (m: unknown) => records.push(m as DeviceSetRecord);
      subscribe(CHANNELS.deviceset, onRecord);
      try {
        await ds.deleteDevice('w');
      } finally {
        unsubscribe(CHANNELS.deviceset, onRecord);
      }
      expect(records.filter((r) => r.step === 'delete')).toMatchObject([{ hash: 'w', ok: true, detail: { discarded: true } }]);
      const usedAfter = await dataUsedBlocks(ds.poolName);
      const fileBlocksAfter = (await stat(join(root, 'devicemapper', 'data'))).blocks;
      // 16 MiB = 256 blocks of 64 KiB were the device's own.
      expect(usedBefore - usedAfter).toBeGreaterThanOrEqual(256);
      // Discard reached the loop file (punched holes): at least 16 MiB of 512-byte blocks fewer.
      expect(fileBlocksBefore - fileBlocksAfter).toBeGreaterThanOrEqual((16 * MiB) / 512);
      await dm.createDevice(ds.poolName, id);
      await dm.deleteDevice(ds.poolName, id);
    });
  });

  test('with dm.blkdiscard=false the pool frees the blocks but the loop file keeps them', async () => {
    await withDeviceSet(
      async (ds, root) => {
        await ds.addDevice('w', '');
        await withMounted(ds, root, 'w', (mnt) => writeRandom(join(mnt, 'blob'), 8 * MiB));
        const usedBefore = await dataUsedBlocks(ds.poolName);
        const fileBlocksBefore = (await stat(join(root, 'devicemapper', 'data'))).blocks;
        await ds.deleteDevice('w');
        expect(usedBefore - (await dataUsedBlocks(ds.poolName))).toBeGreaterThanOrEqual(128);
        expect((await stat(join(root, 'devicemapper', 'data'))).blocks).toBe(fileBlocksBefore);
      },
      { options: testOptions(['dm.blkdiscard=false']) },
    );
  });

  test('sizes: per-device size below the base refused, above it the file system grows; basesize grows at reopen, never shrinks', async () => {
    const root = await newRoot();
    await withDeviceSet(
      async (ds, r) => {
        await expect(ds.addDevice('small', '', { size: 32 * MiB })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT', argument: 'size' });
        await ds.addDevice('big', '', { size: 128 * MiB });
        const total = await withMounted(ds, r, 'big', async (mnt) => {
          const st = await statfs(mnt);
          return st.blocks * st.bsize;
        });
        expect(total).toBeGreaterThan(100 * MiB);
        await ds.addDevice('old', '');
      },
      { root, options: testOptions() },
    );
    await withDeviceSet(
      async (ds, r) => {
        expect(ds.getDeviceMetadata('')!.size).toBe(96 * MiB);
        expect(ds.getDeviceMetadata('old')!.size).toBe(64 * MiB);
        await ds.addDevice('new', '');
        expect(ds.getDeviceMetadata('new')!.size).toBe(96 * MiB);
        const total = await withMounted(ds, r, 'new', async (mnt) => {
          const st = await statfs(mnt);
          return st.blocks * st.bsize;
        });
        expect(total).toBeGreaterThan(80 * MiB);
        for (const h of ['new', 'old', 'big']) await ds.deleteDevice(h);
      },
      { root, options: testOptions(['dm.basesize=96M']) },
    );
    await expect(DeviceSet.open(root, { options: testOptions(['dm.basesize=32M']) })).rejects.toMatchObject({
      code: 'ERR_INVALID_ARGUMENT',
      argument: 'dm.basesize',
    });
    // The refused open must not have left the pool behind.
    await (await DeviceSet.open(root, { options: testOptions(['dm.basesize=96M']) })).shutdown();
  });

  test('xfs: the base and two snapshots are mounted at once (nouuid) (rows 14, 15)', async () => {
    await withDeviceSet(
      async (ds, root) => {
        expect((await ds.status()).backingFilesystem).toBe('xfs');
        await ds.addDevice('a', '');
        await ds.addDevice('b', 'a');
        const mnts: [string, string][] = [];
        try {
          for (const h of ['a', 'b']) {
            const mnt = join(root, 'mnt', h);
            await mkdir(mnt, { recursive: true });
            await ds.mountDevice(h, mnt);
            mnts.push([h, mnt]);
            await writeFile(join(mnt, 'f'), h);
          }
          expect(await readFile(join(mnts[1][1], 'f'), 'utf8')).toBe('b');
        } finally {
          for (const [h, mnt] of mnts) await ds.unmountDevice(h, mnt);
        }
        await ds.deleteDevice('b');
        await ds.deleteDevice('a');
      },
      { options: testOptions(['dm.fs=xfs', 'dm.basesize=320M', 'dm.xfs_nospace_max_retries=0']).filter((o) => o !== 'dm.fs=ext4' && o !== 'dm.basesize=64M') },
    );
  });

  test('below dm.min_free_space a new device is refused with a typed error; growing the pool lets it through', async () => {
    await withDeviceSet(
      async (ds, root) => {
        await ds.addDevice('fill', '', { size: 256 * MiB });
        // 200 MiB of the 256 MiB pool: less than 25 % left.
        await withMounted(ds, root, 'fill', (mnt) => writeRandom(join(mnt, 'blob'), 200 * MiB));
        const err = await ds.addDevice('more', '').catch((e: unknown) => e);
        expect(err).toMatchObject({ code: 'ERR_POOL_LOW_SPACE', argument: 'dm.min_free_space' });
        expect(ds.getDeviceMetadata('more')).toBeNull();
        await ds.resizePool(512 * MiB);
        const st = await ds.status();
        expect(st.data.totalBytes).toBe(512 * MiB);
        expect(st.pool.state === 'ok' && st.pool.mode).toBe('rw');
        await ds.addDevice('more', '');
        await ds.deleteDevice('more');
        await ds.deleteDevice('fill');
      },
      { options: testOptions(['dm.loopdatasize=256M', 'dm.min_free_space=25%']) },
    );
  });

  test('an existing pool is adopted only while unused; a second root on it is refused; a changed base is refused', async () => {
    await withPool(async (p) => {
      const options = testOptions([`dm.thinpooldev=/dev/mapper/${p.poolName}`]);
      const root1 = await newRoot();
      const ds1 = await DeviceSet.open(root1, { options });
      await ds1.addDevice('x', '');
      await ds1.shutdown();
      // Not ours: still there after shutdown.
      expect(await dm.getInfo(p.poolName)).not.toBeNull();

      const root2 = await newRoot();
      await expect(DeviceSet.open(root2, { options })).rejects.toMatchObject({ code: 'ERR_POOL_NOT_ADOPTABLE' });

      // Reopening the first root works; with its recorded UUID changed it is refused.
      const ds1b = await DeviceSet.open(root1, { options });
      expect(await ds1b.list()).toEqual(['x']);
      await ds1b.shutdown();
      const setFile = join(root1, 'metadata', 'deviceset-metadata');
      const set = JSON.parse(await readFile(setFile, 'utf8'));
      set.BaseDeviceUUID = '00000000-0000-0000-0000-000000000000';
      await writeFile(setFile, JSON.stringify(set));
      await expect(DeviceSet.open(root1, { options })).rejects.toMatchObject({ code: 'ERR_BASE_DEVICE_CHANGED' });
      await rm(join(root1, '..'), { recursive: true, force: true });
      await rm(join(root2, '..'), { recursive: true, force: true });
    });
  });

  test('raw data and metadata devices (dm.datadev / dm.metadatadev)', async () => {
    const root = await newRoot();
    const dir = join(root, '..');
    const files = [join(dir, 'rawdata'), join(dir, 'rawmeta')];
    for (const [f, size] of [
      [files[0], 512 * MiB],
      [files[1], 32 * MiB],
    ] as const) {
      const fh = await open(f, 'w');
      await fh.truncate(size);
      await fh.close();
    }
    const data = await sys.attachLoopDevice(files[0]);
    const meta = await sys.attachLoopDevice(files[1]);
    try {
      await withDeviceSet(
        async (ds) => {
          const st = await ds.status();
          expect(st.poolKind).toBe('direct');
          expect(st.data.totalBytes).toBe(512 * MiB);
          await ds.addDevice('r', '');
          await ds.deleteDevice('r');
        },
        { root, options: testOptions([`dm.datadev=${data.path}`, `dm.metadatadev=${meta.path}`]) },
      );
    } finally {
      await data.detach();
      await meta.detach();
    }
    await thinCheck(files[1]);
  });
});
