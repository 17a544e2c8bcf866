/**
 * The gRPC service's entry point. @grpc/grpc-js, proto-loader and the .proto files (about 120
 * modules) load on the first call, not with the package: a program that only uses the
 * DeviceSet, or the Snapshotter in process, never pays for them.
 */
import type { ServeOptions, SnapshotterServer } from './server';
import type { Snapshotter } from './snapshotter';

/**
 * Serves the Snapshotter as containerd's snapshots service on a unix socket (mode 0600 by
 * default). The server owns the Snapshotter from then on: close() closes it.
 *
 * @example
 * ```ts
 * const sn = await Snapshotter.open('/var/lib/devmapper-snapshotter');
 * const server = await serveSnapshotter(sn, { socket: '/run/devmapper-snapshotter.sock' });
 * process.once('SIGTERM', () => void server.close());
 * ```
 * @throws {@link DevmapperError} ERR_INVALID_ARGUMENT (socket, mode); EADDRINUSE when a server answers on the socket
 */
export async function serveSnapshotter(sn: Snapshotter, opts: ServeOptions): Promise<SnapshotterServer> {
  const { startServer } = await import('./server');
  return startServer(sn, opts);
}
