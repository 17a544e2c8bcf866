/**
 * Images into thin snapshots on a real pool: docker save, an OCI layout directory and an OCI
 * layout tar (plain, gzip, zstd layers) unpack to the same tree; a second image reuses the
 * layers it shares (counted in snapshots); a damaged blob is refused with nothing left; an
 * import SIGKILLed midway finishes when run again, with the same tree, and an aborted one
 * keeps only the layers it committed; root disks mount and
 * show the image's files, grow to the size asked for, read-only ones refuse writes; 20 disks
 * from one image share the pool; image rm keeps what another image uses; a name given to
 * another image drops the old image's own layers.
 *
 * Quick by default; DEVMAPPER_IMAGES_DISKS sets the disk count (default 20) and
 * DEVMAPPER_IMAGES_LAYER_KIB the size of the big files in the layers (default 64).
 */
import { ChildProcess, spawn } from 'node:child_process';
import { readdir, readFile, rm, statfs, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorCodes, images, layers, sys } from '../../lib';

type TreeNode = layers.TreeNode;
import { runCli } from '../../lib/cli/main';
import { Snapshotter } from '../../lib/snapshotter';
import { newRoot, testOptions } from '../helpers/deviceset';
import { buildImage, EXPECTED_FILES, fixtureLayers, REMOVED_PATHS, tarBuffer } from '../helpers/image-fixtures';
import { describeKernel } from '../helpers/kernel-env';
import { withMount } from '../helpers/snapshotter';

const DISKS = Number(process.env.DEVMAPPER_IMAGES_DISKS ?? 20);
const BIG = Number(process.env.DEVMAPPER_IMAGES_LAYER_KIB ?? 64) * 1024;
const CHILD = join(__dirname, '..', 'fixtures', 'images-child.js');

/** Runs a devmapper command line in this process: exit status and output. */
async function cli(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await runCli(argv, { stdout: { write: (s: string) => (stdout += s) }, stderr: { write: (s: string) => (stderr += s) } });
  return { code, stdout, stderr };
}

async function names(sn: Snapshotter): Promise<string[]> {
  const out: string[] = [];
  await sn.walk((i) => void out.push(i.name));
  return out.sort();
}

/** The image's tree, read through a read-only disk of it. */
async function imageTree(sn: Snapshotter, image: string, work: string): Promise<TreeNode> {
  const disk = await images.rootDisk(image, `look-${image}`, { snapshotter: sn, readOnly: true });
  try {
    return await withMount(disk.mounts[0]!, join(work, `look-${image.replace(/\W/g, '_')}`), (dir) => layers.readTree(dir));
  } finally {
    await sn.remove(disk.key);
  }
}

async function checkFiles(dir: string, variant = 'a'): Promise<void> {
  for (const [p, content] of Object.entries(EXPECTED_FILES)) expect(await readFile(join(dir, p), 'utf8')).toBe(content.replace('variant a', `variant ${variant}`));
  for (const p of REMOVED_PATHS) await expect(readFile(join(dir, p))).rejects.toMatchObject({ code: 'ENOENT' });
  expect((await readdir(dir)).sort()).toEqual(['app', 'bin', 'etc', 'usr', 'var']);
}

