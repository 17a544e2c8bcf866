/**
 * containerd.services.snapshots.v1.Snapshots over a unix socket, for containerd's
 * `proxy_plugins` (type "snapshot"): each RPC is one Snapshotter call.
 */
import { chmod, lstat, mkdtemp, rename, rm, rmdir, unlink } from 'node:fs/promises';
import { connect } from 'node:net';
import { dirname, join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { DevmapperError, invalidArgument } from '../errors';
import { toServiceError } from './grpc-errors';
import type { Snapshotter } from './snapshotter';
import type { SnapshotInfo, SnapshotKind, SnapshotMount } from './types';

/** Where the .proto files are: the package's proto/ folder, two levels above lib/snapshotter and dist/snapshotter alike. */
export const PROTO_DIR = join(__dirname, '..', '..', 'proto');

/** Options of {@link serveSnapshotter}. */
export interface ServeOptions {
  /** The unix socket's path; a stale socket file there (nobody listening) is replaced. */
  socket: string;
  /** The socket's mode; default 0600 (only root may talk to the snapshotter). */
  mode?: number;
}

/** A running server. */
export interface SnapshotterServer {
  /** The socket's path. */
  readonly socket: string;
  /**
   * Stops taking calls, waits for the ones in flight, closes the Snapshotter. Idempotent.
   * With `force`, in-flight calls are cancelled instead of awaited.
   */
  close(opts?: { force?: boolean }): Promise<void>;
}

const KIND_TO_WIRE: Record<SnapshotKind, string> = { view: 'VIEW', active: 'ACTIVE', committed: 'COMMITTED' };

function timestamp(micros: number): { seconds: number; nanos: number } {
  const seconds = Math.floor(micros / 1e6);
  return { seconds, nanos: (micros - seconds * 1e6) * 1000 };
}

function wireInfo(i: SnapshotInfo): object {
  return {
    name: i.name,
    parent: i.parent,
    kind: KIND_TO_WIRE[i.kind],
    created_at: timestamp(i.createdMicros),
    updated_at: timestamp(i.updatedMicros),
    labels: i.labels,
  };
}

function wireMounts(ms: SnapshotMount[]): object {
  return { mounts: ms.map((m) => ({ type: m.type, source: m.source, target: '', options: m.options })) };
}

function loadService(): grpc.ServiceDefinition {
  const def = protoLoader.loadSync(join('containerd', 'snapshots.proto'), {
    includeDirs: [PROTO_DIR],
    keepCase: true,
    longs: Number,
    enums: String,
    defaults: true,
  });
  const pkg = grpc.loadPackageDefinition(def) as unknown as {
    containerd: { services: { snapshots: { v1: { Snapshots: { service: grpc.ServiceDefinition } } } } };
  };
  return pkg.containerd.services.snapshots.v1.Snapshots.service;
}

type Req = Record<string, unknown>;

/** A unary handler that runs fn and answers with its result or the mapped error. */
function unary(fn: (req: Req) => Promise<object>): grpc.handleUnaryCall<Req, object> {
  return (call, callback) => {
    fn(call.request).then(
      (res) => callback(null, res),
      (err: unknown) => callback(toServiceError(err)),
    );
  };
}

function str(req: Req, field: string): string {
  const v = req[field];
  return typeof v === 'string' ? v : '';
}

function labelsOf(req: Req): Record<string, string> {
  return (req.labels ?? {}) as Record<string, string>;
}

/** The handlers, one per RPC. Cleanup has nothing to reclaim: every remove deletes its device at once. */
function handlers(sn: Snapshotter): grpc.UntypedServiceImplementation {
  return {
    Prepare: unary(async (r) => wireMounts(await sn.prepare(str(r, 'key'), str(r, 'parent'), { labels: labelsOf(r) }))),
    View: unary(async (r) => wireMounts(await sn.view(str(r, 'key'), str(r, 'parent'), { labels: labelsOf(r) }))),
    Mounts: unary(async (r) => wireMounts(await sn.mounts(str(r, 'key')))),
    Commit: unary(async (r) => {
      await sn.commit(str(r, 'name'), str(r, 'key'), { labels: labelsOf(r) });
      return {};
    }),
    Remove: unary(async (r) => {
      await sn.remove(str(r, 'key'));
      return {};
    }),
    Stat: unary(async (r) => ({ info: wireInfo(await sn.stat(str(r, 'key'))) })),
    Update: unary(async (r) => {
      const info = r.info as Req | null;
      if (!info) throw invalidArgument('info', 'a snapshot info with its name', info);
      const mask = r.update_mask as { paths?: string[] } | null;
      const updated = await sn.update({ name: str(info, 'name'), labels: labelsOf(info) }, mask?.paths ?? []);
      return { info: wireInfo(updated) };
    }),
    Usage: unary(async (r) => {
      const u = await sn.usage(str(r, 'key'));
      return { size: u.sizeBytes, inodes: u.inodes };
    }),
    Cleanup: unary(async () => ({})),
    List: (call: grpc.ServerWritableStream<Req, object>) => {
      const batch: object[] = [];
      const flush = () => {
        if (batch.length > 0) call.write({ info: batch.splice(0) });
      };
      sn.walk(
        (info) => {
          batch.push(wireInfo(info));
          if (batch.length >= 100) flush();
        },
        (call.request.filters as string[] | undefined) ?? [],
      ).then(
        () => {
          flush();
          call.end();
        },
        // grpc-js ends a server stream with a status on its 'error' event.
        (err: unknown) => void call.emit('error', toServiceError(err)),
      );
    },
  };
}

/** The longest path a unix socket address holds (sun_path is 108 bytes with its NUL). */
const SUN_PATH_MAX = 107;

/** Removes a socket file nobody listens on; refuses one a live server answers on. */
async function clearStaleSocket(path: string): Promise<void> {
  const st = await lstat(path).catch(() => null);
  if (!st) return;
  if (!st.isSocket()) throw invalidArgument('socket', 'a path that is not an existing file', path);
  const live = await new Promise<boolean>((resolve) => {
    const c = connect(path);
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
  if (live) throw new DevmapperError(`another server is listening on ${path}`, { code: 'EADDRINUSE', device: path });
  await unlink(path);
}

/** {@link serveSnapshotter}'s work, loaded with @grpc/grpc-js on its first call. */
export async function startServer(sn: Snapshotter, opts: ServeOptions): Promise<SnapshotterServer> {
  const socket = opts.socket;
  if (typeof socket !== 'string' || !socket.startsWith('/')) throw invalidArgument('socket', 'an absolute path', socket);
  const mode = opts.mode ?? 0o600;
  if (!Number.isInteger(mode) || mode < 0 || mode > 0o777) throw invalidArgument('mode', 'a file mode (0 to 0o777)', mode);
  await clearStaleSocket(socket);
  // Bound in a directory of mode 0700 beside it, given its mode, then renamed into place: the
  // socket never sits at its path with the mode bind(2) gives it (0777 less the umask), when
  // any local user could connect and drive the snapshotter.
  const dir = await mkdtemp(join(dirname(socket), '.sock-'));
  const bound = join(dir, 's');
  if (Buffer.byteLength(bound) > SUN_PATH_MAX) {
    await rmdir(dir);
    throw invalidArgument('socket', `a path of at most ${SUN_PATH_MAX - (Buffer.byteLength(bound) - Buffer.byteLength(socket))} bytes`, socket);
  }
  const server = new grpc.Server();
  server.addService(loadService(), handlers(sn));
  try {
    await new Promise<void>((resolve, reject) =>
      server.bindAsync(`unix:${bound}`, grpc.ServerCredentials.createInsecure(), (err) =>
        err ? reject(new DevmapperError(`cannot listen on ${socket}: ${err.message}`, { code: 'EADDRINUSE', device: socket, cause: err })) : resolve(),
      ),
    );
    await chmod(bound, mode);
    await rename(bound, socket);
  } catch (err) {
    server.forceShutdown();
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  await rmdir(dir);
  let closing: Promise<void> | null = null;
  return {
    socket,
    close(closeOpts = {}) {
      closing ??= (async () => {
        if (closeOpts.force) server.forceShutdown();
        else await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
        await unlink(socket).catch(() => undefined);
        await sn.close();
      })();
      return closing;
    },
  };
}
