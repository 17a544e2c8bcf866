/**
 * The seed's sequence end to end: pool on two loop devices, create_thin, activate, mkfs,
 * mount, write, unmount, create_snap of the active origin, read the file in the snapshot,
 * delete, remove.
 */
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { dm, sys } from '../../lib';
import { describeKernel, kernelEnv } from '../helpers/kernel-env';
import { execFileP, mkfsExt4, withPool } from '../helpers/pool';

describeKernel('the seed sequence', () => {
  jest.setTimeout(120_000);

  test('pool, thin volume, ext4, snapshot of the active origin, teardown', async () => {
    await withPool(async (p) => {
      // The pool table reads back exactly as Docker wrote it.
      const table = await dm.getTable(p.poolName);
      expect(table).toHaveLength(1);
      expect(table[0].type).toBe('thin-pool');
      expect(table[0].params).toBe(`${p.metadataDevno} ${p.dataDevno} 128 32768 1 skip_block_zeroing`);
      expect(dm.parseThinPoolTable(table[0].params)).toEqual({
        metadataDevice: p.metadataDevno,
        dataDevice: p.dataDevno,
        blockSizeSectors: 128,
        lowWaterMarkBlocks: 32768,
        features: ['skip_block_zeroing'],
      });
      const deps = await dm.getDeps(p.poolName);
      expect(deps.map((d) => `${d.major}:${d.minor}`).sort()).toEqual([p.dataDevno, p.metadataDevno].sort());

      const origin = p.name('base');
      const snap = p.name('snap');
      const size = 64 << 20;
      await dm.createDevice(p.poolName, 0);
      await dm.activateDevice(p.poolName, origin, 0, size);
      expect(existsSync(`/dev/mapper/${origin}`)).toBe(true);
      expect(await sys.getBlockDeviceSize(`/dev/mapper/${origin}`)).toBe(size);
      const thinTable = await dm.getTable(`/dev/mapper/${origin}`);
      expect(thinTable[0]).toMatchObject({ start: 0, length: size / 512, type: 'thin' });
      expect(dm.parseThinTable(thinTable[0].params).deviceId).toBe(0);

      await mkfsExt4(`/dev/mapper/${origin}`);
      const mnt = join(p.dir, 'mnt-origin');
      await mkdir(mnt);
      await sys.mount(`/dev/mapper/${origin}`, mnt, 'ext4');
      await writeFile(join(mnt, 'hello.txt'), 'written in the origin\n');
      await sys.unmount(mnt);

      const before = await dm.getThinStatus(origin);
      expect(before.state === 'ok' && before.mappedSectors).toBeGreaterThan(0);

      // The origin is active: create_snap suspends it for the message and resumes it.
      await dm.createSnapDevice(p.poolName, 1, origin, 0);
      const originInfo = await dm.getInfo(origin);
      expect(originInfo?.suspended).toBe(false);

      await dm.activateDevice(p.poolName, snap, 1, size);
      const snapMnt = join(p.dir, 'mnt-snap');
      await mkdir(snapMnt);
      await sys.mount(`/dev/mapper/${snap}`, snapMnt, 'ext4', { readOnly: true });
      expect(await readFile(join(snapMnt, 'hello.txt'), 'utf8')).toBe('written in the origin\n');
      await sys.unmount(snapMnt);

      const status = await dm.getPoolStatus(p.poolName);
      expect(status.state).toBe('ok');
      if (status.state === 'ok') {
        expect(status.mode).toBe('rw');
        expect(status.dataUsedBlocks).toBeGreaterThan(0);
        expect(status.needsCheck).toBe(false);
      }

      await dm.removeDevice(snap);
      await dm.removeDevice(origin);
      expect(existsSync(`/dev/mapper/${origin}`)).toBe(false);
      await dm.deleteDevice(p.poolName, 1);
      await dm.deleteDevice(p.poolName, 0);
      // Both ids are free again.
      await dm.createDevice(p.poolName, 0);
      await dm.deleteDevice(p.poolName, 0);
    });
  });

  test('create_snap of an inactive origin needs no suspend; of an already suspended origin leaves it suspended', async () => {
    await withPool(async (p) => {
      await dm.createDevice(p.poolName, 0);
      await dm.createSnapDevice(p.poolName, 1, null, 0);
      await dm.createSnapDevice(p.poolName, 2, p.name('not-active'), 0);
      await dm.activateDevice(p.poolName, p.name('o'), 0, 8 << 20);
      await dm.suspendDevice(p.name('o'));
      await dm.createSnapDevice(p.poolName, 3, p.name('o'), 0);
      expect((await dm.getInfo(p.name('o')))?.suspended).toBe(true);
      await dm.resumeDevice(p.name('o'));
      await dm.removeDevice(p.name('o'));
      for (const id of [3, 2, 1, 0]) await dm.deleteDevice(p.poolName, id);
    });
  });

  test('concurrent snapshots of one active origin never leave it suspended', async () => {
    await withPool(async (p) => {
      await dm.createDevice(p.poolName, 0);
      await dm.activateDevice(p.poolName, p.name('o'), 0, 8 << 20);
      const ids = Array.from({ length: 8 }, (_, i) => i + 1);
      await Promise.all(ids.map((id) => dm.createSnapDevice(p.poolName, id, p.name('o'), 0)));
      expect((await dm.getInfo(p.name('o')))?.suspended).toBe(false);
      // A failing create_snap (id taken) still resumes the origin.
      await expect(dm.createSnapDevice(p.poolName, 1, p.name('o'), 0)).rejects.toMatchObject({ code: 'EEXIST' });
      expect((await dm.getInfo(p.name('o')))?.suspended).toBe(false);
      await dm.removeDevice(p.name('o'));
      for (const id of [...ids, 0]) await dm.deleteDevice(p.poolName, id);
    });
  });

  test('reloadPool picks up a grown data device', async () => {
    await withPool(
      async (p) => {
        const before = await dm.getPoolStatus(p.poolName);
        // Grow the backing file and the loop device's view of it, then reload the pool.
        const { execFileP } = await import('../helpers/pool');
        await execFileP('truncate', ['-s', `${256 << 20}`, p.dataFile]);
        const loop = (await sys.findLoopDevices(p.dataFile))[0];
        await sys.setLoopCapacity(loop.path);
        await dm.reloadPool(p.poolName, loop.path, (await sys.findLoopDevices(p.metadataFile))[0].path);
        const after = await dm.getPoolStatus(p.poolName);
        expect(before.state === 'ok' && before.dataTotalBlocks).toBe((128 << 20) / (64 << 10));
        expect(after.state === 'ok' && after.dataTotalBlocks).toBe((256 << 20) / (64 << 10));
      },
      { dataBytes: 128 << 20 },
    );
  });
  test('udevPrivate: the /dev/mapper node is made and mounts, but udev skips the disk rules (no blkid, no by-uuid link)', async () => {
    await withPool(async (p) => {
      const name = p.name('layer');
      const uuid = '6d0c3f52-5e3a-4b7e-9d55-0f1c2b3a4d5e';
      await dm.createDevice(p.poolName, 0);
      await dm.activateDevice(p.poolName, name, 0, 64 << 20);
      await execFileP('mkfs.ext4', ['-q', '-F', '-U', uuid, '-E', 'nodiscard', `/dev/mapper/${name}`]);
      await dm.removeDevice(name);
      const link = `/dev/disk/by-uuid/${uuid}`;
      // Every rule: with udevd, blkid runs on the add event and links the UUID.
      await dm.activateDevice(p.poolName, name, 0, 64 << 20);
      expect(existsSync(link)).toBe(kernelEnv().udev === 'on');
      await dm.removeDevice(name);
      // Private: the node only.
      await dm.activateDevice(p.poolName, name, 0, 64 << 20, { udevPrivate: true });
      expect(existsSync(`/dev/mapper/${name}`)).toBe(true);
      expect(existsSync(link)).toBe(false);
      const mnt = join(p.dir, 'mnt');
      await mkdir(mnt, { recursive: true });
      await sys.mount(`/dev/mapper/${name}`, mnt, 'ext4');
      try {
        expect(await readdir(mnt)).toContain('lost+found');
      } finally {
        await sys.unmount(mnt);
      }
      await dm.removeDevice(name);
      expect(existsSync(`/dev/mapper/${name}`)).toBe(false);
      await dm.deleteDevice(p.poolName, 0);
    });
  });
});
