import { lstat, mkdir, mkdtemp, readFile, readlink, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ErrorCodes } from '../../lib/errors';
import { applyLayer } from '../../lib/layers/apply';
import { classifyName, whiteoutFor } from '../../lib/layers/whiteouts';
import { lgetxattr, lsetxattr, lutimesNs, mknod } from '../../lib/sys/file';
import { fingerprint, tarOf, type TarEntry } from '../helpers/layer-tar';

const isRoot = process.getuid?.() === 0;
// Ownership, devices and trusted xattrs need root: say so rather than fail.
const describeRoot = isRoot ? describe : describe.skip;
if (!isRoot) console.warn('layers-apply: skipped, needs root (chown, mknod)');

let work: string;
let root: string;
beforeEach(async () => {
  work = await mkdtemp(join(tmpdir(), 'layers-apply-'));
  root = join(work, 'rootfs');
  await mkdir(root, { mode: 0o755 });
});
afterEach(async () => {
  await rm(work, { recursive: true, force: true });
});

async function xattrsSupported(dir: string): Promise<boolean> {
  const probe = join(dir, '.xattr-probe');
  await writeFile(probe, '');
  try {
    await lsetxattr(probe, 'user.probe', Buffer.from('1'));
    return true;
  } catch {
    return false;
  } finally {
    await rm(probe);
  }
}

const apply = (entries: TarEntry[]) => applyLayer(root, tarOf(entries));

describe('whiteout names', () => {
  test('classify', () => {
    expect(classifyName('.wh..wh..opq')).toEqual({ kind: 'opaque' });
    expect(classifyName('.wh.foo')).toEqual({ kind: 'whiteout', target: 'foo' });
    expect(classifyName('.wh..wh.plnk')).toEqual({ kind: 'meta' });
    expect(classifyName('foo.wh.')).toEqual({ kind: 'none' });
    expect(whiteoutFor('x')).toBe('.wh.x');
  });
});

describe('lib/sys file calls', () => {
  test('bad arguments are typed errors before any call', async () => {
    await expect(mknod(join(work, 'x'), 'socket' as never, 0o600)).rejects.toMatchObject({ code: ErrorCodes.INVALID_ARGUMENT, argument: 'type' });
    await expect(mknod(join(work, 'x'), 'char', 0o600, 5000)).rejects.toMatchObject({ code: ErrorCodes.INVALID_ARGUMENT, argument: 'major' });
    await expect(lsetxattr(join(work, 'x'), 'noprefix', Buffer.from(''))).rejects.toMatchObject({ argument: 'name' });
    await expect(lutimesNs('', { sec: 0, nsec: 0 }, { sec: 0, nsec: 0 })).rejects.toMatchObject({ argument: 'path' });
    await expect(lutimesNs(work, { sec: 0, nsec: 1e9 }, { sec: 0, nsec: 0 })).rejects.toMatchObject({ argument: 'atime.nsec' });
  });

  test('kernel failures carry the errno', async () => {
    await expect(lgetxattr(join(work, 'missing'), 'user.x')).rejects.toMatchObject({ name: 'DevmapperError', code: 'ENOENT' });
    expect(await lgetxattr(root, 'user.none')).toBeNull();
  });
});

