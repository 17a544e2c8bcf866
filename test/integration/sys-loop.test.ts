/** Loop devices: attach with autoclear, find by file, capacity, detach. */
import { mkdir, open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { sys } from '../../lib';
import { describeKernel } from '../helpers/kernel-env';
import { SCRATCH_ROOT, uniquePrefix } from '../helpers/names';
import { settled } from '../helpers/wait';

async function sparse(path: string, bytes: number): Promise<void> {
  const fh = await open(path, 'w', 0o600);
  await fh.truncate(bytes);
  await fh.close();
}

describeKernel('loop devices', () => {
  jest.setTimeout(60_000);
  let dir: string;
  beforeEach(async () => {
    dir = join(SCRATCH_ROOT, uniquePrefix());
    await mkdir(dir, { recursive: true });
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('attach, find, size, release detaches with autoclear', async () => {
    const file = join(dir, 'f');
    await sparse(file, 8 << 20);
    const loop = await sys.attachLoopDevice(file);
    expect(loop.path).toMatch(/^\/dev\/loop\d+$/);
    expect(loop.major).toBe(7);
    const found = await sys.findLoopDevices(file);
    expect(found.map((f) => f.path)).toEqual([loop.path]);
    expect(found[0]).toMatchObject({ autoclear: true, readOnly: false, backingFile: file });
    expect(await sys.getBlockDeviceSize(loop.path)).toBe(8 << 20);
    loop.release();
    loop.release(); // idempotent
    expect(await settled(() => sys.findLoopDevices(file))).toEqual([]);
    expect(await sys.getLoopStatus(loop.path)).toBeNull();
  });

  test('without autoclear the device stays until detached; read-only is reported', async () => {
    const file = join(dir, 'g');
    await sparse(file, 4 << 20);
    const loop = await sys.attachLoopDevice(file, { autoclear: false, readOnly: true });
    loop.release();
    const st = await sys.getLoopStatus(loop.path);
    expect(st).toMatchObject({ autoclear: false, readOnly: true, backingFile: file });
    await sys.detachLoopDevice(loop.path);
    expect(await sys.findLoopDevices(file)).toEqual([]);
  });

  test('two files get two devices; capacity follows a grown file', async () => {
    const a = join(dir, 'a');
    const b = join(dir, 'b');
    await sparse(a, 4 << 20);
    await sparse(b, 4 << 20);
    const la = await sys.attachLoopDevice(a);
    const lb = await sys.attachLoopDevice(b);
    try {
      expect(la.path).not.toBe(lb.path);
      await sparse(a, 12 << 20);
      await sys.setLoopCapacity(la.path);
      expect(await sys.getBlockDeviceSize(la.path)).toBe(12 << 20);
    } finally {
      la.release();
      lb.release();
    }
  });

  test('bad input is refused before the kernel is asked', async () => {
    await expect(sys.attachLoopDevice('relative/path')).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT', argument: 'file' });
    await expect(sys.attachLoopDevice(join(dir, 'missing'))).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(sys.detachLoopDevice('/dev/sda')).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
  });
});
