/** `devmapper sandbox [--udev on|off] -- CMD...`: runs CMD under a device-mapper kernel (lib/sandbox). */
import { usageError } from './args';
import type { CommandContext, CommandSpec, ParsedCommand } from './command';

/** The sandbox runner's own command line for these arguments. */
export function sandboxArgv(cmd: ParsedCommand): string[] {
  const out: string[] = [];
  const udev = cmd.values.udev as string | undefined;
  if (udev !== undefined) {
    if (udev !== 'on' && udev !== 'off') throw usageError(`sandbox: --udev must be on or off, not ${JSON.stringify(udev)}`, '--udev');
    out.push('--udev', udev);
  }
  for (const name of ['kernel', 'mem', 'timeout'] as const) {
    const v = cmd.values[name] as string | undefined;
    if (v !== undefined) out.push(`--${name}`, v);
  }
  return [...out, '--', ...cmd.rest];
}

export async function sandbox(cmd: ParsedCommand, _ctx: CommandContext): Promise<number> {
  // The runner checks the rest (kernel, mem, timeout) and reports in its own words.
  const argv = sandboxArgv(cmd);
  const { sandboxMain } = await import('../sandbox');
  return sandboxMain(argv);
}

export const sandboxCommands: CommandSpec[] = [
  {
    name: 'sandbox',
    summary: 'runs CMD as root under a kernel with device-mapper (user-mode Linux when the host lacks it)',
    description:
      "Exits with CMD's status (125 when the guest gave no result). The guest sees the host's files,\n" +
      'and its /tmp is a fresh tmpfs.',
    passthrough: true,
    needsKernel: false,
    options: {
      udev: { type: 'string', value: 'on|off', description: 'run udevd in the guest (default on)' },
      kernel: { type: 'string', value: 'auto|host|sandbox', description: 'which kernel runs CMD (default auto)' },
      mem: { type: 'string', value: 'SIZE', description: 'guest memory, e.g. 2G (default 2G)' },
      timeout: { type: 'string', value: 'SECONDS', description: 'kill CMD after this long (default none)' },
    },
    check: (cmd) => void sandboxArgv(cmd),
    examples: ['devmapper sandbox -- devmapper pool status', 'devmapper sandbox --udev off -- npx devmapper --root /tmp/dm list'],
    run: sandbox,
  },
];
