/**
 * Running out of things, for real: a pool filled until it is out of data space, a pool
 * whose metadata device fills until the kernel makes it read-only, a metadata directory on a
 * full file system, and device ids across a restart.
 */
import { execFile } from 'node:child_process';
import { mkdir, open, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { dm, sys } from '../../lib';
import { DeviceSet } from '../../lib/deviceset';
import { describeKernel } from '../helpers/kernel-env';
import { newRoot, readJson, testOptions, typedTestOptions, withDeviceSet } from '../helpers/deviceset';

const MiB = 1024 * 1024;

async function poolStatus(pool: string): Promise<dm.ThinPoolStatusOk> {
  const st = await dm.getPoolStatus(pool);
  if (st.state !== 'ok') throw new Error(`pool ${pool}: status ${st.state}`);
  return st;
}

/** `dd` of zeros with O_DIRECT onto a block device: its exit, stderr and how long it took. */
function ddZeros(device: string, mib: number, seekMib = 0): Promise<{ ok: boolean; stderr: string; ms: number }> {
  const started = Date.now();
  return new Promise((resolve) =>
    execFile(
      'dd',
      ['if=/dev/zero', `of=${device}`, 'bs=1M', `count=${mib}`, `seek=${seekMib}`, 'oflag=direct', 'conv=notrunc'],
      { timeout: 120_000 },
      (err, _out, stderr) => resolve({ ok: !err, stderr, ms: Date.now() - started }),
    ),
  );
}

/** Writes 4 KiB every `stride` bytes, `count` times, then fsyncs. */
async function writeStride(device: string, count: number, stride: number): Promise<void> {
  const fh = await open(device, 'r+');
  const buf = Buffer.alloc(4096, 1);
  try {
    for (let i = 0; i < count; i++) await fh.write(buf, 0, buf.length, i * stride);
    await fh.sync();
  } finally {
    await fh.close().catch(() => undefined);
  }
}

/** Activates a registered device behind the DeviceSet, for raw block writes. */
async function activate(ds: DeviceSet, hash: string): Promise<string> {
  const meta = ds.getDeviceMetadata(hash)!;
  const name = ds.deviceName(hash);
  await dm.activateDevice(ds.poolName, name, meta.deviceId, meta.size);
  return name;
}

describeKernel('DeviceSet when things run out', () => {
  jest.setTimeout(600_000);

  test('a full pool reports out_of_data_space, a writer gets ENOSPC at once, removing a device frees blocks, growing brings rw back', async () => {
    await withDeviceSet(
      async (ds, root) => {
        // Thin over-provisioning: two devices of 256 MiB in a 160 MiB pool.
        await ds.addDevice('other', '', { size: 256 * MiB });
        await ds.addDevice('fill', '', { size: 256 * MiB });
        const other = await activate(ds, 'other');
        expect((await ddZeros(`/dev/mapper/${other}`, 32, 64)).ok).toBe(true);
        await dm.removeDevice(other);

        const fill = await activate(ds, 'fill');
        try {
          const dd = await ddZeros(`/dev/mapper/${fill}`, 256);
          // error_if_no_space: the writer fails with ENOSPC instead of hanging in the queue.
          expect(dd.ok).toBe(false);
          expect(dd.stderr).toMatch(/No space left on device/);
          expect(dd.ms).toBeLessThan(30_000);
          const st = await ds.status();
          expect(st.pool.state === 'ok' && st.pool.mode).toBe('out_of_data_space');
          expect(st.pool.state === 'ok' && st.pool.noSpacePolicy).toBe('error_if_no_space');
          // Nothing new on a full pool, and no trace of the attempt in the metadata.
          const files = (await readdir(join(root, 'metadata'))).sort();
          await expect(ds.addDevice('refused', '')).rejects.toMatchObject({ code: 'ERR_POOL_NOT_WRITABLE' });
          expect((await readdir(join(root, 'metadata'))).sort()).toEqual(files);
        } finally {
          await dm.removeDevice(fill);
        }
        // Removing another device still works on a full pool and returns its blocks.
        const usedFull = (await poolStatus(ds.poolName)).dataUsedBlocks;
        await ds.deleteDevice('other');
        expect(usedFull - (await poolStatus(ds.poolName)).dataUsedBlocks).toBeGreaterThanOrEqual((32 * MiB) / (64 * 1024));
        // Growing the pool brings it back to rw (the table keeps error_if_no_space).
        await ds.resizePool(512 * MiB);
        const st = await poolStatus(ds.poolName);
        expect(st.mode).toBe('rw');
        expect(st.noSpacePolicy).toBe('error_if_no_space');
        await ds.addDevice('after', '');
        for (const h of ['after', 'fill']) await ds.deleteDevice(h);
      },
      { options: typedTestOptions({ loopDataSize: '160M', minFreeSpace: 0, errorIfNoSpace: true, blkDiscard: false }) },
    );
  });

  test('queue_if_no_space (the default): a writer on a full pool waits in the queue, not failed, and finishes once the pool grows', async () => {
    await withDeviceSet(
      async (ds) => {
        await ds.addDevice('fill', '', { size: 256 * MiB });
        const fill = await activate(ds, 'fill');
        try {
          // 256 MiB into a 160 MiB pool: the writer runs out of space part way.
          const writer = ddZeros(`/dev/mapper/${fill}`, 256);
          let settled = false;
          void writer.then(() => (settled = true));
          const deadline = Date.now() + 120_000;
          let st = await poolStatus(ds.poolName);
          while (st.mode !== 'out_of_data_space' && Date.now() < deadline) {
            await new Promise((r) => setTimeout(r, 200));
            st = await poolStatus(ds.poolName);
          }
          expect(st.mode).toBe('out_of_data_space');
          expect(st.noSpacePolicy).toBe('queue_if_no_space');
          // Queued: the kernel holds the I/O (for up to its no_space_timeout), the writer has not failed.
          await new Promise((r) => setTimeout(r, 1000));
          expect(settled).toBe(false);
          // Growing the pool lets the queued I/O through: the writer completes, the pool is rw.
          await ds.resizePool(512 * MiB);
          const dd = await writer;
          expect(dd).toMatchObject({ ok: true });
          expect((await poolStatus(ds.poolName)).mode).toBe('rw');
        } finally {
          await dm.removeDevice(fill);
        }
        await ds.deleteDevice('fill');
      },
      { options: typedTestOptions({ loopDataSize: '160M', minFreeSpace: 0, blkDiscard: false }) },
    );
  });

  test('metadata exhausted by real copy-on-write: the kernel makes the pool read-only, status says so, changes are refused, the process goes on', async () => {
    await withDeviceSet(
      async (ds, root) => {
        // A device with mappings spread over many btree leaves, then snapshots of it each
        // written once per leaf: every write copies a leaf, so metadata goes fast.
        await ds.addDevice('a', '', { size: 4096 * MiB });
        const a = await activate(ds, 'a');
        try {
          await writeStride(`/dev/mapper/${a}`, 4096, 64 * 1024);
        } finally {
          await dm.removeDevice(a);
        }
        let writeFailure: unknown = null;
        let snapshots = 0;
        while (!writeFailure && snapshots < 40) {
          const hash = `s${snapshots++}`;
          await ds.addDevice(hash, 'a');
          const name = await activate(ds, hash);
          try {
            await writeStride(`/dev/mapper/${name}`, 32, 128 * 64 * 1024);
          } catch (err) {
            writeFailure = err;
          } finally {
            await dm.removeDevice(name);
          }
        }
        // The writer got an error, not a hang; the kernel switched the pool to read-only.
        expect(writeFailure).toMatchObject({ code: 'EIO' });
        const st = await ds.status();
        expect(st.pool.state === 'ok' && st.pool.mode).toBe('ro');
        expect(st.pool.state === 'ok' && st.pool.needsCheck).toBe(true);
        expect(st.warnings.some((w) => /needs_check/.test(w))).toBe(true);
        const files = (await readdir(join(root, 'metadata'))).sort();
        await expect(ds.addDevice('refused', '')).rejects.toMatchObject({ code: 'ERR_POOL_NOT_WRITABLE' });
        await expect(ds.deleteDevice('s0')).rejects.toMatchObject({ code: 'ERR_POOL_NOT_WRITABLE' });
        // Nothing was written for the refused changes, and the DeviceSet keeps answering.
        expect((await readdir(join(root, 'metadata'))).sort()).toEqual(files);
        expect(await ds.hasDevice('refused')).toBe(false);
        expect(await ds.hasDevice('s0')).toBe(true);
        expect((await ds.list()).length).toBe(snapshots + 1);
      },
      // 512 KiB of metadata (128 blocks): a few snapshots' worth.
      { options: typedTestOptions({ baseSize: '16M', loopDataSize: '4G', loopMetadataSize: '512K', minFreeSpace: 0, blkDiscard: false }) },
    );
  });

  test('the metadata directory on a full file system: typed ENOSPC, the pool transaction id unchanged, pool and metadata agree', async () => {
    const root = await newRoot();
    const metaDir = join(root, 'metadata');
    await mkdir(metaDir, { recursive: true, mode: 0o700 });
    // A tmpfs of 12 pages under the metadata directory: room for the set, the base and a few devices.
    await new Promise<void>((resolve, reject) =>
      execFile('mount', ['-t', 'tmpfs', '-o', 'size=48k,mode=0700', 'tmpfs', metaDir], (err, _o, stderr) => (err ? reject(new Error(stderr)) : resolve())),
    );
    try {
      const ds = await DeviceSet.open(root, { doInit: true, options: testOptions() });
      let failure: unknown = null;
      let created = 0;
      try {
        for (let i = 0; i < 64 && !failure; i++) {
          const tidBefore = (await poolStatus(ds.poolName)).transactionId;
          try {
            await ds.addDevice(`d${i}`, '');
            created++;
          } catch (err) {
            failure = err;
            // The failed operation left the pool's transaction where the metadata has it.
            const tx = await readJson(join(metaDir, 'transaction-metadata'));
            expect((await poolStatus(ds.poolName)).transactionId).toBe(tx.open_transaction_id);
            expect((await poolStatus(ds.poolName)).transactionId).toBe(tidBefore);
          }
        }
        expect(failure).toMatchObject({ code: 'ENOSPC' });
        expect(created).toBeGreaterThan(0);
        expect(await ds.hasDevice(`d${created}`)).toBe(false);
        // Every registered id is in the pool; the failed one is not.
        for (const h of ['', ...(await ds.list())])
          await expect(dm.createDevice(ds.poolName, ds.getDeviceMetadata(h)!.deviceId)).rejects.toMatchObject({ code: 'EEXIST' });
        // Space back: the same id can be created.
        await ds.deleteDevice('d0');
        await ds.addDevice(`d${created}`, '');
        for (const h of await ds.list()) await ds.deleteDevice(h);
      } finally {
        await ds.shutdown();
      }
    } finally {
      await sys.unmount(metaDir).catch(() => undefined);
      await rm(join(root, '..'), { recursive: true, force: true });
    }
  });

  test('device ids survive a restart: the next id goes on from where it was; ids already in the pool are skipped', async () => {
    const root = await newRoot();
    const options = testOptions();
    let ids: number[] = [];
    await withDeviceSet(
      async (ds) => {
        for (const h of ['a', 'b', 'c']) await ds.addDevice(h, '');
        ids = ['a', 'b', 'c'].map((h) => ds.getDeviceMetadata(h)!.deviceId);
        await ds.deleteDevice('b');
      },
      { root, options },
    );
    const saved = JSON.parse(await readFile(join(root, 'metadata', 'deviceset-metadata'), 'utf8'));
    // Docker's meaning: the last id handed out; the next allocation starts after it.
    expect(saved.next_device_id).toBeGreaterThanOrEqual(Math.max(...ids));
    await withDeviceSet(
      async (ds) => {
        // An id created behind the library's back is skipped, not fatal.
        const next = (saved.next_device_id as number) + 1;
        await dm.createDevice(ds.poolName, next);
        await ds.addDevice('d', '');
        const id = ds.getDeviceMetadata('d')!.deviceId;
        expect(id).toBe(next + 1);
        expect(ids).not.toContain(id);
        await dm.deleteDevice(ds.poolName, next);
        for (const h of await ds.list()) await ds.deleteDevice(h);
      },
      { root, options },
    );
    await rm(join(root, '..'), { recursive: true, force: true });
  });
});
