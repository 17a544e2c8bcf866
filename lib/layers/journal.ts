/**
 * The undo log of one layer apply, so that a refused or broken tar leaves the tree as it was.
 * Nothing that existed is deleted while applying: what a whiteout, an opaque directory or a
 * replacing entry removes is renamed into a scratch directory on the same file system, and
 * the metadata of an existing directory is saved before it is changed. Undo replays the log
 * backwards; commit deletes the scratch directory.
 */
import { lchown, mkdtemp, rename, rm, chmod } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { lremovexattr, lsetxattr, lutimesNs } from '../sys';
import { readNode, type TreeNode } from './tree';

type Step =
  | { op: 'created'; path: string }
  | { op: 'moved'; path: string; to: string }
  | { op: 'meta'; path: string; node: TreeNode }
  | { op: 'times'; path: string; node: TreeNode };

export class ApplyJournal {
  private readonly steps: Step[] = [];
  private readonly timesSaved = new Set<string>();
  private scratch: string | null = null;
  private moved = 0;

  /**
   * @param scratchParent where the scratch directory goes: on the same file system as the
   * tree (renames must not cross file systems) and outside it.
   */
  constructor(private readonly scratchParent: string) {}

  /** A path this apply created (a file, link, node, or a directory with all below it). */
  created(path: string): void {
    this.steps.push({ op: 'created', path });
  }

  /** Takes an existing path out of the tree, keeping it for undo. */
  async moveAway(path: string): Promise<void> {
    await this.saveTimes(dirname(path));
    this.scratch ??= await mkdtemp(join(this.scratchParent, `.apply-${basename(path).slice(0, 16)}-`));
    const to = join(this.scratch, String(this.moved++));
    await rename(path, to);
    this.steps.push({ op: 'moved', path, to });
  }

  /** Whether path is the scratch directory (which may sit inside the tree: see ApplyOptions.scratchParent). */
  isScratch(path: string): boolean {
    return path === this.scratch;
  }

  /** Saves the metadata of an existing directory before an entry replaces it. */
  async saveMeta(path: string): Promise<void> {
    this.steps.push({ op: 'meta', path, node: await readNode(path) });
  }

  /** Saves the times of an existing directory before its entries change (once). */
  async saveTimes(dir: string): Promise<void> {
    if (this.timesSaved.has(dir)) return;
    this.timesSaved.add(dir);
    const node = await readNode(dir).catch(() => null);
    if (node) this.steps.push({ op: 'times', path: dir, node });
  }

  /** Puts the tree back as it was before the apply, then drops the scratch directory. */
  async undo(): Promise<void> {
    let failure: unknown;
    for (const step of this.steps.reverse()) {
      try {
        await undoStep(step);
      } catch (err) {
        failure ??= err;
      }
    }
    this.steps.length = 0;
    if (failure === undefined) await this.dropScratch();
    if (failure !== undefined) throw failure;
  }

  /** Keeps the applied tree: deletes what was moved away. */
  async commit(): Promise<void> {
    this.steps.length = 0;
    await this.dropScratch();
  }

  private async dropScratch(): Promise<void> {
    if (this.scratch) await rm(this.scratch, { recursive: true, force: true });
    this.scratch = null;
  }
}

async function undoStep(step: Step): Promise<void> {
  switch (step.op) {
    case 'created':
      await rm(step.path, { recursive: true, force: true });
      return;
    case 'moved':
      await rm(step.path, { recursive: true, force: true });
      await rename(step.to, step.path);
      return;
    case 'meta':
      await restoreMeta(step.path, step.node);
      return;
    case 'times':
      if ((await readNode(step.path).catch(() => null)) === null) return;
      await lutimesNs(step.path, { sec: step.node.atimeSec, nsec: step.node.atimeNsec }, { sec: step.node.mtimeSec, nsec: step.node.mtimeNsec });
      return;
  }
}

async function restoreMeta(path: string, node: TreeNode): Promise<void> {
  await lchown(path, node.uid, node.gid);
  await chmod(path, node.mode);
  const now = await readNode(path);
  for (const name of now.xattrs.keys()) if (!node.xattrs.has(name)) await lremovexattr(path, name);
  for (const [name, value] of node.xattrs) await lsetxattr(path, name, value);
  await lutimesNs(path, { sec: node.atimeSec, nsec: node.atimeNsec }, { sec: node.mtimeSec, nsec: node.mtimeNsec });
}
