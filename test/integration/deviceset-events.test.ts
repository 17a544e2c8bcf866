/**
 * Pool events from the kernel's device-mapper events: a small pool filled through a thin
 * volume reports low-water, then out-of-data-space, then writable once grown; a pool
 * reloaded read-only reports read-only and writable. The watch is a native thread that
 * wakes only on dm events (none while idle), and it leaves no thread or fd behind.
 */
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { dm, type PoolEvent, type PoolEventType } from '../../lib';
import { kernelEnv, describeKernel } from '../helpers/kernel-env';
import { testOptions, typedTestOptions, withDeviceSet } from '../helpers/deviceset';
import { collectPoolEvents } from '../helpers/pool-events';

const MiB = 1024 * 1024;
/** Upper bound between the write that causes a change and its event (the sandbox is slow). */
const EVENT_BOUND_MS = 1500;

function threadCount(): number {
  return Number(/^Threads:\s+(\d+)/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1]);
}

function fdCount(): number {
  return readdirSync('/proc/self/fd').length;
}

async function freeBlocks(pool: string): Promise<number> {
  const st = await dm.getPoolStatus(pool);
  if (st.state !== 'ok') throw new Error(`pool state ${st.state}`);
  return st.dataTotalBlocks - st.dataUsedBlocks;
}

