/**
 * Shutdown after someone else's crash. Processes that opened the root are SIGKILLed at
 * several points: one while devices it mounted stay mounted, one with a device active but
 * unmounted, one mid-delete, one right after a commit. A new open learns what they left
 * active; its shutdown leaves the kernel as a clean stop would: of the root only the mounted
 * device stays, reported with the pool it holds, never thrown. Once that device is
 * unmounted, a release (what the command-line tool calls) leaves nothing of the root active
 * and the pool's metadata passes thin_check.
 */
import { join } from 'node:path';
import { dm, sys } from '../../lib';
import { DeviceSet } from '../../lib/deviceset';
import { describeKernel } from '../helpers/kernel-env';
import { newRoot, runChild, testOptions, thinCheck } from '../helpers/deviceset';

/** The device-mapper devices of a root, as `dmsetup ls` lists them. */
async function rootDevices(prefix: string): Promise<string[]> {
  return (await dm.listDevices())
    .map((d) => d.name)
    .filter((n) => n.startsWith(`${prefix}-`))
    .sort();
}

describeKernel('DeviceSet shutdown after a crash', () => {
  jest.setTimeout(300_000);

  test('leftovers of killed processes: shutdown deactivates what nobody holds, reports the mounted devices and the busy pool', async () => {
    const root = await newRoot();
    const options = testOptions();
    let ds = await DeviceSet.open(root, { options });
    const prefix = ds.devicePrefix;
    const pool = ds.poolName;
    await ds.addDevice('image', '');
    await ds.addDevice('a', 'image');
    await ds.addDevice('b', 'image');
    await ds.shutdown();
    const imageMnt = join(root, 'mnt', 'image');
    const baseMnt = join(root, 'mnt', 'the-base');
    try {
      // 'image' and the base stay mounted (every later open checks the base's file system);
      // killed while snapshotting 'image' (the origin suspended and resumed around create_snap).
      let child = await runChild(
        {
          root,
          options,
          ops: [{ op: 'mount', hash: '', dir: 'the-base' }, { op: 'mount', hash: 'image' }, { op: 'add', hash: 'c1', base: 'image' }],
        },
        { point: 'after-create-thin' },
      );
      expect(child.signal).toBe('SIGKILL');
      // 'a' left active but unmounted; killed in the middle of deleting 'b'.
      child = await runChild(
        { root, options, ops: [{ op: 'mount', hash: 'a' }, { op: 'unmount-only', hash: 'a' }, { op: 'delete', hash: 'b' }] },
        { point: 'mid-delete' },
      );
      expect(child.signal).toBe('SIGKILL');
      // Killed right after committing a snapshot of the active 'a'.
      child = await runChild({ root, options, ops: [{ op: 'add', hash: 'c2', base: 'a' }] }, { point: 'after-set-transaction-id' });
      expect(child.signal).toBe('SIGKILL');
      expect(await rootDevices(prefix)).toEqual([`${prefix}-a`, `${prefix}-base`, `${prefix}-image`, pool].sort());

      ds = await DeviceSet.open(root, { options });
      // Recovery rolled back c1 and finished b's deletion; c2 was committed.
      expect(await ds.list()).toEqual(['a', 'c2', 'image']);
      const result = await ds.shutdown();
      expect(result).toEqual({
        pool: 'busy',
        busyDevices: [
          { hash: '', name: `${prefix}-base`, openCount: expect.any(Number), mountPoints: [baseMnt] },
          { hash: 'image', name: `${prefix}-image`, openCount: expect.any(Number), mountPoints: [imageMnt] },
        ],
      });
      for (const d of result.busyDevices) expect(d.openCount).toBeGreaterThan(0);
      expect(await rootDevices(prefix)).toEqual([`${prefix}-base`, `${prefix}-image`, pool].sort());
      expect(sys.isMountPoint(imageMnt) && sys.isMountPoint(baseMnt)).toBe(true);

      // The mounts' owner unmounts them; the devices stay active, held by nobody.
      await sys.unmount(imageMnt);
      await sys.unmount(baseMnt);
      ds = await DeviceSet.open(root, { options });
      expect(await ds.release()).toEqual({ pool: 'inactive', busyDevices: [] });
      expect(await rootDevices(prefix)).toEqual([]);
    } finally {
      for (const mnt of [imageMnt, baseMnt]) if (sys.isMountPoint(mnt)) await sys.unmount(mnt, { detach: true });
    }
    await thinCheck(join(root, 'devicemapper', 'metadata'));
  });
});
