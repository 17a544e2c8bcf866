/**
 * Image records: name → manifest, config, platform and chain IDs, in SQLite beside the
 * Snapshotter's database (root/images/images.db, WAL, synchronous=FULL). A record is written
 * only once its top layer is committed, and removed before its layers are, so a record
 * always names snapshots that exist (a crash in between leaves layers no record names: the
 * next import of that image reuses them, and images.remove's pruning removes them).
 * Each call opens the database and closes it: there is no handle to forget to close.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { DevmapperError, ErrorCodes } from '../errors';

/** What images.import records and images.list returns for an image. */
export interface ImageRecord {
  /** The name it was imported under. */
  name: string;
  /** 'oci' (an image layout) or 'docker' (docker save's manifest.json). */
  format: 'oci' | 'docker';
  /** The manifest's digest; null for docker save's manifest.json, which has no manifest blob. */
  manifestDigest: string | null;
  /** The config blob's digest (Docker's image ID). */
  configDigest: string;
  /** The config's os/architecture[/variant]. */
  platform: string;
  /** The layers' diff IDs, bottom first. */
  diffIds: string[];
  /** The chain IDs, bottom first: each is a committed snapshot's name; the last is the image's top. */
  chainIds: string[];
  /** The image's config (Cmd, Env, WorkingDir, ... as the source had them). */
  config: Record<string, unknown>;
  /** When it was imported. */
  created: Date;
}

interface Row {
  name: string;
  format: 'oci' | 'docker';
  manifest_digest: string | null;
  config_digest: string;
  platform: string;
  diff_ids: string;
  chain_ids: string;
  config: string;
  created_ms: number;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS images (
  name TEXT PRIMARY KEY,
  format TEXT NOT NULL CHECK (format IN ('oci', 'docker')),
  manifest_digest TEXT,
  config_digest TEXT NOT NULL,
  platform TEXT NOT NULL,
  diff_ids TEXT NOT NULL,
  chain_ids TEXT NOT NULL,
  config TEXT NOT NULL,
  created_ms INTEGER NOT NULL
);
`;

export const IMAGES_DATABASE = join('images', 'images.db');

function fromRow(r: Row): ImageRecord {
  return {
    name: r.name,
    format: r.format,
    manifestDigest: r.manifest_digest,
    configDigest: r.config_digest,
    platform: r.platform,
    diffIds: JSON.parse(r.diff_ids) as string[],
    chainIds: JSON.parse(r.chain_ids) as string[],
    config: JSON.parse(r.config) as Record<string, unknown>,
    created: new Date(r.created_ms),
  };
}

export class ImageRecords {
  // Private so that the published declarations name no better-sqlite3 type: a TypeScript
  // user of the package does not have @types/better-sqlite3.
  private constructor(private readonly db: Database.Database) {}

  /** Runs fn on the open records database of root, closed after whatever happens. */
  static async open<T>(root: string, fn: (db: ImageRecords) => T): Promise<T> {
    await mkdir(join(root, 'images'), { recursive: true, mode: 0o700 });
    const path = join(root, IMAGES_DATABASE);
    let db: Database.Database;
    try {
      db = new Database(path);
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = FULL');
      db.exec(SCHEMA);
    } catch (err) {
      throw new DevmapperError(`cannot open the image database ${path}: ${(err as Error).message}`, { code: ErrorCodes.METADATA_CORRUPT, device: path, cause: err });
    }
    try {
      return fn(new ImageRecords(db));
    } finally {
      db.close();
    }
  }

  get(name: string): ImageRecord | null {
    const r = this.db.prepare('SELECT * FROM images WHERE name = ?').get(name) as Row | undefined;
    return r ? fromRow(r) : null;
  }

  all(): ImageRecord[] {
    return (this.db.prepare('SELECT * FROM images ORDER BY name').all() as Row[]).map(fromRow);
  }

  /** Writes (or replaces) the record of r.name. */
  put(r: ImageRecord): void {
    this.db
      .prepare(
        `INSERT INTO images (name, format, manifest_digest, config_digest, platform, diff_ids, chain_ids, config, created_ms)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT(name) DO UPDATE SET format = excluded.format, manifest_digest = excluded.manifest_digest,
           config_digest = excluded.config_digest, platform = excluded.platform, diff_ids = excluded.diff_ids,
           chain_ids = excluded.chain_ids, config = excluded.config, created_ms = excluded.created_ms`,
      )
      .run(r.name, r.format, r.manifestDigest, r.configDigest, r.platform, JSON.stringify(r.diffIds), JSON.stringify(r.chainIds), JSON.stringify(r.config), r.created.getTime());
  }

  delete(name: string): boolean {
    return this.db.prepare('DELETE FROM images WHERE name = ?').run(name).changes > 0;
  }
}