describeKernel('images', () => {
  jest.setTimeout(240_000);

  test('formats give the same tree, shared layers are reused, a damaged blob leaves nothing, root disks, 20 disks, rm', async () => {
    const root = await newRoot();
    const work = join(root, '..', 'work');
    const src = join(root, '..', 'src');
    const base = await fixtureLayers('a', { bigBytes: BIG });
    const sn = await Snapshotter.open(root, { options: testOptions() });
    try {
      // Each format in turn, removed after, so that each one unpacks (the same chain IDs would be reused).
      let first: TreeNode | null = null;
      for (const [format, compression] of [['docker', 'none'], ['oci-dir', 'gzip'], ['oci-tar', 'zstd']] as const) {
        const path = join(src, `${format}-${compression}${format === 'oci-dir' ? '' : '.tar'}`);
        const built = await buildImage(path, { format, compression, layers: base });
        const progress: images.ImportProgress[] = [];
        const r = await images.import(path, { snapshotter: sn, name: 'img', onProgress: (p) => void progress.push(p) });
        expect([r.unpacked, r.reused]).toEqual([3, 0]);
        expect(r.image).toMatchObject({ name: 'img', format: format === 'docker' ? 'docker' : 'oci', platform: 'linux/amd64', diffIds: built.diffIds, chainIds: images.chainIds(built.diffIds) });
        expect(progress.filter((p) => p.state === 'done').map((p) => p.layer)).toEqual([0, 1, 2]);
        const last = progress.filter((p) => p.layer === 1 && p.state === 'unpacking').pop();
        expect(last?.bytes).toBe(last?.totalBytes);
        const tree = await imageTree(sn, 'img', work);
        if (first === null) first = tree;
        else expect(layers.treeChanges(tree, first)).toEqual([]);
        expect(await names(sn)).toEqual([...r.image.chainIds].sort());
        if (compression !== 'zstd') expect((await images.remove('img', { snapshotter: sn })).removedLayers).toEqual([...r.image.chainIds].reverse());
      }
      const img = await images.get('img', { snapshotter: sn });

      // A second image sharing the two bottom layers: one new snapshot.
      const otherPath = join(src, 'other.tar');
      await buildImage(otherPath, { format: 'oci-tar', compression: 'gzip', layers: await fixtureLayers('b', { bigBytes: BIG }) });
      // Two imports of it at once: the layer they both need is unpacked once.
      const [other, copy] = await Promise.all([
        images.import(otherPath, { snapshotter: sn, name: 'other' }),
        images.import(otherPath, { snapshotter: sn, name: 'other-copy' }),
      ]);
      expect([other.unpacked + copy.unpacked, other.reused + copy.reused]).toEqual([1, 5]);
      expect((await images.remove('other-copy', { snapshotter: sn })).removedLayers).toEqual([]);
      expect(other.image.chainIds.slice(0, 2)).toEqual(img.chainIds.slice(0, 2));
      expect(sn.counts()).toEqual({ active: 0, view: 0, committed: 4 });
      // The same image again under another name: nothing unpacked.
      const again = await images.import(join(src, 'oci-tar-zstd.tar'), { snapshotter: sn, name: 'img-2' });
      expect([again.unpacked, again.reused]).toEqual([0, 3]);
      expect((await images.list({ snapshotter: sn })).map((i) => i.name)).toEqual(['img', 'img-2', 'other']);

      // A damaged blob: refused, no snapshot and no record left.
      const before = await names(sn);
      const damaged = join(src, 'damaged');
      const one = await tarBuffer((p) => p.entry({ name: 'data' }, 'the original bytes of a layer of its own\n'));
      const built = await buildImage(damaged, { format: 'oci-dir', layers: [one] });
      const blobPath = join(damaged, built.layerFiles[0]!);
      const blob = await readFile(blobPath);
      blob[blob.indexOf('original')] = 'O'.charCodeAt(0);
      await writeFile(blobPath, blob);
      await expect(images.import(damaged, { snapshotter: sn, name: 'damaged' })).rejects.toMatchObject({ code: ErrorCodes.IMAGE_DIGEST });
      expect(await names(sn)).toEqual(before);
      await expect(images.get('damaged', { snapshotter: sn })).rejects.toMatchObject({ code: ErrorCodes.IMAGE_NOT_FOUND });
      expect(await readdir(join(root, 'images', 'extract')).catch(() => [])).toEqual([]);

      // Aborted inside layer 1: layer 0 stays committed (the next import reuses it), nothing of layer 1, no record.
      const abortPath = join(src, 'abort.tar');
      await buildImage(abortPath, { format: 'oci-tar', compression: 'gzip', layers: await fixtureLayers('a', { salt: 'abort', bigBytes: BIG }) });
      const ac = new AbortController();
      await expect(
        images.import(abortPath, { snapshotter: sn, name: 'aborted', signal: ac.signal, onProgress: (p) => p.layer === 1 && p.state === 'unpacking' && ac.abort() }),
      ).rejects.toMatchObject({ code: ErrorCodes.ABORTED });
      const left = (await names(sn)).filter((n) => !before.includes(n));
      expect(left).toHaveLength(1);
      await expect(images.get('aborted', { snapshotter: sn })).rejects.toMatchObject({ code: ErrorCodes.IMAGE_NOT_FOUND });
      await sn.remove(left[0]!);

      // A root disk: writable, grown to the size asked for, the image's files in it.
      const disk = await images.rootDisk('img', 'vm-0', { snapshotter: sn, size: 128 * 2 ** 20 });
      expect(disk.device).toMatch(/^\/dev\/mapper\/.*-snap-\d+$/);
      expect(await sys.getBlockDeviceSize(disk.device)).toBe(128 * 2 ** 20);
      await withMount(disk.mounts[0]!, join(work, 'vm-0'), async (dir) => {
        await checkFiles(dir);
        const fs = await statfs(dir);
        expect(fs.blocks * fs.bsize).toBeGreaterThan(100 * 2 ** 20);
        await writeFile(join(dir, 'etc', 'hostname'), 'vm-0\n');
      });
      // A read-only one refuses writes.
      const ro = await images.rootDisk(img, 'vm-ro', { snapshotter: sn, readOnly: true });
      await withMount(ro.mounts[0]!, join(work, 'vm-ro'), async (dir) => {
        await checkFiles(dir);
        await expect(writeFile(join(dir, 'x'), 'no')).rejects.toMatchObject({ code: 'EROFS' });
      });
      await expect(images.rootDisk('img', 'vm-0', { snapshotter: sn })).rejects.toMatchObject({ code: ErrorCodes.SNAPSHOT_EXISTS });
      // Smaller than the image's device, or not whole sectors: refused, nothing left of the disk.
      for (const size of [2 ** 20, 128 * 2 ** 20 + 1]) {
        await expect(images.rootDisk('img', 'vm-bad', { snapshotter: sn, size })).rejects.toMatchObject({ code: ErrorCodes.INVALID_ARGUMENT, argument: 'size' });
        await expect(sn.stat('vm-bad')).rejects.toMatchObject({ code: ErrorCodes.SNAPSHOT_NOT_FOUND });
      }
      await expect(images.rootDisk('nope', 'vm-x', { snapshotter: sn })).rejects.toMatchObject({ code: ErrorCodes.IMAGE_NOT_FOUND });
      // Removing an image with disks on it is refused; the record stays.
      await expect(images.remove('img-2', { snapshotter: sn })).resolves.toMatchObject({ removedLayers: [] });
      await expect(images.remove('img', { snapshotter: sn })).rejects.toMatchObject({ code: ErrorCodes.SNAPSHOT_PRECONDITION });
      await sn.remove('vm-0');
      await sn.remove('vm-ro');

      // Many disks from one image: each ready in milliseconds, sharing the image's blocks.
      const used0 = (await sn.deviceSet.status()).data.usedBytes;
      const times: number[] = [];
      const disks = [];
      for (let i = 0; i < DISKS; i++) {
        const t = performance.now();
        disks.push(await images.rootDisk('img', `many-${i}`, { snapshotter: sn }));
        times.push(performance.now() - t);
      }
      const used1 = (await sn.deviceSet.status()).data.usedBytes;
      await withMount(disks[DISKS - 1]!.mounts[0]!, join(work, 'last'), (dir) => checkFiles(dir));
      expect(new Set(disks.map((d) => d.device)).size).toBe(DISKS);
      // No disk copies the image: all of them together take less than one more copy of its big files.
      expect(used1 - used0).toBeLessThan(BIG * 5);
      console.log(`images: ${DISKS} root disks, median ${times.sort((a, b) => a - b)[Math.floor(DISKS / 2)]!.toFixed(1)} ms each, pool +${used1 - used0} bytes`);
      await Promise.all(disks.map((d) => sn.remove(d.key)));

      // rm: 'img' goes with its top layer; the two it shares with 'other' stay.
      const removed = await images.remove('img', { snapshotter: sn });
      expect(removed.removedLayers).toEqual([img.chainIds[2]]);
      expect(await names(sn)).toEqual([...other.image.chainIds].sort());
      // The name 'other' moved to the first image: its old top layer, named by no record now, goes.
      const moved = await images.import(join(src, 'oci-tar-zstd.tar'), { snapshotter: sn, name: 'other' });
      expect([moved.unpacked, moved.reused]).toEqual([1, 2]);
      expect(await names(sn)).toEqual([...img.chainIds].sort());
      await images.remove('other', { snapshotter: sn });
      expect(await names(sn)).toEqual([]);
    } finally {
      await sn.close();
      await rm(join(root, '..'), { recursive: true, force: true });
    }
  });

  test('an import SIGKILLed midway finishes when run again, with the same tree', async () => {
    const root = await newRoot();
    const work = join(root, '..', 'work');
    const path = join(root, '..', 'src', 'kill.tar');
    await buildImage(path, { format: 'oci-tar', compression: 'zstd', layers: await fixtureLayers('a', { salt: 'kill', bigBytes: Math.max(BIG, 512 * 1024) }) });
    // The pool and the empty parent exist before the child starts.
    await (await Snapshotter.open(root, { options: testOptions() })).close();
    const child: ChildProcess = spawn(process.execPath, [CHILD, JSON.stringify({ root, options: testOptions(), source: path, name: 'k' })], { stdio: ['ignore', 'pipe', 'inherit'] });
    let seen = '';
    const killedAt = await new Promise<string>((resolve) => {
      child.stdout!.on('data', (c: Buffer) => {
        seen += c.toString();
        const line = seen.split('\n').find((l) => l.includes('"layer":1') && l.includes('"unpacking"'));
        if (line && !child.killed) {
          child.kill('SIGKILL');
          resolve(line);
        }
      });
      child.on('exit', () => resolve('exited'));
    });
    await new Promise((r) => child.exitCode !== null || child.signalCode !== null ? r(null) : child.on('exit', r));
    expect(killedAt).not.toBe('exited');
    expect(child.signalCode).toBe('SIGKILL');
    const sn = await Snapshotter.open(root, { options: testOptions() });
    try {
      // Layer 1's extraction snapshot was left behind (still mounted): the next import removes it and redoes the layer.
      expect((await names(sn)).some((n) => n.startsWith('images/extract/'))).toBe(true);
      await expect(images.get('k', { snapshotter: sn })).rejects.toMatchObject({ code: ErrorCodes.IMAGE_NOT_FOUND });
      const r = await images.import(path, { snapshotter: sn, name: 'k' });
      expect(r.reused).toBe(1);
      expect(r.unpacked).toBe(2);
      expect(await names(sn)).toEqual([...r.image.chainIds].sort());
      expect(await readdir(join(root, 'images', 'extract'))).toEqual([]);
      const tree = await imageTree(sn, 'k', work);
      const flat = layers.flatten(tree);
      expect(flat.get('/etc/salt')?.size).toBe(4);
      expect(flat.has('/etc/old') || flat.has('/var/cache/a') || flat.has('/usr/share/doc')).toBe(false);
      await images.remove('k', { snapshotter: sn });
    } finally {
      await sn.close();
    }

    // The same through the command line (in this process: node's start-up is slow in the sandbox kernel).
    try {
      const tarPath = join(root, '..', 'src', 'cli.tar');
      // One small layer: what is timed here is the command line, the layers are tested above.
      await buildImage(tarPath, { format: 'docker', layers: [await tarBuffer((p) => p.entry({ name: 'hello' }, 'from the command line\n'))], name: 'cli:1' });
      const opts = ['--root', root, ...testOptions().flatMap((o) => ['--option', o])];
      const imported = await cli([...opts, 'image', 'import', tarPath, '--json']);
      expect(imported.code).toBe(0);
      expect(JSON.parse(imported.stdout)).toMatchObject({ name: 'cli:1', format: 'docker', unpacked: 1, reused: 0 });
      expect(JSON.parse((await cli([...opts, 'image', 'ls', '--json'])).stdout)).toEqual([expect.objectContaining({ name: 'cli:1', layers: 1 })]);
      const disk = await cli([...opts, 'image', 'disk', 'cli:1', 'vm-1', '--json']);
      expect(disk.code).toBe(0);
      expect(JSON.parse(disk.stdout).device).toMatch(/^\/dev\/mapper\/.*-snap-\d+$/);
      expect((await cli([...opts, 'image', 'rmdisk', 'vm-1'])).code).toBe(0);
      expect(JSON.parse((await cli([...opts, 'image', 'rm', 'cli:1', '--json'])).stdout)).toMatchObject({ name: 'cli:1', removedLayers: expect.any(Array) });
    } finally {
      await rm(join(root, '..'), { recursive: true, force: true });
    }
  });
});
