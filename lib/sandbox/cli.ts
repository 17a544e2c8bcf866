/** `node dist/sandbox/cli.js [options] -- CMD...`: run CMD under a kernel with device-mapper. */
import { spawn } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { DevmapperError } from '../errors';
import { chooseKernel, type KernelPreference } from './kernel';
import { runInSandbox, SANDBOX_FAILURE_EXIT } from './runner';

export const USAGE = `Usage: node dist/sandbox/cli.js [options] [--] CMD [ARGS...]

Runs CMD as root under a kernel with device-mapper: the host's when it has one (and we are
root), else a user-mode Linux guest that sees the host's files. Exits with CMD's status;
125 when the guest gave no result (panic, timeout, init failure), 2 on bad arguments.

Options:
  --kernel auto|host|sandbox  which kernel runs CMD (default auto)
  --udev on|off               run udevd in the guest (default on). On the host udev is
                              what it is: off sets DM_DISABLE_UDEV=1 for CMD instead
  --mem SIZE                  guest memory, e.g. 2G or 512M (default 2G)
  --timeout SECONDS           kill CMD (or the guest) after this long (default none)
  --cwd DIR                   directory CMD runs in (default the current one)
  -h, --help                  show this text

CMD sees DEVMAPPER_SANDBOX=1 in the guest and DEVMAPPER_UDEV=on|off.`;

/** A mistake in the command line: reported in one line, exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

export interface CliRun {
  kind: 'run';
  kernel: KernelPreference;
  /** undefined: not given (the guest runs udev; the host's is used as it is). */
  udev: boolean | undefined;
  memory: string;
  /** undefined: no limit. */
  timeoutMs: number | undefined;
  cwd: string;
  argv: string[];
}
export type CliCommand = { kind: 'help' } | CliRun;

const VALUE_OPTIONS = ['kernel', 'udev', 'mem', 'timeout', 'cwd'];

/**
 * Splits the command line into our options and CMD: CMD starts after `--` or at the first
 * word that is neither an option nor an option's value.
 */
function splitCommand(args: string[]): { options: string[]; command: string[] } {
  for (let i = 0; i < args.length; i++) {
    const a = args[i] as string;
    if (a === '--') return { options: args.slice(0, i), command: args.slice(i + 1) };
    if (!a.startsWith('-') || a === '-') return { options: args.slice(0, i), command: args.slice(i) };
    if (a.startsWith('--') && !a.includes('=') && VALUE_OPTIONS.includes(a.slice(2))) i++;
  }
  return { options: args, command: [] };
}

