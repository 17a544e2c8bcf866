/**
 * Layer diffs through the graph Driver in the kernel, after moby's graph-driver conformance
 * scenarios: an empty layer, a base layer made by applyDiff and read back through a snapshot
 * (modes, setuid/sticky, owners), a chain of 50 layers, a diff -> applyDiff round trip with
 * whiteouts, and refused tars that leave the layer as it was.
 */
import { once } from 'node:events';
import { lstat, mkdtemp, readFile, readdir, readlink, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DevmapperError, Driver, ErrorCodes } from '../../lib';
import { lgetxattr } from '../../lib/sys/file';
import { describeKernel } from '../helpers/kernel-env';
import { newRoot, testOptions } from '../helpers/deviceset';
import { fingerprint, readTar, tarOf, type TarEntry } from '../helpers/layer-tar';

async function withDriver<T>(fn: (driver: Driver, home: string) => Promise<T>): Promise<T> {
  const home = await newRoot();
  const driver = await Driver.init(home, testOptions());
  try {
    return await fn(driver, home);
  } finally {
    await driver.cleanup();
    await rm(join(home, '..'), { recursive: true, force: true });
  }
}

async function mountedUnder(prefix: string): Promise<string[]> {
  const info = await readFile('/proc/self/mountinfo', 'utf8');
  return info
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((p) => p !== undefined && p.startsWith(prefix));
}

/** Reads a layer's rootfs through get/put. */
async function layerFingerprint(driver: Driver, id: string): Promise<Record<string, string>> {
  const root = await driver.get(id);
  try {
    return await fingerprint(root);
  } finally {
    await driver.put(id);
  }
}

const BASE: TarEntry[] = [
  { name: 'bin/', type: 'directory', mode: 0o755 },
  { name: 'bin/su', content: '#!su', mode: 0o4755 },
  { name: 'bin/wall', content: '#!wall', mode: 0o2755, uid: 1, gid: 2 },
  { name: 'tmp/', type: 'directory', mode: 0o1777 },
  { name: 'home/', type: 'directory', mode: 0o750, uid: 1, gid: 2 },
  { name: 'home/user.txt', content: 'hello', mode: 0o600, uid: 1, gid: 2, pax: { mtime: '1600000000.5', 'SCHILY.xattr.user.origin': 'image' } },
  { name: 'home/hard', type: 'link', linkname: 'home/user.txt' },
  { name: 'etc/', type: 'directory' },
  { name: 'etc/motd', content: 'welcome' },
  { name: 'etc/old', content: 'to be whited out' },
  { name: 'etc/conf.d/', type: 'directory' },
  { name: 'etc/conf.d/a', content: 'a' },
  { name: 'etc/conf.d/b', content: 'b' },
  { name: 'usr/lib/', type: 'directory' },
  { name: 'lib', type: 'symlink', linkname: 'usr/lib' },
  { name: 'abs', type: 'symlink', linkname: '/etc' },
  { name: 'dev/', type: 'directory' },
  { name: 'dev/null', type: 'character-device', devmajor: 1, devminor: 3, mode: 0o666 },
  { name: 'run.fifo', type: 'fifo', mode: 0o600 },
];

