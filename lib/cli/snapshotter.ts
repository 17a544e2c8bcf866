/** `devmapper snapshotter serve`: containerd's snapshots service on a unix socket, until SIGTERM. */
import { usageError } from './args';
import type { CommandContext, CommandSpec, ParsedCommand } from './command';

function socketOf(cmd: ParsedCommand): string {
  const socket = cmd.values.socket;
  if (typeof socket !== 'string' || !socket.startsWith('/')) throw usageError('snapshotter serve: --socket PATH (an absolute path) is required', '--socket');
  return socket;
}

function modeOf(cmd: ParsedCommand): number {
  const text = cmd.values['socket-mode'];
  if (text === undefined) return 0o600;
  if (typeof text !== 'string' || !/^[0-7]{3,4}$/.test(text)) throw usageError(`snapshotter serve: --socket-mode must be octal such as 0660, not ${JSON.stringify(text)}`, '--socket-mode');
  return parseInt(text, 8);
}

export async function snapshotterServe(cmd: ParsedCommand, ctx: CommandContext): Promise<number> {
  const socket = socketOf(cmd);
  const mode = modeOf(cmd);
  const { root, options } = cmd.global;
  // Loaded when the command runs: --help and usage errors load no library layer.
  const { serveSnapshotter, Snapshotter } = await import('../snapshotter');
  const sn = await Snapshotter.open(root, { options });
  let server;
  try {
    server = await serveSnapshotter(sn, { socket, mode });
  } catch (err) {
    await sn.close();
    throw err;
  }
  const r = sn.recovery;
  const repaired = r.rolledBack.length + r.removed.length + r.orphanDevices.length + r.droppedRecords.length;
  if (repaired > 0) ctx.out.note(`repaired at open: ${JSON.stringify(r)}`);
  ctx.out.note(`serving containerd snapshots on ${socket} (root ${root})`);
  // The first SIGTERM or SIGINT drains the calls in flight; a second one cancels them.
  await new Promise<void>((resolve) => {
    const stop = () => {
      process.once('SIGTERM', force);
      process.once('SIGINT', force);
      void server.close().then(resolve);
    };
    const force = () => void server.close({ force: true });
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
  return 0;
}

export const snapshotterCommands: CommandSpec[] = [
  {
    name: 'snapshotter serve',
    summary: "serves containerd's snapshots API (a proxy snapshotter) on a unix socket until SIGTERM",
    description:
      "The snapshots live in the DeviceSet at --root, their records in ROOT/snapshotter/snapshots.db.\n" +
      'SIGTERM (or SIGINT) lets the calls in flight finish, shuts the DeviceSet down and exits 0.\n' +
      'A second server on the same root is refused (ERR_ROOT_BUSY, exit 4).',
    options: {
      socket: { type: 'string', value: 'PATH', description: 'the unix socket to listen on (required)' },
      'socket-mode': { type: 'string', value: 'MODE', description: "the socket's mode, octal (default 0600)" },
    },
    check: (cmd) => {
      socketOf(cmd);
      modeOf(cmd);
    },
    examples: ['devmapper --root /var/lib/devmapper-snapshotter snapshotter serve --socket /run/devmapper-snapshotter.sock'],
    run: snapshotterServe,
  },
];
