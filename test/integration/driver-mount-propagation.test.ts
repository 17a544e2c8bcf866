/**
 * The Driver's mount directory is a private mount: a layer mounted under home/mnt is not
 * copied into a mount namespace that shares the home's file system (as systemd's shared /
 * would share it with a container runtime's namespace), so that namespace cannot hold the
 * device open, and put and remove still succeed while it lives.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readlinkSync } from 'node:fs';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Driver, sys } from '../../lib';
import { describeKernel } from '../helpers/kernel-env';
import { newRoot, testOptions } from '../helpers/deviceset';
import { mountsUnder } from '../helpers/leaks';

async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The mount points (field 5) of a process's mountinfo under `dir`. */
async function mountPointsOf(pid: number, dir: string): Promise<string[]> {
  const info = await readFile(`/proc/${pid}/mountinfo`, 'utf8');
  return info
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((mp): mp is string => mp !== undefined && (mp === dir || mp.startsWith(`${dir}/`)));
}

describeKernel('Driver mount directory propagation', () => {
  jest.setTimeout(120_000);
  let shared: string;
  let peer: ChildProcess | undefined;

  beforeEach(async () => {
    // A shared mount of the test's directory, and a second mount namespace whose copy of it is
    // in the same peer group: what a host with a shared / and a container runtime looks like.
    shared = join(await newRoot(), '..', 'shared');
    await mkdir(shared, { recursive: true });
    await sys.mount(shared, shared, '', { flags: ['MS_BIND'] });
    await sys.mount(shared, shared, '', { flags: ['MS_SHARED'] });
    peer = spawn('unshare', ['--mount', '--propagation', 'unchanged', 'sleep', '600'], { stdio: 'ignore' });
    const pid = peer.pid!;
    const ours = readlinkSync('/proc/self/ns/mnt');
    await waitFor(() => readlinkSync(`/proc/${pid}/ns/mnt`) !== ours, 10_000, 'the second mount namespace');
  });

  afterEach(async () => {
    peer?.kill('SIGKILL');
    for (const mp of mountsUnder(shared).reverse()) await sys.unmount(mp, { detach: true }).catch(() => undefined);
    await rm(join(shared, '..'), { recursive: true, force: true });
  });

  test('a layer mount stays out of a namespace that shares the home, which cannot then pin the device', async () => {
    const pid = peer!.pid!;
    // The setup does propagate: a mount beside the Driver's home shows up in the peer.
    const control = join(shared, 'control');
    await mkdir(control);
    await sys.mount('/dev/null', control, 'tmpfs', {});
    await waitFor(async () => (await mountPointsOf(pid, control)).length === 1, 5_000, 'the control mount in the peer namespace');
    await sys.unmount(control);

    const home = join(shared, 'home');
    const driver = await Driver.init(home, testOptions());
    try {
      const mnt = join(home, 'mnt');
      await driver.create('c1', '');
      const rootfs = await driver.get('c1');
      expect(rootfs).toBe(join(mnt, 'c1', 'rootfs'));
      expect(mountsUnder(mnt)).toEqual([mnt, join(mnt, 'c1')]);
      // The peer saw the bind of home/mnt made (it was shared then) but not the layer's mount.
      await new Promise((r) => setTimeout(r, 200));
      expect(await mountPointsOf(pid, join(mnt, 'c1'))).toEqual([]);
      const info = await readFile('/proc/self/mountinfo', 'utf8');
      const line = info.split('\n').find((l) => l.split(' ')[4] === mnt)!;
      // Optional fields (between field 6 and the '-') name peer groups: none for a private mount.
      expect(line.split(' - ')[0].split(' ').slice(6)).toEqual([]);
      await driver.put('c1');
      await driver.remove('c1');
    } finally {
      await driver.cleanup();
    }
    // cleanup unmounted its bind of home/mnt.
    expect(mountsUnder(home)).toEqual([]);
  });

  test('a released Driver leaves its mount directory for the next one, which takes it as its own', async () => {
    const home = join(shared, 'home');
    const first = await Driver.init(home, testOptions());
    await first.create('c1', '');
    await first.get('c1');
    await first.release();
    const mnt = join(home, 'mnt');
    expect(mountsUnder(home)).toEqual([mnt, join(mnt, 'c1')]);
    const second = await Driver.init(home, testOptions());
    try {
      await second.put('c1');
      await second.remove('c1');
    } finally {
      await second.cleanup();
    }
    expect(mountsUnder(home)).toEqual([]);
  });
});
