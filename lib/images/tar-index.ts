/**
 * Where each file of an uncompressed tar lies, found by reading its headers only, so that an
 * image tar (docker save, an OCI layout archive) is read like a directory: small JSON files
 * whole, layer blobs as streams of their byte range, never the whole tar at once.
 * Reads ustar and GNU headers, PAX `path` records and GNU long names; links are followed
 * for regular-file lookups (docker save hard-links identical layers).
 */
import { open } from 'node:fs/promises';
import { imageFormat } from './errors';

export interface TarMember {
  /** The data's offset in the tar. */
  offset: number;
  size: number;
  /** For hard and symbolic links: the target's name, and which kind. */
  link?: string;
  symlink?: boolean;
}

const BLOCK = 512;

function cString(b: Buffer, start: number, len: number): string {
  const field = b.subarray(start, start + len);
  const nul = field.indexOf(0);
  return field.subarray(0, nul < 0 ? len : nul).toString('utf8');
}

/** An octal header number, or GNU's base-256 form (high bit set) for big sizes. */
function tarNumber(b: Buffer, start: number, len: number, file: string): number {
  const field = b.subarray(start, start + len);
  if ((field[0]! & 0x80) !== 0) {
    let n = field[0]! & 0x7f;
    for (let i = 1; i < len; i++) n = n * 256 + field[i]!;
    return n;
  }
  const text = cString(b, start, len).trim();
  if (text === '') return 0;
  if (!/^[0-7]+$/.test(text)) throw imageFormat(file, `not a tar: a header number reads ${JSON.stringify(text)}`);
  return parseInt(text, 8);
}

function paxPath(data: Buffer): string | undefined {
  let path: string | undefined;
  let at = 0;
  while (at < data.length) {
    const space = data.indexOf(0x20, at);
    if (space < 0) break;
    const len = Number(data.subarray(at, space).toString('ascii'));
    if (!Number.isSafeInteger(len) || len <= 0) break;
    const record = data.subarray(space + 1, at + len - 1).toString('utf8');
    const eq = record.indexOf('=');
    if (record.slice(0, eq) === 'path') path = record.slice(eq + 1);
    at += len;
  }
  return path;
}

/** "./a/b" and "a/b/" → "a/b". */
export function normalName(name: string): string {
  return name.replace(/^(\.\/)+/, '').replace(/\/+$/, '');
}

/** Every member of the tar at path, by normalized name. */
export async function indexTar(path: string): Promise<Map<string, TarMember>> {
  const fh = await open(path, 'r');
  const members = new Map<string, TarMember>();
  try {
    const { size: total } = await fh.stat();
    const header = Buffer.alloc(BLOCK);
    let at = 0;
    let longName: string | undefined;
    while (at + BLOCK <= total) {
      const { bytesRead } = await fh.read(header, 0, BLOCK, at);
      if (bytesRead < BLOCK) break;
      if (header.every((x) => x === 0)) break;
      if (at === 0 && header.subarray(257, 262).toString('latin1') !== 'ustar')
        throw imageFormat(path, 'not a tar (no ustar header), nor an image layout directory');
      const size = tarNumber(header, 124, 12, path);
      const type = String.fromCharCode(header[156]! || 0x30);
      const dataAt = at + BLOCK;
      at = dataAt + Math.ceil(size / BLOCK) * BLOCK;
      if (at > total + BLOCK) throw imageFormat(path, 'the tar breaks off inside a member');
      if (type === 'x' || type === 'L') {
        const data = Buffer.alloc(size);
        await fh.read(data, 0, size, dataAt);
        longName = type === 'L' ? cString(data, 0, size) : (paxPath(data) ?? longName);
        continue;
      }
      if (type === 'g') continue;
      const prefix = cString(header, 345, 155);
      const name = longName ?? (prefix ? `${prefix}/${cString(header, 0, 100)}` : cString(header, 0, 100));
      longName = undefined;
      const key = normalName(name);
      if (type === '0' || type === '7') members.set(key, { offset: dataAt, size });
      else if (type === '1' || type === '2') members.set(key, { offset: 0, size: 0, link: cString(header, 157, 100), symlink: type === '2' });
    }
  } finally {
    await fh.close();
  }
  return members;
}
