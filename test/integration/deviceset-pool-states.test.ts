/**
 * The pool refusing changes when it cannot take them (metadata exhausted, read-only or failed pools, driven here by
 * loading the pool read-only), an unfinished transaction found on a read-only pool, and deferred deletion of a
 * device someone holds open.
 */
import { mkdir, open, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { dm } from '../../lib';
import { DeviceSet } from '../../lib/deviceset';
import { describeKernel } from '../helpers/kernel-env';
import { newRoot, readJson, runChild, testOptions, withDeviceSet } from '../helpers/deviceset';

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

  test('an unfinished transaction on a read-only pool: the open works and hides the device, the rollback waits for the first change on a writable pool', async () => {
    const root = await newRoot();
    const options = testOptions();
    let ds = await DeviceSet.open(root, { options });
    const pool = ds.poolName;
    await ds.addDevice('image', '');
    await ds.shutdown();
    // A process killed between create_snap (and its files) and set_transaction_id: the pool
    // it made stays active, with the snapshot in it and the transaction open in the files.
    const child = await runChild({ root, options, ops: [{ op: 'add', hash: 'victim', base: 'image' }] }, { point: 'before-set-transaction-id' });
    expect(child.signal).toBe('SIGKILL');
    const tx = await readJson(join(root, 'metadata', 'transaction-metadata'));
    expect(tx.device_hash).toBe('victim');
    const table = dm.parseThinPoolTable((await dm.getTable(pool))[0].params);
    // Read-only (as a pool flagged needs_check comes up): the kernel refuses the rollback's delete message.
    await dm.reloadPool(pool, table.dataDevice, table.metadataDevice, { features: ['skip_block_zeroing', 'read_only'] });
    try {
      ds = await DeviceSet.open(root, { options });
      try {
        expect(await ds.list()).toEqual(['image']);
        expect(await ds.hasDevice('victim')).toBe(false);
        await expect(ds.addDevice('refused', 'image')).rejects.toMatchObject({ code: 'ERR_POOL_NOT_WRITABLE' });
        // Nothing on disk forgets it: its file and the open transaction stay.
        expect((await readdir(join(root, 'metadata'))).sort()).toEqual(['base', 'deviceset-metadata', 'image', 'transaction-metadata', 'victim']);
        expect(await readJson(join(root, 'metadata', 'transaction-metadata'))).toEqual(tx);

        // Writable again while open: the first change rolls the transaction back, then goes on.
        await dm.reloadPool(pool, table.dataDevice, table.metadataDevice);
        await ds.addDevice('after', 'image');
        expect((await ds.list()).sort()).toEqual(['after', 'image']);
        expect((await readdir(join(root, 'metadata'))).sort()).toEqual(['after', 'base', 'deviceset-metadata', 'image', 'transaction-metadata']);
        const st = await dm.getPoolStatus(pool);
        expect(await readJson(join(root, 'metadata', 'transaction-metadata'))).toMatchObject({ open_transaction_id: st.state === 'ok' && st.transactionId });
        // The victim's id went from the pool: free to create, unless 'after' took it (ids are
        // reused, as Docker's are).
        if (ds.getDeviceMetadata('after')!.deviceId !== tx.device_id) {
          await dm.createDevice(pool, tx.device_id as number);
          await dm.deleteDevice(pool, tx.device_id as number);
        }
        for (const h of await ds.list()) await ds.deleteDevice(h);
      } finally {
        await ds.shutdown();
      }
    } finally {
      // Whatever happened, leave the pool rw for the cleanup (a no-op once shut down).
      if (await dm.getInfo(pool)) await dm.reloadPool(pool, table.dataDevice, table.metadataDevice);
      await rm(join(root, '..'), { recursive: true, force: true });
    }
  });

  test('deferred deletion: a held device is marked deleted, counted, and goes once released', async () => {
    await withDeviceSet(
      async (ds, root) => {
        await ds.addDevice('held', '');
        const mnt = join(root, 'mnt', 'held');
        await mkdir(mnt, { recursive: true });
        await ds.mountDevice('held', mnt);
        // Someone else holds the device open (a leaked reference, a backup tool...).
        // (activateDevice of the mounted device: its /dev/mapper path, once udev made it.)
        const fh = await open(await ds.activateDevice('held'), 'r');
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
