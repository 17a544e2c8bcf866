/**
 * `devmapper snapshotter serve` as containerd meets it: a unix socket of mode 0600 speaking
 * containerd.services.snapshots.v1, containerd's error kinds as gRPC statuses, the RPCs the
 * conformance suite never calls (Mounts, Usage, Cleanup), a second server on the root
 * refused, and SIGTERM: the call in flight finishes, the server exits 0, the socket goes;
 * SIGUSR2: the server waits for the udev work its calls left and says so on stderr.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { PROTO_DIR } from '../../lib/snapshotter/server';
import { newRoot, testOptions } from '../helpers/deviceset';
import { describeKernel } from '../helpers/kernel-env';

const CLI = join(__dirname, '..', '..', 'dist', 'cli', 'main.js');

type Client = grpc.Client & Record<string, (req: object, cb: (err: grpc.ServiceError | null, res: Record<string, unknown>) => void) => void>;

function client(socket: string): Client {
  const def = protoLoader.loadSync(join('containerd', 'snapshots.proto'), { includeDirs: [PROTO_DIR], keepCase: true, longs: Number, enums: String, defaults: true });
  const pkg = grpc.loadPackageDefinition(def) as unknown as { containerd: { services: { snapshots: { v1: { Snapshots: grpc.ServiceClientConstructor } } } } };
  return new pkg.containerd.services.snapshots.v1.Snapshots(`unix:${socket}`, grpc.credentials.createInsecure()) as unknown as Client;
}

function call(c: Client, method: string, req: object): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => c[method]!(req, (err, res) => (err ? reject(err) : resolve(res))));
}

function serve(root: string, socket: string): { proc: ChildProcess; exit: Promise<{ code: number | null; stderr: string }>; stderr: () => string } {
  const args = [CLI, '--root', root, ...testOptions().flatMap((o) => ['-o', o]), 'snapshotter', 'serve', '--socket', socket];
  const proc = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exit = new Promise<{ code: number | null; stderr: string }>((resolve) => proc.on('exit', (code) => resolve({ code, stderr })));
  return { proc, exit, stderr: () => stderr };
}

async function waitFor(check: () => boolean, what: string, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describeKernel('snapshotter serve', () => {
  jest.setTimeout(120_000);

  test('the snapshots service on a 0600 socket; a second server refused; SIGTERM drains and exits 0', async () => {
    const root = await newRoot();
    const socket = join(root, '..', 'snap.sock');
    const server = serve(root, socket);
    await waitFor(() => existsSync(socket), 'the socket');
    expect(statSync(socket).mode & 0o777).toBe(0o600);
    const c = client(socket);
    try {
      const prepared = await call(c, 'Prepare', { key: 'ns/1/k one', parent: '', labels: { a: 'b' } });
      const mounts = prepared.mounts as { type: string; source: string; options: string[] }[];
      expect(mounts).toEqual([{ type: 'ext4', source: expect.stringMatching(/^\/dev\/mapper\/.*-snap-\d+$/), target: '', options: [] }]);
      expect(await call(c, 'Mounts', { key: 'ns/1/k one' })).toEqual({ mounts });
      const usage = await call(c, 'Usage', { key: 'ns/1/k one' });
      expect(typeof usage.size).toBe('number');
      expect(usage.inodes).toBe(0);
      await call(c, 'Commit', { name: 'layer', key: 'ns/1/k one', labels: {} });
      const st = await call(c, 'Stat', { key: 'layer' });
      expect(st.info).toMatchObject({ name: 'layer', parent: '', kind: 'COMMITTED' });
      const created = (st.info as { created_at: { seconds: number } }).created_at.seconds;
      expect(Math.abs(created - Date.now() / 1000)).toBeLessThan(120);
      await call(c, 'View', { key: 'v', parent: 'layer' });
      const upd = await call(c, 'Update', { info: { name: 'v', labels: { x: 'y' } }, update_mask: { paths: ['labels.x'] } });
      expect(upd.info).toMatchObject({ name: 'v', kind: 'VIEW', labels: { x: 'y' } });

      const list = (filters: string[]) =>
        new Promise<string[]>((resolve, reject) => {
          const names: string[] = [];
          const stream = (c as unknown as { List(req: object): grpc.ClientReadableStream<{ info: { name: string }[] }> }).List({ filters });
          stream.on('data', (m) => names.push(...m.info.map((i: { name: string }) => i.name)));
          stream.on('end', () => resolve(names));
          stream.on('error', reject);
        });
      expect(await list(['kind==view'])).toEqual(['v']);
      expect((await list([])).sort()).toEqual(['layer', 'v']);
      await expect(list(['name=='])).rejects.toMatchObject({ code: grpc.status.INVALID_ARGUMENT });

      // containerd's error kinds, as the statuses its proxy client turns back into them.
      await expect(call(c, 'Stat', { key: 'nope' })).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
      await expect(call(c, 'Prepare', { key: 'v', parent: '' })).rejects.toMatchObject({ code: grpc.status.ALREADY_EXISTS });
      await expect(call(c, 'Remove', { key: 'layer' })).rejects.toMatchObject({ code: grpc.status.FAILED_PRECONDITION });
      await expect(call(c, 'Commit', { name: 'n', key: 'v' })).rejects.toMatchObject({ code: grpc.status.FAILED_PRECONDITION });
      await expect(call(c, 'Prepare', { key: '', parent: '' })).rejects.toMatchObject({ code: grpc.status.INVALID_ARGUMENT });
      expect(await call(c, 'Cleanup', {})).toEqual({});

      // SIGUSR2 after a prepare and a remove: udev is done with what they left, one line says so.
      await call(c, 'Prepare', { key: 'udev', parent: 'layer' });
      await call(c, 'Remove', { key: 'udev' });
      const before = server.stderr().length;
      server.proc.kill('SIGUSR2');
      await waitFor(() => /udev settled in/.test(server.stderr().slice(before)), 'the udev settled line');
      expect(server.stderr().slice(before)).toMatch(/^devmapper: udev settled in \d+\.\d{3} ms: 0 pending, \d+ reaped, 0 timed out$/m);

      // A second server on the same root: the DeviceSet's root lock refuses it (exit 4).
      const second = serve(root, join(root, '..', 'other.sock'));
      const refused = await second.exit;
      expect(refused.code).toBe(4);
      expect(refused.stderr).toMatch(/ERR_ROOT_BUSY/);

      // SIGTERM with a call in flight: the call completes, then the server exits 0.
      const inflight = call(c, 'Prepare', { key: 'late', parent: 'layer' });
      await new Promise((r) => setTimeout(r, 50));
      server.proc.kill('SIGTERM');
      await expect(inflight).resolves.toHaveProperty('mounts');
      const exited = await server.exit;
      expect(exited.code).toBe(0);
      expect(existsSync(socket)).toBe(false);
    } finally {
      c.close();
      if (server.proc.exitCode === null) server.proc.kill('SIGKILL');
    }
  });
});
