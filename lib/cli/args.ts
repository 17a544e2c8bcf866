/**
 * The command line, parsed with Node's util.parseArgs: global options anywhere, then a
 * command of one or two words ('list', 'pool status'), its options and positionals. Every
 * mistake is a DevmapperError ERR_INVALID_ARGUMENT naming the argument (exit status 2).
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { DevmapperError, ErrorCodes } from '../errors';
import type { CommandSpec, GlobalOptions, OptionSpec, ParsedCommand } from './command';

export const DEFAULT_ROOT = '/var/lib/devmapper';

export const GLOBAL_OPTIONS: Readonly<Record<string, OptionSpec>> = {
  root: { type: 'string', value: 'DIR', description: `the devmapper root (default ${DEFAULT_ROOT}; a Docker root such as /var/lib/docker/devicemapper works too)` },
  json: { type: 'boolean', description: 'print one JSON document on stdout instead of a table' },
  option: { type: 'string', short: 'o', multiple: true, value: 'dm.KEY=VALUE', description: "a DeviceSet option, Docker's dm.* keys (repeatable)" },
  help: { type: 'boolean', short: 'h', description: 'show help (for the tool, or for a command)' },
  version: { type: 'boolean', description: 'print the version' },
};

export type ParsedCommandLine =
  | { kind: 'help'; topic: CommandSpec | string | null }
  | { kind: 'version' }
  | { kind: 'run'; command: ParsedCommand };

/** A mistake on the command line: exit status 2, the message naming the argument. */
export function usageError(message: string, argument: string): DevmapperError {
  return new DevmapperError(message, { code: ErrorCodes.INVALID_ARGUMENT, argument });
}

/** The first word of every command name: 'pool' for 'pool status'. */
function groups(commands: readonly CommandSpec[]): Set<string> {
  return new Set(commands.filter((c) => c.name.includes(' ')).map((c) => c.name.split(' ')[0] as string));
}

/** Options (of any command) that take a value: their value is not a command word. */
function valueOptions(commands: readonly CommandSpec[]): { long: Set<string>; short: Set<string> } {
  const long = new Set<string>();
  const short = new Set<string>();
  for (const opts of [GLOBAL_OPTIONS, ...commands.map((c) => c.options ?? {})]) {
    for (const [name, o] of Object.entries(opts)) {
      if (o.type !== 'string') continue;
      long.add(name);
      if (o.short) short.add(o.short);
    }
  }
  return { long, short };
}

/** Indexes of the words that are not options nor option values, before any `--`. */
function wordIndexes(args: readonly string[], commands: readonly CommandSpec[]): number[] {
  const { long, short } = valueOptions(commands);
  const out: number[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i] as string;
    if (a === '--') break;
    if (a.startsWith('--')) {
      if (!a.includes('=') && long.has(a.slice(2))) i++;
    } else if (a.startsWith('-') && a.length > 1) {
      if (a.length === 2 && short.has(a.slice(1))) i++;
    } else {
      out.push(i);
    }
  }
  return out;
}

/** parseArgs' messages are long and name Node's API: say it our way. */
function rephrase(err: unknown, where: string): DevmapperError {
  const e = err as { code?: string; message?: string };
  const quoted = /'(-{1,2}[^' ]*)/.exec(e.message ?? '')?.[1] ?? '';
  const name = quoted.replace(/^-+/, '');
  switch (e.code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
      return usageError(`${where}unknown option ${quoted}`, quoted);
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE':
      if (/argument missing/.test(e.message ?? '')) return usageError(`${where}option ${quoted} needs a value`, quoted);
      return usageError(`${where}option ${quoted} takes no value`, quoted);
    default:
      return usageError(`${where}${(e.message ?? String(err)).split('\n')[0]}`, name || 'arguments');
  }
}

function toParseArgsOptions(specs: Record<string, OptionSpec>): Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }> {
  const out: Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }> = {};
  for (const [name, o] of Object.entries(specs)) {
    out[name] = { type: o.type, ...(o.short ? { short: o.short } : {}), ...(o.multiple ? { multiple: true } : {}) };
  }
  return out;
}

