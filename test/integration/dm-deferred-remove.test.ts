/** Deferred removal while a device is held open, cancelling it, then the real removal. */
import { open } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { dm } from '../../lib';
import { describeKernel } from '../helpers/kernel-env';
import { withPool } from '../helpers/pool';

describeKernel('deferred remove', () => {
  jest.setTimeout(60_000);

  test('held open: plain remove is EBUSY, deferred remove is pending, cancel keeps the device, close + remove ends it', async () => {
    await withPool(async (p) => {
      const name = p.name('held');
      await dm.createDevice(p.poolName, 0);
      await dm.activateDevice(p.poolName, name, 0, 16 << 20);
      const fh = await open(`/dev/mapper/${name}`, 'r');
      try {
        expect((await dm.getInfo(name))?.openCount).toBe(1);
        await expect(dm.removeDevice(name, { retryBudgetMs: 200 })).rejects.toMatchObject({ code: 'EBUSY' });

        await dm.removeDevice(name, { deferred: true });
        let info = await dm.getInfo(name);
        expect(info?.deferredRemove).toBe(true);
        expect(existsSync(`/dev/mapper/${name}`)).toBe(true);

        await dm.cancelDeferredRemove(name);
        info = await dm.getInfo(name);
        expect(info?.deferredRemove).toBe(false);
      } finally {
        await fh.close();
      }
      // Cancelled: closing the last holder does not remove it.
      expect(await dm.getInfo(name)).not.toBeNull();
      await dm.removeDevice(name);
      expect(await dm.getInfo(name)).toBeNull();
      expect(existsSync(`/dev/mapper/${name}`)).toBe(false);
      await dm.deleteDevice(p.poolName, 0);
    });
  });

  test('a pending deferred remove completes when the last holder closes', async () => {
    await withPool(async (p) => {
      const name = p.name('held2');
      await dm.createDevice(p.poolName, 0);
      await dm.activateDevice(p.poolName, name, 0, 16 << 20);
      const fh = await open(`/dev/mapper/${name}`, 'r');
      await dm.removeDevice(name, { deferred: true });
      expect((await dm.getInfo(name))?.deferredRemove).toBe(true);
      await fh.close();
      // The kernel removes it on the last close; give it a bounded moment.
      const deadline = Date.now() + 5_000;
      while ((await dm.getInfo(name)) !== null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(await dm.getInfo(name)).toBeNull();
      // Without udev nobody removes the node when the kernel does; updateNodes does.
      await dm.updateNodes(name);
      expect(existsSync(`/dev/mapper/${name}`)).toBe(false);
      // The mapping can vanish from the device list a moment before the pool lets go of the
      // thin device: delete may see EBUSY briefly (seen under load). Bounded retry.
      const until = Date.now() + 5_000;
      for (;;) {
        try {
          await dm.deleteDevice(p.poolName, 0);
          break;
        } catch (err) {
          if ((err as { code?: string }).code !== 'EBUSY' || Date.now() > until) throw err;
          await new Promise((r) => setTimeout(r, 50));
        }
      }
    });
  });

  test('an aborted remove stops retrying at once', async () => {
    await withPool(async (p) => {
      const name = p.name('abort');
      await dm.createDevice(p.poolName, 0);
      await dm.activateDevice(p.poolName, name, 0, 16 << 20);
      const fh = await open(`/dev/mapper/${name}`, 'r');
      try {
        const ac = new AbortController();
        const started = Date.now();
        setTimeout(() => ac.abort(), 300);
        await expect(dm.removeDevice(name, { retryBudgetMs: 30_000, signal: ac.signal })).rejects.toMatchObject({
          code: 'ABORT_ERR',
        });
        // Well under the budget; a loose bound, since the sandbox kernel is slow.
        expect(Date.now() - started).toBeLessThan(5_000);
      } finally {
        await fh.close();
      }
      await dm.removeDevice(name);
      await dm.deleteDevice(p.poolName, 0);
    });
  });
});
