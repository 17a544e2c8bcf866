/**
 * The udev reaper (udevReap, on by default): a DeviceSet's mounts, unmounts and deletes hand
 * their udev cookies to the addon instead of waiting for udev's rules. Proven here with udevd
 * running: no semaphore left and /dev/mapper matching the kernel after settle, over many
 * activations and removals (DEVMAPPER_REAPER_CYCLES, 32 quick, 1,000 soak), one device at a
 * time and several at once; a removal right after its own activation, and a name activated
 * again right after its removal; the bound kept when a rule hangs past it. Without udev
 * there are no cookies, and the reaper stays empty.
 */
import { execFile } from 'node:child_process';
import { existsSync, lstatSync, realpathSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { dm } from '../../lib';
import type { DeviceSet } from '../../lib/deviceset';
import { describeKernel, kernelEnv } from '../helpers/kernel-env';
import { semaphoreCount } from '../helpers/leaks';
import { newRoot, runChild, typedTestOptions, withDeviceSet } from '../helpers/deviceset';

const execFileP = promisify(execFile);
const udevOn = kernelEnv().udev === 'on';
const onlyWithUdev = udevOn ? test : test.skip;
const skipNote = udevOn ? '' : ' [skipped: needs a running udevd]';

const RULES_DIR = '/run/udev/rules.d';
const SLOW_RULE = `${RULES_DIR}/90-devmapper-test-reaper-sleep.rules`;
const BOUND_MS = 1500;
/** Mount cycles (an activation and a removal each) of the many-cycles test: 32 quick, 1,000 in the soak tier. */
const CYCLES = Number(process.env.DEVMAPPER_REAPER_CYCLES ?? '32');

/** Mounts the device at root/mnt-<hash> and unmounts it again (keepActive 0: deactivated). */
async function mountCycle(ds: DeviceSet, root: string, hash: string): Promise<void> {
  const mp = join(root, `mnt-${hash}`);
  await mkdir(mp, { recursive: true });
  await ds.mountDevice(hash, mp);
  await writeFile(join(mp, 'f'), hash);
  await ds.unmountDevice(hash, mp);
}

/** /dev/mapper matches the kernel for these devices: a node of the live minor for the active, none for the rest. */
async function expectNodesMatchKernel(ds: DeviceSet, hashes: string[]): Promise<void> {
  for (const h of hashes) {
    const name = ds.deviceName(h);
    const info = await dm.getInfo(name);
    const node = `/dev/mapper/${name}`;
    if (info === null) expect([h, existsSync(node)]).toEqual([h, false]);
    else expect([h, realpathSync(node)]).toEqual([h, `/dev/dm-${info.minor}`]);
  }
}

describeKernel('the udev reaper: DeviceSet calls do not wait for udev', () => {
  jest.setTimeout(240_000);

  test('without udev nothing goes to the reaper', async () => {
    const before = dm.udevReaperStats();
    await withDeviceSet(async (ds, root) => {
      await ds.addDevice('a', '');
      for (let i = 0; i < 3; i++) await mountCycle(ds, root, 'a');
      if (udevOn) expect(dm.udevReaperStats().reaped + dm.udevReaperStats().pending).toBeGreaterThan(before.reaped + before.pending);
      else expect(dm.udevReaperStats()).toEqual(before);
      await ds.deleteDevice('a', { sync: true });
    }, { options: typedTestOptions({ keepActive: 0 }) });
  });

  onlyWithUdev(`${CYCLES} activations and removals, one device at a time and four at once: after settle none pending or timed out, no semaphore left, /dev/mapper as the kernel has it${skipNote}`, async () => {
    const semBefore = semaphoreCount();
    const before = dm.udevReaperStats();
    const hashes = ['r0', 'r1', 'r2', 'r3'];
    await withDeviceSet(async (ds, root) => {
      for (const h of hashes) await ds.addDevice(h, '');
      const rounds = Math.ceil(CYCLES / hashes.length / 2);
      for (let round = 0; round < rounds; round++) {
        for (const h of hashes) await mountCycle(ds, root, h);
        await Promise.all(hashes.map((h) => mountCycle(ds, root, h)));
      }
      // Mounted at once and queried while udev is still at their rules: no query flushes
      // libdevmapper's node stack into nodes of its own making, so after settle each name is
      // udev's link to the live minor.
      const mps = hashes.map((h) => join(root, `mnt-${h}`));
      for (const mp of mps) await mkdir(mp, { recursive: true });
      await Promise.all(hashes.map((h, i) => ds.mountDevice(h, mps[i]).then(() => dm.getInfo(ds.deviceName(h)))));
      const settled = await dm.udevSettle(60_000);
      expect(settled.pending).toBe(0);
      expect(settled.timedOut).toBe(before.timedOut);
      // Two cookies a cycle (the activation's and the removal's).
      expect(settled.reaped - before.reaped).toBeGreaterThanOrEqual(2 * rounds * hashes.length * 2);
      await expectNodesMatchKernel(ds, hashes);
      for (const h of hashes) expect([h, lstatSync(`/dev/mapper/${ds.deviceName(h)}`).isSymbolicLink()]).toEqual([h, true]);
      await Promise.all(hashes.map((h, i) => ds.unmountDevice(h, mps[i])));
      await dm.udevSettle(60_000);
      expect(semaphoreCount()).toBe(semBefore);
      await expectNodesMatchKernel(ds, hashes);
      for (const h of hashes) await ds.deleteDevice(h, { sync: true });
    }, { options: typedTestOptions({ keepActive: 0 }) });
    expect(semaphoreCount()).toBe(semBefore);
  }, Math.max(240_000, CYCLES * 1_000));

  onlyWithUdev(`a removal right after its activation, and the name activated again right after its removal${skipNote}`, async () => {
    const semBefore = semaphoreCount();
    await withDeviceSet(async (ds, root) => {
      await ds.addDevice('a', '');
      const mp = join(root, 'mnt-a');
      const name = ds.deviceName('a');
      for (let i = 0; i < 10; i++) {
        await mkdir(mp, { recursive: true });
        // Mounted while udev is still at the activation's rules; unmounted and removed at once,
        // then activated again under the same name: the activation waits for udev to finish
        // the removal's events first, so the new node is not undone by them.
        await ds.mountDevice('a', mp);
        const minor = (await dm.getInfo(name))?.minor;
        await ds.unmountDevice('a', mp);
        expect(await dm.getInfo(name)).toBeNull();
        await mkdir(mp, { recursive: true });
        await ds.mountDevice('a', mp);
        expect(await dm.getInfo(name)).toMatchObject({ exists: true });
        expect(typeof minor).toBe('number');
        await ds.unmountDevice('a', mp);
      }
      await mkdir(mp, { recursive: true });
      await ds.mountDevice('a', mp);
      // activateDevice hands out /dev/mapper/NAME: it resolves once udev made it.
      const path = await ds.activateDevice('a');
      expect(realpathSync(path)).toBe(`/dev/dm-${(await dm.getInfo(name))?.minor}`);
      await ds.unmountDevice('a', mp);
      await dm.udevSettle(30_000);
      await expectNodesMatchKernel(ds, ['a']);
      await ds.deactivateDevice('a');
      await dm.udevSettle(30_000);
      await expectNodesMatchKernel(ds, ['a']);
      await ds.deleteDevice('a', { sync: true });
    }, { options: typedTestOptions({ keepActive: 0 }) });
    expect(dm.udevReaperStats().pending).toBe(0);
    expect(semaphoreCount()).toBe(semBefore);
  });

  onlyWithUdev(`a process killed while udev works on its devices: its cookies stay until udev completed them, then the sweep frees them${skipNote}`, async () => {
    const root = await newRoot();
    const options = typedTestOptions({ keepActive: 0 });
    const semBefore = semaphoreCount();
    await mkdir(RULES_DIR, { recursive: true });
    // The child's events take 8 s each: its cookies are certainly pending when it dies, even
    // on a loaded machine.
    await writeFile(SLOW_RULE, 'KERNEL=="dm-[0-9]*", ENV{DM_UDEV_DISABLE_LIBRARY_FALLBACK_FLAG}=="1", PROGRAM="/bin/sleep 8"\n');
    let child: Awaited<ReturnType<typeof runChild>>;
    try {
      await execFileP('udevadm', ['control', '--reload']);
      child = await runChild({ root, options, ops: [{ op: 'add', hash: 'a' }, { op: 'write', hash: 'a', file: 'f', content: 'x' }, { op: 'kill' }] });
      expect(child.signal).toBe('SIGKILL');
      // The mount's and the unmount's cookies, not completed yet: not abandoned, kept.
      const left = semaphoreCount() - semBefore;
      expect(left).toBeGreaterThanOrEqual(1);
      expect(dm.sweepAbandonedUdevCookies(0)).toBe(0);
    } finally {
      await rm(SLOW_RULE, { force: true });
      await execFileP('udevadm', ['control', '--reload']);
    }
    await execFileP('udevadm', ['settle', '-t', '60']);
    // Completed by udev, nobody to collect them: younger than the age asked, still kept...
    expect(dm.sweepAbandonedUdevCookies(3600)).toBe(0);
    expect(semaphoreCount()).toBeGreaterThan(semBefore);
    // ...and freed at age 0 (DeviceSet.open sweeps those a minute old, or twice the udev bound).
    expect(dm.sweepAbandonedUdevCookies(0)).toBeGreaterThanOrEqual(1);
    expect(semaphoreCount()).toBe(semBefore);
    // The killed process's root: taken over and cleaned up by the next owner.
    await withDeviceSet(async (ds) => ds.deleteDevice('a', { sync: true }), { root, options });
    await rm(join(root, '..'), { recursive: true, force: true });
  });

  onlyWithUdev(`a rule that hangs past the bound: the calls return within the bound, the reaper completes the cookies at it, no semaphore left${skipNote}`, async () => {
    const semBefore = semaphoreCount();
    const before = dm.udevReaperStats();
    await withDeviceSet(async (ds, root) => {
      await ds.addDevice('slow', '');
      const name = ds.deviceName('slow');
      await mkdir(RULES_DIR, { recursive: true });
      // Not by DM_NAME: udev reads the name from sysfs, and a device removed before udev
      // reached its event has none by then. The flag marks the events of reaped tasks.
      await writeFile(SLOW_RULE, 'KERNEL=="dm-[0-9]*", ENV{DM_UDEV_DISABLE_LIBRARY_FALLBACK_FLAG}=="1", PROGRAM="/bin/sleep 4"\n');
      try {
        await execFileP('udevadm', ['control', '--reload']);
        const t0 = performance.now();
        await mountCycle(ds, root, 'slow');
        const took = performance.now() - t0;
        process.stdout.write(`reaper, rule sleeping 4 s: mount + unmount ${Math.round(took)} ms, bound ${BOUND_MS} ms\n`);
        // The mount returns at once; the unmount's removal first waits for udev to finish the
        // activation, which the reaper ends at its bound.
        expect(took).toBeLessThan(BOUND_MS + 1000);
        const settled = await dm.udevSettle(BOUND_MS * 4);
        expect(settled.pending).toBe(0);
        expect(settled.timedOut).toBeGreaterThan(before.timedOut);
      } finally {
        await rm(SLOW_RULE, { force: true });
        await execFileP('udevadm', ['control', '--reload']);
      }
      await execFileP('udevadm', ['settle', '-t', '60']);
      expect(semaphoreCount()).toBe(semBefore);
      expect(existsSync(`/dev/mapper/${name}`)).toBe(false);
      await ds.deleteDevice('slow', { sync: true });
    }, { options: typedTestOptions({ keepActive: 0, udevWaitTimeoutMs: BOUND_MS }) });
    expect(semaphoreCount()).toBe(semBefore);
  });
});
