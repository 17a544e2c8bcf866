/**
 * A real containerd (Debian's 1.6) as the client: `devmapper snapshotter serve` named in
 * its config.toml's proxy_plugins, driven with ctr: snapshots prepare / commit / usage / ls /
 * rm through the plugin, an image import of an OCI tar built offline (busybox-static), the
 * unpacked layer viewed and mounted as ctr prints it and its file read, and `ctr run` of the
 * image echoing. Skipped, saying why, when containerd, ctr, runc or busybox are missing.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { sys } from '../../lib';
import { newRoot, testOptions } from '../helpers/deviceset';
import { kernelEnv } from '../helpers/kernel-env';
import { writeBusyboxImage } from '../helpers/oci-image';

const execFileP = promisify(execFile);
const CLI = join(__dirname, '..', '..', 'dist', 'cli', 'main.js');
const TOOLS = ['/usr/bin/containerd', '/usr/bin/ctr', '/usr/sbin/runc', '/bin/busybox'];
const missing = TOOLS.filter((t) => !existsSync(t));
const env = kernelEnv();
const skip = !env.usable ? env.reason : missing.length > 0 ? `needs ${missing.join(', ')} (apt: containerd runc busybox-static)` : '';
const describeIt = skip ? describe.skip : describe;

function start(cmd: string, args: string[]): { proc: ChildProcess; exit: Promise<number | null>; output: () => string } {
  const proc = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  return { proc, exit: new Promise((resolve) => proc.on('exit', (code) => resolve(code))), output: () => out };
}

async function waitFor(path: string, what: () => string): Promise<void> {
  const end = Date.now() + 60_000;
  while (!existsSync(path)) {
    if (Date.now() > end) throw new Error(`no ${path} after 60 s: ${what()}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describeIt(`containerd through the proxy snapshotter${skip ? ` [skipped: ${skip}]` : ''}`, () => {
  jest.setTimeout(180_000);

  test('ctr snapshots, images import, view and mount, ctr run', async () => {
    const root = await newRoot();
    const dir = join(root, '..');
    const socket = join(dir, 'snap.sock');
    const ctrdSock = join(dir, 'containerd.sock');
    const server = start(process.execPath, [CLI, '--root', root, ...testOptions().flatMap((o) => ['-o', o]), 'snapshotter', 'serve', '--socket', socket]);
    let containerd: ReturnType<typeof start> | null = null;
    const mnt = join(dir, 'mnt');
    let mounted = false;
    try {
      await waitFor(socket, server.output);
      // ctr run needs a cgroup file system; the sandbox kernel mounts none.
      if (!readFileSync('/proc/self/mountinfo', 'utf8').includes(' /sys/fs/cgroup ')) await execFileP('mount', ['-t', 'cgroup2', 'none', '/sys/fs/cgroup']);
      const builtIn = ['aufs', 'btrfs', 'devmapper', 'native', 'overlayfs', 'zfs'].map((s) => `"io.containerd.snapshotter.v1.${s}"`);
      const config = [
        'version = 2',
        `root = "${dir}/containerd-root"`,
        `state = "${dir}/containerd-state"`,
        // Without the built-in snapshotters a forgotten --snapshotter fails instead of using overlayfs.
        `disabled_plugins = ["io.containerd.grpc.v1.cri", ${builtIn.join(', ')}]`,
        '[grpc]',
        `  address = "${ctrdSock}"`,
        '[plugins."io.containerd.internal.v1.opt"]',
        `  path = "${dir}/containerd-opt"`,
        // Not a built-in snapshotter's name: that makes containerd panic at start.
        '[proxy_plugins.dmthin]',
        '  type = "snapshot"',
        `  address = "${socket}"`,
      ].join('\n');
      await writeFile(join(dir, 'config.toml'), `${config}\n`);
      containerd = start('/usr/bin/containerd', ['--config', join(dir, 'config.toml')]);
      await waitFor(ctrdSock, containerd.output);
      const ctr = async (...args: string[]) => (await execFileP('/usr/bin/ctr', ['-a', ctrdSock, '-n', 'dmtest', ...args], { timeout: 60_000 })).stdout;
      const snaps = (...args: string[]) => ctr('snapshots', '--snapshotter', 'dmthin', ...args);

      // The snapshots API through the plugin.
      await snaps('prepare', 'k1');
      await snaps('commit', 'c1', 'k1');
      expect(await snaps('usage', 'c1')).toMatch(/c1/);
      expect(await snaps('ls')).toMatch(/c1\s+Committed/);
      await snaps('rm', 'c1');

      // An image unpacked into thin devices: Prepare, containerd writes the layer, Commit.
      const tarPath = join(dir, 'image.tar');
      const { chainId, hello } = await writeBusyboxImage(tarPath, 'docker.io/library/dmtest:latest');
      await ctr('images', 'import', '--snapshotter', 'dmthin', tarPath);
      expect(await snaps('ls')).toContain(chainId);

      // ctr 1.6's images mount ignores --snapshotter: view the layer and mount what ctr prints.
      await mkdir(mnt, { recursive: true });
      const line = (await snaps('view', '-t', mnt, 'look', chainId)).trim();
      expect(line).toMatch(/^mount -t ext4 \/dev\/mapper\/\S+ \S+ -o ro$/);
      await execFileP('sh', ['-c', line]);
      mounted = true;
      expect(await readFile(join(mnt, 'etc', 'hello'), 'utf8')).toBe(hello);
      await sys.unmount(mnt);
      mounted = false;
      await snaps('rm', 'look');

      const run = await ctr('run', '--rm', '--snapshotter', 'dmthin', 'docker.io/library/dmtest:latest', 'c-echo', '/bin/echo', 'hello');
      expect(run.trim()).toBe('hello');
      await ctr('images', 'rm', '--sync', 'docker.io/library/dmtest:latest');
    } finally {
      if (mounted) await sys.unmount(mnt, { detach: true }).catch(() => undefined);
      if (containerd) {
        containerd.proc.kill('SIGTERM');
        await containerd.exit;
      }
      server.proc.kill('SIGTERM');
    }
    expect(await server.exit).toBe(0);
  });
});
