/**
 * keepActive: an unmount leaves the device active (idle), the least recently unmounted
 * deactivated past the bound; a mount takes an idle device back without activating it, its
 * delete discards and deactivates it in one job, a snapshot of it works, and shutdown and
 * deactivateIdleDevices leave none. keepActive 0 is Docker's behaviour: the unmount deactivates.
 */
import { existsSync, statSync } from 'node:fs';
import { mkdir, open, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { dm } from '../../lib';
import type { DeviceSet } from '../../lib/deviceset';
import { Driver } from '../../lib/driver';
import { describeKernel } from '../helpers/kernel-env';
import { newRoot, typedTestOptions, withDeviceSet } from '../helpers/deviceset';
import { rm } from 'node:fs/promises';

/** Mounts and unmounts the device at root/mnt-<hash>, writing `bytes` bytes to a file. */
async function useOnce(ds: DeviceSet, root: string, hash: string, bytes = 26): Promise<void> {
  const mp = join(root, `mnt-${hash}`);
  await mkdir(mp, { recursive: true });
  await ds.mountDevice(hash, mp);
  await writeFile(join(mp, 'file'), Buffer.alloc(bytes, 7));
  await ds.unmountDevice(hash, mp);
}

/** The device-mapper devices of this DeviceSet's root that are active, by hash, sorted (the pool left out). */
async function activeHashes(ds: DeviceSet, hashes: string[]): Promise<string[]> {
  const active: string[] = [];
  for (const h of hashes) if (await dm.getInfo(ds.deviceName(h))) active.push(h);
  return active.sort();
}

describeKernel('keepActive: devices left active after their unmount', () => {
  jest.setTimeout(180_000);

  test('activateDevice returns a /dev/mapper path that exists, also when the node of an active device went missing', async () => {
    await withDeviceSet(async (ds) => {
      await ds.addDevice('a', '');
      const path = await ds.activateDevice('a');
      expect(existsSync(path)).toBe(true);
      await rm(path);
      const again = await ds.activateDevice('a');
      expect(again).toBe(path);
      expect(statSync(again).isBlockDevice()).toBe(true);
      await ds.deactivateDevice('a');
      await ds.deleteDevice('a', { sync: true });
    }, { options: typedTestOptions() });
  });

  test("keepActive 0 is Docker's behaviour: the unmount deactivates", async () => {
    await withDeviceSet(async (ds, root) => {
      await ds.addDevice('a', '');
      await useOnce(ds, root, 'a');
      expect(await dm.getInfo(ds.deviceName('a'))).toBeNull();
      await ds.deleteDevice('a', { sync: true });
    }, { options: typedTestOptions({ keepActive: 0 }) });
  });

  test('the bound: the least recently unmounted goes first; a mount takes an idle device back without activating it', async () => {
    await withDeviceSet(async (ds, root) => {
      const all = ['a', 'b', 'c'];
      for (const h of all) await ds.addDevice(h, '');
      await useOnce(ds, root, 'a');
      await useOnce(ds, root, 'b');
      expect(await activeHashes(ds, all)).toEqual(['a', 'b']);
      await useOnce(ds, root, 'c');
      // Three idle, a bound of two: a, the oldest, went.
      expect(await activeHashes(ds, all)).toEqual(['b', 'c']);

      // b again: the same kernel device (no new activation), and now the most recent.
      const before = await dm.getInfo(ds.deviceName('b'));
      const mp = join(root, 'mnt-b');
      await mkdir(mp, { recursive: true });
      await ds.mountDevice('b', mp);
      expect(await dm.getInfo(ds.deviceName('b'))).toMatchObject({ minor: before?.minor, openCount: 1 });
      await ds.unmountDevice('b', mp);
      await useOnce(ds, root, 'a');
      // Idle, oldest first, was c, b; a's unmount pushed c out.
      expect(await activeHashes(ds, all)).toEqual(['a', 'b']);

      expect(await ds.deactivateIdleDevices()).toBe(2);
      expect(await activeHashes(ds, all)).toEqual([]);
      expect(await ds.deactivateIdleDevices()).toBe(0);
      for (const h of all) await ds.deleteDevice(h, { sync: true });
    }, { options: typedTestOptions({ keepActive: 2 }) });
  });

  test('the delete of an idle device discards its blocks and deactivates it; a snapshot of an idle device deactivates it first and sees its data', async () => {
    const root = await newRoot();
    await withDeviceSet(async (ds) => {
      await ds.addDevice('a', '');
      const mp = join(root, 'mnt-a');
      await mkdir(mp, { recursive: true });
      await ds.mountDevice('a', mp);
      await writeFile(join(mp, 'file'), 'from a');
      await ds.unmountDevice('a', mp);
      expect(await dm.getInfo(ds.deviceName('a'))).toMatchObject({ exists: true, openCount: 0 });

      // A snapshot of the idle origin: the origin is deactivated first (no suspend and resume,
      // each resume a udev wait), and the snapshot sees a's file.
      await ds.addDevice('b', 'a');
      expect(await dm.getInfo(ds.deviceName('a'))).toBeNull();
      const mpb = join(root, 'mnt-b');
      await mkdir(mpb, { recursive: true });
      await ds.mountDevice('b', mpb);
      expect(await readFile(join(mpb, 'file'), 'utf8')).toBe('from a');
      await writeFile(join(mpb, 'blocks'), Buffer.alloc(16 << 20, 3));
      await ds.unmountDevice('b', mpb);

      // The data loop file loses b's blocks when b goes (dm.blkdiscard punches them out of it).
      const dataFile = join(root, 'devicemapper', 'data');
      const used = async () => (await stat(dataFile)).blocks * 512;
      const withB = await used();
      await ds.deleteDevice('b', { sync: true });
      expect(await dm.getInfo(ds.deviceName('b'))).toBeNull();
      expect(withB - (await used())).toBeGreaterThan(12 << 20);

      await ds.deleteDevice('a', { sync: true });
      expect(await dm.getInfo(ds.deviceName('a'))).toBeNull();
    }, { root, options: typedTestOptions({ blkDiscard: true }) });
  });

  test('an idle device someone holds open stays active past the bound without failing the unmount; shutdown deactivates it once let go', async () => {
    const root = await newRoot();
    let names: string[] = [];
    await withDeviceSet(async (ds) => {
      await ds.addDevice('a', '');
      await ds.addDevice('b', '');
      names = [ds.deviceName('a'), ds.deviceName('b')];
      await useOnce(ds, root, 'a');
      // The mount did not wait for udev's /dev/mapper link (udevReap): wait for it here.
      await dm.udevWaitName(ds.deviceName('a'));
      const holder = await open(`/dev/mapper/${ds.deviceName('a')}`, 'r');
      try {
        // a is pushed out by b's unmount but is held: the unmount still succeeds.
        await useOnce(ds, root, 'b');
        expect(await activeHashes(ds, ['a', 'b'])).toEqual(['a', 'b']);
      } finally {
        await holder.close();
      }
    }, { root, options: typedTestOptions({ keepActive: 1, removeRetryBudgetMs: 200 }) });
    // withDeviceSet shut it down: nothing of the root is left active.
    for (const n of names) expect(await dm.getInfo(n)).toBeNull();
  });

  test('Driver: put leaves the layer active, get takes it back, cleanup deactivates it', async () => {
    const home = await newRoot();
    const driver = await Driver.init(home, typedTestOptions());
    const name = driver.deviceSet.deviceName('c1');
    try {
      await driver.create('c1', '');
      const rootfs = await driver.get('c1');
      await writeFile(join(rootfs, 'hello'), 'x');
      await driver.put('c1');
      const idle = await dm.getInfo(name);
      expect(idle).toMatchObject({ exists: true, openCount: 0 });
      await driver.get('c1');
      expect(await dm.getInfo(name)).toMatchObject({ minor: idle?.minor, openCount: 1 });
      await driver.put('c1');
      expect(await driver.cleanup()).toEqual({ pool: 'inactive', busyDevices: [] });
      expect(await dm.getInfo(name)).toBeNull();
    } finally {
      await driver.cleanup().catch(() => undefined);
      await rm(join(home, '..'), { recursive: true, force: true });
    }
  });
});
