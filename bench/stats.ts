/** Summary statistics of per-operation samples (nanoseconds). */

export interface Stats {
  n: number;
  /** Nanoseconds. */
  mean: number;
  p50: number;
  p99: number;
  min: number;
  max: number;
}

/** Nearest-rank percentile of sorted values (p in 0..100). */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1] as number;
}

export function summarize(samples: readonly number[]): Stats {
  const sorted = [...samples].sort((a, b) => a - b);
  const n = sorted.length;
  const mean = n === 0 ? NaN : sorted.reduce((s, v) => s + v, 0) / n;
  return {
    n,
    mean,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    min: n === 0 ? NaN : (sorted[0] as number),
    max: n === 0 ? NaN : (sorted[n - 1] as number),
  };
}

/** Least-squares slope of y over x (units of y per unit of x). */
export function slope(points: readonly { x: number; y: number }[]): number {
  const n = points.length;
  if (n < 2) return NaN;
  const mx = points.reduce((s, p) => s + p.x, 0) / n;
  const my = points.reduce((s, p) => s + p.y, 0) / n;
  let num = 0;
  let den = 0;
  for (const p of points) {
    num += (p.x - mx) * (p.y - my);
    den += (p.x - mx) ** 2;
  }
  return den === 0 ? NaN : num / den;
}

/** a / b, or NaN when either is missing. */
export function ratio(a: number | undefined, b: number | undefined): number {
  if (a === undefined || b === undefined || !Number.isFinite(a) || !Number.isFinite(b) || b === 0) return NaN;
  return a / b;
}

/** A duration in ns for people: 412 µs, 2.61 ms, 1.20 s. */
export function formatNs(ns: number): string {
  if (!Number.isFinite(ns)) return '–';
  if (ns < 0) return `−${formatNs(-ns)}`;
  if (ns < 1e3) return `${ns.toFixed(0)} ns`;
  if (ns < 1e6) return `${(ns / 1e3).toPrecision(3)} µs`;
  if (ns < 1e9) return `${(ns / 1e6).toPrecision(3)} ms`;
  return `${(ns / 1e9).toPrecision(3)} s`;
}

export function formatRatio(r: number): string {
  if (!Number.isFinite(r)) return '–';
  return r >= 10 ? `${r.toFixed(0)}x` : `${r.toFixed(2)}x`;
}

export function formatBytes(b: number): string {
  if (!Number.isFinite(b)) return '–';
  const sign = b < 0 ? '-' : '';
  const v = Math.abs(b);
  if (v < 1024) return `${sign}${v.toFixed(0)} B`;
  if (v < 1024 ** 2) return `${sign}${(v / 1024).toFixed(1)} KiB`;
  return `${sign}${(v / 1024 ** 2).toFixed(1)} MiB`;
}
