/**
 * Full pools with file-system writers: a `dd` into a file on a mounted ext4 or xfs device,
 * bigger than the pool, under queue_if_no_space and error_if_no_space, and (ext4) a pool whose
 * metadata runs out under the writer. Asserted: the writer never stays in uninterruptible
 * sleep (D in /proc/PID/stat) past the budget; it gets ENOSPC/EIO, or (queued) completes once
 * resizePool grows the pool; deleting a device frees blocks; the pool is rw after the resize;
 * the device unmounts and the set closes cleanly.
 *
 * DEVMAPPER_FULL_POOL_MATRIX=1 runs every file system with every policy; the default runs
 * ext4 with queue, xfs (dm.xfs_nospace_max_retries=0) with error, and the metadata case.
 */
import { execFile, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { dm } from '../../lib';
import type { DeviceSet } from '../../lib/deviceset';
import { kernelEnv, describeKernel } from '../helpers/kernel-env';
import { typedTestOptions, withDeviceSet } from '../helpers/deviceset';

const MiB = 1024 * 1024;
/** Longest a writer may stay in D, and longest any call of ours may take (the sandbox kernel is slow). */
const D_BUDGET_MS = 20_000;
const CALL_BUDGET_MS = 30_000;
const MATRIX = process.env.DEVMAPPER_FULL_POOL_MATRIX === '1';

/** The process's state letter from /proc/PID/stat (R, S, D, Z, ...), or null once it is gone. */
function procState(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name is in parentheses and may hold spaces: the state follows the last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  } catch {
    return null;
  }
}

interface Writer {
  child: ChildProcess;
  done: Promise<{ ok: boolean; stderr: string; ms: number }>;
  /** The longest unbroken run of D samples so far, in ms. */
  longestD(): number;
  stopSampling(): void;
}

/** dd of `mib` MiB into a file, fsync at the end, with its state sampled every 50 ms. */
function startWriter(file: string, mib: number): Writer {
  const started = Date.now();
  let resolveDone!: (v: { ok: boolean; stderr: string; ms: number }) => void;
  const done = new Promise<{ ok: boolean; stderr: string; ms: number }>((r) => (resolveDone = r));
  const child = execFile('dd', ['if=/dev/zero', `of=${file}`, 'bs=1M', `count=${mib}`, 'conv=fsync'], { timeout: 300_000 }, (err, _o, stderr) =>
    resolveDone({ ok: !err, stderr, ms: Date.now() - started }),
  );
  let dSince: number | null = null;
  let longest = 0;
  const timer = setInterval(() => {
    const s = child.pid === undefined ? null : procState(child.pid);
    const now = Date.now();
    if (s === 'D') {
      dSince ??= now;
      longest = Math.max(longest, now - dSince);
    } else dSince = null;
  }, 50);
  void done.finally(() => clearInterval(timer));
  return { child, done, longestD: () => longest, stopSampling: () => clearInterval(timer) };
}

async function poolStatus(ds: DeviceSet): Promise<dm.ThinPoolStatusOk> {
  const st = await dm.getPoolStatus(ds.poolName);
  if (st.state !== 'ok') throw new Error(`pool ${ds.poolName}: status ${st.state}`);
  return st;
}

async function waitForMode(ds: DeviceSet, modes: string[], ms: number, stopEarly: () => boolean): Promise<string> {
  const deadline = Date.now() + ms;
  let st = await poolStatus(ds);
  while (!modes.includes(st.mode) && !stopEarly() && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
    st = await poolStatus(ds);
  }
  return st.mode;
}

