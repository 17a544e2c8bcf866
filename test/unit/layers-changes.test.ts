import { chmod, link, mkdir, mkdtemp, rm, symlink, utimes, writeFile, cp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { applyLayer } from '../../lib/layers/apply';
import { changes } from '../../lib/layers/changes';
import { exportChanges } from '../../lib/layers/export';
import { readTree } from '../../lib/layers/tree';
import { treeChanges } from '../../lib/layers/changes';
import { lsetxattr, mknod } from '../../lib/sys/file';
import { fingerprint, readTar } from '../helpers/layer-tar';

const describeRoot = process.getuid?.() === 0 ? describe : describe.skip;

let work: string;
beforeEach(async () => {
  work = await mkdtemp(join(tmpdir(), 'layers-changes-'));
});
afterEach(async () => {
  await rm(work, { recursive: true, force: true });
});

async function xattrsOk(): Promise<boolean> {
  const probe = join(work, 'probe');
  await writeFile(probe, '');
  const ok = await lsetxattr(probe, 'user.p', Buffer.from('1')).then(() => true, () => false);
  await rm(probe);
  if (!ok) console.warn(`xattr cases skipped: the file system of ${work} refuses user.* xattrs`);
  return ok;
}

/** A parent tree and a layer made by copying it (times and owners kept) and changing it. */
async function crafted(): Promise<{ parent: string; layer: string; xattrs: boolean }> {
  const parent = join(work, 'parent');
  const layer = join(work, 'layer');
  await mkdir(join(parent, 'etc/sub'), { recursive: true });
  await writeFile(join(parent, 'etc/same'), 'same');
  await writeFile(join(parent, 'etc/edit'), 'v1');
  await writeFile(join(parent, 'etc/sub/deep'), 'd');
  await writeFile(join(parent, 'etc/mode'), 'm');
  await mkdir(join(parent, 'gone/inner'), { recursive: true });
  await writeFile(join(parent, 'gone/inner/f'), 'f');
  await writeFile(join(parent, 'becomesdir'), 'file');
  await symlink('target1', join(parent, 'link'));
  await cp(parent, layer, { recursive: true, preserveTimestamps: true, verbatimSymlinks: true });
  await writeFile(join(layer, 'etc/edit'), 'v2-longer');
  await chmod(join(layer, 'etc/mode'), 0o4755);
  await rm(join(layer, 'gone'), { recursive: true });
  await rm(join(layer, 'etc/sub/deep'));
  await rm(join(layer, 'becomesdir'));
  await mkdir(join(layer, 'becomesdir'));
  await writeFile(join(layer, 'becomesdir/child'), 'c');
  await rm(join(layer, 'link'));
  await symlink('target2', join(layer, 'link'));
  await mkdir(join(layer, 'new/dir'), { recursive: true });
  await writeFile(join(layer, 'new/dir/file'), 'n');
  await link(join(layer, 'new/dir/file'), join(layer, 'new/hard'));
  await mknod(join(layer, 'new/fifo'), 'fifo', 0o600);
  await mknod(join(layer, 'new/null'), 'char', 0o666, 1, 3);
  const xattrs = await xattrsOk();
  if (xattrs) {
    await lsetxattr(join(layer, 'etc/same'), 'user.tag', Buffer.from('t'));
  }
  return { parent, layer, xattrs };
}

describeRoot('changes', () => {
  test('crafted trees: A/C/D, topmost deletions, dirs changed by their children', async () => {
    const { parent, layer, xattrs } = await crafted();
    const list = await changes(layer, parent);
    const expected = [
      { path: '/becomesdir', kind: 'C' },
      { path: '/becomesdir/child', kind: 'A' },
      { path: '/etc', kind: 'C' },
      { path: '/etc/edit', kind: 'C' },
      { path: '/etc/mode', kind: 'C' },
      ...(xattrs ? [{ path: '/etc/same', kind: 'C' }] : []),
      { path: '/etc/sub', kind: 'C' },
      { path: '/etc/sub/deep', kind: 'D' },
      { path: '/gone', kind: 'D' },
      { path: '/link', kind: 'C' },
      { path: '/new', kind: 'A' },
      { path: '/new/dir', kind: 'A' },
      { path: '/new/dir/file', kind: 'A' },
      { path: '/new/fifo', kind: 'A' },
      { path: '/new/hard', kind: 'A' },
      { path: '/new/null', kind: 'A' },
    ];
    expect(list).toEqual(expected);
    // Against nothing: everything is added; against itself: nothing changed.
    expect((await changes(layer, null)).every((c) => c.kind === 'A')).toBe(true);
    expect(await changes(layer, layer)).toEqual([]);
  });

  test('a directory mtime alone is not a change; a file mtime (ns) is', async () => {
    const a = join(work, 'a');
    await mkdir(join(a, 'd'), { recursive: true });
    await writeFile(join(a, 'f'), 'x');
    const b = join(work, 'b');
    await cp(a, b, { recursive: true, preserveTimestamps: true });
    // cp keeps times to the microsecond only: set the file's to the same value in both.
    await utimes(join(a, 'f'), 2000.5, 2000.5);
    await utimes(join(b, 'f'), 2000.5, 2000.5);
    await utimes(join(b, 'd'), 1000, 1000);
    expect(treeChanges(await readTree(b), await readTree(a))).toEqual([]);
    await utimes(join(b, 'f'), 2000.5, 2000.25);
    expect(treeChanges(await readTree(b), await readTree(a))).toEqual([{ path: '/f', kind: 'C' }]);
  });

  test('diff then apply onto a copy of the parent reproduces the layer', async () => {
    const { parent, layer } = await crafted();
    await chmod(join(layer, 'new/dir'), 0o1777);
    const tree = await readTree(layer);
    const list = treeChanges(tree, await readTree(parent));
    const entries = await readTar(exportChanges(layer, tree, list).stream);
    const names = entries.map((e) => e.header.name);
    expect(names).toContain('etc/sub/.wh.deep');
    expect(names).toContain('.wh.gone');
    expect(entries.find((e) => e.header.name === 'new/hard')?.header).toMatchObject({ type: 'link', linkname: 'new/dir/file' });

    const target = join(work, 'target');
    await cp(parent, target, { recursive: true, preserveTimestamps: true, verbatimSymlinks: true });
    const size = await applyLayer(target, exportChanges(layer, tree, list).stream);
    expect(size).toBeGreaterThan(0);
    expect(await fingerprint(target)).toEqual(await fingerprint(layer));
    expect(await changes(target, layer)).toEqual([]);
  });

  test('an export aborted while blocked on an unread stream stops and closes its files', async () => {
    const layer = join(work, 'big');
    await mkdir(layer);
    await writeFile(join(layer, 'big'), Buffer.alloc(8 << 20, 1));
    const tree = await readTree(layer);
    const exported = exportChanges(layer, tree, treeChanges(tree, await readTree(join(work, 'none'))));
    // A reader that takes one chunk and leaves (destroying the stream mid-file), then the abort.
    await new Promise((resolve) => exported.stream.once('data', resolve));
    exported.stream.destroy();
    await new Promise((r) => setTimeout(r, 50));
    exported.abort();
    await exported.finished;
    // No descriptor of this process still points at the file.
    const { readdir: rd, readlink: rl } = await import('node:fs/promises');
    const fds = await rd('/proc/self/fd');
    const targets = await Promise.all(fds.map((fd) => rl(`/proc/self/fd/${fd}`).catch(() => '')));
    expect(targets).not.toContain(join(layer, 'big'));
  });
});
