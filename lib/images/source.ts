/**
 * An image source read as a set of named files, whatever it is on disk: a directory (an OCI
 * layout, an unpacked docker save) or an uncompressed tar of one. JSON files are read whole
 * (they are small: a bound keeps a hostile one from filling memory), blobs as streams.
 */
import { createReadStream } from 'node:fs';
import { lstat, readFile, realpath, stat } from 'node:fs/promises';
import { join, posix, sep } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { invalidArgument } from '../errors';
import { imageFormat } from './errors';
import { indexTar, normalName, type TarMember } from './tar-index';

/** Manifests, indexes and configs above this are refused rather than read into memory. */
export const MAX_JSON_BYTES = 16 * 2 ** 20;

export interface ImageSource {
  /** The path given, for messages. */
  readonly path: string;
  has(name: string): Promise<boolean>;
  /** The size of a member in bytes. */
  size(name: string): Promise<number>;
  /** A member read whole (at most MAX_JSON_BYTES). */
  read(name: string): Promise<Buffer>;
  /** A member's bytes as a stream. */
  stream(name: string): Readable;
  /** The first bytes of a member (fewer when it is shorter). */
  head(name: string, bytes: number): Promise<Buffer>;
}

async function readRange(path: string, start: number, length: number): Promise<Buffer> {
  if (length <= 0) return Buffer.alloc(0);
  const chunks: Buffer[] = [];
  for await (const c of createReadStream(path, { start, end: start + length - 1 })) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

function missing(source: string, name: string): Error {
  return imageFormat(source, `has no ${name}`);
}

/** A directory: names are paths below it, and may not climb out of it. */
class DirectorySource implements ImageSource {
  constructor(readonly path: string) {}

  private async resolve(name: string): Promise<string> {
    const clean = posix.normalize(normalName(name));
    if (clean.startsWith('../') || clean === '..' || posix.isAbsolute(clean)) throw imageFormat(this.path, `names a file outside it: ${JSON.stringify(name)}`);
    const full = join(this.path, clean);
    const real = await realpath(full).catch(() => null);
    if (real === null) throw missing(this.path, clean);
    if (real !== this.path && !real.startsWith(this.path + sep)) throw imageFormat(this.path, `${clean} leads outside the directory`);
    if (!(await stat(real)).isFile()) throw imageFormat(this.path, `${clean} is not a regular file`);
    return real;
  }

  async has(name: string): Promise<boolean> {
    return this.resolve(name).then(
      () => true,
      () => false,
    );
  }

  async size(name: string): Promise<number> {
    return (await stat(await this.resolve(name))).size;
  }

  async read(name: string): Promise<Buffer> {
    const p = await this.resolve(name);
    if ((await stat(p)).size > MAX_JSON_BYTES) throw imageFormat(this.path, `${name} is over ${MAX_JSON_BYTES} bytes`);
    return readFile(p);
  }

  async head(name: string, bytes: number): Promise<Buffer> {
    const p = await this.resolve(name);
    return readRange(p, 0, Math.min(bytes, (await stat(p)).size));
  }

  stream(name: string): Readable {
    // Resolved lazily so that a missing blob is an error of the stream, where it is read.
    const out = new PassThrough();
    this.resolve(name).then(
      (p) => {
        const rs = createReadStream(p);
        rs.on('error', (err) => out.destroy(err));
        out.on('close', () => rs.destroy());
        rs.pipe(out);
      },
      (err: Error) => out.destroy(err),
    );
    return out;
  }
}

/** An uncompressed tar: its members found once by their headers, read by byte range. */
class TarSource implements ImageSource {
  constructor(
    readonly path: string,
    private readonly members: Map<string, TarMember>,
  ) {}

  private member(name: string): TarMember {
    let key = normalName(posix.normalize(normalName(name)));
    for (let hops = 0; hops < 8; hops++) {
      const m = this.members.get(key);
      if (!m) throw missing(this.path, key);
      if (m.link === undefined) return m;
      key = normalName(m.symlink ? posix.normalize(posix.join(posix.dirname(key), m.link)) : posix.normalize(m.link));
    }
    throw imageFormat(this.path, `${name}: too many links`);
  }

  async has(name: string): Promise<boolean> {
    try {
      this.member(name);
      return true;
    } catch {
      return false;
    }
  }

  async size(name: string): Promise<number> {
    return this.member(name).size;
  }

  async read(name: string): Promise<Buffer> {
    const m = this.member(name);
    if (m.size > MAX_JSON_BYTES) throw imageFormat(this.path, `${name} is over ${MAX_JSON_BYTES} bytes`);
    return readRange(this.path, m.offset, m.size);
  }

  async head(name: string, bytes: number): Promise<Buffer> {
    const m = this.member(name);
    return readRange(this.path, m.offset, Math.min(bytes, m.size));
  }

  stream(name: string): Readable {
    const m = this.member(name);
    if (m.size === 0) return Readable.from([]);
    return createReadStream(this.path, { start: m.offset, end: m.offset + m.size - 1 });
  }
}

/**
 * Opens a source: a directory as it is, a regular file as an uncompressed tar.
 *
 * @throws {@link DevmapperError} ERR_INVALID_ARGUMENT for a path that is not absolute;
 *   ENOENT when it does not exist; ERR_IMAGE_FORMAT for a file that is not a tar
 */
export async function openSource(path: string): Promise<ImageSource> {
  if (typeof path !== 'string' || !path.startsWith('/')) throw invalidArgument('source', 'an absolute path to an image tar or layout directory', path);
  const st = await lstat(path).then((s) => (s.isSymbolicLink() ? stat(path) : s));
  if (st.isDirectory()) return new DirectorySource(await realpath(path));
  if (!st.isFile()) throw imageFormat(path, 'is neither a directory nor a regular file');
  return new TarSource(path, await indexTar(path));
}
