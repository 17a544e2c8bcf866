import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DevmapperError, ErrorCodes } from '../../lib/errors';
import { parseCliArgs, UsageError } from '../../lib/sandbox/cli';
import {
  OPTIONAL_MODULES,
  parseGuestResult,
  renderCommandSegment,
  renderInitScript,
  REQUIRED_MODULES,
  shellQuote,
  type InitScriptOptions,
} from '../../lib/sandbox/init-script';
import { chooseKernel } from '../../lib/sandbox/kernel';
import { sandboxEnvironment } from '../../lib/sandbox/runner';

/** Strings that break naive quoting. */
const NASTY = [
  '',
  'plain',
  'a b  c',
  "it's",
  "''",
  '"double" quotes',
  '$HOME ${HOME} $(echo no) $((1+1))',
  '`echo backtick`',
  'back\\slash \\n \\',
  'new\nline\n',
  '\ttab; echo injected && exit 7 | cat > /dev/null',
  '* ? [a-z] ~ ~root # ! %',
  'ünïcødé ✓',
  '-n',
  '--',
];

/** A command that reports what it got, as JSON on stdout. */
const REPORTER = `
const env = {};
for (const k of Object.keys(process.env)) {
  if (k.startsWith('T_') || k.startsWith('DEVMAPPER_')) env[k] = process.env[k];
}
let stdin = '';
try { stdin = require('fs').readFileSync(0, 'utf8'); } catch (e) { stdin = 'ERR ' + e.code; }
process.stdout.write(JSON.stringify({ argv: process.argv.slice(1), env, cwd: process.cwd(), stdin }));
`;

interface Report {
  argv: string[];
  env: Record<string, string>;
  cwd: string;
  stdin: string;
}

type SegmentOptions = Parameters<typeof renderCommandSegment>[0];

/** Runs the rendered command segment under the host's /bin/sh, with an empty environment. */
function runSegment(opts: SegmentOptions): { status: number | null; report?: Report; stderr: string } {
  const segment = renderCommandSegment(opts);
  const r = spawnSync('/bin/sh', ['-c', segment], {
    env: {},
    input: 'stdin must not reach the command',
    encoding: 'utf8',
  });
  return { status: r.status, report: r.stdout ? (JSON.parse(r.stdout) as Report) : undefined, stderr: r.stderr };
}

const baseScript: InitScriptOptions = {
  argv: ['true'],
  cwd: '/work',
  env: {},
  udev: false,
  resultFile: '/var/tmp/devmapper-sandbox/run-x/result',
};

describe('sandbox init script: command, environment and cwd survive quoting', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'sandbox-quote-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test.each(NASTY.map((s) => [s]))('shellQuote(%j) reads back exactly', (word) => {
    const r = spawnSync('/bin/sh', ['-c', `printf '%s' ${shellQuote(word)}`], { encoding: 'utf8' });
    expect(r.stdout).toBe(word);
  });

  test('argv, env values and cwd arrive byte for byte; stdin is /dev/null', () => {
    const cwd = join(dir, "odd dir 'q' \"dq\" $x `y`\nz");
    mkdirSync(cwd);
    const env: Record<string, string | undefined> = { T_UNDEFINED: undefined };
    NASTY.forEach((s, i) => (env[`T_${i}`] = s));
    const argv = [process.execPath, '-e', REPORTER, ...NASTY];
    const { status, report, stderr } = runSegment({ argv, cwd, env, udev: true });
    expect(stderr).toBe('');
    expect(status).toBe(0);
    const expectedEnv: Record<string, string> = { DEVMAPPER_SANDBOX: '1', DEVMAPPER_UDEV: 'on' };
    NASTY.forEach((s, i) => (expectedEnv[`T_${i}`] = s));
    expect(report).toEqual({ argv: NASTY, env: expectedEnv, cwd, stdin: '' });
  });

  test('DEVMAPPER_* are ours; names that are not shell names are dropped', () => {
    const { report } = runSegment({
      argv: [process.execPath, '-e', REPORTER],
      cwd: dir,
      env: { DEVMAPPER_SANDBOX: '0', DEVMAPPER_UDEV: 'on', 'T-dash': 'x', '1T': 'x', 'T_ok; rm -rf /': 'x', T_ok: 'y' },
      udev: false,
    });
    expect(report?.env).toEqual({ DEVMAPPER_SANDBOX: '1', DEVMAPPER_UDEV: 'off', T_ok: 'y' });
  });

  test("the command's exit status is the segment's; a missing cwd gives 125", () => {
    const env = { PATH: '/usr/bin:/bin' };
    expect(runSegment({ argv: ['sh', '-c', 'exit 3'], cwd: dir, env, udev: false }).status).toBe(3);
    expect(runSegment({ argv: ['true'], cwd: join(dir, 'missing'), env, udev: false }).status).toBe(125);
  });

  test('NUL bytes, relative cwd and an empty argv are rejected', () => {
    const bad: SegmentOptions[] = [
      { argv: ['a\0b'], cwd: '/', env: {}, udev: false },
      { argv: ['true'], cwd: '/', env: { X: 'a\0' }, udev: false },
      { argv: ['true'], cwd: 'relative', env: {}, udev: false },
      { argv: [], cwd: '/', env: {}, udev: false },
    ];
    for (const opts of bad) {
      expect(() => renderCommandSegment(opts)).toThrow(DevmapperError);
      try {
        renderCommandSegment(opts);
      } catch (err) {
        expect((err as DevmapperError).code).toBe(ErrorCodes.INVALID_ARGUMENT);
      }
    }
  });
});

