/** Every command has a help text, reachable three ways; the tool's help documents every exit status. */
import { commandHelp, mainHelp } from '../../lib/cli/help';
import { EXIT_CODE_HELP, ExitCode } from '../../lib/cli/exit-codes';
import { COMMANDS, runCli } from '../../lib/cli/main';

function capture(): { write(s: string): void; text: string } {
  return {
    text: '',
    write(s: string) {
      this.text += s;
    },
  };
}

async function stdoutOf(argv: string[]): Promise<string> {
  const stdout = capture();
  const code = await runCli(argv, { stdout, stderr: capture(), host: () => ({ hasDeviceMapper: false, isRoot: false }) });
  expect(code).toBe(0);
  return stdout.text;
}

describe('devmapper help', () => {
  test('the commands the issue asks for are all there', () => {
    const names = COMMANDS.map((c) => c.name);
    for (const n of ['pool status', 'pool resize', 'create', 'mount', 'unmount', 'remove', 'list', 'inspect', 'peek', 'sandbox']) expect(names).toContain(n);
    expect(new Set(names).size).toBe(names.length);
  });

  test.each(COMMANDS.map((c) => [c.name]))('%s: --help, -h and `help` give its text, with usage, summary and global options', async (name) => {
    const spec = COMMANDS.find((c) => c.name === name)!;
    const text = commandHelp(spec);
    expect(text).toMatch(new RegExp(`^Usage: devmapper ${name}`));
    expect(text).toContain(spec.summary);
    expect(text).toContain('--root DIR');
    expect(text).toContain('--json');
    for (const p of spec.positionals ?? []) expect(text).toContain(p.name);
    for (const o of Object.keys(spec.options ?? {})) expect(text).toContain(`--${o}`);
    const words = name.split(' ');
    expect(await stdoutOf([...words, '--help'])).toBe(text);
    expect(await stdoutOf([...words, '-h'])).toBe(text);
    expect(await stdoutOf(['help', ...words])).toBe(text);
  });

  test('the tool help lists every command and every exit status, without a kernel or root', async () => {
    const text = await stdoutOf(['--help']);
    expect(text).toBe(mainHelp(COMMANDS));
    expect(await stdoutOf([])).toBe(text);
    for (const c of COMMANDS) expect(text).toContain(c.summary);
    const documented = EXIT_CODE_HELP.map(([code]) => code).sort((a, b) => a - b);
    expect(documented).toEqual(Object.values(ExitCode).sort((a, b) => a - b));
    for (const [code, meaning] of EXIT_CODE_HELP) expect(text).toMatch(new RegExp(`^  ${code} +${meaning.replace(/[().]/g, '\\$&')}$`, 'm'));
    expect(text).toContain('devmapper sandbox -- devmapper');
  });

  test('group help lists its commands', async () => {
    const text = await stdoutOf(['pool', '--help']);
    expect(text).toMatch(/pool status/);
    expect(text).toMatch(/pool resize SIZE/);
  });
});