/** Parses a whole command line (process.argv.slice(2)). */
export function parseCommandLine(argv: readonly string[], commands: readonly CommandSpec[], cwd: string = process.cwd()): ParsedCommandLine {
  const byName = new Map(commands.map((c) => [c.name, c]));
  const groupNames = groups(commands);
  const words = wordIndexes(argv, commands);

  let spec: CommandSpec | undefined;
  let used: number[] = [];
  let topicGroup: string | null = null;
  const first = words[0] === undefined ? undefined : (argv[words[0]] as string);
  if (first === 'help') {
    // `devmapper help [CMD...]`: the rest names the topic.
    const rest = words.slice(1).map((i) => argv[i] as string);
    const topic = rest.join(' ');
    if (topic === '') return { kind: 'help', topic: null };
    const found = byName.get(topic) ?? (groupNames.has(topic) ? topic : undefined);
    if (found === undefined) throw usageError(`help: unknown command ${JSON.stringify(topic)}`, 'COMMAND');
    return { kind: 'help', topic: found };
  }
  if (first !== undefined) {
    if (groupNames.has(first)) {
      const second = words[1] === undefined ? undefined : (argv[words[1]] as string);
      spec = second === undefined ? undefined : byName.get(`${first} ${second}`);
      if (spec) used = [words[0] as number, words[1] as number];
      else if (second === undefined) topicGroup = first;
      else throw usageError(`${first}: unknown command ${JSON.stringify(second)} (see devmapper ${first} --help)`, 'COMMAND');
    } else {
      spec = byName.get(first);
      if (!spec) throw usageError(`unknown command ${JSON.stringify(first)} (see devmapper --help)`, 'COMMAND');
      used = [words[0] as number];
    }
  }

  const dash = argv.indexOf('--');
  const before = dash === -1 ? [...argv] : argv.slice(0, dash);
  const after = dash === -1 ? [] : argv.slice(dash + 1);
  const remaining = before.filter((_, i) => !used.includes(i));
  const where = spec ? `${spec.name}: ` : topicGroup ? `${topicGroup}: ` : '';
  const optionSpecs = { ...GLOBAL_OPTIONS, ...(spec?.options ?? {}) };
  let values: Record<string, string | boolean | Array<string | boolean> | undefined>;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: spec?.passthrough || dash === -1 ? remaining : [...remaining, '--', ...after],
      options: toParseArgsOptions(optionSpecs),
      strict: true,
      allowPositionals: true,
    }));
  } catch (err) {
    throw rephrase(err, where);
  }

  if (values.help) return { kind: 'help', topic: spec ?? topicGroup };
  if (values.version && !spec) return { kind: 'version' };
  if (topicGroup !== null) {
    const subs = commands.filter((c) => c.name.startsWith(`${topicGroup} `)).map((c) => c.name.split(' ')[1]);
    throw usageError(`${topicGroup}: missing command (${subs.join(', ')})`, 'COMMAND');
  }
  if (!spec) {
    if (positionals.length > 0) throw usageError(`unknown command ${JSON.stringify(positionals[0])}`, 'COMMAND');
    return { kind: 'help', topic: null };
  }
  if (values.version) throw usageError(`${where}--version is not an option of a command`, '--version');

  const rootText = values.root as string | undefined;
  if (rootText !== undefined && (rootText === '' || rootText.includes('\0'))) throw usageError(`${where}--root needs a directory`, '--root');
  const global: GlobalOptions = {
    root: resolve(cwd, rootText ?? DEFAULT_ROOT),
    json: values.json === true,
    options: (values.option as string[] | undefined) ?? [],
  };
  for (const o of global.options) {
    if (!/^dm\.[a-z_]+=/.test(o)) throw usageError(`${where}--option takes dm.KEY=VALUE, not ${JSON.stringify(o)}`, '--option');
  }

  const own: Record<string, string | boolean | string[] | undefined> = {};
  for (const name of Object.keys(spec.options ?? {})) own[name] = values[name] as string | boolean | string[] | undefined;

  const args: Record<string, string | string[] | undefined> = {};
  const pos = [...positionals];
  for (const p of spec.positionals ?? []) {
    if (p.variadic) {
      if (p.required && pos.length === 0) throw usageError(`${where}missing ${p.name}`, p.name);
      args[p.name] = pos.splice(0);
    } else {
      const v = pos.shift();
      if (v === undefined && p.required) throw usageError(`${where}missing ${p.name}`, p.name);
      if (v === '') throw usageError(`${where}${p.name} is empty`, p.name);
      args[p.name] = v;
    }
  }
  if (pos.length > 0) {
    if (spec.passthrough) throw usageError(`${where}put the command to run after --, as in devmapper ${spec.name} -- ${pos.join(' ')}`, 'CMD');
    throw usageError(`${where}unexpected argument ${JSON.stringify(pos[0])}`, pos[0] as string);
  }

  let rest: string[] = [];
  if (spec.passthrough) {
    rest = [...after];
    if (rest.length === 0) throw usageError(`${where}missing the command to run (put it after --)`, 'CMD');
  }
  const command: ParsedCommand = { spec, global, values: own, args, rest };
  spec.check?.(command);
  return { kind: 'run', command };
}