export function parseCliArgs(args: string[], baseCwd: string = process.cwd()): CliCommand {
  const { options, command } = splitCommand(args);
  let values;
  try {
    ({ values } = parseArgs({
      args: options,
      strict: true,
      allowPositionals: false,
      options: {
        kernel: { type: 'string' },
        udev: { type: 'string' },
        mem: { type: 'string' },
        timeout: { type: 'string' },
        cwd: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    throw new UsageError((err as Error).message.split('\n')[0]);
  }
  if (values.help) return { kind: 'help' };

  const kernel = values.kernel ?? 'auto';
  if (kernel !== 'auto' && kernel !== 'host' && kernel !== 'sandbox') {
    throw new UsageError(`--kernel must be auto, host or sandbox, not ${JSON.stringify(kernel)}`);
  }
  let udev: boolean | undefined;
  if (values.udev !== undefined) {
    if (values.udev !== 'on' && values.udev !== 'off') {
      throw new UsageError(`--udev must be on or off, not ${JSON.stringify(values.udev)}`);
    }
    udev = values.udev === 'on';
  }
  const memory = values.mem ?? '2G';
  if (!/^[1-9][0-9]*[KMG]?$/i.test(memory)) {
    throw new UsageError(`--mem must be a size such as 2G or 512M, not ${JSON.stringify(memory)}`);
  }
  let timeoutMs: number | undefined;
  if (values.timeout !== undefined) {
    const seconds = Number(values.timeout);
    if (values.timeout.trim() === '' || !Number.isFinite(seconds) || seconds < 0) {
      throw new UsageError(`--timeout must be a number of seconds, not ${JSON.stringify(values.timeout)}`);
    }
    timeoutMs = seconds > 0 ? Math.ceil(seconds * 1000) : undefined;
  }
  const cwd = resolve(baseCwd, values.cwd ?? '.');
  if (command.length === 0) throw new UsageError('no command given (put it after --)');
  return { kind: 'run', kernel, udev, memory, timeoutMs, cwd, argv: command };
}

function exitCodeOf(code: number | null, signal: NodeJS.Signals | null): number {
  if (code !== null) return code;
  return 128 + (signal ? (osConstants.signals[signal] ?? 0) : 0);
}

/** The host kernel has device-mapper: run CMD directly, telling it how udev stands. */
function runOnHost(run: CliRun): Promise<number> {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.DEVMAPPER_SANDBOX;
  const hostUdev = existsSync('/run/udev/control');
  if (run.udev === false) {
    // We cannot stop the host's udevd; libdevmapper can be told not to use it.
    env.DM_DISABLE_UDEV = '1';
    env.DEVMAPPER_UDEV = 'off';
  } else {
    if (run.udev === true && !hostUdev) {
      process.stderr.write('sandbox: --udev on, but no udevd runs on this host (no /run/udev/control)\n');
    }
    env.DEVMAPPER_UDEV = hostUdev ? 'on' : 'off';
  }
  return new Promise((resolveCode) => {
    const child = spawn(run.argv[0] as string, run.argv.slice(1), { cwd: run.cwd, env, stdio: 'inherit' });
    // Ctrl-C reaches the child through the terminal; other signals sent to us are passed on.
    const forward = (sig: NodeJS.Signals): void => {
      if (sig !== 'SIGINT') child.kill(sig);
    };
    const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
    for (const s of signals) process.on(s, forward);
    let killTimer: NodeJS.Timeout | undefined;
    const timer =
      run.timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            process.stderr.write(`sandbox: timed out after ${run.timeoutMs! / 1000} s; killing the command\n`);
            child.kill('SIGTERM');
            killTimer = setTimeout(() => child.kill('SIGKILL'), 5000);
          }, run.timeoutMs);
    const done = (code: number): void => {
      if (timer) clearTimeout(timer);
      if (killTimer) clearTimeout(killTimer);
      for (const s of signals) process.off(s, forward);
      resolveCode(code);
    };
    child.once('error', (err) => {
      process.stderr.write(`sandbox: cannot run ${run.argv[0]}: ${err.message}\n`);
      done(127);
    });
    child.once('exit', (code, signal) => done(exitCodeOf(code, signal)));
  });
}

export async function main(args: string[]): Promise<number> {
  let cmd: CliCommand;
  try {
    cmd = parseCliArgs(args);
    if (cmd.kind === 'run' && !(existsSync(cmd.cwd) && statSync(cmd.cwd).isDirectory())) {
      throw new UsageError(`--cwd: ${cmd.cwd} is not a directory`);
    }
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`sandbox: ${err.message} (see --help)\n`);
    return 2;
  }
  if (cmd.kind === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (chooseKernel(cmd.kernel) === 'host') return runOnHost(cmd);
  try {
    const result = await runInSandbox({
      argv: cmd.argv,
      cwd: cmd.cwd,
      udev: cmd.udev ?? true,
      memory: cmd.memory,
      timeoutMs: cmd.timeoutMs,
    });
    return result.exitCode;
  } catch (err) {
    if (!(err instanceof DevmapperError)) throw err;
    process.stderr.write(`${err.message.startsWith('sandbox') ? '' : 'sandbox: '}${err.message}\n`);
    return SANDBOX_FAILURE_EXIT;
  }
}

if (require.main === module) {
  // exitCode rather than exit(): piped output still drains.
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`sandbox: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exitCode = SANDBOX_FAILURE_EXIT;
    },
  );
}