describeRoot('applyLayer', () => {
  test('files, dirs, ownership, setuid/setgid/sticky, nanosecond mtimes, size returned', async () => {
    const size = await apply([
      { name: 'etc/', type: 'directory', mode: 0o755 },
      { name: 'etc/passwd', content: 'root:x:0:0\n', uid: 1, gid: 2, mode: 0o640, pax: { mtime: '1600000000.123456789' } },
      { name: 'bin/su', content: 'su', mode: 0o4755, uid: 0, gid: 0 },
      { name: 'bin/wall', content: 'w', mode: 0o2755, uid: 1, gid: 2 },
      { name: 'tmp/', type: 'directory', mode: 0o1777, uid: 1, gid: 2 },
    ]);
    expect(size).toBe('root:x:0:0\n'.length + 3);
    const fp = await fingerprint(root);
    expect(fp['/etc/passwd']).toMatch(/^file 640 1:2 size=11 mtime=1600000000.123456789 /);
    expect(fp['/bin/su']).toMatch(/^file 4755 0:0 /);
    // setgid survives a chown to another owner because chmod comes after it.
    expect(fp['/bin/wall']).toMatch(/^file 2755 1:2 /);
    expect(fp['/tmp']).toBe('directory 1777 1:2');
    // bin/ was missing from the tar: created 0755.
    expect(fp['/bin']).toBe('directory 755 0:0');
    expect((await lstat(join(root, 'tmp'))).mtimeMs).toBe(1_600_000_000_000);
  });

  test('whiteouts delete from below and are never created', async () => {
    await mkdir(join(root, 'a/b'), { recursive: true });
    await writeFile(join(root, 'a/b/f'), 'x');
    await writeFile(join(root, 'a/keep'), 'k');
    await apply([{ name: 'a/.wh.b' }, { name: 'a/.wh.missing' }, { name: 'a/new', content: 'n' }]);
    expect((await readdir(join(root, 'a'))).sort()).toEqual(['keep', 'new']);
    expect(await readdir(work)).toEqual(['rootfs']); // the scratch directory is gone
  });

  test('an opaque directory keeps only this layer entries', async () => {
    await mkdir(join(root, 'd/sub'), { recursive: true });
    await writeFile(join(root, 'd/old'), 'o');
    await writeFile(join(root, 'other'), 'x');
    await apply([
      { name: 'd/', type: 'directory' },
      { name: 'd/mine', content: 'm' },
      { name: 'd/.wh..wh..opq' },
      { name: 'd/after', content: 'a' },
    ]);
    expect((await readdir(join(root, 'd'))).sort()).toEqual(['after', 'mine']);
    expect(await readdir(root)).toContain('other');
  });

  test('hard links (in this layer and to existing files), symlinks, replacing entries', async () => {
    await writeFile(join(root, 'existing'), 'e');
    await writeFile(join(root, 'replaced'), 'old');
    await apply([
      { name: 'f', content: 'data' },
      { name: 'f2', type: 'link', linkname: 'f' },
      { name: 'e2', type: 'link', linkname: '/existing' },
      { name: 'abs', type: 'symlink', linkname: '/etc' },
      { name: 'rel', type: 'symlink', linkname: '../../nowhere' },
      { name: 'replaced', type: 'symlink', linkname: 'f' },
    ]);
    const [f, f2, e, e2] = await Promise.all(['f', 'f2', 'existing', 'e2'].map((p) => lstat(join(root, p))));
    expect(f2.ino).toBe(f.ino);
    expect(e2.ino).toBe(e.ino);
    expect(await readlink(join(root, 'abs'))).toBe('/etc');
    expect(await readlink(join(root, 'rel'))).toBe('../../nowhere');
    expect(await readlink(join(root, 'replaced'))).toBe('f');
  });

  test('writes through a symlink that stays inside the root are followed', async () => {
    await mkdir(join(root, 'usr/lib'), { recursive: true });
    await apply([{ name: 'lib', type: 'symlink', linkname: 'usr/lib' }, { name: 'lib/x.so', content: 'so' }]);
    expect(await readFile(join(root, 'usr/lib/x.so'), 'utf8')).toBe('so');
  });

  test('fifos and devices', async () => {
    await apply([
      { name: 'dev/', type: 'directory' },
      { name: 'dev/null', type: 'character-device', devmajor: 1, devminor: 3, mode: 0o666 },
      { name: 'dev/loop9', type: 'block-device', devmajor: 7, devminor: 9, mode: 0o660, gid: 6 },
      { name: 'pipe', type: 'fifo', mode: 0o620 },
    ]);
    const fp = await fingerprint(root);
    expect(fp['/dev/null']).toMatch(/^char 666 0:0 .* dev=1:3/);
    expect(fp['/dev/loop9']).toMatch(/^block 660 0:6 .* dev=7:9/);
    expect(fp['/pipe']).toMatch(/^fifo 620 0:0/);
  });

  test('xattrs from SCHILY.xattr records (user. and trusted.)', async () => {
    if (!(await xattrsSupported(work))) {
      console.warn(`skipped: the file system of ${work} refuses xattrs`);
      return;
    }
    await apply([
      { name: 'f', content: 'x', pax: { 'SCHILY.xattr.user.k': 'v1', 'SCHILY.xattr.trusted.t': 'v2' } },
      { name: 'd/', type: 'directory', pax: { 'SCHILY.xattr.user.dir': 'yes' } },
    ]);
    expect((await lgetxattr(join(root, 'f'), 'user.k'))?.toString()).toBe('v1');
    expect((await lgetxattr(join(root, 'f'), 'trusted.t'))?.toString()).toBe('v2');
    expect((await lgetxattr(join(root, 'd'), 'user.dir'))?.toString()).toBe('yes');
  });

  describe('refusals leave nothing behind', () => {
    const outside = () => join(work, 'outside');
    const cases: [string, TarEntry[]][] = [
      ['../x', [{ name: '../x', content: 'bad' }]],
      ['a/../../x', [{ name: 'a/../../x', content: 'bad' }]],
      ['/../x', [{ name: '/../x', content: 'bad' }]],
      ['hard link to ../outside', [{ name: 'h', type: 'link', linkname: '../outside' }]],
      ['write through link -> /', [{ name: 'link', type: 'symlink', linkname: '/' }, { name: 'link/etc/passwd', content: 'bad' }]],
      ['write through link -> ../..', [{ name: 'up', type: 'symlink', linkname: '../..' }, { name: 'up/x', content: 'bad' }]],
      ['whiteout through link -> ..', [{ name: 'up', type: 'symlink', linkname: '..' }, { name: 'up/.wh.outside' }]],
    ];
    test.each(cases)('%s', async (what, entries) => {
      await writeFile(outside(), 'precious');
      // Existing content that the refused tar touches before the bad entry.
      await mkdir(join(root, 'd'), { mode: 0o750 });
      await writeFile(join(root, 'd/f'), 'old');
      await writeFile(join(root, 'gone'), 'g');
      const before = await fingerprint(root);
      const bad = [
        { name: 'new/dir/file', content: 'partial' },
        { name: 'd/', type: 'directory' as const, mode: 0o700, uid: 1 },
        { name: 'd/f', content: 'replacement' },
        { name: '.wh.gone' },
        { name: 'd/.wh..wh..opq' },
        ...entries,
        { name: 'never', content: 'n' },
      ];
      const err = await apply(bad).catch((e: unknown) => e);
      expect(err).toMatchObject({ name: 'DevmapperError', code: ErrorCodes.UNSAFE_LAYER_ENTRY });
      expect((err as Error).message).toContain(JSON.stringify(entries[entries.length - 1].name));
      expect(await fingerprint(root)).toEqual(before);
      expect((await lstat(join(root, 'd'))).mode & 0o7777).toBe(0o750);
      expect(await readFile(outside(), 'utf8')).toBe('precious');
      expect((await readdir(work)).sort()).toEqual(['outside', 'rootfs']);
      expect(what).toBeTruthy();
    });

    test('a truncated tar is ERR_INVALID_ARGUMENT and is undone', async () => {
      const chunks: Buffer[] = [];
      for await (const c of tarOf([{ name: 'a', content: 'x'.repeat(2000) }, { name: 'b', content: 'y' }])) chunks.push(c as Buffer);
      const whole = Buffer.concat(chunks);
      const { Readable } = await import('node:stream');
      const err = await applyLayer(root, Readable.from([whole.subarray(0, 1024)])).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: ErrorCodes.INVALID_ARGUMENT, argument: 'tarStream' });
      expect(await readdir(root)).toEqual([]);
      expect(await readdir(work)).toEqual(['rootfs']);
    });
  });
});

