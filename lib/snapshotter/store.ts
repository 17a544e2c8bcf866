/**
 * The Snapshotter's records in SQLite (better-sqlite3, synchronous): one row per snapshot,
 * its kind, parent, labels, times, and the state of the operation that owns it. WAL with
 * synchronous=FULL: a transaction that returned survives a power cut. Every check-and-change
 * is one synchronous transaction, so concurrent calls in this process cannot interleave
 * inside one (the DeviceSet's asynchronous steps happen between them, guarded by `state`).
 */
import Database from 'better-sqlite3';
import { DevmapperError, ErrorCodes } from '../errors';
import type { SnapshotKind } from './types';

/**
 * 'creating': prepare or view recorded its intent, the device may or may not exist yet;
 * 'ready': record and device agree; 'removing': remove recorded its intent, the device may
 * or may not be gone. Open rolls 'creating' back and 'removing' forward.
 */
export type RecordState = 'creating' | 'ready' | 'removing';

export interface SnapshotRecord {
  id: number;
  /** The key (active, view) or the committed name: one namespace, as containerd's. */
  name: string;
  kind: SnapshotKind;
  parentId: number | null;
  state: RecordState;
  createdMicros: number;
  updatedMicros: number;
  labels: Record<string, string>;
  /** Mapped bytes recorded at commit (committed snapshots only). */
  sizeBytes: number | null;
}

interface Row {
  id: number;
  name: string;
  kind: SnapshotKind;
  parent_id: number | null;
  state: RecordState;
  created_us: number;
  updated_us: number;
  labels: string;
  size_bytes: number | null;
}

const SCHEMA_VERSION = 1;

// AUTOINCREMENT: an id (and so a device hash) is never handed out twice, even after the
// highest row is removed, so a leftover device can never be mistaken for a new snapshot's.
const SCHEMA = `
CREATE TABLE IF NOT EXISTS snapshots (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  name TEXT NOT NULL UNIQUE,
  kind TEXT NOT NULL CHECK (kind IN ('active', 'view', 'committed')),
  parent_id INTEGER REFERENCES snapshots(id),
  state TEXT NOT NULL CHECK (state IN ('creating', 'ready', 'removing')),
  created_us INTEGER NOT NULL,
  updated_us INTEGER NOT NULL,
  labels TEXT NOT NULL,
  size_bytes INTEGER
);
CREATE INDEX IF NOT EXISTS snapshots_parent ON snapshots(parent_id);
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
`;

function fromRow(r: Row): SnapshotRecord {
  return {
    id: r.id,
    name: r.name,
    kind: r.kind,
    parentId: r.parent_id,
    state: r.state,
    createdMicros: r.created_us,
    updatedMicros: r.updated_us,
    labels: JSON.parse(r.labels) as Record<string, string>,
    sizeBytes: r.size_bytes,
  };
}

let lastMicros = 0;
/**
 * Wall-clock microseconds, strictly increasing in this process. performance.timeOrigin is
 * the wall clock at start with microsecond precision; Date.now() keeps milliseconds only,
 * which would make an update look older than a client's clock read just before it.
 */
export function nowMicros(): number {
  const t = Math.ceil((performance.timeOrigin + performance.now()) * 1000);
  lastMicros = Math.max(t, lastMicros + 1);
  return lastMicros;
}

export class SnapshotStore {
  private readonly db: Database.Database;

  constructor(readonly path: string) {
    try {
      this.db = new Database(path);
      this.db.pragma('journal_mode = WAL');
      this.db.pragma('synchronous = FULL');
      this.db.pragma('foreign_keys = ON');
      const version = this.db.pragma('user_version', { simple: true }) as number;
      if (version !== 0 && version !== SCHEMA_VERSION)
        throw new DevmapperError(`${path} has schema version ${version}; this library knows ${SCHEMA_VERSION}`, {
          code: ErrorCodes.METADATA_CORRUPT,
          device: path,
        });
      this.db.exec(SCHEMA);
      this.db.pragma(`user_version = ${SCHEMA_VERSION}`);
    } catch (err) {
      if (err instanceof DevmapperError) throw err;
      throw new DevmapperError(`cannot open the snapshot database ${path}: ${(err as Error).message}`, {
        code: ErrorCodes.METADATA_CORRUPT,
        device: path,
        cause: err,
      });
    }
  }

  /** Runs fn in one immediate transaction (all or nothing, durable when it returns). */
  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn).immediate();
  }

  byName(name: string): SnapshotRecord | null {
    const r = this.db.prepare('SELECT * FROM snapshots WHERE name = ?').get(name) as Row | undefined;
    return r ? fromRow(r) : null;
  }

  byId(id: number): SnapshotRecord | null {
    const r = this.db.prepare('SELECT * FROM snapshots WHERE id = ?').get(id) as Row | undefined;
    return r ? fromRow(r) : null;
  }

  all(): SnapshotRecord[] {
    return (this.db.prepare('SELECT * FROM snapshots ORDER BY id').all() as Row[]).map(fromRow);
  }

  childCount(id: number): number {
    return (this.db.prepare('SELECT count(*) AS n FROM snapshots WHERE parent_id = ?').get(id) as { n: number }).n;
  }

  insert(r: Omit<SnapshotRecord, 'id'>): number {
    const info = this.db
      .prepare(
        'INSERT INTO snapshots (name, kind, parent_id, state, created_us, updated_us, labels, size_bytes) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
      )
      .run(r.name, r.kind, r.parentId, r.state, r.createdMicros, r.updatedMicros, JSON.stringify(r.labels), r.sizeBytes);
    return Number(info.lastInsertRowid);
  }

  setState(id: number, state: RecordState): void {
    this.db.prepare('UPDATE snapshots SET state = ? WHERE id = ?').run(state, id);
  }

  /** Turns an active snapshot into a committed one under its new name. */
  commit(id: number, name: string, labels: Record<string, string>, sizeBytes: number, micros: number): void {
    this.db
      .prepare("UPDATE snapshots SET name = ?, kind = 'committed', labels = ?, size_bytes = ?, created_us = ?, updated_us = ? WHERE id = ?")
      .run(name, JSON.stringify(labels), sizeBytes, micros, micros, id);
  }

  setLabels(id: number, labels: Record<string, string>, micros: number): void {
    this.db.prepare('UPDATE snapshots SET labels = ?, updated_us = ? WHERE id = ?').run(JSON.stringify(labels), micros, id);
  }

  /** Forgets a row; its children (only ever from a repair at open) lose their parent. */
  delete(id: number): void {
    this.db.prepare('UPDATE snapshots SET parent_id = NULL WHERE parent_id = ?').run(id);
    this.db.prepare('DELETE FROM snapshots WHERE id = ?').run(id);
  }

  setting(key: string): string | null {
    const r = this.db.prepare('SELECT value FROM settings WHERE key = ?').get(key) as { value: string } | undefined;
    return r?.value ?? null;
  }

  setSetting(key: string, value: string): void {
    this.db.prepare('INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value').run(key, value);
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}
