/** The addon in other environments (worker threads) and udev behaviour of the running mode. */
import { execFile } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Worker } from 'node:worker_threads';
import { dm } from '../../lib';
import { describeKernel, kernelEnv } from '../helpers/kernel-env';
import { semaphoreCount } from '../helpers/leaks';
import { withPool } from '../helpers/pool';

const execFileP = promisify(execFile);
const dist = join(__dirname, '..', '..', 'dist');

describeKernel('addon runtime', () => {
  jest.setTimeout(120_000);

  test('loads and works in worker threads, and the workers exit cleanly', async () => {
    const code = `
      const { parentPort } = require('node:worker_threads');
      const { dm } = require(${JSON.stringify(dist)});
      (async () => {
        const v = await dm.getDriverVersion();
        const missing = await dm.getInfo('no-such-device-' + process.pid);
        let err;
        try { await dm.suspendDevice('no-such-device-' + process.pid); } catch (e) { err = { name: e.constructor.name, code: e.code }; }
        parentPort.postMessage({ v, missing, err });
      })();`;
    const results = await Promise.all(
      [1, 2].map(
        () =>
          new Promise<{ v: string; missing: unknown; err: { name: string; code: string } }>((resolve, reject) => {
            const w = new Worker(code, { eval: true });
            w.once('message', resolve);
            w.once('error', reject);
          }),
      ),
    );
    for (const r of results) {
      expect(r.v).toMatch(/^\d+\.\d+\.\d+$/);
      expect(r.missing).toBeNull();
      expect(r.err).toEqual({ name: 'DevmapperError', code: 'ENXIO' });
    }
  });

  test('udev sync matches the running mode; every activation has its node at once; no cookie left', async () => {
    const env = kernelEnv();
    expect(dm.udevSyncSupported()).toBe(env.udev === 'on');
    const sems = semaphoreCount();
    await withPool(async (p) => {
      for (let id = 0; id < 20; id++) {
        const name = p.name(`n${id}`);
        await dm.createDevice(p.poolName, id);
        await dm.activateDevice(p.poolName, name, id, 4 << 20);
        // No wait: the node is there when activateDevice resolves.
        expect(statSync(`/dev/mapper/${name}`).isBlockDevice()).toBe(true);
        if (env.udev === 'on') expect(existsSync(`/dev/disk/by-id/dm-name-${name}`)).toBe(true);
        await dm.removeDevice(name);
        expect(existsSync(`/dev/mapper/${name}`)).toBe(false);
        // Failures on cookie-carrying paths must not leak a cookie either.
        await expect(dm.removeDevice(name)).rejects.toMatchObject({ code: 'ENXIO' });
        await dm.deleteDevice(p.poolName, id);
      }
    });
    expect(semaphoreCount()).toBe(sems);
    const { stdout } = await execFileP('dmsetup', ['udevcookies']);
    expect(stdout.trim().split('\n').slice(1).filter((l) => l.trim() !== '')).toEqual([]);
  });

  test('versions: library, driver, and the thin targets are loaded', async () => {
    expect(dm.getLibraryVersion()).toMatch(/^1\.02\.\d+/);
    const targets = await dm.getTargetVersions();
    expect(targets.map((t) => t.name)).toEqual(expect.arrayContaining(['thin-pool', 'thin']));
  });
});
