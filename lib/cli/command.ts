/**
 * The shape of a `devmapper` command: its name, help, options and positional arguments, and
 * a small function taking the parsed arguments and an output. main.ts only registers them.
 */
import type { DeviceSet } from '../deviceset';
import type { Driver } from '../driver';
import { invalidArgument } from '../errors';
import type { Output } from './output';

export interface OptionSpec {
  type: 'string' | 'boolean';
  short?: string;
  multiple?: boolean;
  /** The value's name in help ("SIZE"); string options only. */
  value?: string;
  description: string;
}

export interface PositionalSpec {
  /** Upper case, as help shows it ("ID"). */
  name: string;
  required: boolean;
  /** Takes every remaining word (only the last one). */
  variadic?: boolean;
  description: string;
}

/** The options every command takes. */
export interface GlobalOptions {
  root: string;
  json: boolean;
  /** Docker's dm.key=value strings, in order. */
  options: string[];
}

export interface ParsedCommand {
  spec: CommandSpec;
  global: GlobalOptions;
  /** The command's own options, by long name. */
  values: Record<string, string | boolean | string[] | undefined>;
  /** Positionals by name (variadic ones as arrays). */
  args: Record<string, string | string[] | undefined>;
  /** passthrough commands: the words after `--`. */
  rest: string[];
}

/** What a command gets besides its arguments. */
export interface CommandContext {
  out: Output;
  /** Opens the Driver on --root with --option, runs fn, and releases the Driver whatever happens. */
  withDriver<T>(fn: (driver: Driver) => Promise<T>): Promise<T>;
  /**
   * For the commands that only read (pool status, list, inspect): opens the DeviceSet on
   * --root without the base device's checks only a writer needs (activating the base to verify
   * its file system, growing it to dm.basesize), runs fn with it and the root, and releases it
   * whatever happens. A root without a base device is opened as withDriver opens it (the pool
   * and the base are made), so that reading a new root first leaves what it always left.
   */
  withDeviceSet<T>(fn: (deviceSet: DeviceSet, home: string) => Promise<T>): Promise<T>;
}

export interface CommandSpec {
  /** One or two words: 'list', 'pool status'. */
  name: string;
  summary: string;
  /** More help, shown by `devmapper CMD --help`. */
  description?: string;
  options?: Record<string, OptionSpec>;
  positionals?: PositionalSpec[];
  /** Everything after `--` is the command's (sandbox). */
  passthrough?: boolean;
  /** Needs root and a device-mapper kernel (default true). */
  needsKernel?: boolean;
  examples?: string[];
  /** Checks argument values that need no kernel (sizes, paths): a mistake is exit 2 before anything is opened. */
  check?(cmd: ParsedCommand): void;
  /** Resolves to the exit status when not 0 (sandbox carries its command's out). */
  run(cmd: ParsedCommand, ctx: CommandContext): Promise<number | void>;
}

/** A positional argument that is known to be a single string (required, not variadic). */
export function arg(cmd: ParsedCommand, name: string): string {
  const v = cmd.args[name];
  if (typeof v !== 'string') throw invalidArgument(name, 'a single value', v);
  return v;
}

/** An optional single positional, undefined when not given. */
export function optionalArg(cmd: ParsedCommand, name: string): string | undefined {
  const v = cmd.args[name];
  return typeof v === 'string' ? v : undefined;
}
