#!/usr/bin/env node
/**
 * `devmapper`: the command-line tool. This file only registers the commands and runs one;
 * each command group lives in its own file (pool, layers, inspect, peek, snapshotter, images, sandbox).
 *
 * What a command costs from spawn to exit is mostly what it loads: the command files hold
 * their specs (names, help, argument checks) at the top level and load the library's layers
 * (the Driver, the DeviceSet, dm and the addon, the Snapshotter, the sandbox runner) with `await import()`
 * inside the command that uses them. `--version`, `--help` and a mistake on the command line
 * load none of them (test/unit/cli-lazy.test.ts checks it).
 */
import { existsSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';

// `devmapper --version` and nothing else needs only package.json: run as the program, it is
// answered here, before the rest of this file's imports load the command specs, help and
// parser (18 modules, about a third of node's own start in the sandbox kernel). The output and
// exit status are runCli's for the same argument (a write to fd 1 is synchronous, so exit()
// loses nothing); any other command line, and every import of this file, goes the usual way.
if (require.main === module && process.argv.length === 3 && process.argv[2] === '--version') {
  writeSync(1, `${version()}\n`);
  process.exit(0);
}

import { DevmapperError, ErrorCodes } from '../errors';
import { parseCommandLine } from './args';
import type { CommandContext, CommandSpec, ParsedCommand } from './command';
import { errorCode, ExitCode, exitCodeFor } from './exit-codes';
import { commandHelp, groupHelp, mainHelp } from './help';
import { imageCommands } from './images';
import { inspectCommands } from './inspect';
import { layerCommands } from './layers';
import { layerTarCommands } from './layer-tar';
import { Output, type OutStream } from './output';
import { peekCommands } from './peek';
import { poolCommands } from './pool';
import { sandboxCommands } from './sandbox';
import { snapshotterCommands } from './snapshotter';

/** Every command, in help order. A new command group is one file and one line here. */
export const COMMANDS: readonly CommandSpec[] = [
  ...poolCommands,
  ...layerCommands,
  ...layerTarCommands,
  ...inspectCommands,
  ...peekCommands,
  ...snapshotterCommands,
  ...imageCommands,
  ...sandboxCommands,
];

export interface CliIO {
  stdout: OutStream;
  stderr: OutStream;
  /** The host check (injectable for tests). */
  host?: () => { hasDeviceMapper: boolean; isRoot: boolean };
  cwd?: string;
}

export function version(): string {
  const pkg = JSON.parse(readFileSync(join(__dirname, '..', '..', 'package.json'), 'utf8')) as { version: string };
  return pkg.version;
}

/** One line: `devmapper: <message> (<code>)`; an error without a code (a bug) shows ERR_UNEXPECTED. */
export function errorLine(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  const code = errorCode(err) ?? 'ERR_UNEXPECTED';
  return `devmapper: ${message.split('\n')[0]} (${code})\n`;
}

/** Refuses early, in one line, what cannot work here: no device-mapper, not root. */
export function checkHost(host: { hasDeviceMapper: boolean; isRoot: boolean }, argv: readonly string[]): void {
  if (!host.hasDeviceMapper)
    throw new DevmapperError(
      `this kernel has no device-mapper driver (not in /proc/misc); run it in the sandbox kernel: devmapper sandbox -- devmapper ${argv.join(' ')}`,
      { code: ErrorCodes.NO_DEVICE_MAPPER },
    );
  if (!host.isRoot) throw new DevmapperError('device-mapper needs root: run devmapper as root', { code: 'EPERM' });
}

function contextFor(cmd: ParsedCommand, out: Output): CommandContext {
  const ctx: CommandContext = {
    out,
    async withDriver(fn) {
      const { root, options } = cmd.global;
      // The first open of a root makes the base device's file system: say so, it takes a while.
      const label = existsSync(join(root, 'metadata', 'base')) ? `opening ${root}` : `opening ${root}: making the base device's file system`;
      const { Driver } = await import('../driver');
      const driver = await out.progress.during(label, () => Driver.init(root, options));
      let result;
      try {
        result = await fn(driver);
      } catch (err) {
        await driver.release().catch(() => undefined);
        throw err;
      }
      await driver.release();
      return result;
    },
    async withDeviceSet(fn) {
      const { root, options } = cmd.global;
      if (!existsSync(join(root, 'metadata', 'base'))) return ctx.withDriver((driver) => fn(driver.deviceSet, driver.home));
      const { DeviceSet } = await import('../deviceset');
      const ds = await out.progress.during(`opening ${root}`, () => DeviceSet.open(root, { doInit: false, options }));
      let result;
      try {
        result = await fn(ds, root);
      } catch (err) {
        await ds.release().catch(() => undefined);
        throw err;
      }
      await ds.release();
      return result;
    },
  };
  return ctx;
}

/** Runs one command line; resolves to the exit status. Never throws. */
export async function runCli(argv: readonly string[], io: CliIO): Promise<number> {
  let out = new Output(io.stdout, io.stderr, false);
  try {
    const parsed = parseCommandLine(argv, COMMANDS, io.cwd);
    if (parsed.kind === 'version') {
      io.stdout.write(`${version()}\n`);
      return ExitCode.OK;
    }
    if (parsed.kind === 'help') {
      const t = parsed.topic;
      io.stdout.write(t === null ? mainHelp(COMMANDS) : typeof t === 'string' ? groupHelp(t, COMMANDS) : commandHelp(t));
      return ExitCode.OK;
    }
    const cmd = parsed.command;
    out = new Output(io.stdout, io.stderr, cmd.global.json);
    if (cmd.spec.needsKernel !== false) checkHost((io.host ?? (await import('../sandbox')).detectHostKernel)(), argv);
    const status = await cmd.spec.run(cmd, contextFor(cmd, out));
    return status ?? ExitCode.OK;
  } catch (err) {
    out.progress.stop();
    io.stderr.write(errorLine(err));
    return exitCodeFor(err);
  }
}

if (require.main === module) {
  // exitCode rather than exit(): piped output drains first.
  void runCli(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr }).then((code) => {
    process.exitCode = code;
  });
}