describe('sandbox init script: shape', () => {
  test('is valid /bin/sh and embeds the command segment', () => {
    const script = renderInitScript({ ...baseScript, argv: ['echo', "it's"], env: { A: '$b' } });
    expect(spawnSync('/bin/sh', ['-n'], { input: script }).status).toBe(0);
    expect(script.startsWith('#!/bin/sh\n')).toBe(true);
    expect(script).toMatch(/^set -u$/m);
    expect(script).toContain(renderCommandSegment({ ...baseScript, argv: ['echo', "it's"], env: { A: '$b' } }));
  });

  test('loads the modules in dependency order, required before optional', () => {
    const script = renderInitScript(baseScript);
    const loads = [...script.matchAll(/load_module (\S+) (\S+) (required|optional)$/gm)].map((m) => m.slice(1));
    expect(REQUIRED_MODULES).toEqual(['dm-mod', 'dm-bufio', 'dm-persistent-data', 'dm-bio-prison', 'dm-thin-pool', 'loop']);
    expect(loads).toEqual([
      ...REQUIRED_MODULES.map((m) => [m, m.replace(/-/g, '_'), 'required']),
      ...OPTIONAL_MODULES.map((m) => [m, m.replace(/-/g, '_'), 'optional']),
    ]);
    expect(OPTIONAL_MODULES).toEqual(['dm-flakey', 'dm-delay', 'dm-dust', 'dm-log-writes']);
  });

  test('uses the module paths the host found; a required module without one fails the boot', () => {
    const script = renderInitScript({
      ...baseScript,
      modulePaths: { 'dm-mod': 'kernel/drivers/md/dm-mod.ko', loop: "kernel/it's/loop.ko" },
    });
    expect(script).toContain("_ko='kernel/drivers/md/dm-mod.ko'; load_module dm-mod dm_mod required");
    expect(script).toContain(`_ko=${shellQuote("kernel/it's/loop.ko")}; load_module loop loop required`);
    expect(script).toContain("_ko=''; load_module dm-bufio dm_bufio required");
    expect(script).toMatch(/fail "module \$1 not found/);
    expect(script).toMatch(/insmod "\$MODDIR\/\$_ko" \|\| \{ \[ "\$3" = optional \] \|\| fail "insmod \$1"; \}/);
    expect(() => renderInitScript({ ...baseScript, modulePaths: { loop: '../../etc/x.ko' } })).toThrow(DevmapperError);
  });

  test('mounts what the guest needs, on a fresh /run, /tmp and /dev/shm', () => {
    const script = renderInitScript(baseScript);
    for (const re of [
      /^mount -t proc proc \/proc/m,
      /^is_mounted \/sys \|\| mount -t sysfs/m,
      /^is_mounted \/dev \|\| mount -t devtmpfs/m,
      /mount -t devpts .* \/dev\/pts/m,
      /^mount -t tmpfs .* tmpfs \/run /m,
      /^mount -t tmpfs .* tmpfs \/tmp /m,
      /^mount -t tmpfs .* tmpfs \/dev\/shm /m,
      /^mount -t hostfs -o '\/usr\/lib\/uml\/modules' hostfs /m,
      /^ulimit -n /m,
    ]) {
      expect(script).toMatch(re);
    }
  });

  test('udev on: starts udevd, triggers, settles, and stops it before the result is written', () => {
    const script = renderInitScript({ ...baseScript, udev: true });
    const at = (s: string): number => script.indexOf(s);
    expect(at('/usr/lib/systemd/systemd-udevd --daemon')).toBeGreaterThan(at('load_module loop'));
    expect(at('udevadm trigger --action=add')).toBeGreaterThan(at('systemd-udevd --daemon'));
    expect(at('udevadm settle -t 30')).toBeGreaterThan(at('udevadm trigger'));
    expect(at('export DEVMAPPER_UDEV=on')).toBeGreaterThan(at('udevadm settle'));
    expect(at('udevadm control --exit')).toBeGreaterThan(at('_status=$?'));
    expect(at('write_result "release=')).toBeGreaterThan(at('udevadm control --exit'));
    expect(script.trimEnd().endsWith('finish')).toBe(true);
  });

  test('udev off: no udevd and no udevadm at all', () => {
    const script = renderInitScript({ ...baseScript, udev: false });
    expect(script).not.toMatch(/^[^#]*udevd/m);
    expect(script).not.toMatch(/^[^#]*udevadm/m);
    expect(script).toContain('export DEVMAPPER_UDEV=off');
  });

  test('the result file must be reachable from the host: not under the guest tmpfs mounts', () => {
    for (const resultFile of ['/tmp/r', '/run/x/r', '/dev/shm/r', 'relative/r']) {
      expect(() => renderInitScript({ ...baseScript, resultFile })).toThrow(DevmapperError);
    }
    const script = renderInitScript({ ...baseScript, resultFile: "/var/tmp/it's/result" });
    expect(script).toContain(`RESULT=${shellQuote("/var/tmp/it's/result")}`);
  });

  test('quiet silences the final kernel line only when asked', () => {
    expect(renderInitScript(baseScript)).toContain('echo 0 >/proc/sys/kernel/printk');
    expect(renderInitScript({ ...baseScript, quiet: false })).not.toContain('/proc/sys/kernel/printk');
  });
});

describe('sandbox guest result', () => {
  test('parses status, release and init failures; anything else has no status', () => {
    expect(parseGuestResult('release=6.1.176\nstatus=3\n')).toEqual({ release: '6.1.176', status: 3 });
    expect(parseGuestResult('init-failed=insmod dm-mod\n')).toEqual({ initFailure: 'insmod dm-mod' });
    for (const garbled of ['', 'status=\n', 'status=abc\n', 'status=256\n', 'status=-1\n', 'release=6.1\nstat']) {
      expect(parseGuestResult(garbled).status).toBeUndefined();
    }
  });
});

describe('sandbox CLI arguments', () => {
  const run = (args: string[]) => parseCliArgs(args, '/base');

  test('options, then the command after --', () => {
    const args = ['--kernel', 'sandbox', '--udev', 'off', '--mem', '512M', '--timeout', '2.5', '--cwd', 'sub'];
    expect(run([...args, '--', 'sh', '-c', 'exit 3'])).toEqual({
      kind: 'run',
      kernel: 'sandbox',
      udev: false,
      memory: '512M',
      timeoutMs: 2500,
      cwd: '/base/sub',
      argv: ['sh', '-c', 'exit 3'],
    });
  });

  test('defaults, --opt=value, and a command without --', () => {
    expect(run(['--udev=on', 'ls', '-l', '--udev', 'off'])).toEqual({
      kind: 'run',
      kernel: 'auto',
      udev: true,
      memory: '2G',
      timeoutMs: undefined,
      cwd: '/base',
      argv: ['ls', '-l', '--udev', 'off'],
    });
    expect(run(['--', '--weird-command'])).toMatchObject({ argv: ['--weird-command'], udev: undefined });
    expect(run(['--timeout', '0', '--cwd', '/abs', 'true'])).toMatchObject({ timeoutMs: undefined, cwd: '/abs' });
  });

  test('--help and -h', () => {
    expect(run(['--help'])).toEqual({ kind: 'help' });
    expect(run(['-h', '--', 'x'])).toEqual({ kind: 'help' });
  });

  test.each([
    [['--udev', 'maybe', '--', 'true']],
    [['--kernel', 'qemu', '--', 'true']],
    [['--mem', '2X', '--', 'true']],
    [['--timeout', '-1', '--', 'true']],
    [['--timeout', 'soon', '--', 'true']],
    [['--bogus', '--', 'true']],
    [['--udev']],
    [['--udev', 'off']],
    [[]],
  ])('rejects %j with a UsageError', (args) => {
    expect(() => run(args)).toThrow(UsageError);
  });
});

describe('sandbox kernel choice and environment', () => {
  test('auto takes the host only when it has device-mapper and we are root', () => {
    const host = (hasDeviceMapper: boolean, isRoot: boolean) => ({ release: 'x', hasDeviceMapper, isRoot });
    expect(chooseKernel('auto', host(true, true))).toBe('host');
    expect(chooseKernel('auto', host(true, false))).toBe('sandbox');
    expect(chooseKernel('auto', host(false, true))).toBe('sandbox');
    expect(chooseKernel('host', host(false, false))).toBe('host');
    expect(chooseKernel('sandbox', host(true, true))).toBe('sandbox');
    expect(() => chooseKernel('other' as 'auto', host(true, true))).toThrow(DevmapperError);
  });

  test('the default guest environment drops host-only variables', () => {
    const host = { PATH: '/bin', TMPDIR: '/tmp/x', XDG_RUNTIME_DIR: '/run/user/0', DISPLAY: ':0', FOO: 'a b$c' };
    const env = sandboxEnvironment({ ...host, U: undefined });
    expect(env).toEqual({ PATH: '/bin', FOO: 'a b$c' });
  });
});
