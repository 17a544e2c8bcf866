/** The benchmark's reading of the peers' output (bench/peer-output.ts): the samples behind mean / p50 / p99. */
import { parseBenchOutput, samplesOf } from '../../bench/peer-output';

/** What dockerdm and ctrdbench compute: mean and nearest-rank p50 / p99, in ms with 3 decimals. */
function peerStats(ms: number[]): { mean: number; p50: number; p99: number } {
  const s = [...ms].sort((a, b) => a - b);
  const rank = (p: number) => s[Math.min(s.length, Math.max(1, Math.ceil((p / 100) * s.length))) - 1] as number;
  const r = (x: number) => Number(x.toFixed(3));
  return { mean: r(s.reduce((a, b) => a + b, 0) / s.length), p50: r(rank(50)), p99: r(rank(99)) };
}

describe('the peers output', () => {
  test('dockerdm bench and ctrdbench lines are parsed', () => {
    const out = [
      'bench n=3',
      'init ms=58.648',
      'base ms=859.249',
      'create mean_ms=3.600 p50_ms=2.128 p99_ms=6.546',
      'lifecycle mean_ms=31.203 p50_ms=26.979 p99_ms=42.473',
      '',
    ].join('\n');
    expect(parseBenchOutput(out)).toEqual({
      n: 3,
      values: { init: 58.648, base: 859.249 },
      rows: { create: { mean: 3.6, p50: 2.128, p99: 6.546 }, lifecycle: { mean: 31.203, p50: 26.979, p99: 42.473 } },
    });
  });

  test.each([[[12.5]], [[3.25, 9.125]], [[9.5, 1.25, 4.75]], [[7, 7, 7]], [[0.001, 250.5, 33.333]]])('batch %j: every sample comes back', (ms) => {
    const got = samplesOf(ms.length, peerStats(ms));
    const want = [...ms].sort((a, b) => a - b).map((x) => x * 1e6);
    got.forEach((v, i) => expect(Math.abs(v - (want[i] as number))).toBeLessThanOrEqual(3000));
  });

  test('a batch of more than 3 is refused: its samples cannot be recovered', () => {
    expect(() => samplesOf(4, { mean: 1, p50: 1, p99: 1 })).toThrow(/n <= 3/);
  });
});
