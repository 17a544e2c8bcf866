/**
 * The graph Driver in the kernel: the seed's container convention, Docker's volume layout
 * (`id` and `rootfs/` on the device), GetMetadata, Status rows, mount reference counts
 * (including a SIGKILLed predecessor), Remove's rules, storage options, and concurrent layers
 * of one parent at a modest width.
 */
import { execFile, spawn } from 'node:child_process';
import { readFile, readdir, rm, stat, statfs, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DevmapperError, Driver, dm, humanSize } from '../../lib';
import { describeKernel } from '../helpers/kernel-env';
import { newRoot, testOptions } from '../helpers/deviceset';
import { DOCKER_STATUS_ROWS } from '../helpers/docker-status';

async function mode(path: string): Promise<string> {
  return ((await stat(path)).mode & 0o777).toString(8);
}

/** How many mountinfo entries have this mount point. */
async function mountCount(path: string): Promise<number> {
  const info = await readFile('/proc/self/mountinfo', 'utf8');
  return info.split('\n').filter((l) => l.split(' ')[4] === path).length;
}

async function withDriver<T>(fn: (driver: Driver, home: string) => Promise<T>, extra: string[] = []): Promise<T> {
  const home = await newRoot();
  const driver = await Driver.init(home, testOptions(extra));
  try {
    return await fn(driver, home);
  } finally {
    await driver.cleanup();
    await rm(join(home, '..'), { recursive: true, force: true });
  }
}

async function rejection(p: Promise<unknown>): Promise<DevmapperError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(DevmapperError);
    return err as DevmapperError;
  }
  throw new Error('expected a rejection');
}

const CHILD = join(__dirname, '..', 'fixtures', 'driver-child.js');

function runDriverChild(spec: object): Promise<{ signal: NodeJS.Signals | null; result: { ok: boolean; out?: string[]; message?: string } | null; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CHILD, JSON.stringify(spec)], { timeout: 300_000 }, (err, stdout, stderr) => {
      const line = stdout.trim().split('\n').pop();
      let result = null;
      try {
        result = line ? JSON.parse(line) : null;
      } catch {
        result = null;
      }
      resolve({ signal: (err as (Error & { signal?: NodeJS.Signals }) | null)?.signal ?? null, result, stderr });
    });
  });
}

// Concurrent life cycles: 16 x 2 by default (`npm test`), 64 x 10 in `npm run test:soak`.
const WIDTH = Number(process.env.DEVMAPPER_CONCURRENCY ?? '16');
const ROUNDS = Number(process.env.DEVMAPPER_CONCURRENCY_ROUNDS ?? '2');

