/**
 * The Snapshotter's model logic without a kernel: containerd's filter syntax for walk, the
 * update rules for labels, label limits, the SQLite store's durability settings and id rules,
 * and the gRPC status each error kind maps to.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import Database from 'better-sqlite3';
import { DevmapperError, ErrorCodes } from '../../lib';
import { parseFilters } from '../../lib/snapshotter/filters';
import { grpcStatusOf } from '../../lib/snapshotter/grpc-errors';
import { checkLabels, snapshotExists, snapshotNotFound, snapshotPrecondition } from '../../lib/snapshotter/snapshot-errors';
import { nowMicros, SnapshotStore } from '../../lib/snapshotter/store';
import type { SnapshotInfo } from '../../lib/snapshotter/types';
import { updatedLabels } from '../../lib/snapshotter/update';

function info(name: string, kind: SnapshotInfo['kind'], parent = '', labels: Record<string, string> = {}): SnapshotInfo {
  return { name, kind, parent, labels, created: new Date(0), updated: new Date(0), createdMicros: 0, updatedMicros: 0 };
}

const all = [
  info('ns/1/a b', 'active', 'base', { 'containerd.io/gc.root': 'x', tier: 'one' }),
  info('base', 'committed', '', { tier: 'zero' }),
  info('v', 'view', 'base'),
];
const names = (filters: string[]) => all.filter(parseFilters(filters)).map((i) => i.name);

describe('walk filters', () => {
  test('no filter, or only empty ones, match everything', () => {
    expect(names([])).toEqual(['ns/1/a b', 'base', 'v']);
    expect(names(['', '  '])).toEqual(['ns/1/a b', 'base', 'v']);
  });
  test('==, != and ~= on name, parent and kind', () => {
    expect(names(['kind==committed'])).toEqual(['base']);
    expect(names(['kind!=committed'])).toEqual(['ns/1/a b', 'v']);
    expect(names(['parent==base'])).toEqual(['ns/1/a b', 'v']);
    expect(names(['name~=^ns/'])).toEqual(['ns/1/a b']);
    expect(names(['name~=/^v$/'])).toEqual(['v']);
    expect(names(['name=="ns/1/a b"'])).toEqual(['ns/1/a b']);
  });
  test('labels by key, quoted keys, presence', () => {
    expect(names(['labels."containerd.io/gc.root"==x'])).toEqual(['ns/1/a b']);
    expect(names(['labels.tier'])).toEqual(['ns/1/a b', 'base']);
    expect(names(['labels.tier==zero'])).toEqual(['base']);
  });
  test("',' is and, the list is or", () => {
    expect(names(['kind==active,labels.tier==one'])).toEqual(['ns/1/a b']);
    expect(names(['kind==active,labels.tier==zero'])).toEqual([]);
    expect(names(['kind==view', 'kind==committed'])).toEqual(['base', 'v']);
  });
  test('a filter that does not parse is refused, naming the problem', () => {
    for (const bad of ['==x', 'name==', 'name~=(', 'labels."unclosed==x', 'name==a b'])
      expect(() => parseFilters([bad])).toThrow(expect.objectContaining({ code: ErrorCodes.INVALID_ARGUMENT, argument: 'filters' }));
  });
});

describe('update rules', () => {
  const current = { a: '1', b: '2' };
  test('without field paths, or with labels, the given labels replace all', () => {
    expect(updatedLabels(current, { c: '3' })).toEqual({ c: '3' });
    expect(updatedLabels(current, { c: '3' }, ['labels'])).toEqual({ c: '3' });
  });
  test('labels.KEY sets or removes one label', () => {
    expect(updatedLabels(current, { a: 'x', c: '3' }, ['labels.a'])).toEqual({ a: 'x', b: '2' });
    expect(updatedLabels(current, {}, ['labels.b'])).toEqual({ a: '1' });
  });
  test('other field paths are refused', () => {
    for (const p of ['name', 'parent', 'kind', 'labels.'])
      expect(() => updatedLabels(current, {}, [p])).toThrow(expect.objectContaining({ code: ErrorCodes.INVALID_ARGUMENT, argument: 'fieldPaths' }));
  });
  test('labels must be strings and within 4096 bytes', () => {
    expect(() => checkLabels({ a: 1 })).toThrow(expect.objectContaining({ argument: 'labels.a' }));
    expect(() => checkLabels({ k: 'v'.repeat(4096) })).toThrow(expect.objectContaining({ code: ErrorCodes.INVALID_ARGUMENT }));
    expect(checkLabels({ k: 'v'.repeat(4095) })).toEqual({ k: 'v'.repeat(4095) });
  });
});

describe('SnapshotStore', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'snapstore-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));
  const row = (name: string) => ({ name, kind: 'active' as const, parentId: null, state: 'ready' as const, createdMicros: 1, updatedMicros: 1, labels: {}, sizeBytes: null });

  test('WAL with synchronous=FULL, and rows survive a reopen', () => {
    const path = join(dir, 's.db');
    const s = new SnapshotStore(path);
    s.transaction(() => s.insert(row('k')));
    s.close();
    const db = new Database(path);
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    db.close();
    const again = new SnapshotStore(path);
    expect(again.byName('k')).toMatchObject({ name: 'k', kind: 'active', state: 'ready' });
    again.close();
  });
  test('full sync is set on the store connection', () => {
    const s = new SnapshotStore(join(dir, 's.db'));
    // 2 = FULL
    expect((s as unknown as { db: Database.Database }).db.pragma('synchronous', { simple: true })).toBe(2);
    s.close();
  });
  test('ids are never reused, so a leftover device hash cannot name a new snapshot', () => {
    const s = new SnapshotStore(join(dir, 's.db'));
    const a = s.transaction(() => s.insert(row('a')));
    s.transaction(() => s.delete(a));
    const b = s.transaction(() => s.insert(row('b')));
    expect(b).toBeGreaterThan(a);
    s.close();
  });
  test('a failed transaction changes nothing; names are unique', () => {
    const s = new SnapshotStore(join(dir, 's.db'));
    s.transaction(() => s.insert(row('a')));
    expect(() =>
      s.transaction(() => {
        s.insert(row('b'));
        s.insert(row('a'));
      }),
    ).toThrow();
    expect(s.byName('b')).toBeNull();
    s.close();
  });
  test('a database of an unknown schema version is refused as corrupt', () => {
    const path = join(dir, 's.db');
    const db = new Database(path);
    db.pragma('user_version = 99');
    db.close();
    expect(() => new SnapshotStore(path)).toThrow(expect.objectContaining({ code: ErrorCodes.METADATA_CORRUPT }));
  });
  test('nowMicros is strictly increasing and close to the wall clock', () => {
    const a = nowMicros();
    const b = nowMicros();
    expect(b).toBeGreaterThan(a);
    expect(Math.abs(a / 1000 - Date.now())).toBeLessThan(50);
  });
});

describe('error kinds', () => {
  test('each maps to containerd error kind over gRPC', () => {
    expect(grpcStatusOf(snapshotNotFound('snapshot', 'k'))).toBe(status.NOT_FOUND);
    expect(grpcStatusOf(snapshotExists('k'))).toBe(status.ALREADY_EXISTS);
    expect(grpcStatusOf(snapshotPrecondition('k', 'has children'))).toBe(status.FAILED_PRECONDITION);
    expect(grpcStatusOf(new DevmapperError('x', { code: ErrorCodes.INVALID_ARGUMENT }))).toBe(status.INVALID_ARGUMENT);
    expect(grpcStatusOf(new Error('plain'))).toBe(status.UNKNOWN);
  });
  test('they name the key', () => {
    expect(snapshotNotFound('parent snapshot', 'ns/1/x y')).toMatchObject({ code: ErrorCodes.SNAPSHOT_NOT_FOUND, device: 'ns/1/x y', message: 'parent snapshot "ns/1/x y" does not exist' });
  });
});