describeKernel('graph Driver layer diffs', () => {
  jest.setTimeout(300_000);

  test('an empty layer; a base layer by applyDiff, read back through a snapshot', async () => {
    await withDriver(async (driver) => {
      await driver.create('empty', '');
      const emptyRoot = await driver.get('empty');
      expect(await readdir(emptyRoot)).toEqual([]);
      expect((await stat(emptyRoot)).mode & 0o7777).toBe(0o755);
      await driver.put('empty');
      expect(await driver.changes('empty', '')).toEqual([]);
      expect(await driver.diffSize('empty', null)).toBe(0);
      expect(await readTar(await driver.diff('empty', ''))).toEqual([]);

      await driver.create('image', '');
      const size = await driver.applyDiff('image', '', tarOf(BASE));
      expect(size).toBe(['#!su', '#!wall', 'hello', 'welcome', 'to be whited out', 'a', 'b'].join('').length);
      expect(driver.refCount('image')).toBe(0);

      await driver.create('snap', 'image');
      const root = await driver.get('snap');
      try {
        const fp = await fingerprint(root);
        expect(fp['/bin/su']).toMatch(/^file 4755 0:0 /);
        expect(fp['/bin/wall']).toMatch(/^file 2755 1:2 /);
        expect(fp['/tmp']).toBe('directory 1777 0:0');
        expect(fp['/home']).toBe('directory 750 1:2');
        expect(fp['/home/user.txt']).toMatch(/^file 600 1:2 size=5 mtime=1600000000.500000000 /);
        expect(fp['/home/user.txt']).toContain('links=/home/hard,/home/user.txt');
        expect(fp['/dev/null']).toMatch(/^char 666 0:0 .*dev=1:3/);
        expect(fp['/run.fifo']).toMatch(/^fifo 600/);
        expect(await readlink(join(root, 'abs'))).toBe('/etc');
        expect((await lgetxattr(join(root, 'home/user.txt'), 'user.origin'))?.toString()).toBe('image');
        // Nothing but Docker's layout (and ext4's lost+found): no scratch directory left.
        expect((await readdir(join(root, '..'))).filter((n) => n !== 'lost+found').sort()).toEqual(['id', 'rootfs']);
      } finally {
        await driver.put('snap');
      }
      expect(await driver.changes('snap', 'image')).toEqual([]);
      // The hard link's file counts once, as in the bytes applyDiff wrote.
      expect(await driver.diffSize('image', '')).toBe(size);
    });
  });

  // 10 layers by default (`npm test`); `npm run test:soak` builds 50 (DEVMAPPER_LAYER_CHAIN).
  // 50 layers take 5 to 25 s with udev off; with udev on every create, mount and unmount
  // waits for udev (110 to 200 s measured on a shared 2-core host), hence the larger bound.
  const DEPTH = Number(process.env.DEVMAPPER_LAYER_CHAIN ?? '10');
  test(`a chain of ${DEPTH} layers, each adding one file, reads correctly at the top`, async () => {
    await withDriver(async (driver) => {
      const started = Date.now();
      let parent = '';
      for (let i = 0; i < DEPTH; i++) {
        const id = `chain${i}`;
        await driver.create(id, parent);
        await driver.applyDiff(id, parent, tarOf([{ name: `layer${i}`, content: `content ${i}` }]));
        parent = id;
      }
      const built = Date.now() - started;
      const top = await driver.get(`chain${DEPTH - 1}`);
      try {
        const names = (await readdir(top)).sort();
        expect(names).toEqual(Array.from({ length: DEPTH }, (_, i) => `layer${i}`).sort());
        for (let i = 0; i < DEPTH; i++) expect(await readFile(join(top, `layer${i}`), 'utf8')).toBe(`content ${i}`);
      } finally {
        await driver.put(`chain${DEPTH - 1}`);
      }
      expect(await driver.changes(`chain${DEPTH - 1}`, `chain${DEPTH - 2}`)).toEqual([{ path: `/layer${DEPTH - 1}`, kind: 'A' }]);
      console.log(`${DEPTH}-layer chain built in ${built} ms, total ${Date.now() - started} ms`);
    });
  }, 600_000);

  test('applyDiff then diff round-trips a tar with whiteouts and an opaque directory', async () => {
    await withDriver(async (driver) => {
      await driver.create('image', '');
      await driver.applyDiff('image', '', tarOf(BASE));
      await driver.create('top', 'image');
      await driver.applyDiff(
        'top',
        'image',
        tarOf([
          { name: 'etc/', type: 'directory' },
          { name: 'etc/.wh.old' },
          { name: 'etc/motd', content: 'changed motd', mode: 0o640 },
          { name: 'etc/conf.d/', type: 'directory', mode: 0o700 },
          { name: 'etc/conf.d/.wh..wh..opq' },
          { name: 'etc/conf.d/c', content: 'c' },
          { name: 'new/', type: 'directory', uid: 1, gid: 2 },
          { name: 'new/file', content: 'new', uid: 1, gid: 2, pax: { 'SCHILY.xattr.user.k': 'v' } },
          { name: 'lib/x.so', content: 'so' },
        ]),
      );
      expect(await driver.changes('top', 'image')).toEqual([
        { path: '/etc', kind: 'C' },
        { path: '/etc/conf.d', kind: 'C' },
        { path: '/etc/conf.d/a', kind: 'D' },
        { path: '/etc/conf.d/b', kind: 'D' },
        { path: '/etc/conf.d/c', kind: 'A' },
        { path: '/etc/motd', kind: 'C' },
        { path: '/etc/old', kind: 'D' },
        { path: '/new', kind: 'A' },
        { path: '/new/file', kind: 'A' },
        { path: '/usr', kind: 'C' },
        { path: '/usr/lib', kind: 'C' },
        { path: '/usr/lib/x.so', kind: 'A' },
      ]);
      expect(await driver.diffSize('top', 'image')).toBe('changed motd'.length + 'c'.length + 'new'.length + 'so'.length);

      const names = (await readTar(await driver.diff('top', 'image'))).map((e) => e.header.name);
      expect(names).toContain('etc/.wh.old');
      expect(names).toContain('etc/conf.d/.wh.a');
      expect(driver.refCount('top')).toBe(0);
      // A diff stream destroyed unread gives its reference back too.
      const unread = await driver.diff('top', 'image');
      expect(driver.refCount('top')).toBe(1);
      unread.destroy();
      await once(unread, 'close');
      const deadline = Date.now() + 30_000;
      while (driver.refCount('top') !== 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(driver.refCount('top')).toBe(0);

      await driver.create('copy', 'image');
      await driver.applyDiff('copy', 'image', await driver.diff('top', 'image'));
      expect(await layerFingerprint(driver, 'copy')).toEqual(await layerFingerprint(driver, 'top'));
      expect(await driver.changes('copy', 'top')).toEqual([]);
      for (const id of ['top', 'copy', 'image']) expect(driver.refCount(id)).toBe(0);
    });
  });

  test('refused tars (.. entries, writes through a symlink leading out) leave the layer as it was', async () => {
    await withDriver(async (driver, home) => {
      await driver.create('image', '');
      await driver.applyDiff('image', '', tarOf(BASE));
      await driver.create('victim', 'image');
      const before = await layerFingerprint(driver, 'victim');
      // The guest's /tmp is a tmpfs: a write that escaped would land there, not on the host.
      const outside = await mkdtemp('/tmp/driver-layers-outside-');
      await writeFile(join(outside, 'keep'), 'precious');
      const prefix = [
        { name: 'partial/dir/file', content: 'partial' },
        { name: 'etc/motd', content: 'overwritten' },
        { name: 'etc/.wh.old' },
        { name: 'etc/conf.d/.wh..wh..opq' },
      ];
      const bad: [string, TarEntry[]][] = [
        ['../escape', [{ name: '../escape', content: 'x' }]],
        ['a/../../escape', [{ name: 'a/../../escape', content: 'x' }]],
        ['out/keep', [{ name: 'out', type: 'symlink', linkname: outside }, { name: 'out/keep', content: 'overwritten' }]],
        [`root${outside}/new`, [{ name: 'root', type: 'symlink', linkname: '/' }, { name: `root${outside}/new`, content: 'x' }]],
        ['hard', [{ name: 'hard', type: 'link', linkname: '../../../../etc/hostname' }]],
      ];
      for (const [entry, entries] of bad) {
        let err: unknown;
        try {
          await driver.applyDiff('victim', 'image', tarOf([...prefix, ...entries, { name: 'after', content: 'x' }]));
        } catch (e) {
          err = e;
        }
        expect(err).toBeInstanceOf(DevmapperError);
        expect(err).toMatchObject({ code: ErrorCodes.UNSAFE_LAYER_ENTRY, device: entry });
        expect(driver.refCount('victim')).toBe(0);
        // No layer mounted under mnt/ (mnt/ itself is the Driver's private bind mount).
        expect(await mountedUnder(`${join(home, 'mnt')}/`)).toEqual([]);
      }
      expect(await layerFingerprint(driver, 'victim')).toEqual(before);
      const root = await driver.get('victim');
      try {
        expect((await readdir(join(root, '..'))).filter((n) => n !== 'lost+found').sort()).toEqual(['id', 'rootfs']);
      } finally {
        await driver.put('victim');
      }
      expect(await readdir(outside)).toEqual(['keep']);
      expect(await readFile(join(outside, 'keep'), 'utf8')).toBe('precious');
      expect((await lstat(outside)).isDirectory()).toBe(true);
      await rm(outside, { recursive: true, force: true });
    });
  });
});
