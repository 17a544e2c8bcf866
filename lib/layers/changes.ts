/**
 * The changes of one tree against another, like Docker's naive diff (archive.ChangesDirs):
 * a path is Added when the parent tree lacks it, Deleted when the layer lacks it (only the
 * topmost such path), Changed when its type, permission bits, owner, symlink target, device
 * numbers or xattrs differ, or for non-directories its size or mtime.
 *
 * Directories: their size and mtime are not compared (adding or removing a child changes
 * them); a directory with any changed, added or deleted descendant is reported Changed, so
 * that a tar built from the list carries it with its metadata. Times are equal when seconds
 * match and the nanoseconds match or either side has none (a plain ustar header keeps whole
 * seconds only).
 */
import { emptyDir, readTree, type TreeNode } from './tree';

/** Added, Changed or Deleted, as Docker's archive.Change kinds. */
export type ChangeKind = 'A' | 'C' | 'D';

/** One path that differs between a layer and its parent. */
export interface Change {
  /** Absolute inside the tree: '/a/b'. */
  path: string;
  /** How it differs. */
  kind: ChangeKind;
}

function sameTime(a: TreeNode, b: TreeNode): boolean {
  return a.mtimeSec === b.mtimeSec && (a.mtimeNsec === b.mtimeNsec || a.mtimeNsec === 0 || b.mtimeNsec === 0);
}

function sameXattrs(a: TreeNode, b: TreeNode): boolean {
  if (a.xattrs.size !== b.xattrs.size) return false;
  for (const [k, v] of a.xattrs) if (!b.xattrs.get(k)?.equals(v)) return false;
  return true;
}

/** Whether a node differs from its old self in what a layer records. */
export function nodeChanged(now: TreeNode, old: TreeNode): boolean {
  if (now.type !== old.type || now.mode !== old.mode || now.uid !== old.uid || now.gid !== old.gid) return true;
  if (now.rdevMajor !== old.rdevMajor || now.rdevMinor !== old.rdevMinor) return true;
  if (now.linkTarget !== old.linkTarget || !sameXattrs(now, old)) return true;
  if (now.type !== 'directory' && (now.size !== old.size || !sameTime(now, old))) return true;
  return false;
}

function addAll(node: TreeNode, path: string, out: Change[]): void {
  out.push({ path, kind: 'A' });
  for (const [name, child] of node.children ?? []) addAll(child, `${path}/${name}`, out);
}

/** Compares two directories' entries; returns whether anything below changed. */
function compareDir(now: TreeNode, old: TreeNode, path: string, out: Change[]): boolean {
  let any = false;
  const names = new Set([...(now.children?.keys() ?? []), ...(old.children?.keys() ?? [])]);
  for (const name of names) {
    const p = `${path}/${name}`;
    const n = now.children?.get(name);
    const o = old.children?.get(name);
    if (n === undefined) {
      out.push({ path: p, kind: 'D' });
      any = true;
    } else if (o === undefined) {
      addAll(n, p, out);
      any = true;
    } else if (n.type === 'directory' && o.type === 'directory') {
      const below = compareDir(n, o, p, out);
      if (below || nodeChanged(n, o)) {
        out.push({ path: p, kind: 'C' });
        any = true;
      }
    } else if (nodeChanged(n, o)) {
      out.push({ path: p, kind: 'C' });
      // A directory that replaced something else: everything in it is new.
      for (const [cname, child] of n.children ?? []) addAll(child, `${p}/${cname}`, out);
      any = true;
    }
  }
  return any;
}

/** Orders changes by path, as Docker lists them. */
export function byPath(a: Change, b: Change): number {
  return a.path < b.path ? -1 : a.path > b.path ? 1 : 0;
}

/** The changes between two read trees, sorted by path. */
export function treeChanges(layer: TreeNode, parent: TreeNode): Change[] {
  const out: Change[] = [];
  compareDir(layer, parent, '', out);
  return out.sort(byPath);
}

/** The changes of the tree at `layerRoot` against `parentRoot` (null: an empty tree), sorted by path. */
export async function changes(layerRoot: string, parentRoot: string | null): Promise<Change[]> {
  const [layer, parent] = await Promise.all([readTree(layerRoot), parentRoot === null ? emptyDir() : readTree(parentRoot)]);
  return treeChanges(layer, parent);
}
