/**
 * Unpacks one layer tar (uncompressed) into a directory: Docker's naive ApplyDiff on a plain
 * tree. Whiteouts and opaque directories delete from what is there; ownership, permission
 * bits (setuid, setgid, sticky), nanosecond mtimes (PAX `mtime`), xattrs (PAX
 * `SCHILY.xattr.*`), hard links, symlinks, fifos and devices are kept.
 *
 * All or nothing: an entry that is refused (see paths.ts) or a tar that breaks off makes the
 * whole call undo what it did (journal.ts) and throw; the tree is then as it was.
 */
import { constants as fsConstants } from 'node:fs';
import { chmod, lchown, link, lstat, mkdir, open, readdir, realpath, symlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import * as tar from 'tar-stream';
import { DevmapperError, ErrorCodes } from '../errors';
import { lsetxattr, lutimesNs, mknod, type TimeSpec } from '../sys';
import { ApplyJournal } from './journal';
import { entryComponents, resolveDir, unsafeEntry } from './paths';
import { classifyName } from './whiteouts';

export interface ApplyOptions {
  /**
   * Where the undo scratch directory goes: on the same file system as root, outside it.
   * Default: root's parent directory. Root itself is allowed (where root is a mount point,
   * nothing outside it is on its file system): the scratch directory is then a hidden
   * `.apply-*` entry of root while the apply runs, which an opaque marker leaves alone.
   */
  scratchParent?: string;
}

const XATTR_PREFIX = 'SCHILY.xattr.';

/**
 * Applies the layer tar on `root` and returns the bytes of file content written. Throws
 * ERR_UNSAFE_LAYER_ENTRY (naming the entry) for a refused entry and ERR_INVALID_ARGUMENT for a
 * stream that is not a tar; either way nothing of this tar is left in root.
 */
export async function applyLayer(root: string, tarStream: Readable, opts: ApplyOptions = {}): Promise<number> {
  const realRoot = await realpath(root);
  const journal = new ApplyJournal(opts.scratchParent ?? dirname(realRoot));
  const applier = new Applier(realRoot, journal);
  const extract = tar.extract();
  let feedError: unknown;
  let current: { destroy(err?: Error): void } | null = null;
  const feeding = pipeline(tarStream, extract as unknown as NodeJS.WritableStream).catch((err: unknown) => {
    feedError = err;
    // A tar that breaks off inside an entry's content: end the wait for the rest of it.
    current?.destroy(err as Error);
  });
  try {
    for await (const entry of extract) {
      current = entry;
      try {
        await applier.entry(entry.header, entry);
      } finally {
        current = null;
        entry.resume();
      }
    }
    await feeding;
    if (feedError !== undefined) throw notATar(feedError);
    await applier.finish();
  } catch (err) {
    extract.destroy();
    tarStream.destroy();
    await feeding;
    await journal.undo();
    throw err instanceof DevmapperError ? err : notATar(err);
  }
  await journal.commit();
  return applier.bytes;
}

function notATar(err: unknown): DevmapperError {
  if (err instanceof DevmapperError) return err;
  const why = err instanceof Error ? err.message : String(err);
  return new DevmapperError(`the layer stream could not be read as a tar: ${why}`, {
    code: ErrorCodes.INVALID_ARGUMENT,
    argument: 'tarStream',
    operation: 'apply layer',
    cause: err,
  });
}

/** Seconds and nanoseconds from a PAX time ("1700000000.123456789"), else from the header. */
function timeOf(pax: Record<string, string> | null | undefined, key: string, fallback: Date | undefined): TimeSpec {
  const text = pax?.[key];
  const m = text === undefined ? null : /^(-?\d+)(?:\.(\d{1,9})\d*)?$/.exec(text);
  if (m) return { sec: Number(m[1]), nsec: Number((m[2] ?? '').padEnd(9, '0')) };
  const ms = fallback?.getTime() ?? 0;
  return { sec: Math.floor(ms / 1000), nsec: 0 };
}

class Applier {
  bytes = 0;
  /** Paths written by this tar: an opaque marker keeps them. */
  private readonly written = new Set<string>();
  /** Directories whose times are set last (their entries change them meanwhile). */
  private readonly dirTimes: { path: string; atime: TimeSpec; mtime: TimeSpec }[] = [];

  constructor(
    private readonly root: string,
    private readonly journal: ApplyJournal,
  ) {}

  private async parentOf(parts: string[], entry: string): Promise<string> {
    const dir = await resolveDir(this.root, parts, entry, {
      create: async (p) => {
        await this.journal.saveTimes(dirname(p));
        this.journal.created(p);
        this.written.add(p);
      },
    });
    return dir as string;
  }

  async entry(header: tar.Header, body: AsyncIterable<unknown>): Promise<void> {
    const name = header.name;
    const parts = entryComponents(name);
    if (parts.length === 0) return; // the root itself: Docker leaves its metadata alone
    const base = parts[parts.length - 1];
    const meaning = classifyName(base);
    if (meaning.kind === 'meta') return;
    if (meaning.kind === 'opaque') return this.opaque(parts.slice(0, -1), name);
    if (meaning.kind === 'whiteout') return this.whiteout(parts.slice(0, -1), meaning.target, name);

    const dir = await this.parentOf(parts.slice(0, -1), name);
    const path = join(dir, base);
    const existing = await lstat(path).catch(() => null);
    const type = header.type ?? 'file';

    if (type === 'link') {
      const linkParts = entryComponents(header.linkname ?? '', name);
      if (linkParts.length === 0) throw unsafeEntry(name, 'a hard link to the root');
      const linkDir = await resolveDir(this.root, linkParts.slice(0, -1), name);
      const source = linkDir === null ? null : join(linkDir, linkParts[linkParts.length - 1]);
      const sourceStat = source === null ? null : await lstat(source).catch(() => null);
      if (source === null || sourceStat === null) throw unsafeEntry(name, `its hard-link target ${JSON.stringify(header.linkname)} does not exist`);
      if (sourceStat.isDirectory()) throw unsafeEntry(name, 'a hard link to a directory');
      if (source === path) return;
      if (existing) await this.journal.moveAway(path);
      else await this.journal.saveTimes(dir);
      await link(source, path);
      this.journal.created(path);
      this.written.add(path);
      return;
    }

    if (type === 'directory' && existing?.isDirectory()) {
      await this.journal.saveMeta(path);
    } else {
      if (existing) await this.journal.moveAway(path);
      else await this.journal.saveTimes(dir);
      await this.create(path, type, header, body, name);
    }
    this.written.add(path);
    await this.setMeta(path, type, header);
  }

  private async create(path: string, type: string, header: tar.Header, body: AsyncIterable<unknown>, name: string): Promise<void> {
    switch (type) {
      case 'file':
      case 'contiguous-file': {
        const fh = await open(path, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_NOFOLLOW, 0o600);
        this.journal.created(path);
        try {
          for await (const chunk of body) await fh.write(chunk as Uint8Array);
        } finally {
          await fh.close();
        }
        this.bytes += header.size ?? 0;
        return;
      }
      case 'directory':
        await mkdir(path, { mode: 0o700 });
        this.journal.created(path);
        return;
      case 'symlink':
        // The target is stored as written; only writes through it are checked (paths.ts).
        await symlink(header.linkname ?? '', path);
        this.journal.created(path);
        return;
      case 'fifo':
      case 'character-device':
      case 'block-device': {
        const kind = type === 'fifo' ? 'fifo' : type === 'character-device' ? 'char' : 'block';
        await mknod(path, kind, 0o600, header.devmajor ?? 0, header.devminor ?? 0);
        this.journal.created(path);
        return;
      }
      default:
        throw unsafeEntry(name, `entries of type ${type} are not supported`);
    }
  }

  private async setMeta(path: string, type: string, header: tar.Header): Promise<void> {
    await lchown(path, header.uid ?? 0, header.gid ?? 0);
    // After chown, which clears setuid and setgid; Linux has no mode on a symlink.
    if (type !== 'symlink') await chmod(path, (header.mode ?? 0o644) & 0o7777);
    const pax = header.pax as Record<string, string> | null | undefined;
    for (const [key, value] of Object.entries(pax ?? {})) {
      if (key.startsWith(XATTR_PREFIX)) await lsetxattr(path, key.slice(XATTR_PREFIX.length), Buffer.from(value, 'utf8'));
    }
    const mtime = timeOf(pax, 'mtime', header.mtime);
    const atime = pax?.atime === undefined ? mtime : timeOf(pax, 'atime', header.mtime);
    if (type === 'directory') this.dirTimes.push({ path, atime, mtime });
    else await lutimesNs(path, atime, mtime);
  }

  private async whiteout(dirParts: string[], target: string, name: string): Promise<void> {
    if (target === '' || target === '.' || target === '..') throw unsafeEntry(name, 'a whiteout without a name');
    const dir = await resolveDir(this.root, dirParts, name);
    if (dir === null) return;
    const path = join(dir, target);
    if ((await lstat(path).catch(() => null)) === null) return;
    await this.journal.moveAway(path);
  }

  private async opaque(dirParts: string[], name: string): Promise<void> {
    const dir = await this.parentOf(dirParts, name);
    for (const child of await readdir(dir)) {
      const path = join(dir, child);
      if (!this.written.has(path) && !this.journal.isScratch(path)) await this.journal.moveAway(path);
    }
  }

  /** Directory times last, deepest first, now that nothing changes their entries. */
  async finish(): Promise<void> {
    for (const d of this.dirTimes.reverse()) await lutimesNs(d.path, d.atime, d.mtime);
  }
}
