/**
 * `npm run bench` / `npm run bench:smoke`: builds the C contender, runs the measurements in a
 * kernel with device-mapper (the sandbox kernel where the host has none; once per udev mode),
 * and writes results.json, results.md and the SVG charts.
 *
 *   node dist-bench/cli.js [--mode full|smoke] [--udev off|on|both] [--kernel auto|host|sandbox]
 *                          [--out DIR] [--timeout SECONDS] [--only SECTION,...] [--report-only]
 *                          [--peers DIR] [--cli-ref GITREF]
 *
 * Defaults: full runs udev off and on and writes to bench/results/; smoke runs udev off and
 * writes to bench/results/smoke/ (git-ignored). Exit status 0 when every run produced results.
 * --peers DIR: where dockerdm and ctrdbench are (default ../shared/peers beside the repository;
 * when absent, the peers and snapshotter sections and the dockerdm row of the cli section say so
 * and are skipped).
 * --cli-ref GITREF: the cli section also times lib/cli as it is at GITREF (a before/after of the
 * command line in the same kernel boot; see buildCliRef).
 * --report-only renders the last runs' results (.cache/bench/MODE-udev-*.json) again.
 * --only runs those sections (single, reference, concurrency, memory, scale, lifecycle, dsscale,
 * dsconcurrency, peers, snapshotter, cli, images) and names its files after them (lifecycle.json, lifecycle.md) so that they
 * sit beside a full run's results.json and results.md without replacing them.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, release } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { CONFIGS, type BenchMode, parseSections } from './config';
import { type CombinedResult, renderMarkdown, writeReport } from './report';
import { CONTENDERS, type GuestResult, LATER_SECTIONS, LIFECYCLE_CONTENDERS, LIFECYCLE_STEPS, OPS, PEER_STEPS, SECTIONS, SNAP_STEPS } from './types';

const ROOT = resolve(__dirname, '..');
const RAW_SOURCE = join(ROOT, 'bench', 'raw', 'dm_raw_bench.c');
/** Beside the compiled bench, not under build/: node-gyp rebuild empties build/. */
const RAW_BINARY = join(ROOT, 'dist-bench', 'bin', 'dm_raw_bench');
/** lib/cli of another commit (--cli-ref), transpiled, beside the compiled bench. */
const CLI_REF_DIR = join(ROOT, 'dist-bench', 'cli-ref');
/** Each guest's result file, before they are combined (inside the tree: the guest's /tmp is its own). */
const RUN_DIR = join(ROOT, '.cache', 'bench');

function say(line: string): void {
  process.stderr.write(`bench: ${line}\n`);
}

/** cc $(pkg-config --cflags --libs devmapper), when the binary is missing or older than the source. */
export function buildRaw(): void {
  if (existsSync(RAW_BINARY) && statSync(RAW_BINARY).mtimeMs >= statSync(RAW_SOURCE).mtimeMs) return;
  mkdirSync(join(ROOT, 'dist-bench', 'bin'), { recursive: true });
  let flags: string[];
  try {
    flags = execFileSync('pkg-config', ['--cflags', '--libs', 'devmapper'], { encoding: 'utf8' }).trim().split(/\s+/).filter(Boolean);
  } catch {
    throw new Error('pkg-config knows no devmapper: apt-get install -y libdevmapper-dev pkg-config');
  }
  say(`building ${relative(ROOT, RAW_BINARY)}`);
  execFileSync('cc', ['-O2', '-Wall', '-Wextra', '-std=c11', '-pthread', '-o', RAW_BINARY, RAW_SOURCE, ...flags], { stdio: 'inherit' });
}

/**
 * --cli-ref REF: lib/cli as it is at git REF, transpiled (typescript's transpileModule, no type
 * check) into dist-bench/cli-ref/, its imports of the library's other folders (`../driver`)
 * pointed at this tree's dist/, so that the cli section can time that command line beside
 * this one in the same kernel boot. Only lib/cli comes from REF: a before/after of the command
 * line alone. Returns the main.js and the short commit.
 */
