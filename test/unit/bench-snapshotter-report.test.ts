/** The snapshotter section's reading of ctrdbench's output and its ratio table (bench/peer-output.ts, bench/report-snapshotter.ts). */
import { parseCtrdbenchBatch } from '../../bench/peer-output';
import { snapRatioTable } from '../../bench/report-snapshotter';
import { summarize } from '../../bench/stats';
import { SNAP_STEPS, type SnapBenchResult, type SnapContenderName, type SnapStream } from '../../bench/types';

const OUTPUT = [
  'bench n=2',
  'init ms=201.500',
  'base ms=563.250',
  'prepare mean_ms=280.000 p50_ms=270.000 p99_ms=290.000',
  'mount mean_ms=2.000 p50_ms=1.500 p99_ms=2.500',
  'write mean_ms=0.300 p50_ms=0.200 p99_ms=0.400',
  'unmount mean_ms=3.000 p50_ms=2.000 p99_ms=4.000',
  'remove mean_ms=281.000 p50_ms=280.000 p99_ms=282.000',
  'lifecycle mean_ms=566.300 p50_ms=560.000 p99_ms=572.600',
  '',
].join('\n');

describe("ctrdbench's output in the snapshotter section", () => {
  test('a batch gives back every step sample, the lifecycle, Init and base', () => {
    const b = parseCtrdbenchBatch(OUTPUT, 2, 'ctrdbench');
    expect(b.steps.prepare).toEqual([270e6, 290e6]);
    expect(b.steps.write).toEqual([0.2e6, 0.4e6]);
    expect(b.steps.remove).toEqual([280e6, 282e6]);
    expect(b.lifecycle).toEqual([560e6, 572.6e6]);
    expect(b.initMs).toBe(201.5);
    expect(b.baseMs).toBe(563.25);
  });

  test('a wrong count is refused, naming the program and showing its output', () => {
    expect(() => parseCtrdbenchBatch(OUTPUT, 3, 'ctrdbench --socket')).toThrow(/ctrdbench --socket: expected "bench n=3"[\s\S]*init ms=201\.500/);
  });

  test('a missing step line is refused', () => {
    const without = OUTPUT.split('\n').filter((l) => !l.startsWith('unmount')).join('\n');
    expect(() => parseCtrdbenchBatch(without, 2, 'ctrdbench')).toThrow(/no "unmount" line/);
  });

  test('a batch too large to give back its samples is refused', () => {
    expect(() => parseCtrdbenchBatch(OUTPUT.replace('bench n=2', 'bench n=4'), 4, 'ctrdbench')).toThrow(/n <= 3/);
  });
});

function stream(contender: SnapContenderName, ms: number): SnapStream {
  const ns = (x: number) => ({ ...summarize([x * 1e6, x * 1e6]), samples: [x * 1e6, x * 1e6] });
  return {
    contender,
    setting: 'defaults',
    options: [],
    lifecycle: ns(5 * ms),
    steps: Object.fromEntries(SNAP_STEPS.map((s) => [s, ns(ms)])) as SnapStream['steps'],
  };
}

describe('the snapshotter ratio table', () => {
  test('each pair is the first time over the second, per lifecycle and step', () => {
    const p: SnapBenchResult = {
      peersDir: '/x',
      batch: 2,
      rounds: 1,
      setup: '',
      streams: [stream('snapshotter', 10), stream('snapshotterGrpc', 20), stream('containerd', 300), stream('containerdGrpc', 345)],
    };
    const rows = snapRatioTable(p, 'defaults').split('\n');
    const row = (label: string) => rows.find((l) => l.startsWith(`| ${label} |`))?.split(' | ').slice(1, 3);
    expect(row('containerd in process / ours in process')).toEqual(['30x / 30x / 30x', '30x / 30x / 30x']);
    expect(row('containerd over gRPC / ours over gRPC')).toEqual(['17x / 17x / 17x', '17x / 17x / 17x']);
    expect(row('ours: over gRPC / in process')).toEqual(['2.00x / 2.00x / 2.00x', '2.00x / 2.00x / 2.00x']);
    expect(row("containerd's: over gRPC / in process")).toEqual(['1.15x / 1.15x / 1.15x', '1.15x / 1.15x / 1.15x']);
  });

  test('a missing contender leaves dashes, not a wrong figure', () => {
    const p: SnapBenchResult = { peersDir: '/x', batch: 2, rounds: 1, setup: '', streams: [stream('snapshotter', 10)] };
    expect(snapRatioTable(p, 'defaults')).toContain('| containerd in process / ours in process | – / – / – |');
  });
});
