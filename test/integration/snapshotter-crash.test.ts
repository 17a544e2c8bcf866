/**
 * Crash safety across the Snapshotter's two stores: a child process SIGKILLs itself at each
 * step of prepare, commit and remove; a new open must leave the SQLite records and the
 * DeviceSet's devices agreeing (a device for every record, a record for every snap-<id>
 * device), active snapshots with active devices and committed ones inactive, the operation
 * either wholly done or wholly undone, and the pool's metadata clean under thin_check.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { dm } from '../../lib';
import { Snapshotter } from '../../lib/snapshotter';
import { newRoot, testOptions, thinCheck } from '../helpers/deviceset';
import { describeKernel } from '../helpers/kernel-env';

const CHILD = join(__dirname, '..', 'fixtures', 'snapshotter-child.js');

function runChild(spec: object): Promise<{ signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CHILD, JSON.stringify(spec)], { timeout: 120_000 }, (err, stdout, stderr) => {
      resolve({ signal: (err as { signal?: NodeJS.Signals } | null)?.signal ?? null, stdout, stderr });
    });
  });
}

/** The records as the database holds them, read with a connection of the test's own. */
function records(root: string): { id: number; name: string; kind: string; state: string }[] {
  const db = new Database(join(root, 'snapshotter', 'snapshots.db'), { readonly: true });
  try {
    return db.prepare('SELECT id, name, kind, state FROM snapshots ORDER BY id').all() as { id: number; name: string; kind: string; state: string }[];
  } finally {
    db.close();
  }
}

/** Both stores agree; returns the names of the snapshots. */
async function checkAgree(sn: Snapshotter, root: string): Promise<string[]> {
  const rows = records(root);
  expect(rows.filter((r) => r.state !== 'ready')).toEqual([]);
  const devices = (await sn.deviceSet.list()).filter((h) => /^snap-\d+$/.test(h)).sort();
  expect(devices).toEqual(rows.map((r) => `snap-${r.id}`).sort());
  for (const r of rows) {
    const info = await dm.getInfo(sn.deviceSet.deviceName(`snap-${r.id}`));
    expect([r.name, info !== null]).toEqual([r.name, r.kind !== 'committed']);
  }
  return rows.map((r) => r.name);
}

const CASES: [string, object, string[]][] = [
  // [point, op, names expected after reopen besides 'base' and 'victim' (or without them)]
  ['prepare-after-intent', { op: 'prepare', key: 'new', parent: 'base' }, ['base', 'victim']],
  ['prepare-after-device', { op: 'prepare', key: 'new', parent: 'base' }, ['base', 'victim']],
  ['prepare-after-activate', { op: 'view', key: 'new', parent: 'base' }, ['base', 'victim']],
  ['commit-after-deactivate', { op: 'commit', name: 'done', key: 'victim' }, ['base', 'victim']],
  ['commit-after-record', { op: 'commit', name: 'done', key: 'victim' }, ['base', 'done']],
  ['remove-after-intent', { op: 'remove', key: 'victim' }, ['base']],
  ['remove-after-delete', { op: 'remove', key: 'victim' }, ['base']],
];

describeKernel('Snapshotter crash safety', () => {
  jest.setTimeout(300_000);
  // One root for every case (a fresh pool per case costs a base mkfs each): each case starts
  // from the same state, a committed 'base' and an active 'victim' of it, and puts it back.
  const options = testOptions();
  let root = '';

  beforeAll(async () => {
    root = await newRoot();
    const sn = await Snapshotter.open(root, { options });
    await sn.prepare('base-key', '');
    await sn.commit('base', 'base-key');
    await sn.prepare('victim', 'base');
    await sn.close();
  });

  test.each(CASES)('SIGKILL at %s: reopen finds the stores agreeing', async (point, op, expected) => {
    const child = await runChild({ root, options, point, op });
    expect([child.signal, child.stdout]).toEqual(['SIGKILL', '']);

    const sn = await Snapshotter.open(root, { options });
    try {
      expect((await checkAgree(sn, root)).sort()).toEqual([...expected].sort());
      // What was interrupted can be done again; then the starting state is put back.
      const o = op as { op: string; key: string; name?: string; parent?: string };
      if (o.op === 'prepare' || o.op === 'view') {
        await sn.prepare(o.key, o.parent);
        await checkAgree(sn, root);
        await sn.remove(o.key);
      } else if (o.op === 'commit') {
        if (expected.includes('victim')) await sn.commit(o.name!, o.key);
        await checkAgree(sn, root);
        await sn.remove(o.name!);
        await sn.prepare('victim', 'base');
      } else {
        await sn.prepare(o.key, 'base');
      }
      expect((await checkAgree(sn, root)).sort()).toEqual(['base', 'victim']);
    } finally {
      await sn.close();
    }
    await thinCheck(join(root, 'devicemapper', 'metadata'));
  });
});
