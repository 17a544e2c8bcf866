/**
 * The devmapper command end to end in the kernel: `node dist/cli/main.js` spawned against a
 * throwaway root, as a script would use it (stdout and stderr are pipes, so no progress
 * line may appear). One long flow, because every spawn costs a node start in the sandbox.
 */
import { execFile } from 'node:child_process';
import { readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { dm, Driver } from '../../lib';
import { describeKernel } from '../helpers/kernel-env';
import { newRoot, readJson, testOptions } from '../helpers/deviceset';
import { DOCKER_STATUS_ROWS } from '../helpers/docker-status';
import { readTar, tarOf } from '../helpers/layer-tar';
import { createReadStream, createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';

const MAIN = join(__dirname, '..', '..', 'dist', 'cli', 'main.js');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Names, sizes, modes, mtimes and contents of every file in the directory. */
async function snapshotDir(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const name of (await readdir(dir)).sort()) {
    const st = await stat(join(dir, name));
    out[name] = `${st.mode} ${st.size} ${st.mtimeMs} ${await readFile(join(dir, name), 'utf8')}`;
  }
  return out;
}

async function mountsUnder(prefix: string): Promise<string[]> {
  const info = await readFile('/proc/self/mountinfo', 'utf8');
  return info
    .split('\n')
    .map((l) => l.split(' ')[4] ?? '')
    .filter((p) => p.startsWith(prefix));
}

describeKernel('devmapper command-line tool', () => {
  jest.setTimeout(300_000);

  test('pool status, create, mount, inspect, list, unmount, peek, remove, and the exit codes of its errors', async () => {
    const root = await newRoot();
    const global = ['--root', root, ...testOptions().flatMap((o) => ['--option', o])];
    const times: number[] = [];
    const cli = (...args: string[]): Promise<Run> =>
      new Promise((resolve) => {
        const started = Date.now();
        execFile(process.execPath, [MAIN, ...global, ...args], { timeout: 120_000 }, (err, stdout, stderr) => {
          times.push(Date.now() - started);
          const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1) : 0;
          resolve({ code, stdout, stderr });
        });
      });
    const ok = async (...args: string[]): Promise<string> => {
      const r = await cli(...args);
      if (r.code !== 0) throw new Error(`devmapper ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
      // Not a terminal: no progress line, and nothing else on stderr for a success.
      expect(r.stderr).toBe('');
      return r.stdout;
    };
    /** A failure: the exit code, and exactly one stderr line ending in the error code. */
    const fails = async (code: number, errorCode: string, ...args: string[]): Promise<string> => {
      const r = await cli(...args);
      expect({ args, code: r.code }).toEqual({ args, code });
      expect(r.stderr).toMatch(new RegExp(`^devmapper: [^\\n]+ \\(${errorCode}\\)\\n$`));
      expect(r.stdout).toBe('');
      return r.stderr;
    };

    try {
      // The first open makes the pool and the base device's file system.
      const status = JSON.parse(await ok('pool', 'status', '--json'));
      expect(status.rows.map((r: [string, string]) => r[0])).toEqual(DOCKER_STATUS_ROWS);
      expect(status.rows[0][1]).toBe(status.status.poolName);
      expect(status.status.poolKind).toBe('loopback');
      expect(status.status.baseDeviceSizeBytes).toBe(64 * 1024 * 1024);
      expect(status.status.pool.mode).toBe('rw');

      expect(await ok('create', 'image')).toBe('image\n');
      expect(await ok('create', 'ctr-init', 'image')).toBe('ctr-init\n');
      const created = JSON.parse(await ok('create', 'ctr', 'ctr-init', '--json'));
      expect(created).toEqual({ id: 'ctr', parent: 'ctr-init', deviceId: expect.any(Number), sizeBytes: 64 * 1024 * 1024, deviceName: expect.stringMatching(/-ctr$/) });
      const onDisk = await readJson(join(root, 'metadata', 'ctr'));
      expect(onDisk.device_id).toBe(created.deviceId);

      // mount prints the rootfs path; the mount outlives the command.
      const rootfs = (await ok('mount', 'ctr')).trimEnd();
      expect(rootfs).toBe(join(root, 'mnt', 'ctr', 'rootfs'));
      await writeFile(join(rootfs, 'hello'), 'written through the CLI mount');

      const inspected = JSON.parse(await ok('inspect', 'ctr', '--json'));
      expect(inspected.metadata).toEqual({
        device_id: onDisk.device_id,
        size: onDisk.size,
        transaction_id: onDisk.transaction_id,
        initialized: false,
        deleted: false,
      });
      expect(inspected.metadataFile).toBe(join(root, 'metadata', 'ctr'));
      expect(inspected.kernel).toMatchObject({ name: created.deviceName, active: true, openCount: 1 });
      expect(inspected.kernel.table).toEqual([expect.stringMatching(new RegExp(`^0 131072 thin \\S+ ${created.deviceId}$`))]);
      expect(inspected.kernel.mappedSectors).toBeGreaterThan(0);
      expect(inspected.mountPath).toBe(join(root, 'mnt', 'ctr'));

      const listed = JSON.parse(await ok('list', '--json'));
      expect(listed.map((e: { id: string }) => e.id)).toEqual(['ctr', 'ctr-init', 'image']);
      expect(listed[0]).toMatchObject({ id: 'ctr', deviceId: created.deviceId, sizeBytes: 64 * 1024 * 1024, active: true, openCount: 1, mounted: true });
      expect(listed[2]).toMatchObject({ id: 'image', active: false, mounted: false, mountPath: null });

      // A mounted layer in the list: remove is refused as busy and removes none of them
      // (image is mounted below, so it is still there).
      expect(await fails(4, 'EBUSY', 'remove', 'image', 'ctr')).toContain('devmapper unmount ctr first');
      expect(await ok('unmount', 'ctr')).toBe('');
      // Nothing left mounted: no layer, and the released Driver's bind of mnt/ unmounted with the last layer.
      expect(await mountsUnder(join(root, 'mnt'))).toEqual([]);

      // import a layer tar as a new layer on image; export it back; a refused tar leaves no layer.
      const dir = join(root, '..');
      const layerTar = join(dir, 'app.tar');
      await pipeline(
        tarOf([
          { name: 'app/', type: 'directory', mode: 0o755 },
          { name: 'app/run.sh', mode: 0o755, uid: 1, gid: 2, content: '#!/bin/sh\necho app\n' },
        ]),
        createWriteStream(layerTar),
      );
      expect(JSON.parse(await ok('import', layerTar, 'app', 'image', '--json'))).toEqual({ id: 'app', parent: 'image', bytes: 19 });
      const exported = join(dir, 'app-export.tar');
      expect(await ok('export', 'app', 'image', '--output', exported)).toBe('');
      const entries = await readTar(createReadStream(exported));
      expect(entries.map((e) => [e.header.name, e.header.type])).toEqual([
        ['app', 'directory'],
        ['app/run.sh', 'file'],
      ]);
      expect(entries[1]).toMatchObject({ header: { mode: 0o755, uid: 1, gid: 2 }, content: '#!/bin/sh\necho app\n' });
      const badTar = join(dir, 'bad.tar');
      await pipeline(tarOf([{ name: '../escape', content: 'x' }]), createWriteStream(badTar));
      await fails(2, 'ERR_UNSAFE_LAYER_ENTRY', 'import', badTar, 'bad', 'image');
      expect(await ok('remove', 'app')).toBe('');
      expect((await readdir(join(root, 'metadata'))).sort()).not.toContain('bad');

      // peek with the pool down: it comes up read-only for the peek and goes again.
      let metadataBefore = await snapshotDir(join(root, 'metadata'));
      const devicesBefore = (await dm.listDevices()).map((d) => d.name).sort();
      const top = JSON.parse(await ok('peek', 'ctr', '--json'));
      expect(top.entries.map((e: { name: string }) => e.name)).toEqual(['id', 'lost+found', 'rootfs']);
      expect(top.entries.find((e: { name: string }) => e.name === 'rootfs')).toMatchObject({ type: 'directory', mode: '755' });
      expect(await snapshotDir(join(root, 'metadata'))).toEqual(metadataBefore);
      expect(await mountsUnder('/tmp/devmapper-ro-')).toEqual([]);
      expect((await dm.listDevices()).map((d) => d.name).sort()).toEqual(devicesBefore);

      // peek with the pool active (another layer mounted); a mounted layer is refused.
      expect(await ok('mount', 'image')).toBe(`${join(root, 'mnt', 'image', 'rootfs')}\n`);
      metadataBefore = await snapshotDir(join(root, 'metadata'));
      const activeBefore = (await dm.listDevices()).map((d) => d.name).sort();
      const inRootfs = await ok('peek', 'ctr', 'rootfs');
      expect(inRootfs).toMatch(/^MODE +UID +GID +SIZE +NAME\n-0644 +0 +0 +29 +hello\n$/);
      await fails(4, 'EBUSY', 'peek', 'image');
      expect(await snapshotDir(join(root, 'metadata'))).toEqual(metadataBefore);
      expect((await dm.listDevices()).map((d) => d.name).sort()).toEqual(activeBefore);
      expect(await mountsUnder('/tmp/devmapper-ro-')).toEqual([]);
      expect(await ok('unmount', 'image')).toBe('');

      await fails(3, 'ENOENT', 'inspect', 'nope');
      expect(await ok('remove', 'ctr', 'ctr-init', 'image')).toBe('');
      expect((await readdir(join(root, 'metadata'))).sort()).toEqual(['base', 'deviceset-metadata', 'transaction-metadata']);
    } finally {
      // Whatever a failed step left mounted goes; the leak check sees the rest.
      const driver = await Driver.init(root, testOptions());
      for (const id of ['ctr', 'ctr-init', 'image']) await driver.put(id).catch(() => undefined);
      await driver.cleanup();
      await rm(join(root, '..'), { recursive: true, force: true });
      const total = times.reduce((a, b) => a + b, 0);
      console.log(`cli: ${times.length} spawns, ${(total / 1000).toFixed(1)} s, ${(total / times.length / 1000).toFixed(2)} s each on average`);
    }
  });
});
