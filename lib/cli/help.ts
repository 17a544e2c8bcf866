/** Help texts, built from the command specs so every command has one and they never drift. */
import { DEFAULT_ROOT, GLOBAL_OPTIONS } from './args';
import type { CommandSpec, OptionSpec } from './command';
import { EXIT_CODE_HELP } from './exit-codes';
import { formatTable } from './output';

function optionLines(options: Record<string, OptionSpec>): string {
  const rows = Object.entries(options).map(([name, o]) => {
    const flag = `${o.short ? `-${o.short}, ` : '    '}--${name}${o.type === 'string' ? ` ${o.value ?? 'VALUE'}` : ''}`;
    return [`  ${flag}`, o.description];
  });
  return formatTable(['', ''], rows, { header: false });
}

/** The usage line of a command: `devmapper create ID [PARENT] [options]`. */
export function usageLine(spec: CommandSpec): string {
  const pos = (spec.positionals ?? []).map((p) => {
    const word = p.variadic ? `${p.name}...` : p.name;
    return p.required ? word : `[${word}]`;
  });
  const tail = spec.passthrough ? ['--', 'CMD', '[ARGS...]'] : [];
  return ['devmapper', spec.name, ...pos, '[options]', ...tail].join(' ');
}

export function commandHelp(spec: CommandSpec): string {
  const parts = [`Usage: ${usageLine(spec)}`, '', spec.summary];
  if (spec.description) parts.push('', spec.description);
  if (spec.positionals?.length) {
    parts.push('', 'Arguments:');
    parts.push(formatTable(['', ''], spec.positionals.map((p) => [`  ${p.name}`, p.description]), { header: false }).trimEnd());
  }
  if (spec.options && Object.keys(spec.options).length) parts.push('', 'Options:', optionLines(spec.options).trimEnd());
  parts.push('', 'Global options:', optionLines(GLOBAL_OPTIONS).trimEnd());
  if (spec.examples?.length) parts.push('', 'Examples:', ...spec.examples.map((e) => `  ${e}`));
  return `${parts.join('\n')}\n`;
}

export function groupHelp(group: string, commands: readonly CommandSpec[]): string {
  const members = commands.filter((c) => c.name.startsWith(`${group} `));
  const rows = members.map((c) => [`  ${usageLine(c).replace(/^devmapper /, '').replace(/ \[options\]/, '')}`, c.summary]);
  return `Usage: devmapper ${group} COMMAND [options]\n\nCommands:\n${formatTable(['', ''], rows, { header: false })}\nSee devmapper ${group} COMMAND --help.\n`;
}

export function mainHelp(commands: readonly CommandSpec[]): string {
  const rows = commands.map((c) => [`  ${usageLine(c).replace(/^devmapper /, '').replace(/ \[options\]/, '')}`, c.summary]);
  const exits = EXIT_CODE_HELP.map(([code, text]) => [`  ${code}`, text]);
  return [
    'Usage: devmapper [global options] COMMAND [ARGS...] [options]',
    '',
    "Device-mapper thin provisioning from the command line: a Docker-compatible devicemapper",
    `root (default ${DEFAULT_ROOT}), its thin pool and its layers. Needs root and a kernel with`,
    'device-mapper; elsewhere, run it in the sandbox kernel: devmapper sandbox -- devmapper ...',
    '',
    'Commands:',
    formatTable(['', ''], rows, { header: false }).trimEnd(),
    '',
    'Global options:',
    optionLines(GLOBAL_OPTIONS).trimEnd(),
    '',
    'Exit status:',
    formatTable(['', ''], exits, { header: false }).trimEnd(),
    '',
    'Errors are one line on stderr: devmapper: MESSAGE (CODE).',
    'See devmapper COMMAND --help for a command.',
    '',
  ].join('\n');
}
