/**
 * Where an async dm call's time goes in this kernel: system calls per call, counted with
 * strace -f -c, for the addon's synchronous and asynchronous runners, the dm API, a plain
 * libuv thread-pool call (fs.promises.stat) and the C program. Under user-mode Linux every
 * system call is a ptrace round trip, so the count is the cost.
 *
 *   node dist/sandbox/cli.js --kernel sandbox --udev off -- node dist-bench/profile-syscalls.js [COUNT]
 *
 * Prints a Markdown table: calls per operation by system call, and the time per operation
 * measured without strace.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import * as dm from '../dist/dm';
import { createBenchPool } from './pool';
import { CALLS_PER_ITERATION, PROFILE_MODES, type ProfileMode } from './profile-loop';
import { RawClient } from './raw-client';
import { formatNs } from './stats';

const ROOT = resolve(__dirname, '..');
const RAW = join(ROOT, 'dist-bench', 'bin', 'dm_raw_bench');
const LOOP = join(__dirname, 'profile-loop.js');

/** strace -c's table: syscall name -> calls. */
export function parseStraceSummary(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)\s*$/.exec(line);
    if (m && m[2] !== 'total') out.set(m[2] as string, Number(m[1]));
  }
  return out;
}

function straced(dir: string, label: string, argv: string[]): Map<string, number> {
  const file = join(dir, label);
  execFileSync('strace', ['-f', '-qq', '-c', '-o', file, ...argv], { stdio: ['ignore', 'ignore', 'inherit'] });
  return parseStraceSummary(readFileSync(file, 'utf8'));
}

function perCall(a: Map<string, number>, b: Map<string, number>, calls: number): Map<string, number> {
  const out = new Map<string, number>();
  for (const k of new Set([...a.keys(), ...b.keys()])) {
    const v = ((a.get(k) ?? 0) - (b.get(k) ?? 0)) / calls;
    if (Math.abs(v) >= 0.05) out.set(k, v);
  }
  return out;
}

async function main(): Promise<void> {
  const n = Number(process.argv[2] ?? 200);
  const prefix = `dmp${process.pid}-`;
  const pool = await createBenchPool(prefix, 'p', { dataBytes: 2 ** 30, metadataBytes: 64 * 2 ** 20 });
  const dir = mkdtempSync(join(tmpdir(), 'devmapper-profile-'));
  const rows: { label: string; counts: Map<string, number>; ns: number }[] = [];
  try {
    const device = `${pool.prefix}t`;
    await dm.createDevice(pool.name, 1);
    await dm.activateDevice(pool.name, device, 1, 2 ** 30);
    for (const mode of PROFILE_MODES) {
      const args = (count: number) => [LOOP, mode, String(count), device, pool.name];
      const base = straced(dir, `${mode}-0`, [process.execPath, ...args(0)]);
      const full = straced(dir, `${mode}-${n}`, [process.execPath, ...args(n)]);
      const timing = JSON.parse(execFileSync(process.execPath, args(n), { encoding: 'utf8' })) as { nsPerIteration: number };
      const calls = CALLS_PER_ITERATION[mode as ProfileMode];
      rows.push({ label: mode, counts: perCall(full, base, n * calls), ns: timing.nsPerIteration / calls });
    }
    // The C program: a batch of n against a batch of 1 (its own start-up subtracted).
    const rawArgs = (count: number) => [RAW, pool.name, 'info', String(count), `name=${device}`];
    const r1 = straced(dir, 'raw-1', rawArgs(1));
    const rn = straced(dir, `raw-${n}`, rawArgs(n));
    const { client } = await RawClient.start(RAW, pool.name);
    const ns = await client.batch('info', n, { name: device });
    await client.close();
    rows.push({ label: 'raw C info', counts: perCall(rn, r1, n - 1), ns: ns.reduce((s, v) => s + v, 0) / n });
  } finally {
    rmSync(dir, { recursive: true, force: true });
    await pool.destroy();
  }
  const names = [...new Set(rows.flatMap((r) => [...r.counts.keys()]))].sort(
    (a, b) => Math.max(...rows.map((r) => r.counts.get(b) ?? 0)) - Math.max(...rows.map((r) => r.counts.get(a) ?? 0)),
  );
  const head = ['per call', 'time (no strace)', 'syscalls', ...names];
  const lines = [head, head.map((_, i) => (i === 0 ? ':--' : '--:'))];
  for (const r of rows) {
    const total = [...r.counts.values()].reduce((s, v) => s + v, 0);
    lines.push([r.label, formatNs(r.ns), total.toFixed(1), ...names.map((k) => (r.counts.has(k) ? (r.counts.get(k) as number).toFixed(1) : ''))]);
  }
  process.stdout.write(`${lines.map((l) => `| ${l.join(' | ')} |`).join('\n')}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`profile: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
