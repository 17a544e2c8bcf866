/**
 * A layer tar from a change list: each added or changed path with its metadata (and its
 * content for files), a `.wh.<name>` entry for each deletion. Parents come before children
 * (the list is sorted by path, and a changed child makes its directory Changed). A file
 * sharing its inode with a path earlier in sorted order is written as a hard link to it:
 * that path is either in this tar already or unchanged, so it exists wherever the tar is
 * applied on the parent. Nanosecond mtimes and xattrs go in PAX records.
 *
 * Limitation: tar-stream reads and writes PAX values as UTF-8 text, so an xattr whose value
 * is not valid UTF-8 (security.capability, for one) is refused with ERR_NOT_SUPPORTED
 * rather than altered.
 */
import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import * as tar from 'tar-stream';
import { DevmapperError, ErrorCodes } from '../errors';
import type { Change } from './changes';
import { flatten, type TreeNode } from './tree';
import { whiteoutFor } from './whiteouts';

type EntryHeader = Partial<tar.Header> & Pick<tar.Header, 'name'>;

const TAR_TYPES = {
  file: 'file',
  directory: 'directory',
  symlink: 'symlink',
  fifo: 'fifo',
  char: 'character-device',
  block: 'block-device',
} as const;

function paxTime(sec: number, nsec: number): string {
  return `${sec}.${String(nsec).padStart(9, '0')}`;
}

function headerOf(rel: string, node: TreeNode): EntryHeader {
  if (node.type === 'socket') {
    // Sockets are not part of a layer (Docker skips them too); a caller filters them out.
    throw new DevmapperError(`${rel}: a socket cannot be put in a layer`, { code: ErrorCodes.NOT_SUPPORTED, device: rel });
  }
  const pax: Record<string, string> = { mtime: paxTime(node.mtimeSec, node.mtimeNsec) };
  for (const [name, value] of node.xattrs) {
    const text = value.toString('utf8');
    if (!Buffer.from(text, 'utf8').equals(value))
      throw new DevmapperError(`/${rel}: the value of xattr ${name} is not UTF-8 text, which the tar writer cannot carry`, {
        code: ErrorCodes.NOT_SUPPORTED,
        device: `/${rel}`,
        operation: 'export layer',
      });
    pax[`SCHILY.xattr.${name}`] = text;
  }
  return {
    name: rel,
    type: TAR_TYPES[node.type],
    mode: node.mode,
    uid: node.uid,
    gid: node.gid,
    mtime: new Date(node.mtimeSec * 1000),
    size: node.type === 'file' ? node.size : 0,
    linkname: node.linkTarget,
    devmajor: node.rdevMajor,
    devminor: node.rdevMinor,
    pax,
  };
}

/** A layer tar being written. */
export interface LayerExport {
  /** The tar bytes. */
  stream: Readable;
  /** Settles once the writer has stopped (ended, failed or aborted) and closed every file. */
  finished: Promise<void>;
  /** Stops the writer; the stream ends with an error if still read. */
  abort(): void;
}

/** The tar of `list` taken from the tree at `root` (read as `tree`). */
export function exportChanges(root: string, tree: TreeNode, list: Change[]): LayerExport {
  const pack = tar.pack();
  const nodes = flatten(tree);
  // The first path (in sorted order) of every inode with several names.
  const firstName = new Map<string, string>();
  for (const [path, node] of nodes) {
    if (node.type === 'file' && node.nlink > 1 && !firstName.has(node.inode)) firstName.set(node.inode, path);
  }
  const write = async (): Promise<void> => {
    for (const change of list) {
      if (closing(pack)) return;
      const rel = change.path.replace(/^\/+/, '');
      if (change.kind === 'D') {
        const slash = rel.lastIndexOf('/');
        const name = rel.slice(0, slash + 1) + whiteoutFor(rel.slice(slash + 1));
        await addEntry(pack, { name, type: 'file', mode: 0o600, size: 0, mtime: new Date(0) });
        continue;
      }
      const node = nodes.get(change.path);
      if (node === undefined || node.type === 'socket') continue;
      const first = node.type === 'file' ? firstName.get(node.inode) : undefined;
      if (first !== undefined && first !== change.path) {
        await addEntry(pack, { ...headerOf(rel, node), type: 'link', size: 0, linkname: first.slice(1) });
        continue;
      }
      await addEntry(pack, headerOf(rel, node), node.type === 'file' ? join(root, rel) : undefined);
    }
    pack.finalize();
  };
  // A reader gets the pack's error through the stream; one that left must not make it uncaught.
  pack.on('error', () => undefined);
  const finished = write().catch((err: unknown) => {
    pack.destroy(err as Error);
  });
  return { stream: Readable.from(pack), finished, abort: () => pack.destroy() };
}

function closing(s: { destroying: boolean; destroyed: boolean }): boolean {
  return s.destroying || s.destroyed;
}

async function addEntry(pack: tar.Pack, header: EntryHeader, file?: string): Promise<void> {
  let finished!: (err?: Error | null) => void;
  const done = new Promise<void>((resolve, reject) => {
    finished = (err) => (err ? reject(err) : resolve());
  });
  // Settled early when the pack is destroyed while we wait for drain: handled below.
  done.catch(() => undefined);
  const sink = pack.entry(header, finished);
  // The callback above gets the error; without a listener streamx would throw it.
  sink.on('error', () => undefined);
  if (file !== undefined) {
    // for await closes the file however the loop ends.
    for await (const chunk of createReadStream(file)) {
      if (sink.write(chunk as Buffer)) continue;
      // Destroyed already: its close event is past, waiting would never end.
      if (closing(sink) || closing(pack)) break;
      await new Promise<void>((resolve) => {
        const wake = (): void => {
          sink.off('drain', wake);
          sink.off('close', wake);
          pack.off('close', wake);
          resolve();
        };
        sink.on('drain', wake);
        sink.on('close', wake);
        pack.on('close', wake);
      });
      if (closing(sink) || closing(pack)) break;
    }
  }
  // streamx's typings require an argument that its end() does not need.
  if (closing(sink) || closing(pack))
    throw new DevmapperError(`the layer tar was closed before its end (at ${header.name})`, {
      code: ErrorCodes.ABORTED,
      operation: 'export',
      device: header.name,
    });
  (sink as unknown as { end(): void }).end();
  await done;
}
