/** Tar builders and a tree fingerprint for the layer tests. */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import * as tar from 'tar-stream';
import { flatten, readTree } from '../../lib/layers/tree';

export type TarEntry = Partial<tar.Header> & { name: string; content?: string; pax?: Record<string, string> };

/** A tar of the entries, in order, as a stream (files get their content's size). */
export function tarOf(entries: TarEntry[]): Readable {
  const pack = tar.pack();
  for (const e of entries) {
    const { content, ...header } = e;
    const body = content ?? '';
    pack.entry({ mtime: new Date(1_600_000_000_000), mode: header.type === 'directory' ? 0o755 : 0o644, ...header, size: header.type === undefined || header.type === 'file' ? Buffer.byteLength(body) : 0 }, body);
  }
  pack.finalize();
  return Readable.from(pack);
}

/** Every entry of a tar stream: headers (with pax) and contents as text. */
export async function readTar(stream: Readable): Promise<{ header: tar.Header; content: string }[]> {
  const extract = tar.extract();
  stream.pipe(extract as unknown as NodeJS.WritableStream);
  const out: { header: tar.Header; content: string }[] = [];
  for await (const entry of extract) {
    const chunks: Buffer[] = [];
    for await (const c of entry) chunks.push(c as Buffer);
    out.push({ header: entry.header, content: Buffer.concat(chunks).toString('utf8') });
  }
  return out;
}

/**
 * What must survive a round trip, per path: type, mode, owner, size, mtime (ns), symlink
 * target, device numbers, xattrs, content hash, and which other paths share the inode.
 * Directory times are left out (the root's, at least, is never part of a layer).
 */
export async function fingerprint(root: string): Promise<Record<string, string>> {
  const nodes = flatten(await readTree(root));
  const byInode = new Map<string, string[]>();
  for (const [p, n] of nodes) if (n.type === 'file') byInode.set(n.inode, [...(byInode.get(n.inode) ?? []), p]);
  const out: Record<string, string> = {};
  for (const [p, n] of nodes) {
    const parts = [n.type, n.mode.toString(8), `${n.uid}:${n.gid}`];
    if (n.type !== 'directory') parts.push(`size=${n.size}`, `mtime=${n.mtimeSec}.${n.mtimeNsec}`);
    if (n.linkTarget !== undefined) parts.push(`-> ${n.linkTarget}`);
    if (n.type === 'char' || n.type === 'block') parts.push(`dev=${n.rdevMajor}:${n.rdevMinor}`);
    for (const [k, v] of n.xattrs) parts.push(`${k}=${v.toString('hex')}`);
    if (n.type === 'file') {
      parts.push(createHash('sha256').update(await readFile(join(root, p))).digest('hex').slice(0, 16));
      const group = byInode.get(n.inode) ?? [];
      if (group.length > 1) parts.push(`links=${group.join(',')}`);
    }
    out[p] = parts.join(' ');
  }
  return out;
}