describeKernel(`DeviceSet pool events (udev ${kernelEnv().udev})`, () => {
  jest.setTimeout(300_000);

  test('filling a thin volume: low-water at the crossing, out-of-data-space when full, writable after resizePool; nothing while idle', async () => {
    const lowWater = 512; // data blocks of 64 KiB: 32 MiB of the 128 MiB pool
    // errorIfNoSpace: writers get EIO at once when the pool is full, instead of queueing (and hanging the test).
    const options = typedTestOptions({ loopDataSize: '128M', minFreeSpace: 0, lowWaterMarkBlocks: lowWater, errorIfNoSpace: true });
    await withDeviceSet(
      async (ds) => {
        expect((await dm.getTable(ds.poolName))[0].params).toMatch(/ 128 512 2 skip_block_zeroing error_if_no_space$/);

        // A thin volume larger than the pool, outside the DeviceSet's bookkeeping.
        const thinId = 4000;
        const thin = `${ds.devicePrefix}-events-fill`;
        await dm.createDevice(ds.poolName, thinId);
        await dm.activateDevice(ds.poolName, thin, thinId, 256 * MiB);
        const events = collectPoolEvents(ds);
        let fh: Awaited<ReturnType<typeof open>> | null = null;
        try {
          expect(ds.poolEventStats().watching).toBe(true);
          // Idle: a timer-driven watch would read the pool; this one must not even wake.
          const idleFrom = ds.poolEventStats().wakeups;
          await new Promise((r) => setTimeout(r, 1500));
          expect(ds.poolEventStats().wakeups).toBe(idleFrom);
          expect(events.seen).toEqual([]);

          fh = await open(`/dev/mapper/${thin}`, 'r+');
          const chunk = Buffer.alloc(4 * MiB, 0x5a);
          let offset = 0;
          // Fill to the low-water mark, chunk by chunk, noting when the crossing chunk ran.
          let crossing: { started: number; done: number } | null = null;
          while (crossing === null && offset < 128 * MiB) {
            const started = Date.now();
            await fh.write(chunk, 0, chunk.length, offset);
            await fh.sync();
            offset += chunk.length;
            if ((await freeBlocks(ds.poolName)) <= lowWater) crossing = { started, done: Date.now() };
          }
          expect(crossing).not.toBeNull();
          const low = await events.waitFor('low-water', EVENT_BOUND_MS);
          expect(low.at.getTime()).toBeGreaterThanOrEqual(crossing!.started);
          expect(low.at.getTime()).toBeLessThanOrEqual(crossing!.done + EVENT_BOUND_MS);
          expect(low.status.state === 'ok' && low.status.dataTotalBlocks - low.status.dataUsedBlocks).toBeLessThanOrEqual(lowWater);

          // On to full: the write that finds no block fails, and the pool says so by an event.
          let failedAt: number | null = null;
          while (failedAt === null && offset < 256 * MiB) {
            try {
              await fh.write(chunk, 0, chunk.length, offset);
              await fh.sync();
            } catch (err) {
              expect((err as NodeJS.ErrnoException).code).toMatch(/^(EIO|ENOSPC)$/);
              failedAt = Date.now();
            }
            offset += chunk.length;
          }
          expect(failedAt).not.toBeNull();
          const full = await events.waitFor('out-of-data-space', EVENT_BOUND_MS);
          expect(full.at.getTime()).toBeLessThanOrEqual(failedAt! + EVENT_BOUND_MS);
          expect(full.status).toMatchObject({ state: 'ok', mode: 'out_of_data_space' });
          expect(events.types().filter((t) => t === 'low-water')).toHaveLength(1);

          // Both reports came from dm events on the pool, read apart.
          const beforeResize = ds.poolEventStats();
          expect(beforeResize.deviceEvents).toBeGreaterThanOrEqual(2);
          expect(beforeResize.wakeups).toBeGreaterThanOrEqual(beforeResize.deviceEvents);

          // Growing the pool makes it writable again; resizePool resolves after the event.
          await ds.resizePool(256 * MiB);
          const writable = await events.waitFor('writable', 0);
          expect(writable.status).toMatchObject({ state: 'ok', mode: 'rw', dataTotalBlocks: 4096 });
          // The kernel signals the change of mode too (resizePool's own read may have been first).
          const deadline = Date.now() + EVENT_BOUND_MS;
          while (ds.poolEventStats().deviceEvents === beforeResize.deviceEvents && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
          expect(ds.poolEventStats().deviceEvents).toBeGreaterThan(beforeResize.deviceEvents);
          expect(events.types()).toEqual(['low-water', 'out-of-data-space', 'writable']);
        } finally {
          await events.stop();
          await fh?.close();
          await dm.removeDevice(thin);
          await dm.deleteDevice(ds.poolName, thinId);
        }
        expect(ds.poolEventStats().watching).toBe(false);
      },
      { options },
    );
  });

  test('read-only and back: every consumer sees it; the watch starts with the first and stops with the last, leaving no thread or fd', async () => {
    await withDeviceSet(async (ds) => {
      const st = await ds.status();
      const data = st.dataDevice as string;
      const meta = st.metadataDevice as string;
      const threads = threadCount();
      const fds = fdCount();
      expect(ds.poolEventStats().watching).toBe(false);

      const a = collectPoolEvents(ds);
      const heard: PoolEventType[] = [];
      const listener = (e: PoolEvent) => heard.push(e.type);
      ds.on('pool-event', listener);
      expect(ds.poolEventStats().watching).toBe(true);
      expect(threadCount()).toBe(threads + 1);
      expect(fdCount()).toBe(fds + 2); // the control device and the eventfd

      // The 1 GiB test pool is smaller than Docker's low-water mark (32768 blocks): reported at once.
      await a.waitFor('low-water', EVENT_BOUND_MS);
      const t0 = Date.now();
      await dm.reloadPool(ds.poolName, data, meta, { features: ['skip_block_zeroing', 'read_only'] });
      const ro = await a.waitFor('read-only', EVENT_BOUND_MS);
      expect(ro.at.getTime() - t0).toBeLessThan(EVENT_BOUND_MS);
      expect(ro.status).toMatchObject({ state: 'ok', mode: 'ro' });
      await dm.reloadPool(ds.poolName, data, meta);
      await a.waitFor('writable', EVENT_BOUND_MS);
      expect(heard).toEqual(['low-water', 'read-only', 'writable']);
      expect(a.types()).toEqual(heard);

      ds.off('pool-event', listener);
      expect(ds.poolEventStats().watching).toBe(true);
      await a.stop();
      expect(ds.poolEventStats().watching).toBe(false);
      expect(threadCount()).toBe(threads);
      expect(fdCount()).toBe(fds);

      // A new consumer starts a new watch; shutdown ends it and closes the watch.
      const b = collectPoolEvents(ds);
      expect(ds.poolEventStats().watching).toBe(true);
      await b.waitFor('low-water', EVENT_BOUND_MS);
      await ds.shutdown();
      await b.stop();
      expect(ds.poolEventStats().watching).toBe(false);
      expect(threadCount()).toBe(threads);
      // One fewer than while open: the root's lock file goes with the shutdown.
      expect(fdCount()).toBe(fds - 1);
      expect(() => ds.events()).toThrow(expect.objectContaining({ code: 'ERR_CLOSED' }));
      // A listener added after shutdown starts nothing.
      ds.on('pool-event', listener);
      expect(ds.poolEventStats().watching).toBe(false);
    }, { options: testOptions() });
  });

  test('watching a missing device is a typed ENXIO; the signal ends an iteration', async () => {
    expect(() => dm.watchDeviceEvents('devmapper-no-such-device', { onEvent: () => undefined })).toThrow(
      expect.objectContaining({ code: 'ENXIO', operation: 'event watch' }),
    );
    await withDeviceSet(async (ds) => {
      const ac = new AbortController();
      const it = ds.events({ signal: ac.signal });
      const pending = (async () => {
        for (;;) {
          const r = await it.next();
          if (r.done) return r;
        }
      })();
      ac.abort();
      await expect(pending).rejects.toMatchObject({ code: 'ABORT_ERR' });
      expect(ds.poolEventStats().watching).toBe(false);
    });
  });

  test('an open watch keeps no process alive: a child with one open in its main thread and in a worker exits by itself', async () => {
    await withDeviceSet(async (ds) => {
      const dist = join(__dirname, '..', '..', 'dist');
      const script = `
        const { Worker } = require('node:worker_threads');
        const { dm } = require(${JSON.stringify(dist)});
        const pool = ${JSON.stringify(ds.poolName)};
        const w = dm.watchDeviceEvents(pool, { onEvent() {} });
        const worker = new Worker(
          'const { dm } = require(' + JSON.stringify(${JSON.stringify(dist)}) + ');' +
          'const w = dm.watchDeviceEvents(' + JSON.stringify(pool) + ', { onEvent() {} });' +
          'require("node:worker_threads").parentPort.postMessage(w.active);',
          { eval: true },
        );
        worker.on('message', (active) => console.log('worker watching', active));
        worker.on('exit', (code) => console.log('worker exit', code, 'main watching', w.active));
      `;
      const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
        execFile(process.execPath, ['-e', script], { timeout: 90_000 }, (err, out, errOut) =>
          resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, stdout: out, stderr: errOut }),
        ),
      );
      // Killed at the timeout (code null) if the watches had kept it alive.
      expect(stderr).toBe('');
      expect(code).toBe(0);
      expect(stdout.trim().split('\n')).toEqual(['worker watching true', 'worker exit 0 main watching true']);
    });
  });
});
