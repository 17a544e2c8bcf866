/**
 * The DeviceSet's promise of one thread hop per operation: each step of a layer's
 * life is one native job, the queries before it run on the JS thread. Counted with
 * async_hooks (every libuv work request and fs request is one async resource), not timed.
 * A regression here (a new awaited query, a metadata write outside the job) is a slower
 * library on every host.
 */
import { createHook } from 'node:async_hooks';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { dm } from '../../lib';
import { Driver } from '../../lib/driver';
import { newRoot, testOptions, typedTestOptions, withDeviceSet } from '../helpers/deviceset';
import { describeKernel } from '../helpers/kernel-env';
import { withPool } from '../helpers/pool';
import { rm } from 'node:fs/promises';

/** Thread-pool round trips started by fn, by async resource type. */
async function hops(fn: () => Promise<unknown>): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  const hook = createHook({
    init(_id, type) {
      // Promises, timers and the like are not round trips through the thread pool.
      if (type.startsWith('devmapper:') || type.startsWith('FSREQ') || type === 'FILEHANDLECLOSEREQ') counts[type] = (counts[type] ?? 0) + 1;
    },
  });
  hook.enable();
  try {
    await fn();
  } finally {
    hook.disable();
  }
  return counts;
}

describeKernel('thread hops per operation', () => {
  jest.setTimeout(120_000);

  // Without dm.blkdiscard (a delete that discards is a job more: discard and deactivate
  // together), and with keepActive 0, Docker's behaviour: the unmount deactivates.
  test('DeviceSet: addDevice, mountDevice, unmountDevice and deleteDevice are one native job each', async () => {
    await withDeviceSet(async (ds, root) => {
      await ds.addDevice('image', '');
      const mp = join(root, 'mnt-layer');
      await mkdir(mp);
      // Warm: the first call of each kind may load code; count the second lifecycle.
      for (let round = 0; round < 2; round++) {
        const seen = {
          add: await hops(() => ds.addDevice('layer', 'image')),
          mount: await hops(() => ds.mountDevice('layer', mp)),
          unmount: await hops(() => ds.unmountDevice('layer', mp)),
          delete: await hops(() => ds.deleteDevice('layer', { sync: true })),
        };
        if (round === 0) {
          await mkdir(mp);
          continue;
        }
        expect(seen).toEqual({
          add: { 'devmapper:steps': 1 },
          mount: { 'devmapper:steps': 1 },
          unmount: { 'devmapper:steps': 1 },
          delete: { 'devmapper:steps': 1 },
        });
      }
    }, { options: typedTestOptions({ blkDiscard: false, keepActive: 0 }) });
  });

  // keepActive (the default): the unmount leaves the device active; the delete deactivates it
  // in a job of its own, outside the pool lock (the removal may wait for udev).
  test('DeviceSet with keepActive: the unmount is one job, the delete of the idle device two', async () => {
    await withDeviceSet(async (ds, root) => {
      await ds.addDevice('image', '');
      const mp = join(root, 'mnt-layer');
      await mkdir(mp);
      for (let round = 0; round < 2; round++) {
        await ds.addDevice('layer', 'image');
        const seen = {
          mount: await hops(() => ds.mountDevice('layer', mp)),
          unmount: await hops(() => ds.unmountDevice('layer', mp)),
          delete: await hops(() => ds.deleteDevice('layer', { sync: true })),
        };
        await mkdir(mp);
        if (round === 0) continue;
        expect(seen).toEqual({
          mount: { 'devmapper:steps': 1 },
          unmount: { 'devmapper:steps': 1 },
          delete: { 'devmapper:steps': 2 },
        });
      }
    }, { options: testOptions(['dm.blkdiscard=false']) });
  });

  // keepActive (the default): put is the unmount and the rmdir; remove deactivates (a job
  // outside the pool lock) and deletes. With dm.blkdiscard the first job discards too.
  test('Driver: create 1, get 1 (mount point, mount and layout in one job), put 1, remove 2', async () => {
    const home = await newRoot();
    const driver = await Driver.init(home, testOptions(['dm.blkdiscard=false']));
    try {
      await driver.create('image', '');
      for (let round = 0; round < 2; round++) {
        const seen = {
          create: await hops(() => driver.create('c1', 'image')),
          get: await hops(() => driver.get('c1')),
          put: await hops(() => driver.put('c1')),
          remove: await hops(() => driver.remove('c1')),
        };
        if (round === 0) continue;
        expect(seen).toEqual({
          create: { 'devmapper:steps': 1 },
          get: { 'devmapper:steps': 1 },
          put: { 'devmapper:steps': 1 },
          remove: { 'devmapper:steps': 2 },
        });
      }
    } finally {
      await driver.cleanup();
      await rm(join(home, '..'), { recursive: true, force: true });
    }
  });

  test('DeviceSet: a delete with dm.blkdiscard is 2 jobs (activate, discard and deactivate; the delete)', async () => {
    await withDeviceSet(async (ds, root) => {
      await ds.addDevice('image', '');
      const mp = join(root, 'mnt-layer');
      for (let round = 0; round < 2; round++) {
        await ds.addDevice('layer', 'image');
        await mkdir(mp);
        await ds.mountDevice('layer', mp);
        await writeFile(join(mp, 'blocks'), Buffer.alloc(1 << 20, 1));
        await ds.unmountDevice('layer', mp);
        const seen = await hops(() => ds.deleteDevice('layer', { sync: true }));
        if (round === 1) expect(seen).toEqual({ 'devmapper:steps': 2 });
      }
    }, { options: testOptions(['dm.blkdiscard=true']) });
  });

  test('dm: createSnapDevice of an active origin, activateDevice and removeDevice are one native job each', async () => {
    await withPool(async (p) => {
      const origin = p.name('origin');
      await dm.createDevice(p.poolName, 1);
      await dm.activateDevice(p.poolName, origin, 1, 64 << 20);
      for (let round = 0; round < 2; round++) {
        const snap = p.name(`snap${round}`);
        const seen = {
          snap: await hops(() => dm.createSnapDevice(p.poolName, 2 + round, origin, 1)),
          activate: await hops(() => dm.activateDevice(p.poolName, snap, 2 + round, 64 << 20)),
          remove: await hops(() => dm.removeDevice(snap)),
        };
        expect((await dm.getInfo(origin))?.suspended).toBe(false);
        if (round === 1) expect(seen).toEqual({ snap: { 'devmapper:steps': 1 }, activate: { 'devmapper:steps': 1 }, remove: { 'devmapper:steps': 1 } });
      }
      await dm.removeDevice(origin);
    });
  });
});
