/**
 * A file tree read with lstat (never following symlinks), with what a layer diff compares:
 * type, permission bits, owner, size, times to the nanosecond, symlink target, device
 * numbers and xattrs.
 */
import { lstat, readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { readXattrs } from '../sys';

/** What lstat says a path is. */
export type NodeType = 'file' | 'directory' | 'symlink' | 'fifo' | 'char' | 'block' | 'socket';

/** One path of a directory tree as lstat, readlink and the xattr calls see it: what changes() compares. */
export interface TreeNode {
  /** File type. */
  type: NodeType;
  /** Permission bits including setuid, setgid and sticky (0o7777). */
  mode: number;
  /** Owner. */
  uid: number;
  /** Group. */
  gid: number;
  /** Size in bytes. */
  size: number;
  /** Modification time: seconds since the epoch. */
  mtimeSec: number;
  /** Modification time: nanoseconds within the second. */
  mtimeNsec: number;
  /** Access time: seconds since the epoch. */
  atimeSec: number;
  /** Access time: nanoseconds within the second. */
  atimeNsec: number;
  /** Device numbers of char and block devices (0 otherwise). */
  rdevMajor: number;
  /** Minor device number (see rdevMajor). */
  rdevMinor: number;
  /** The target of a symlink, verbatim. */
  linkTarget?: string;
  /** Extended attributes by name. */
  xattrs: Map<string, Buffer>;
  /** Identity for hard links: `dev:ino`. */
  inode: string;
  /** Hard link count. */
  nlink: number;
  /** Children of a directory by name. */
  children?: Map<string, TreeNode>;
}

const NS_PER_SEC = 1_000_000_000n;

function typeOf(st: { isFile(): boolean; isDirectory(): boolean; isSymbolicLink(): boolean; isFIFO(): boolean; isCharacterDevice(): boolean; isBlockDevice(): boolean }): NodeType {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'directory';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isFIFO()) return 'fifo';
  if (st.isCharacterDevice()) return 'char';
  if (st.isBlockDevice()) return 'block';
  return 'socket';
}

/** One path's node, without children. */
export async function readNode(path: string): Promise<TreeNode> {
  const st = await lstat(path, { bigint: true });
  const type = typeOf(st);
  const rdev = st.rdev;
  return {
    type,
    mode: Number(st.mode) & 0o7777,
    uid: Number(st.uid),
    gid: Number(st.gid),
    size: Number(st.size),
    mtimeSec: Number(st.mtimeNs / NS_PER_SEC),
    mtimeNsec: Number(st.mtimeNs % NS_PER_SEC),
    atimeSec: Number(st.atimeNs / NS_PER_SEC),
    atimeNsec: Number(st.atimeNs % NS_PER_SEC),
    // Linux's dev_t encoding (glibc major()/minor()).
    rdevMajor: Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn)),
    rdevMinor: Number((rdev & 0xffn) | ((rdev >> 12n) & ~0xffn)),
    linkTarget: type === 'symlink' ? await readlink(path) : undefined,
    xattrs: await readXattrs(path),
    inode: `${st.dev}:${st.ino}`,
    nlink: Number(st.nlink),
  };
}

/**
 * The tree under root (root's own node included); a missing root reads as an empty
 * directory, which is what a diff against no parent compares with.
 */
export async function readTree(root: string): Promise<TreeNode> {
  let node: TreeNode;
  try {
    node = await readNode(root);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    return emptyDir();
  }
  await fillChildren(root, node);
  return node;
}

async function fillChildren(path: string, node: TreeNode): Promise<void> {
  if (node.type !== 'directory') return;
  node.children = new Map();
  for (const name of (await readdir(path)).sort()) {
    const child = await readNode(join(path, name));
    await fillChildren(join(path, name), child);
    node.children.set(name, child);
  }
}

/** An empty directory: what a layer without parent is compared with. */
export function emptyDir(): TreeNode {
  return {
    type: 'directory',
    mode: 0o755,
    uid: 0,
    gid: 0,
    size: 0,
    mtimeSec: 0,
    mtimeNsec: 0,
    atimeSec: 0,
    atimeNsec: 0,
    rdevMajor: 0,
    rdevMinor: 0,
    xattrs: new Map(),
    inode: 'none',
    nlink: 2,
    children: new Map(),
  };
}

/** Every node under a tree with its path ('/a/b'), parents before children, by sorted path. */
export function flatten(tree: TreeNode): Map<string, TreeNode> {
  const out = new Map<string, TreeNode>();
  const walk = (node: TreeNode, path: string): void => {
    for (const [name, child] of node.children ?? []) {
      const p = `${path}/${name}`;
      out.set(p, child);
      walk(child, p);
    }
  };
  walk(tree, '');
  return new Map([...out].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}