export function buildCliRef(ref: string): { main: string; commit: string } {
  const git = (...args: string[]) => execFileSync('git', args, { cwd: ROOT, encoding: 'utf8' });
  const commit = git('rev-parse', '--short', `${ref}^{commit}`).trim();
  // typescript is a devDependency: loaded only for this option.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const ts = require('typescript') as typeof import('typescript');
  rmSync(CLI_REF_DIR, { recursive: true, force: true });
  mkdirSync(CLI_REF_DIR, { recursive: true });
  const files = git('ls-tree', '--name-only', commit, 'lib/cli/').split('\n').filter((f) => f.endsWith('.ts'));
  for (const f of files) {
    const source = git('show', `${commit}:${f}`);
    const out = ts.transpileModule(source, {
      compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true },
      fileName: f,
    }).outputText;
    // dist-bench/cli-ref/x.js: ../driver is ../../dist/driver; ../../package.json is the repository's, as from dist/cli.
    const js = out.replace(/require\((["'])\.\.\/(?!\.)([^"']+)\1\)/g, 'require("../../dist/$2")');
    writeFileSync(join(CLI_REF_DIR, f.replace(/^lib\/cli\//, '').replace(/\.ts$/, '.js')), js);
  }
  return { main: join(CLI_REF_DIR, 'main.js'), commit };
}

/**
 * The host kernel is used only when /proc/misc lists device-mapper and we are root. Not the
 * existence of /dev/mapper/control: libdevmapper creates that node even on a kernel without
 * the driver, so a stray one is common on the machines without it.
 */
function chooseKernel(pref: string): 'host' | 'sandbox' {
  if (pref === 'host' || pref === 'sandbox') return pref;
  let misc = '';
  try {
    misc = readFileSync('/proc/misc', 'utf8');
  } catch {
    // no /proc/misc: no driver we can see
  }
  const hasDm = /^\s*\d+\s+device-mapper\s*$/m.test(misc);
  return hasDm && process.getuid?.() === 0 ? 'host' : 'sandbox';
}

function run(argv: string[]): Promise<number> {
  return new Promise((resolveCode) => {
    const child = spawn(argv[0] as string, argv.slice(1), { cwd: ROOT, stdio: 'inherit' });
    child.once('error', (err) => {
      say(`cannot run ${argv[0]}: ${err.message}`);
      resolveCode(127);
    });
    child.once('exit', (code, signal) => resolveCode(code ?? (signal ? 128 : 1)));
  });
}

/** What a complete run holds; a smoke run that loses a part fails. */
export function checkComplete(r: GuestResult): string[] {
  const missing: string[] = [];
  const sections = r.sections ?? SECTIONS.filter((s) => !LATER_SECTIONS.includes(s));
  if (sections.includes('single')) {
    for (const op of OPS) {
      const o = r.single.find((x) => x.op === op);
      for (const c of CONTENDERS) if (!(o?.contenders[c]?.n && Number.isFinite(o.contenders[c]?.mean))) missing.push(`${op}/${c}`);
    }
  }
  if (sections.includes('reference') && !r.reference) missing.push('reference');
  if (sections.includes('concurrency') && r.concurrency.length !== 3) missing.push('concurrency');
  if (sections.includes('lifecycle')) {
    for (const c of LIFECYCLE_CONTENDERS) {
      const l = r.lifecycle?.contenders[c];
      if (!(l?.n && Number.isFinite(l.mean) && LIFECYCLE_STEPS.every((s) => l.steps[s]?.n === l.n))) missing.push(`lifecycle/${c}`);
    }
  }
  if (sections.includes('dsscale')) {
    const c = r.udevSync ? r.config.dsscaleUdev : r.config.dsscale;
    const points = r.dsscale?.points ?? [];
    const whole = (p: (typeof points)[number]) =>
      p.opens.length === c.opens && p.opens.every((o) => Number.isFinite(o.ms)) && p.lifecycle.n === c.lifecycles;
    if (points.length !== c.sizes.length || !points.every(whole)) missing.push('dsscale');
  }
  if (sections.includes('dsconcurrency')) {
    const c = r.udevSync ? r.config.dsconcurrencyUdev : r.config.dsconcurrency;
    const d = r.dsconcurrency;
    if (!(d && d.serialMs.length === c.repetitions && d.concurrentMs.length === c.repetitions && d.concurrentItem.n === c.parallel * c.repetitions))
      missing.push('dsconcurrency');
  }
  if (sections.includes('peers')) {
    const p = r.peers;
    const c = r.udevSync ? r.config.peersUdev : r.config.peers;
    const n = c.rounds * c.batch;
    const whole = (s: NonNullable<typeof p>['streams'][number]) =>
      s.lifecycle.n === n && Number.isFinite(s.lifecycle.mean) && PEER_STEPS.every((k) => s.steps[k]?.n === n);
    // A skipped section (no ../shared/peers) is complete: it says why.
    if (!p || (!p.skipped && !(p.streams.length === 8 && p.streams.every(whole)))) missing.push('peers');
  }
  if (sections.includes('snapshotter')) {
    const p = r.snapshotter;
    const c = r.udevSync ? r.config.snapshotterUdev : r.config.snapshotter;
    const n = c.rounds * c.batch;
    const whole = (s: NonNullable<typeof p>['streams'][number]) =>
      s.lifecycle.n === n && Number.isFinite(s.lifecycle.mean) && SNAP_STEPS.every((k) => s.steps[k]?.n === n);
    // One stream per contender and setting (ours measured once, shown under both); a skipped section says why.
    const contenders = c.containerdInProcess ? 4 : 3;
    if (!p || (!p.skipped && !(p.streams.length === contenders * c.settings.length && p.streams.every(whole)))) missing.push('snapshotter');
  }
  if (sections.includes('images')) {
    const x = r.images;
    const expect = x?.skipped ? ['library', 'served'] : ['library', 'served', 'containerd'];
    if (!x || x.levels.length === 0 || !x.levels.every((l) => expect.every((c) => l.contenders[c as keyof typeof l.contenders]?.n))) missing.push('images');
  }
  if (sections.includes('cli')) {
    const c = r.udevSync ? r.config.cliUdev : r.config.cli;
    const l = r.cli;
    if (!l || l.commands.length + l.skipped.length < 5 || !l.commands.every((x) => x.stats.n === c.runs)) missing.push('cli');
  }
  if (r.udev === 'off') {
    if (sections.includes('memory') && (!r.memory || r.memory.checkpoints.length < 2)) missing.push('memory');
    if (sections.includes('scale') && r.scale.length !== r.config.scale.sizes.length) missing.push('scale');
  }
  return missing;
}

async function main(): Promise<number> {
  const started = Date.now();
  const { values } = parseArgs({
    options: {
      mode: { type: 'string', default: 'full' },
      udev: { type: 'string' },
      kernel: { type: 'string', default: 'auto' },
      out: { type: 'string' },
      timeout: { type: 'string' },
      only: { type: 'string' },
      peers: { type: 'string' },
      'cli-ref': { type: 'string' },
      'report-only': { type: 'boolean', default: false },
    },
  });
  const sections = parseSections(values.only);
  // A partial run's files are named after its sections, beside the full run's.
  const stem = values.only === undefined ? 'results' : sections.join('+');
  const mode = values.mode as BenchMode;
  if (!CONFIGS[mode]) throw new Error(`--mode must be full or smoke, not ${values.mode}`);
  const udev = values.udev ?? (mode === 'full' ? 'both' : 'off');
  if (!['off', 'on', 'both'].includes(udev)) throw new Error(`--udev must be off, on or both, not ${udev}`);
  const modes = udev === 'both' ? ['off', 'on'] : [udev];
  if (!['auto', 'host', 'sandbox'].includes(values.kernel ?? '')) throw new Error('--kernel must be auto, host or sandbox');
  const kernel = chooseKernel(values.kernel ?? 'auto');
  const outDir = resolve(values.out ?? join(ROOT, 'bench', 'results', ...(mode === 'smoke' ? ['smoke'] : [])));
  const timeout = values.timeout ?? (mode === 'full' ? '3600' : '600');

  const reportOnly = values['report-only'] === true;
  if (!reportOnly) buildRaw();
  const cliRef = !reportOnly && values['cli-ref'] !== undefined ? buildCliRef(values['cli-ref']) : null;
  if (cliRef) say(`cli section: lib/cli of ${values['cli-ref']} (${cliRef.commit}) beside this tree's, in ${relative(ROOT, CLI_REF_DIR)}`);
  mkdirSync(RUN_DIR, { recursive: true });
  mkdirSync(outDir, { recursive: true });

  const runs: GuestResult[] = [];
  let failed = false;
  let date = new Date(started).toISOString();
  let durationMs: number | undefined;
  if (reportOnly) {
    // Render the last runs' results again (after a change to the report), keeping their date
    // and duration from the previous STEM.json.
    try {
      const prev = JSON.parse(readFileSync(join(outDir, `${stem}.json`), 'utf8')) as CombinedResult;
      date = prev.date;
      durationMs = prev.durationMs;
    } catch {
      // no previous report: today's date, no duration
    }
  }
  for (const m of modes) {
    const file = join(RUN_DIR, `${mode}-udev-${m}${stem === 'results' ? '' : `-${stem}`}.json`);
    if (reportOnly) {
      if (existsSync(file)) runs.push(JSON.parse(readFileSync(file, 'utf8')) as GuestResult);
      else failed = true;
      continue;
    }
    rmSync(file, { force: true });
    say(`${mode} run, udev ${m}, ${kernel} kernel`);
    const t0 = Date.now();
    const code = await run([
      process.execPath,
      join(ROOT, 'dist', 'sandbox', 'cli.js'),
      '--kernel',
      kernel,
      '--udev',
      m,
      '--timeout',
      timeout,
      '--',
      process.execPath,
      '--expose-gc',
      join(ROOT, 'dist-bench', 'guest.js'),
      '--mode',
      mode,
      '--out',
      file,
      ...(values.only === undefined ? [] : ['--only', sections.join(',')]),
      ...(values.peers === undefined ? [] : ['--peers', resolve(values.peers)]),
      ...(cliRef ? ['--cli-ref-main', cliRef.main, '--cli-ref-name', `${values['cli-ref']} (${cliRef.commit})`] : []),
    ]);
    say(`udev ${m}: exit status ${code} after ${((Date.now() - t0) / 1000).toFixed(0)} s`);
    if (code !== 0 || !existsSync(file)) {
      failed = true;
      continue;
    }
    const result = JSON.parse(readFileSync(file, 'utf8')) as GuestResult;
    const missing = checkComplete(result);
    if (missing.length) {
      say(`udev ${m}: incomplete results, missing ${missing.join(', ')}`);
      failed = true;
    }
    runs.push(result);
  }
  if (runs.length === 0) {
    say('no results');
    return 1;
  }
  const combined: CombinedResult = {
    schema: 1,
    mode,
    date,
    host: { release: release(), cpus: cpus().length, node: process.version, kernelUsed: kernel },
    durationMs: durationMs ?? Date.now() - started,
    runs,
  };
  const files = writeReport(outDir, combined, stem);
  process.stdout.write(renderMarkdown(combined));
  say(`wrote ${files.map((f) => relative(ROOT, f)).join(', ')}`);
  if (!reportOnly) say(`${mode} benchmark took ${((Date.now() - started) / 1000).toFixed(0)} s`);
  return failed ? 1 : 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    say(err instanceof Error ? err.message : String(err));
    process.exitCode = 1;
  },
);
