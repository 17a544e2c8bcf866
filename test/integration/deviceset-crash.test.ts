/**
 * Crash safety: a child process SIGKILLs itself at each named point of
 * a create or delete transaction; a new open must find the pool and the metadata agreeing.
 * Then random cycles of operations and crash points. DEVMAPPER_CRASH_CYCLES sets the count:
 * 16 by default (`npm test`), 200 in `npm run test:soak`.
 */
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { dm } from '../../lib';
import { DeviceSet } from '../../lib/deviceset';
import { describeKernel } from '../helpers/kernel-env';
import { newRoot, readJson, runChild, testOptions, thinCheck } from '../helpers/deviceset';

const CREATE_POINTS = ['after-intent', 'after-register', 'after-create-thin', 'before-set-transaction-id', 'after-set-transaction-id'];
const DELETE_POINTS = ['after-intent', 'mid-delete', 'before-set-transaction-id', 'after-set-transaction-id'];
const ALL_POINTS = [...new Set([...CREATE_POINTS, ...DELETE_POINTS])];
const CYCLES = Number(process.env.DEVMAPPER_CRASH_CYCLES ?? '16');

/** Pool and metadata agree, on a freshly reopened DeviceSet. Returns the registered hashes. */
async function checkConsistent(ds: DeviceSet, root: string): Promise<string[]> {
  const pool = ds.poolName;
  const hashes = ['', ...(await ds.list())];
  const ids = new Set<number>();
  for (const h of hashes) {
    const meta = ds.getDeviceMetadata(h);
    expect(meta).not.toBeNull();
    ids.add(meta!.deviceId);
    // Every registered id exists in the pool.
    await expect(dm.createDevice(pool, meta!.deviceId)).rejects.toMatchObject({ code: 'EEXIST' });
  }
  const tx = await readJson(join(root, 'metadata', 'transaction-metadata'));
  const status = await dm.getPoolStatus(pool);
  // The pool's transaction id equals the metadata's.
  expect(status.state === 'ok' && status.transactionId).toBe(tx.open_transaction_id);
  // The id of the last transaction is in the pool exactly when it is registered.
  const txId = tx.device_id as number;
  if (!ids.has(txId)) {
    await dm.createDevice(pool, txId);
    await dm.deleteDevice(pool, txId);
  }
  return hashes.filter((h) => h !== '');
}

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describeKernel('DeviceSet crash safety', () => {
  jest.setTimeout(1_800_000);

  test.each([
    ...CREATE_POINTS.map((p) => ['create', p] as const),
    ...DELETE_POINTS.map((p) => ['delete', p] as const),
  ])('SIGKILL during %s at %s: reopen finds pool and metadata agreeing', async (kind, point) => {
    const root = await newRoot();
    const options = testOptions();
    let ds = await DeviceSet.open(root, { options });
    await ds.addDevice('image', '');
    await ds.shutdown();

    const op = kind === 'create' ? { op: 'add', hash: 'victim', base: 'image' } : { op: 'delete', hash: 'image' };
    const child = await runChild({ root, options, ops: [op] }, { point });
    expect(child.signal).toBe('SIGKILL');

    ds = await DeviceSet.open(root, { options });
    try {
      const hashes = await checkConsistent(ds, root);
      // The same id (hash) can be created again when it is gone.
      const again = kind === 'create' ? 'victim' : 'image';
      if (!hashes.includes(again)) await ds.addDevice(again, kind === 'create' ? 'image' : '');
      for (const h of (await ds.list()).reverse()) await ds.deleteDevice(h);
    } finally {
      await ds.shutdown();
    }
    await thinCheck(join(root, 'devicemapper', 'metadata'));
  });

  // A create writes its intent and its device file before one directory fsync; a power cut
  // there may keep the device file alone (the transaction file still the committed one).
  test('a device file of a transaction the pool never committed, without the intent naming it, is dropped at open', async () => {
    const root = await newRoot();
    const options = testOptions();
    let ds = await DeviceSet.open(root, { options });
    await ds.addDevice('image', '');
    const committed = (await dm.getPoolStatus(ds.poolName)) as dm.ThinPoolStatusOk;
    await ds.shutdown();
    const tx = await readJson(join(root, 'metadata', 'transaction-metadata'));
    expect(tx.open_transaction_id).toBe(committed.transactionId);
    const ghost = { device_id: 40, size: 64 << 20, transaction_id: committed.transactionId + 1, initialized: false, deleted: false };
    await writeFile(join(root, 'metadata', 'ghost'), JSON.stringify(ghost), { mode: 0o600 });
    ds = await DeviceSet.open(root, { options });
    try {
      expect(await ds.list()).toEqual(['image']);
      expect(existsSync(join(root, 'metadata', 'ghost'))).toBe(false);
      await checkConsistent(ds, root);
      // Its name and id are free again.
      await ds.addDevice('ghost', 'image');
      await ds.deleteDevice('ghost');
      await ds.deleteDevice('image');
    } finally {
      await ds.shutdown();
    }
  });

  test(`random cycles of operations and crash points (${CYCLES})`, async () => {
    const cycles = CYCLES;
    const seed = Number(process.env.DEVMAPPER_CRASH_SEED ?? Date.now() % 100000);
    process.stdout.write(`crash cycles: ${cycles}, seed ${seed}\n`);
    const rand = mulberry32(seed);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)];
    const root = await newRoot();
    const options = testOptions();
    await (await DeviceSet.open(root, { options })).shutdown();
    let hashes: string[] = [];
    let next = 0;
    let done = 0;
    let crashed = 0;
    let starts = 0;
    // Each cycle opens the root (recovering what a killed predecessor left), checks that pool
    // and metadata agree, then runs a few operations, usually with a crash point armed. A
    // child process runs cycles one after another until one kills it, so a process start is
    // paid per crash, not per cycle; the cycles after the crash are planned again.
    while (done < cycles) {
      const batch: { ops: object[]; crash: { point: string; after: number } | null }[] = [];
      const plannedAfter: string[][] = [];
      let planned = [...hashes];
      for (let c = 0; c < Math.min(8, cycles - done); c++) {
        const ops: object[] = [];
        for (let k = 0, n = 1 + Math.floor(rand() * 3); k < n; k++) {
          if (planned.length > 0 && rand() < 0.4) {
            const h = pick(planned);
            planned = planned.filter((x) => x !== h);
            ops.push({ op: 'delete', hash: h, optional: true });
          } else {
            const h = `d${next++}`;
            ops.push({ op: 'add', hash: h, base: '' });
            planned.push(h);
          }
        }
        const crash = rand() < 0.75 ? { point: pick(ALL_POINTS), after: 1 + Math.floor(rand() * ops.length) } : null;
        batch.push({ ops, crash });
        plannedAfter.push([...planned]);
      }
      const child = await runChild({ root, options, cycles: batch });
      starts++;
      const reports = child.lines.filter((l) => 'cycle' in l) as { cycle: number; hashes: string[]; problems: string[] }[];
      if (reports.length === 0) throw new Error(`cycle ${done} (seed ${seed}): no check report: ${JSON.stringify(child.result)} ${child.stderr}`);
      for (const r of reports) expect({ cycle: done + r.cycle, seed, problems: r.problems }).toEqual({ cycle: done + r.cycle, seed, problems: [] });
      done += reports.length;
      if (child.signal === 'SIGKILL') {
        crashed++;
        // The killed cycle's operations may or may not have happened: plan with all of its
        // names (deletes are optional, adds always use new names).
        hashes = [...new Set([...plannedAfter[reports.length - 1], ...reports[reports.length - 1].hashes])];
      } else if (!child.result?.ok) {
        throw new Error(`cycle ${done} (seed ${seed}): child failed: ${JSON.stringify(child.result)} ${child.stderr}`);
      } else {
        hashes = plannedAfter[plannedAfter.length - 1];
      }
    }
    // The last cycle's outcome, checked by this process.
    const ds = await DeviceSet.open(root, { options });
    try {
      await checkConsistent(ds, root);
      for (const h of await ds.list()) await ds.deleteDevice(h);
    } finally {
      await ds.shutdown();
    }
    process.stdout.write(`crash cycles done: ${done} (${crashed} crashed, ${starts} processes)\n`);
    await thinCheck(join(root, 'devicemapper', 'metadata'));
  }, Math.max(1_800_000, CYCLES * 30_000));
});
