/**
 * No child process of the library gets a command line through a shell: every one is started
 * with execFile/spawn/spawnSync and an argument vector, so a device name, path or option that
 * reached it from a caller can never be read as shell syntax. Checked over lib/'s source: the
 * only child_process functions imported are those three, and no call passes `shell`. (The
 * sandbox's init script is a shell script by nature: its words are quoted by shellQuote,
 * tested in sandbox-init-script.test.ts.)
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';

const LIB = join(__dirname, '..', '..', 'lib');
const ALLOWED = new Set(['execFile', 'spawn', 'spawnSync', 'type ChildProcess', 'ChildProcess']);

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

const files = sources(LIB).map((path) => ({ path: relative(LIB, path), text: readFileSync(path, 'utf8') }));
const users = files.filter((f) => /from 'node:child_process'|require\('(node:)?child_process'\)/.test(f.text));

describe('child processes are started without a shell', () => {
  test('lib/ starts child processes in a known set of files (a new one is reviewed here)', () => {
    expect(users.map((f) => f.path).sort()).toEqual(['demo/foundation.ts', 'demo/microvm-story.ts', 'deviceset/filesystem.ts', 'sandbox/cli.ts', 'sandbox/packages.ts', 'sandbox/runner.ts']);
  });

  test.each(users.map((f) => [f.path, f.text]))('%s imports only execFile, spawn and spawnSync', (_path, text) => {
    const names = [...text.matchAll(/import\s*\{([^}]*)\}\s*from 'node:child_process'/g)].flatMap((m) => m[1].split(',').map((n) => n.trim()).filter(Boolean));
    expect(names.length).toBeGreaterThan(0);
    for (const n of names) expect(ALLOWED).toContain(n);
    expect(text).not.toMatch(/require\('(node:)?child_process'\)/);
  });

  test.each(files.map((f) => [f.path, f.text]))('%s passes no shell option', (_path, text) => {
    expect(text).not.toMatch(/\bshell\s*:/);
  });
});
