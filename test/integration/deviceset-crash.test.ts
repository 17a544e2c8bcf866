/**
 * Crash safety (reliability row 8): a child process SIGKILLs itself at each named point of
 * a create or delete transaction; a new open must find the pool and the metadata agreeing.
 * Then random cycles of operations and crash points. DEVMAPPER_CRASH_CYCLES sets the count.
 */
import { join } from 'node:path';
import { dm } from '../../lib';
import { DeviceSet } from '../../lib/deviceset';
import { describeKernel } from '../helpers/kernel-env';
import { newRoot, readJson, runChild, testOptions, thinCheck } from '../helpers/deviceset';

const CREATE_POINTS = ['after-intent', 'after-create-thin', 'after-register', 'before-set-transaction-id', 'after-set-transaction-id'];
const DELETE_POINTS = ['after-intent', 'mid-delete', 'before-set-transaction-id', 'after-set-transaction-id'];
const ALL_POINTS = [...new Set([...CREATE_POINTS, ...DELETE_POINTS])];

/** The checks of row 8, on a freshly reopened DeviceSet. Returns the registered hashes. */
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

  test('random cycles of operations and crash points', async () => {
    const cycles = Number(process.env.DEVMAPPER_CRASH_CYCLES ?? '200');
    const seed = Number(process.env.DEVMAPPER_CRASH_SEED ?? Date.now() % 100000);
    process.stdout.write(`crash cycles: ${cycles}, seed ${seed}\n`);
    const rand = mulberry32(seed);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)];
    const root = await newRoot();
    const options = testOptions();
    await (await DeviceSet.open(root, { options })).shutdown();
    let hashes: string[] = [];
    let next = 0;
    let crashed = 0;
    // Each cycle is one new process: it opens the root (recovering what the previous one
    // left), checks that pool and metadata agree, then runs a few operations, often with a
    // crash point armed somewhere in them.
    for (let cycle = 0; cycle < cycles; cycle++) {
      const ops: object[] = [];
      let planned = [...hashes];
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
      const crash = rand() < 0.75 ? { point: pick(ALL_POINTS), after: 1 + Math.floor(rand() * ops.length) } : undefined;
      const child = await runChild({ root, options, ops, check: true }, crash);
      const report = child.result?.out?.[0] as { hashes: string[]; problems: string[] } | undefined;
      if (child.signal === 'SIGKILL') {
        crashed++;
        // Killed before it reported: the next cycle's check covers this one.
        if (!report) continue;
      } else if (!child.result?.ok) {
        throw new Error(`cycle ${cycle} (seed ${seed}): child failed: ${JSON.stringify(child.result)} ${child.stderr}`);
      }
      if (!report) throw new Error(`cycle ${cycle} (seed ${seed}): no check report`);
      expect({ cycle, seed, problems: report.problems }).toEqual({ cycle, seed, problems: [] });
      hashes = child.signal === 'SIGKILL' ? report.hashes : planned;
    }
    // The last cycle's outcome, checked by this process.
    const ds = await DeviceSet.open(root, { options });
    try {
      await checkConsistent(ds, root);
      for (const h of await ds.list()) await ds.deleteDevice(h);
    } finally {
      await ds.shutdown();
    }
    process.stdout.write(`crash cycles done: ${cycles} (${crashed} crashed)\n`);
    await thinCheck(join(root, 'devicemapper', 'metadata'));
  });
});