describeKernel('graph Driver', () => {
  jest.setTimeout(300_000);

  test("the seed's container convention: image, <id>-init, <id>; Docker's volume layout", async () => {
    await withDriver(async (driver, home) => {
      expect(await mode(home)).toBe('700');
      expect(await mode(join(home, 'mnt'))).toBe('755');

      await driver.create('image', '');
      await driver.create('c1-init', 'image');
      await driver.createReadWrite('c1', 'c1-init', {});
      expect(await driver.exists('c1')).toBe(true);
      expect(await driver.exists('c2')).toBe(false);

      // The image gets a file, the container sees it through the init layer.
      const imageRoot = await driver.get('image');
      expect(imageRoot).toBe(join(home, 'mnt', 'image', 'rootfs'));
      await writeFile(join(imageRoot, 'etc-release'), 'image v1');
      await driver.put('image');

      const rootfs = await driver.get('c1');
      const mp = join(home, 'mnt', 'c1');
      expect(rootfs).toBe(join(mp, 'rootfs'));
      expect(await mode(mp)).toBe('755');
      expect(await mode(rootfs)).toBe('755');
      expect(await mode(join(mp, 'id'))).toBe('600');
      expect(await readFile(join(mp, 'id'), 'utf8')).toBe('c1');
      expect((await readdir(mp)).sort()).toEqual(['id', 'lost+found', 'rootfs']);
      await writeFile(join(rootfs, 'hello'), 'from c1');
      await driver.put('c1');
      await expect(stat(mp)).rejects.toMatchObject({ code: 'ENOENT' });
      // Kept active, idle (keepActive), for the next get or the remove.
      expect(await dm.getInfo(driver.deviceSet.deviceName('c1'))).toMatchObject({ exists: true, openCount: 0 });

      // A second get sees what the first wrote, and the id file is not rewritten.
      const again = await driver.get('c1');
      expect(await readFile(join(again, 'hello'), 'utf8')).toBe('from c1');
      expect(await readFile(join(mp, 'id'), 'utf8')).toBe('c1');
      await driver.put('c1');

      // Snapshots taken before the write do not see it; the init layer never got the container's file.
      const init = await driver.get('c1-init');
      expect(await readdir(init)).toEqual([]);
      await driver.put('c1-init');
      await driver.create('c2', 'image');
      expect(await readFile(join(await driver.get('c2'), 'etc-release'), 'utf8')).toBe('image v1');
      await driver.put('c2');

      for (const id of ['c2', 'c1', 'c1-init', 'image']) await driver.remove(id);
      expect(await driver.exists('c1')).toBe(false);
      expect(await dm.getInfo(driver.deviceSet.deviceName('c1'))).toBeNull();
      expect(await driver.deviceSet.list()).toEqual([]);
    });
  });

  test("getMetadata and status rows are Docker's", async () => {
    await withDriver(async (driver) => {
      await driver.create('img', null);
      const meta = driver.deviceSet.getDeviceMetadata('img')!;
      expect(await driver.getMetadata('img')).toEqual({
        DeviceId: String(meta.deviceId),
        DeviceSize: String(64 << 20),
        DeviceName: `${driver.deviceSet.devicePrefix}-img`,
      });
      expect(Object.keys(await driver.getMetadata('img'))).toEqual(['DeviceId', 'DeviceSize', 'DeviceName']);
      expect((await rejection(driver.getMetadata('nope'))).code).toBe('ENOENT');

      const rows = await driver.status();
      expect(rows.map(([k]) => k)).toEqual(DOCKER_STATUS_ROWS);
      const row = Object.fromEntries(rows);
      expect(row['Pool Name']).toBe(driver.deviceSet.poolName);
      expect(row['Pool Blocksize']).toBe('65.54kB');
      expect(row['Base Device Size']).toBe(humanSize(64 << 20));
      expect(row['Base Device Size']).toBe('67.11MB');
      expect(row['Backing Filesystem']).toBe('ext4');
      expect(row['Udev Sync Supported']).toMatch(/^(true|false)$/);
      expect(row['Data file']).toMatch(/^\/dev\/loop\d+$/);
      expect(row['Data loop file']).toBe(join(driver.home, 'devicemapper', 'data'));
      expect(row['Metadata loop file']).toBe(join(driver.home, 'devicemapper', 'metadata'));
      expect(row['Data Space Total']).toBe('1.074GB');
      for (const k of ['Data Space Used', 'Data Space Available', 'Metadata Space Used', 'Metadata Space Total', 'Thin Pool Minimum Free Space'])
        expect(row[k]).toMatch(/^\d+(\.\d+)?[kMGT]?B$/);
      expect(row['Deferred Removal Enabled']).toBe('false');
      expect(row['Deferred Deleted Device Count']).toBe('0');
      expect(row['Library Version']).toMatch(/^1\.02\./);
      await driver.remove('img');
    });
  });

  test('mount counts: get twice = one mount; the last put unmounts (the device kept active, idle); an extra put is harmless', async () => {
    await withDriver(async (driver, home) => {
      await driver.create('l1', '');
      const mp = join(home, 'mnt', 'l1');
      const name = driver.deviceSet.deviceName('l1');
      const a = await driver.get('l1');
      const b = await driver.get('l1');
      expect(b).toBe(a);
      expect(await mountCount(mp)).toBe(1);
      expect(driver.refCount('l1')).toBe(2);
      await driver.put('l1');
      expect(await mountCount(mp)).toBe(1);
      expect(await readFile(join(mp, 'id'), 'utf8')).toBe('l1');
      await driver.put('l1');
      expect(await mountCount(mp)).toBe(0);
      expect(await dm.getInfo(name)).toMatchObject({ exists: true, openCount: 0 });
      await expect(driver.put('l1')).resolves.toBeUndefined();
      await expect(driver.put('l1')).resolves.toBeUndefined();
      expect(await mountCount(mp)).toBe(0);
      // Concurrent gets of one id are serialised: still one mount.
      await Promise.all([driver.get('l1'), driver.get('l1'), driver.get('l1')]);
      expect(await mountCount(mp)).toBe(1);
      await Promise.all([driver.put('l1'), driver.put('l1'), driver.put('l1'), driver.put('l1')]);
      expect(await mountCount(mp)).toBe(0);
      await driver.remove('l1');
      expect(await dm.getInfo(name)).toBeNull();
    });
  });

  test('mount counts: after a SIGKILL with a layer mounted, a new Driver takes the mount over', async () => {
    const home = await newRoot();
    const mp = join(home, 'mnt', 'c1');
    const child = await runDriverChild({ home, options: testOptions(), create: [['img', ''], ['c1', 'img']], get: 'c1' });
    expect(child.result).toEqual({ ok: true, out: [join(mp, 'rootfs')] });
    expect(child.signal).toBe('SIGKILL');
    expect(await mountCount(mp)).toBe(1);
    const driver = await Driver.init(home, testOptions());
    try {
      // Remove of a layer still mounted by the dead process is refused.
      expect((await rejection(driver.remove('c1'))).code).toBe('EBUSY');
      const rootfs = await driver.get('c1');
      expect(rootfs).toBe(join(mp, 'rootfs'));
      expect(await mountCount(mp)).toBe(1);
      await writeFile(join(rootfs, 'after-crash'), 'x');
      await driver.put('c1');
      expect(await mountCount(mp)).toBe(0);
      expect(await dm.getInfo(driver.deviceSet.deviceName('c1'))).toMatchObject({ exists: true, openCount: 0 });
      await driver.put('c1');
      await driver.remove('c1');
      expect(await dm.getInfo(driver.deviceSet.deviceName('c1'))).toBeNull();
      await driver.remove('img');
      expect(await driver.exists('c1')).toBe(false);
    } finally {
      await driver.cleanup();
      await rm(join(home, '..'), { recursive: true, force: true });
    }
  });

  test('a mount leaked into another mount namespace: put/remove succeed or EBUSY, then succeed', async () => {
    await withDriver(async (driver, home) => {
      await driver.create('leak', '');
      await driver.get('leak');
      const mp = join(home, 'mnt', 'leak');
      // A process in a private copy of our mount namespace, holding the mount's copy.
      const holder = spawn('unshare', ['-m', '--propagation', 'private', 'sleep', '600'], { stdio: 'ignore' });
      const exited = new Promise((r) => holder.once('exit', r));
      try {
        const deadline = Date.now() + 30_000;
        for (;;) {
          const info = await readFile(`/proc/${holder.pid}/mountinfo`, 'utf8').catch(() => '');
          if (info.split('\n').some((l) => l.split(' ')[4] === mp)) break;
          if (Date.now() > deadline) throw new Error('the holder never saw the mount');
          await new Promise((r) => setTimeout(r, 50));
        }
        const outcomes: string[] = [];
        for (const step of [() => driver.put('leak'), () => driver.remove('leak')]) {
          try {
            await step();
            outcomes.push('ok');
          } catch (err) {
            expect(err).toBeInstanceOf(DevmapperError);
            expect((err as DevmapperError).code).toBe('EBUSY');
            outcomes.push('EBUSY');
          }
        }
        process.stdout.write(`leaked mount: put ${outcomes[0]}, remove ${outcomes[1]}\n`);
        expect(await mountCount(mp)).toBe(0);
        if (outcomes[1] === 'EBUSY') expect(await driver.exists('leak')).toBe(true);
      } finally {
        holder.kill('SIGKILL');
        await exited;
      }
      await driver.put('leak');
      await driver.remove('leak');
      expect(await driver.exists('leak')).toBe(false);
      expect(await dm.getInfo(driver.deviceSet.deviceName('leak'))).toBeNull();
    });
  });

  test('remove: a missing id is a no-op, a mounted one EBUSY; bad ids make no path', async () => {
    await withDriver(async (driver, home) => {
      await expect(driver.remove('never-made')).resolves.toBeUndefined();
      await expect(driver.remove('../x')).resolves.toBeUndefined();
      await driver.create('m1', '');
      await driver.get('m1');
      const err = await rejection(driver.remove('m1'));
      expect(err.code).toBe('EBUSY');
      expect(await driver.exists('m1')).toBe(true);
      await driver.put('m1');
      await driver.remove('m1');
      expect(await driver.exists('m1')).toBe(false);
      await expect(driver.remove('m1')).resolves.toBeUndefined();

      for (const bad of ['../x', 'a/b', '.hidden', 'base', '']) {
        expect((await rejection(driver.get(bad))).code).toBe('ERR_INVALID_ARGUMENT');
        expect((await rejection(driver.create(bad, ''))).code).toBe('ERR_INVALID_ARGUMENT');
      }
      expect((await rejection(driver.get('unknown'))).code).toBe('ENOENT');
      expect((await rejection(driver.create('c', 'no-parent'))).code).toBe('ENOENT');
      expect(await readdir(join(home, 'mnt'))).toEqual([]);
      expect(await readdir(home)).not.toContain('x');
    });
  });

  test('remove racing get: get fails cleanly or remove is EBUSY, never a path to a deleted device', async () => {
    await withDriver(async (driver, home) => {
      const outcomes = { getWon: 0, removeWon: 0 };
      for (let i = 0; i < 12; i++) {
        const id = `race${i}`;
        await driver.create(id, '');
        // Alternate which call starts first, and let the other start a tick or none later.
        const calls = [() => driver.get(id), () => driver.remove(id)] as const;
        const order = i % 2 === 0 ? [0, 1] : [1, 0];
        // Each outcome is settled as it starts: the loser may reject during the tick we wait
        // before starting the other call, and a rejection with no handler yet fails the test.
        const pending: Promise<PromiseSettledResult<unknown>>[] = [];
        for (const k of order) {
          pending[k] = calls[k]().then(
            (value) => ({ status: 'fulfilled' as const, value }),
            (reason: unknown) => ({ status: 'rejected' as const, reason }),
          );
          if (i % 4 >= 2) await new Promise((r) => setImmediate(r));
        }
        const [got, removed] = await Promise.all(pending);
        if (got.status === 'fulfilled') {
          outcomes.getWon++;
          expect(removed).toMatchObject({ status: 'rejected', reason: { code: 'EBUSY' } });
          expect(got.value).toBe(join(home, 'mnt', id, 'rootfs'));
          expect(await mountCount(join(home, 'mnt', id))).toBe(1);
          expect(await driver.exists(id)).toBe(true);
          await driver.put(id);
          await driver.remove(id);
        } else {
          outcomes.removeWon++;
          expect(removed.status).toBe('fulfilled');
          expect(got.reason).toMatchObject({ code: 'ENOENT' });
          expect(await driver.exists(id)).toBe(false);
          expect(await mountCount(join(home, 'mnt', id))).toBe(0);
        }
      }
      process.stdout.write(`remove racing get: get first ${outcomes.getWon}, remove first ${outcomes.removeWon}\n`);
      expect(outcomes.getWon + outcomes.removeWon).toBe(12);
      expect(await driver.deviceSet.list()).toEqual([]);
      expect(await readdir(join(home, 'mnt'))).toEqual([]);
    });
  });

  test('storage options: unknown keys refused, size below the base refused, above it grows the file system', async () => {
    await withDriver(async (driver) => {
      const unknown = await rejection(driver.create('s0', '', { storageOpt: { size: '128M', quota: '1G' } }));
      expect(unknown).toMatchObject({ code: 'ERR_INVALID_ARGUMENT', argument: 'storageOpt.quota' });
      expect(await driver.exists('s0')).toBe(false);
      const small = await rejection(driver.create('s1', '', { storageOpt: { size: '32M' } }));
      expect(small.code).toBe('ERR_INVALID_ARGUMENT');
      expect(await driver.exists('s1')).toBe(false);

      await driver.create('s2', '', { storageOpt: { size: '256M' } });
      expect((await driver.getMetadata('s2')).DeviceSize).toBe(String(256 << 20));
      const rootfs = await driver.get('s2');
      const st = await statfs(rootfs);
      expect(st.blocks * st.bsize).toBeGreaterThan(200 << 20);
      await driver.put('s2');
      await driver.create('s3', '');
      const base = await statfs(await driver.get('s3'));
      expect(base.blocks * base.bsize).toBeLessThan(70 << 20);
      await driver.put('s3');
      await driver.remove('s2');
      await driver.remove('s3');
    });
  });

  test(`${WIDTH} concurrent create+get+put+remove of snapshots of one mounted parent, ${ROUNDS} rounds`, async () => {
    await withDriver(async (driver) => {
      await driver.create('parent', '');
      const parentRoot = await driver.get('parent');
      await writeFile(join(parentRoot, 'shared'), 'p');
      const parentName = driver.deviceSet.deviceName('parent');
      let sawSuspended = 0;
      let sampling = true;
      const sampler = (async () => {
        // The parent is suspended only inside a create_snap: it must never stay so.
        while (sampling) {
          const info = await dm.getInfo(parentName);
          if (info?.suspended) sawSuspended++;
          await new Promise((r) => setTimeout(r, 20));
        }
      })();
      const errors: unknown[] = [];
      const deviceIds: number[] = [];
      try {
        for (let round = 0; round < ROUNDS; round++) {
          await Promise.all(
            Array.from({ length: WIDTH }, async (_, i) => {
              const id = `r${round}-l${i}`;
              try {
                await driver.create(id, 'parent');
                deviceIds.push(Number((await driver.getMetadata(id)).DeviceId));
                const rootfs = await driver.get(id);
                expect(await readFile(join(rootfs, 'shared'), 'utf8')).toBe('p');
                await writeFile(join(rootfs, 'mine'), id);
                await driver.put(id);
                await driver.remove(id);
              } catch (err) {
                errors.push(err);
              }
            }),
          );
          expect((await dm.getInfo(parentName))?.suspended).toBe(false);
        }
      } finally {
        sampling = false;
        await sampler;
      }
      expect(errors).toEqual([]);
      // Unique within a round (ids freed by remove may be reused by the next round).
      for (let r = 0; r < ROUNDS; r++) expect(new Set(deviceIds.slice(r * WIDTH, r * WIDTH + WIDTH)).size).toBe(WIDTH);
      expect(await driver.deviceSet.list()).toEqual(['parent']);
      expect((await dm.getInfo(parentName))?.suspended).toBe(false);
      // Suspensions seen mid-flight are fine (create_snap freezes the origin); none outlives a round.
      process.stdout.write(`concurrent layers: parent seen suspended in ${sawSuspended} samples mid-flight\n`);
      await driver.put('parent');
      await driver.remove('parent');
    });
    // The bound grows with the size: 5 minutes, or 5 s a life cycle when that is more.
  }, Math.max(300_000, WIDTH * ROUNDS * 5_000));

  test('cleanup unmounts what is held and is idempotent', async () => {
    const home = await newRoot();
    const driver = await Driver.init(home, testOptions());
    try {
      await driver.create('k1', '');
      await driver.get('k1');
      await driver.get('k1');
      expect(await mountCount(join(home, 'mnt', 'k1'))).toBe(1);
      // Nothing of the root stays active: the report says so, the second call gives the same.
      expect(await driver.cleanup()).toEqual({ pool: 'inactive', busyDevices: [] });
      expect(await driver.cleanup()).toEqual({ pool: 'inactive', busyDevices: [] });
      expect(await mountCount(join(home, 'mnt', 'k1'))).toBe(0);
      expect((await rejection(driver.get('k1'))).code).toBe('ERR_CLOSED');
      // The layer is still there for the next Driver.
      const next = await Driver.init(home, testOptions());
      try {
        expect(await next.exists('k1')).toBe(true);
        await next.remove('k1');
      } finally {
        await next.cleanup();
      }
    } finally {
      await driver.cleanup();
      await rm(join(home, '..'), { recursive: true, force: true });
    }
  });
});
