/**
 * The peers' output (dockerdm bench, ctrdbench), parsed, and the samples behind its
 * statistics; and the line `devmapper snapshotter serve` prints on SIGUSR2.
 */
import { SNAP_STEPS, type SnapStep } from './types';

/**
 * `devmapper: udev settled in MS ms: N pending, N reaped, N timed out` (lib/cli/snapshotter.ts's
 * settledLine), or null for any other line.
 */
export function parseSettledLine(line: string): { ms: number; pending: number; reaped: number; timedOut: number } | null {
  const m = /udev settled in ([\d.]+) ms: (\d+) pending, (\d+) reaped, (\d+) timed out\s*$/.exec(line);
  return m ? { ms: Number(m[1]), pending: Number(m[2]), reaped: Number(m[3]), timedOut: Number(m[4]) } : null;
}

/** `NAME mean_ms=.. p50_ms=.. p99_ms=..` and `NAME ms=..` lines of dockerdm's and ctrdbench's output. */
export function parseBenchOutput(text: string): { n: number; values: Record<string, number>; rows: Record<string, { mean: number; p50: number; p99: number }> } {
  const rows: Record<string, { mean: number; p50: number; p99: number }> = {};
  const values: Record<string, number> = {};
  let n = NaN;
  for (const line of text.split('\n')) {
    const m = /^(\w+) mean_ms=([\d.]+) p50_ms=([\d.]+) p99_ms=([\d.]+)\s*$/.exec(line);
    if (m) {
      rows[m[1] as string] = { mean: Number(m[2]), p50: Number(m[3]), p99: Number(m[4]) };
      continue;
    }
    const v = /^(\w+) ms=([\d.]+)\s*$/.exec(line);
    if (v) values[v[1] as string] = Number(v[2]);
    const b = /^bench n=(\d+)\s*$/.exec(line);
    if (b) n = Number(b[1]);
  }
  return { n, values, rows };
}

/**
 * The samples (ns) behind a peer's mean / p50 / p99 (ms, nearest rank) of n = 1, 2 or 3
 * samples: n = 1 is the mean; n = 2 is p50 (the smaller) and p99 (the larger); n = 3 is
 * 3 mean - p50 - p99, p50, p99. The output's 3 decimals make that exact to a few µs.
 */
export function samplesOf(n: number, s: { mean: number; p50: number; p99: number }): number[] {
  const ns = (ms: number) => Math.round(ms * 1e6);
  if (n === 1) return [ns(s.mean)];
  if (n === 2) return [ns(s.p50), ns(s.p99)];
  if (n === 3) return [ns(Math.min(s.p50, Math.max(0, 3 * s.mean - s.p50 - s.p99))), ns(s.p50), ns(s.p99)];
  throw new Error(`a peer's batch gives back its samples only for n <= 3, not ${n}`);
}

/** One ctrdbench batch of `count` lifecycles: its samples (ns) per step and lifecycle, its Init and base snapshot (ms). */
export interface CtrdbenchBatch {
  steps: Record<SnapStep, number[]>;
  lifecycle: number[];
  initMs?: number;
  baseMs?: number;
}

/**
 * ctrdbench's output for a batch of `count`: every line it must print (bench n=, prepare,
 * mount, write, unmount, remove, lifecycle), or an error naming `what` with the output.
 */
export function parseCtrdbenchBatch(text: string, count: number, what: string): CtrdbenchBatch {
  const p = parseBenchOutput(text);
  if (p.n !== count) throw new Error(`${what}: expected "bench n=${count}" in its output:\n${text}`);
  const samples = (name: string) => {
    const row = p.rows[name];
    if (!row) throw new Error(`${what}: no "${name}" line in its output:\n${text}`);
    return samplesOf(count, row);
  };
  return {
    steps: Object.fromEntries(SNAP_STEPS.map((s) => [s, samples(s)])) as Record<SnapStep, number[]>,
    lifecycle: samples('lifecycle'),
    ...(p.values.init === undefined ? {} : { initMs: p.values.init }),
    ...(p.values.base === undefined ? {} : { baseMs: p.values.base }),
  };
}
