/** The benchmark's count of the udev backlog (bench/udev-backlog.ts) and the served Snapshotter's settle line. */
import { settledLine } from '../../lib/cli/snapshotter';
import { parseSettledLine } from '../../bench/peer-output';
import { backlogFields, emptyBacklog, settleReaper, UdevBacklog } from '../../bench/udev-backlog';

const reaper = { pending: 0, settle: jest.fn() };
jest.mock('../../dist/dm', () => ({
  udevReaperStats: () => ({ pending: reaper.pending, reaped: 0, timedOut: 0 }),
  udevSettle: (ms: number) => reaper.settle(ms),
}));

describe('the udev backlog of a batch', () => {
  test("ours: the settle is shared out equally over the batch's lifecycles, earlier samples untouched", async () => {
    const udev = new UdevBacklog(false);
    const taken = emptyBacklog();
    const samples = [100, 10, 20, 30];
    const ns = await udev.afterBatch(samples, 3, async () => 90, taken);
    expect(ns).toBe(90);
    expect(samples).toEqual([100, 40, 50, 60]);
    expect(taken).toEqual({ backlog: [30, 30, 30], udevadmMs: [] });
    expect(backlogFields(taken)).toEqual({ udevBacklog: expect.objectContaining({ n: 3, mean: 30, samples: [30, 30, 30] }) });
  });

  test('a contender without a settle (it waits for udev in its calls) gets nothing added and no backlog field', async () => {
    const udev = new UdevBacklog(false);
    const taken = emptyBacklog();
    const samples = [10, 20];
    expect(await udev.afterBatch(samples, 2, null, taken)).toBe(0);
    expect(samples).toEqual([10, 20]);
    expect(backlogFields(taken)).toEqual({});
  });

  test('fewer samples than the batch is a bug of the caller', async () => {
    await expect(new UdevBacklog(false).charge([1], 2, async () => 5, emptyBacklog())).rejects.toThrow(/2 lifecycles in the batch, 1 samples/);
  });

  test("this process's reaper: 0 when nothing is pending, without calling udevSettle; a timeout fails the run", async () => {
    reaper.pending = 0;
    reaper.settle.mockReset();
    expect(await settleReaper()).toBe(0);
    expect(reaper.settle).not.toHaveBeenCalled();

    reaper.pending = 2;
    reaper.settle.mockResolvedValue({ pending: 0, reaped: 2, timedOut: 0 });
    expect(await settleReaper()).toBeGreaterThan(0);
    expect(reaper.settle).toHaveBeenCalledWith(60_000);

    reaper.settle.mockResolvedValue({ pending: 1, reaped: 2, timedOut: 0 });
    await expect(settleReaper()).rejects.toThrow(/1 cookie\(s\) still pending after 60 s/);
  });
});

describe("`devmapper snapshotter serve`'s SIGUSR2 line", () => {
  test('what the server prints, the benchmark reads', () => {
    const line = `devmapper: ${settledLine(123.4567, { pending: 0, reaped: 42, timedOut: 1 })}`;
    expect(parseSettledLine(line)).toEqual({ ms: 123.457, pending: 0, reaped: 42, timedOut: 1 });
    expect(parseSettledLine('devmapper: serving containerd snapshots on /x.sock (root /y)')).toBeNull();
  });
});
