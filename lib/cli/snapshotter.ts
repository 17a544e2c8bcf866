/** `devmapper snapshotter serve`: containerd's snapshots service on a unix socket, until SIGTERM. */
import type { UdevReaperStats } from '../dm';
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

/** The longest SIGUSR2's settle waits (each cookie is bounded by udevWaitTimeoutMs, 30 s by default). */
const SETTLE_TIMEOUT_MS = 60_000;

/** The line SIGUSR2 prints on stderr once udev is done (after `devmapper: `); the benchmark reads it. */
export function settledLine(ms: number, s: UdevReaperStats): string {
  return `udev settled in ${ms.toFixed(3)} ms: ${s.pending} pending, ${s.reaped} reaped, ${s.timedOut} timed out`;
}

export async function snapshotterServe(cmd: ParsedCommand, ctx: CommandContext): Promise<number> {
  const socket = socketOf(cmd);
  const mode = modeOf(cmd);
  const { root, options } = cmd.global;
  // Loaded when the command runs: --help and usage errors load no library layer.
  const { serveSnapshotter, Snapshotter } = await import('../snapshotter');
  const sn = await Snapshotter.open(root, { options });
  // SIGUSR2: wait until udev has done the work the served calls left behind (udevReap: they
  // return before udev's rules ran), then say so. Installed before the socket listens.
  const dm = await import('../dm');
  const settle = () => {
    const now = dm.udevReaperStats();
    // Nothing pending: nothing to wait for (0 ms), as the benchmark counts it in its own process.
    if (now.pending === 0) return ctx.out.note(settledLine(0, now));
    const t0 = process.hrtime.bigint();
    dm.udevSettle(SETTLE_TIMEOUT_MS).then(
      (s) => ctx.out.note(settledLine(Number(process.hrtime.bigint() - t0) / 1e6, s)),
      (err: unknown) => ctx.out.note(`udev settle failed: ${String(err)}`),
    );
  };
  process.on('SIGUSR2', settle);
  let server;
  try {
    server = await serveSnapshotter(sn, { socket, mode });
  } catch (err) {
    process.off('SIGUSR2', settle);
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
  process.off('SIGUSR2', settle);
  return 0;
}

export const snapshotterCommands: CommandSpec[] = [
  {
    name: 'snapshotter serve',
    summary: "serves containerd's snapshots API (a proxy snapshotter) on a unix socket until SIGTERM",
    description:
      "The snapshots live in the DeviceSet at --root, their records in ROOT/snapshotter/snapshots.db.\n" +
      'SIGTERM (or SIGINT) lets the calls in flight finish, shuts the DeviceSet down and exits 0.\n' +
      "SIGUSR2 waits (at most 60 s) until udev has done the work the served calls left behind (they do not\n" +
      "wait for udev's rules) and then prints `udev settled in MS ms: N pending, N reaped, N timed out` on stderr.\n" +
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
