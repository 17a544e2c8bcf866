/**
 * A command loads only the layers it uses: --version, --help (of the tool, a group, a
 * command) and a mistake on the command line load none of the library's kernel-facing layers
 * (the Driver, the DeviceSet, dm and the addon, sys, layers, the Snapshotter, the sandbox runner). Each layer is
 * replaced by a factory that notes its loading, so that a top-level import of one anywhere
 * under lib/cli shows up here.
 */
const mockLoaded: string[] = [];

jest.mock('../../lib/driver', () => {
  mockLoaded.push('driver');
  return {};
});
jest.mock('../../lib/deviceset', () => {
  mockLoaded.push('deviceset');
  return {};
});
jest.mock('../../lib/dm', () => {
  mockLoaded.push('dm');
  return {};
});
jest.mock('../../lib/sys', () => {
  mockLoaded.push('sys');
  return {};
});
jest.mock('../../lib/layers', () => {
  mockLoaded.push('layers');
  return {};
});
jest.mock('../../lib/native', () => {
  mockLoaded.push('native');
  return {};
});
jest.mock('../../lib/snapshotter', () => {
  mockLoaded.push('snapshotter');
  return {};
});
jest.mock('../../lib/images', () => {
  mockLoaded.push('images');
  return {};
});
jest.mock('../../lib/sandbox', () => {
  mockLoaded.push('sandbox');
  return { detectHostKernel: () => ({ hasDeviceMapper: false, isRoot: false }) };
});

import { runCli } from '../../lib/cli/main';

/** What importing the command line loaded (each module loads once: later loads show in the tests that cause them). */
const loadedAtImport = [...mockLoaded];

function capture(): { write(s: string): void; text: string } {
  return {
    text: '',
    write(s: string) {
      this.text += s;
    },
  };
}

async function run(argv: string[], host?: { hasDeviceMapper: boolean; isRoot: boolean }): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = capture();
  const stderr = capture();
  const code = await runCli(argv, { stdout, stderr, ...(host ? { host: () => host } : {}) });
  return { code, stdout: stdout.text, stderr: stderr.text };
}

describe('devmapper loads only what a command uses', () => {
  beforeEach(() => {
    mockLoaded.length = 0;
  });

  test('loading the command line loads no kernel-facing layer', () => {
    expect(loadedAtImport).toEqual([]);
  });

  test.each([[['--version']], [['--help']], [['pool', '--help']], [['create', '--help']], [['help', 'peek']], [['snapshotter', 'serve', '--help']], [['image', 'import', '--help']], [['image', '--help']]])('%j loads none of them', async (argv) => {
    const r = await run(argv);
    expect(r.code).toBe(0);
    expect(r.stdout).not.toBe('');
    expect(mockLoaded).toEqual([]);
  });

  test('a mistake on the command line (exit 2) loads none of them', async () => {
    const r = await run(['frobnicate']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^devmapper: .*\(ERR_INVALID_ARGUMENT\)\n$/);
    const size = await run(['create', 'x', '--size', 'lots']);
    expect(size.code).toBe(2);
    for (const argv of [['image', 'disk', 'img', 'vm', '--size', '12Q'], ['image', 'disk', 'img', 'vm', '--size', '1000'], ['image', 'import', 'x.tar', '--platform', 'amd64']]) {
      const r2 = await run(argv);
      expect([argv, r2.code, r2.stderr]).toEqual([argv, 2, expect.stringMatching(/--size|--platform/)]);
    }
    expect(mockLoaded).toEqual([]);
  });

  test('the host check loads the sandbox layer only (no driver), and only when no host check is given', async () => {
    const r = await run(['pool', 'status']);
    expect(r.stderr).toMatch(/ERR_NO_DEVICE_MAPPER/);
    expect(mockLoaded).toEqual(['sandbox']);
  });

  test('a command that opens the root loads the Driver when it runs (the control: the mocks see a load)', async () => {
    const r = await run(['--root', '/nonexistent-devmapper-root', 'pool', 'status'], { hasDeviceMapper: true, isRoot: true });
    // The mocked Driver has no init: the command fails, after loading it.
    expect(r.code).not.toBe(0);
    expect(mockLoaded).toContain('driver');
    expect(mockLoaded).not.toContain('sandbox');
  });
});