/** A call of the library that must return within the budget. */
async function bounded<T>(what: string, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const started = Date.now();
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} did not return within ${CALL_BUDGET_MS} ms`)), CALL_BUDGET_MS);
      }),
    ]);
  } finally {
    clearTimeout(timer);
    expect({ what, ms: Date.now() - started < CALL_BUDGET_MS }).toEqual({ what, ms: true });
  }
}

type Fs = 'ext4' | 'xfs';
type Policy = 'queue' | 'error';

function options(fs: Fs, policy: Policy) {
  return typedTestOptions({
    fs,
    baseSize: fs === 'xfs' ? '320M' : '64M',
    loopDataSize: '128M',
    minFreeSpace: 0,
    blkDiscard: false,
    errorIfNoSpace: policy === 'error',
    ...(fs === 'xfs' ? { xfsNospaceMaxRetries: 0 } : {}),
  });
}

const CASES: [Fs, Policy][] = MATRIX
  ? [
      ['ext4', 'queue'],
      ['ext4', 'error'],
      ['xfs', 'queue'],
      ['xfs', 'error'],
    ]
  : [
      ['ext4', 'queue'],
      ['xfs', 'error'],
    ];

describeKernel(`Full pools with file-system writers (udev ${kernelEnv().udev})`, () => {
  jest.setTimeout(600_000);

  test.each(CASES)('data full, %s, %s_if_no_space: no D past the budget, ENOSPC or done after resize, delete frees, rw again', async (fs, policy) => {
    await withDeviceSet(
      async (ds, root) => {
        // Another device with 16 MiB written, to delete on the full pool.
        await ds.addDevice('other', '');
        const mntOther = join(root, '..', 'other');
        await mkdir(mntOther);
        await ds.mountDevice('other', mntOther);
        const warm = startWriter(join(mntOther, 'f'), 16);
        expect((await warm.done).ok).toBe(true);
        await ds.unmountDevice('other', mntOther);

        // The writer's device is bigger than the pool: the pool runs out first.
        await ds.addDevice('fill', '', { size: fs === 'xfs' ? 320 * MiB : 256 * MiB });
        const mnt = join(root, '..', 'fill');
        await mkdir(mnt);
        await ds.mountDevice('fill', mnt);
        const writer = startWriter(join(mnt, 'big'), 200);
        let finished = false;
        void writer.done.then(() => (finished = true));
        const mode = await waitForMode(ds, ['out_of_data_space'], 120_000, () => finished);
        expect(mode).toBe('out_of_data_space');
        const st = await ds.status();
        expect(st.pool.state === 'ok' && st.pool.noSpacePolicy).toBe(`${policy}_if_no_space`);

        let result: { ok: boolean; stderr: string; ms: number };
        if (policy === 'error') {
          // The writer fails on its own, within the budget.
          result = await writer.done;
          expect(result.ok).toBe(false);
          expect(result.stderr).toMatch(/No space left on device|Input\/output error/);
          // Delete frees blocks on a full pool.
          const used = (await poolStatus(ds)).dataUsedBlocks;
          await bounded('delete', ds.deleteDevice('other'));
          expect(used - (await poolStatus(ds)).dataUsedBlocks).toBeGreaterThan(0);
          await bounded('resizePool', ds.resizePool(512 * MiB));
        } else {
          // Queued, not failed: still running a second later.
          await new Promise((r) => setTimeout(r, 1000));
          expect(finished).toBe(false);
          const used = (await poolStatus(ds)).dataUsedBlocks;
          await bounded('delete', ds.deleteDevice('other'));
          expect(used - (await poolStatus(ds)).dataUsedBlocks).toBeGreaterThan(0);
          // Growing the pool lets the queued writes through: the writer completes.
          await bounded('resizePool', ds.resizePool(512 * MiB));
          result = await writer.done;
          expect(result).toMatchObject({ ok: true });
        }
        expect(writer.longestD()).toBeLessThan(D_BUDGET_MS);
        expect((await poolStatus(ds)).mode).toBe('rw');
        await bounded('unmount', ds.unmountDevice('fill', mnt));
        await bounded('delete', ds.deleteDevice('fill'));
        process.stdout.write(`full-pool-writers ${JSON.stringify({ fs, policy, writerOk: result.ok, writerMs: result.ms, longestDMs: writer.longestD(), stderr: result.stderr.split('\n')[0] })}\n`);
      },
      { options: options(fs, policy) },
    );
  });

  test('metadata full under an ext4 writer: the writer gets EIO, no D past the budget, the pool is read-only, changes refused, unmount and close clean', async () => {
    await withDeviceSet(
      async (ds, root) => {
        await ds.addDevice('fill', '', { size: 1024 * MiB });
        const mnt = join(root, '..', 'fill');
        await mkdir(mnt);
        await ds.mountDevice('fill', mnt);
        // Each new 64 KiB block is a mapping in the metadata. 192 KiB is 48 metadata blocks: even
        // full leaves (254 mappings of 4 KiB nodes) in all of them would hold 760 MiB of data,
        // and the base, the space maps and the btrees' inner nodes take their share first.
        const writer = startWriter(join(mnt, 'big'), 760);
        const result = await writer.done;
        expect(result.ok).toBe(false);
        expect(result.stderr).toMatch(/Input\/output error|No space left on device|Read-only file system/);
        expect(writer.longestD()).toBeLessThan(D_BUDGET_MS);
        const st = await ds.status();
        expect(st.pool.state === 'ok' && st.pool.mode).toBe('ro');
        // No way back without repair: the library grows data only, and a full metadata device
        // leaves needs_check (thin_check offline) in any case.
        await expect(bounded('create', ds.addDevice('refused', ''))).rejects.toMatchObject({ code: 'ERR_POOL_NOT_WRITABLE' });
        await bounded('unmount', ds.unmountDevice('fill', mnt));
        await expect(bounded('delete', ds.deleteDevice('fill'))).rejects.toMatchObject({ code: 'ERR_POOL_NOT_WRITABLE' });
        process.stdout.write(
          `full-pool-writers ${JSON.stringify({ fs: 'ext4', metadataFull: true, writerMs: result.ms, longestDMs: writer.longestD(), needsCheck: st.pool.state === 'ok' && st.pool.needsCheck, stderr: result.stderr.trim().split('\n')[0] })}\n`,
        );
      },
      { options: typedTestOptions({ loopDataSize: '1G', loopMetadataSize: '192K', minFreeSpace: 0, blkDiscard: false }) },
    );
  });
});
