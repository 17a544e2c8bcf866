/**
 * The pool refusing changes when it cannot take them (metadata exhausted, read-only or failed pools, driven here by
 * loading the pool read-only), and deferred deletion of a device someone holds open.
 */
import { mkdir, open, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { dm } from '../../lib';
import { describeKernel } from '../helpers/kernel-env';
import { testOptions, withDeviceSet } from '../helpers/deviceset';

describeKernel('DeviceSet and pool states', () => {
  jest.setTimeout(300_000);

  test('a read-only pool: status says so, a new device is refused with a typed error and no metadata is left', async () => {
    await withDeviceSet(async (ds, root) => {
      const status = await ds.status();
      const data = status.dataDevice as string;
      const meta = status.metadataDevice as string;
      await dm.reloadPool(ds.poolName, data, meta, { features: ['skip_block_zeroing', 'read_only'] });
      try {
        const st = await ds.status();
        expect(st.pool.state === 'ok' && st.pool.mode).toBe('ro');
        expect(st.warnings.some((w) => /\bro\b/.test(w))).toBe(true);
        const before = (await readdir(join(root, 'metadata'))).sort();
        await expect(ds.addDevice('refused', '')).rejects.toMatchObject({ code: 'ERR_POOL_NOT_WRITABLE' });
        expect((await readdir(join(root, 'metadata'))).sort()).toEqual(before);
        expect(await ds.hasDevice('refused')).toBe(false);
      } finally {
        await dm.reloadPool(ds.poolName, data, meta);
      }
      const st = await ds.status();
      expect(st.pool.state === 'ok' && st.pool.mode).toBe('rw');
      await ds.addDevice('accepted', '');
      await ds.deleteDevice('accepted');
    });
  });

  test('deferred deletion: a held device is marked deleted, counted, and goes once released', async () => {
    await withDeviceSet(
      async (ds, root) => {
        await ds.addDevice('held', '');
        const mnt = join(root, 'mnt', 'held');
        await mkdir(mnt, { recursive: true });
        await ds.mountDevice('held', mnt);
        // Someone else holds the device open (a leaked reference, a backup tool...).
        const fh = await open(`/dev/mapper/${ds.deviceName('held')}`, 'r');
        await ds.unmountDevice('held', mnt);
        try {
          // Deferred removal leaves the mapping until the holder closes: delete is deferred too.
          await ds.deleteDevice('held');
          expect(await ds.hasDevice('held')).toBe(false);
          expect(ds.getDeviceMetadata('held')?.deleted).toBe(true);
          expect((await ds.status()).deferredDeletedDeviceCount).toBe(1);
          expect(await ds.list()).toEqual([]);
          await expect(ds.mountDevice('held', mnt)).rejects.toMatchObject({ code: 'ENOENT' });
        } finally {
          await fh.close();
        }
        // The background pass (every dm deferredDeletionRetryMs) or an explicit one finishes it.
        const deadline = Date.now() + 30_000;
        while (ds.getDeviceMetadata('held') !== null && Date.now() < deadline) await ds.retryDeferredDeletions();
        expect(ds.getDeviceMetadata('held')).toBeNull();
        expect((await ds.status()).deferredDeletedDeviceCount).toBe(0);
        expect(await dm.getInfo(ds.deviceName('held'))).toBeNull();
      },
      { options: testOptions(['dm.use_deferred_removal=true', 'dm.use_deferred_deletion=true']) },
    );
  });
});
