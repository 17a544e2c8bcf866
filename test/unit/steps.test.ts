import diagnostics_channel from 'node:diagnostics_channel';
/**
 * The native step runner (src-native/step_plan.cc) on plain files: order, what a failure
 * skips, tolerated errnos, `always` steps, atomic writes that leave no temporary file, exact
 * modes, the crash step, sys.isMountPoint, and readFiles. The dm task steps are proven in the kernel
 * (test/integration/steps.test.ts).
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { constants as osConstants } from 'node:os';
import { DevmapperError } from '../../lib/errors';
import {
  createFileStep,
  mkdirStep,
  rmdirStep,
  runSteps,
  runStepsOrThrow,
  syncDirStep,
  unlinkStep,
  writeFileStep,
} from '../../lib/dm';
import { isMountPoint } from '../../lib/sys';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'devmapper-steps-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const mode = async (p: string) => ((await stat(p)).mode & 0o777).toString(8);

test('writes replace files atomically, with 0600, and leave no temporary file', async () => {
  const f = join(dir, 'meta');
  await writeFile(f, 'old');
  const results = await runStepsOrThrow([writeFileStep(f, '{"a":1}'), writeFileStep(join(dir, 'other'), 'x'), syncDirStep(dir)]);
  expect(results.map((r) => [r.ran, r.errno])).toEqual([
    [true, 0],
    [true, 0],
    [true, 0],
  ]);
  // Untimed: nobody listens to devmapper:dm (the clock is a system call in the sandbox kernel).
  expect(results.every((r) => r.ns === 0)).toBe(true);
  expect(await readFile(f, 'utf8')).toBe('{"a":1}');
  expect(await mode(join(dir, 'other'))).toBe('600');
  expect((await readdir(dir)).sort()).toEqual(['meta', 'other']);
});

test('each step is timed while someone listens to devmapper:dm', async () => {
  const listener = (): void => undefined;
  diagnostics_channel.subscribe('devmapper:dm', listener);
  try {
    const results = await runStepsOrThrow([writeFileStep(join(dir, 'timed'), 'x'), syncDirStep(dir)]);
    expect(results.every((r) => r.ns > 0)).toBe(true);
  } finally {
    diagnostics_channel.unsubscribe('devmapper:dm', listener);
  }
});

test('a failure stops the job there: later steps do not run, `always` steps do, and the error names the step', async () => {
  const kept = join(dir, 'kept');
  const out = await runSteps([
    writeFileStep(kept, 'first', { phase: 'intent' }),
    writeFileStep(join(dir, 'missing', 'file'), 'x', { operation: 'write metadata', phase: 'register' }),
    writeFileStep(join(dir, 'skipped'), 'never', { phase: 'commit' }),
    createFileStep(join(dir, 'always'), 'cleanup ran', 0o644, { always: true }),
  ]);
  expect(out.failedPhase).toBe('register');
  expect(out.results.map((r) => r.phase)).toEqual(['intent', 'register', 'commit', 'layout']);
  expect(out.error).toBeInstanceOf(DevmapperError);
  expect(out.error!.code).toBe('ENOENT');
  expect(out.error!.operation).toBe('write metadata');
  expect(out.error!.device).toBe(join(dir, 'missing', 'file'));
  expect(out.error!.message).toContain('write metadata');
  // The caller's stack, not an empty one from the libuv callback.
  expect(out.error!.stack).toContain('steps.test.ts');
  expect(out.results.map((r) => r.ran)).toEqual([true, true, false, true]);
  expect(await readFile(kept, 'utf8')).toBe('first');
  expect(await readFile(join(dir, 'always'), 'utf8')).toBe('cleanup ran');
  expect((await readdir(dir)).sort()).toEqual(['always', 'kept']);
  await expect(runStepsOrThrow([writeFileStep(join(dir, 'missing', 'file'), 'x')])).rejects.toMatchObject({ code: 'ENOENT' });
});

test('tolerated errnos are kept in the result and do not fail the job', async () => {
  const out = await runSteps([
    unlinkStep(join(dir, 'absent'), { ok: ['ENOENT'] }),
    rmdirStep(join(dir, 'absent-dir'), { ok: ['ENOENT'] }),
    mkdirStep(dir, 0o755, { ok: ['EEXIST'] }),
    unlinkStep(join(dir, 'absent'), { phase: 'unregister' }),
  ]);
  expect(out.results.slice(0, 3).map((r) => r.errno)).toEqual([osConstants.errno.ENOENT, osConstants.errno.ENOENT, osConstants.errno.EEXIST]);
  expect(out.failedPhase).toBe('unregister');
  expect(out.error!.code).toBe('ENOENT');
});

test('createFile and mkdir set their mode exactly whatever the umask; createFile never replaces', async () => {
  const old = process.umask(0o077);
  try {
    await runStepsOrThrow([mkdirStep(join(dir, 'rootfs'), 0o755), createFileStep(join(dir, 'id'), 'layer-1', 0o640)]);
  } finally {
    process.umask(old);
  }
  expect(await mode(join(dir, 'rootfs'))).toBe('755');
  expect(await mode(join(dir, 'id'))).toBe('640');
  const out = await runSteps([createFileStep(join(dir, 'id'), 'other', 0o600)]);
  expect(out.error!.code).toBe('EEXIST');
  expect(await readFile(join(dir, 'id'), 'utf8')).toBe('layer-1');
});

test('a directory sync of something that is not a directory fails with ENOTDIR', async () => {
  await writeFile(join(dir, 'f'), '');
  const out = await runSteps([syncDirStep(join(dir, 'f'))]);
  expect(out.error!.code).toBe('ENOTDIR');
});

test('a wrong step shape is a TypeError before anything runs', async () => {
  const { native } = await import('../../lib/native');
  // (The addon's TypeError is of another realm than jest's: match the name.)
  expect(() => native().runSteps([{ kind: 'nope' } as never])).toThrow(expect.objectContaining({ name: 'TypeError', message: "unknown step kind 'nope'" }));
  expect(() => native().runSteps([{ kind: 'writeFile' }])).toThrow(/needs a path/);
  expect(() => native().runSteps([{ kind: 'task' }])).toThrow(/task object/);
  expect(await readdir(dir)).toEqual([]);
});

test('the crash step kills the process at its place in the job: the step before it is done, the one after is not', () => {
  const steps = resolve(__dirname, '../../dist/dm');
  const script = `
    const s = require(${JSON.stringify(steps)});
    s.runSteps([s.writeFileStep(${JSON.stringify(join(dir, 'before'))}, 'b'), s.crashStep(), s.writeFileStep(${JSON.stringify(join(dir, 'after'))}, 'a')]);
  `;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 30_000 });
  expect(r.signal).toBe('SIGKILL');
  return readdir(dir).then((names) => expect(names).toEqual(['before']));
});

test('isMountPoint: the root of a mount, not a plain directory, false for a missing path', () => {
  expect(isMountPoint('/')).toBe(true);
  expect(isMountPoint('/proc')).toBe(true);
  expect(isMountPoint(dir)).toBe(false);
  expect(isMountPoint(join(dir, 'missing'))).toBe(false);
  expect(() => isMountPoint('relative')).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }));
});

test('readFiles reads many files in one job: contents, null for a missing one, an error naming a file it cannot read', async () => {
  const { native } = await import('../../lib/native');
  await writeFile(join(dir, 'a'), '{"device_id":1}');
  await writeFile(join(dir, 'b'), 'x'.repeat(10_000));
  expect(await native().readFiles([join(dir, 'a'), join(dir, 'missing'), join(dir, 'b')])).toEqual(['{"device_id":1}', null, 'x'.repeat(10_000)]);
  expect(await native().readFiles([])).toEqual([]);
  await expect(native().readFiles([join(dir, 'a'), dir])).rejects.toMatchObject({ code: 'EISDIR', device: dir });
});
