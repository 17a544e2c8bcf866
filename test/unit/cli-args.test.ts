/** The devmapper command line: parsing, and the one-line exit-2 message for every mistake. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_ROOT, parseCommandLine } from '../../lib/cli/args';
import { COMMANDS, runCli } from '../../lib/cli/main';
import { DevmapperError, ErrorCodes } from '../../lib/errors';

function capture(): { write(s: string): void; text: string; isTTY?: boolean } {
  return {
    text: '',
    write(s: string) {
      this.text += s;
    },
  };
}

/** Runs the CLI with a host that has device-mapper and root, so only parsing can fail. */
async function run(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = capture();
  const stderr = capture();
  const code = await runCli(argv, { stdout, stderr, host: () => ({ hasDeviceMapper: true, isRoot: true }), cwd: '/work' });
  return { code, stdout: stdout.text, stderr: stderr.text };
}

function parseError(argv: string[]): DevmapperError {
  try {
    parseCommandLine(argv, COMMANDS, '/work');
  } catch (err) {
    expect(err).toBeInstanceOf(DevmapperError);
    return err as DevmapperError;
  }
  throw new Error(`expected ${argv.join(' ')} to be refused`);
}

describe('devmapper command line: parsing', () => {
  test('global options anywhere, defaults, repeatable --option', () => {
    const p = parseCommandLine(['--root', 'r', 'create', '-o', 'dm.basesize=64M', 'ctr', 'ctr-init', '--json', '--option=dm.fs=ext4', '--size', '1G'], COMMANDS, '/work');
    expect(p.kind).toBe('run');
    if (p.kind !== 'run') return;
    expect(p.command.spec.name).toBe('create');
    expect(p.command.global).toEqual({ root: '/work/r', json: true, options: ['dm.basesize=64M', 'dm.fs=ext4'] });
    expect(p.command.args).toEqual({ ID: 'ctr', PARENT: 'ctr-init' });
    expect(p.command.values).toEqual({ size: '1G' });

    const d = parseCommandLine(['list'], COMMANDS, '/work');
    expect(d.kind === 'run' && d.command.global).toEqual({ root: DEFAULT_ROOT, json: false, options: [] });
  });

  test('two-word commands, variadic ids, optional positionals', () => {
    const s = parseCommandLine(['pool', 'resize', '2G'], COMMANDS);
    expect(s.kind === 'run' && [s.command.spec.name, s.command.args]).toEqual(['pool resize', { SIZE: '2G' }]);
    const r = parseCommandLine(['remove', 'a', 'b', 'c', '-f'], COMMANDS);
    expect(r.kind === 'run' && [r.command.args, r.command.values]).toEqual([{ ID: ['a', 'b', 'c'] }, { force: true }]);
    const c = parseCommandLine(['create', 'image'], COMMANDS);
    expect(c.kind === 'run' && c.command.args).toEqual({ ID: 'image', PARENT: undefined });
    const p = parseCommandLine(['peek', 'ctr', 'rootfs/etc'], COMMANDS);
    expect(p.kind === 'run' && p.command.args).toEqual({ ID: 'ctr', PATH: 'rootfs/etc' });
  });

  test('sandbox takes everything after -- as its command, options included', () => {
    const p = parseCommandLine(['sandbox', '--udev', 'off', '--', 'devmapper', '--json', 'list', '-x'], COMMANDS);
    expect(p.kind === 'run' && [p.command.values.udev, p.command.rest]).toEqual(['off', ['devmapper', '--json', 'list', '-x']]);
  });

  test('-- ends options for other commands: an id may start with a dash', () => {
    const p = parseCommandLine(['remove', '--', '-odd'], COMMANDS);
    expect(p.kind === 'run' && p.command.args).toEqual({ ID: ['-odd'] });
  });

  test('help and version', () => {
    expect(parseCommandLine([], COMMANDS)).toEqual({ kind: 'help', topic: null });
    expect(parseCommandLine(['--help'], COMMANDS)).toEqual({ kind: 'help', topic: null });
    expect(parseCommandLine(['--version'], COMMANDS)).toEqual({ kind: 'version' });
    const h = parseCommandLine(['create', '-h'], COMMANDS);
    expect(h.kind === 'help' && typeof h.topic === 'object' && h.topic?.name).toBe('create');
    // Help wins over missing arguments.
    const m = parseCommandLine(['inspect', '--help'], COMMANDS);
    expect(m.kind === 'help' && typeof m.topic === 'object' && m.topic?.name).toBe('inspect');
    expect(parseCommandLine(['pool', '--help'], COMMANDS)).toEqual({ kind: 'help', topic: 'pool' });
    const hp = parseCommandLine(['help', 'pool', 'status'], COMMANDS);
    expect(hp.kind === 'help' && typeof hp.topic === 'object' && hp.topic?.name).toBe('pool status');
  });

  test.each([
    [['frobnicate'], 'COMMAND', /unknown command "frobnicate"/],
    [['pool'], 'COMMAND', /pool: missing command \(status, resize\)/],
    [['pool', 'drain'], 'COMMAND', /pool: unknown command "drain"/],
    [['list', '--bogus'], '--bogus', /^list: unknown option --bogus$/],
    [['list', '-z'], '-z', /^list: unknown option -z$/],
    [['list', '--root'], '--root', /^list: option --root needs a value$/],
    [['list', '--json=yes'], '--json', /^list: option --json takes no value$/],
    [['inspect'], 'ID', /^inspect: missing ID$/],
    [['mount'], 'ID', /^mount: missing ID$/],
    [['remove'], 'ID', /^remove: missing ID$/],
    [['create', ''], 'ID', /^create: ID is empty$/],
    [['list', 'extra'], 'extra', /^list: unexpected argument "extra"$/],
    [['create', 'x', '--size', '12 apples'], '--size', /create: --size must be a size such as 20G/],
    [['create', 'x', '--size', '0'], '--size', /positive and a multiple of 512/],
    [['create', 'x', '--size', '1000'], '--size', /positive and a multiple of 512/],
    [['pool', 'resize', 'big'], 'SIZE', /pool resize: SIZE must be a size/],
    [['pool', 'resize'], 'SIZE', /^pool resize: missing SIZE$/],
    [['list', '--option', 'basesize=1G'], '--option', /--option takes dm.KEY=VALUE/],
    [['sandbox'], 'CMD', /missing the command to run/],
    [['sandbox', 'ls'], 'CMD', /put the command to run after --/],
    [['sandbox', '--udev', 'maybe', '--', 'ls'], '--udev', /--udev must be on or off/],
    [['list', '--version'], '--version', /--version is not an option of a command/],
    [['help', 'nosuch'], 'COMMAND', /help: unknown command "nosuch"/],
  ])('%j is refused naming %s', (argv, argument, message) => {
    const err = parseError(argv);
    expect(err.code).toBe(ErrorCodes.INVALID_ARGUMENT);
    expect(err.argument).toBe(argument);
    expect(err.message).toMatch(message);
    expect(err.message).not.toContain('\n');
  });

  test('a mistake is exit 2 with one line on stderr, before any kernel check', async () => {
    const stdout = capture();
    const stderr = capture();
    const host = jest.fn(() => ({ hasDeviceMapper: false, isRoot: false }));
    const code = await runCli(['create', 'x', '--size', 'huge'], { stdout, stderr, host });
    expect(code).toBe(2);
    expect(host).not.toHaveBeenCalled();
    expect(stdout.text).toBe('');
    expect(stderr.text).toBe('devmapper: create: --size must be a size such as 20G or 512M, not "huge" (ERR_INVALID_ARGUMENT)\n');
  });

  test.each([
    [['--bogus']],
    [['inspect']],
    [['remove', '--size', '1G', 'x']],
    [['pool', 'resize', '-5G']],
  ])('%j exits 2 with exactly one stderr line', async (argv) => {
    const r = await run(argv);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^devmapper: .+ \(ERR_INVALID_ARGUMENT\)\n$/);
  });

  test('no device-mapper: exit 7, one line pointing at devmapper sandbox with the same arguments', async () => {
    const stdout = capture();
    const stderr = capture();
    const code = await runCli(['--root', '/r', 'list'], { stdout, stderr, host: () => ({ hasDeviceMapper: false, isRoot: true }) });
    expect(code).toBe(7);
    expect(stderr.text).toBe(
      'devmapper: this kernel has no device-mapper driver (not in /proc/misc); run it in the sandbox kernel: devmapper sandbox -- devmapper --root /r list (ERR_NO_DEVICE_MAPPER)\n',
    );
  });

  test('not root: exit 6', async () => {
    const stderr = capture();
    const code = await runCli(['list'], { stdout: capture(), stderr, host: () => ({ hasDeviceMapper: true, isRoot: false }) });
    expect(code).toBe(6);
    expect(stderr.text).toBe('devmapper: device-mapper needs root: run devmapper as root (EPERM)\n');
  });

  test('--version prints the package version', async () => {
    const r = await run(['--version']);
    expect(r.code).toBe(0);
    const pkg = JSON.parse(readFileSync(join(__dirname, '..', '..', 'package.json'), 'utf8')) as { version: string };
    expect(r.stdout).toBe(`${pkg.version}\n`);
  });
});
