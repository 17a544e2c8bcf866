import { parseThinPoolStatus } from '../../lib/dm/parse';
import { HEALTHY_POOL, poolCondition, poolTransitions, type PoolCondition } from '../../lib/deviceset/pool-transitions';
import type { ThinPoolStatus } from '../../lib/dm';

/** A status line as the kernel prints it: <tx> <meta used/total> <data used/total> <held> <mode> ... */
function status(dataUsed: number, mode = 'rw', needsCheck = '-', dataTotal = 1024): ThinPoolStatus {
  return parseThinPoolStatus(`1 20/4096 ${dataUsed}/${dataTotal} - ${mode} discard_passdown queue_if_no_space ${needsCheck} 1024 `);
}

/** Feeds statuses in order, from a healthy pool, and lists the events each one makes. */
function run(lowWater: number, statuses: ThinPoolStatus[]): string[][] {
  let cond: PoolCondition = HEALTHY_POOL;
  return statuses.map((st) => {
    const next = poolCondition(st, lowWater, cond);
    const types = poolTransitions(cond, next);
    cond = next;
    return types;
  });
}

describe('pool transitions', () => {
  test('filling a pool: low-water once at the crossing, then out-of-data-space, then writable after growth', () => {
    expect(
      run(256, [
        status(100),
        status(700),
        status(768), // 256 free: at the mark counts, as in the kernel (free <= low water)
        status(900),
        status(1024, 'out_of_data_space'),
        status(1024, 'out_of_data_space'),
        status(1024, 'rw', '-', 2048), // grown: rw again and above the mark
        status(1800, 'rw', '-', 2048), // below the mark again: reported again
      ]),
    ).toEqual([[], [], ['low-water'], [], ['out-of-data-space'], [], ['writable'], ['low-water']]);
  });

  test('one read that shows several changes reports them in a fixed order', () => {
    expect(run(256, [status(1024, 'out_of_data_space')])).toEqual([['low-water', 'out-of-data-space']]);
    expect(run(256, [status(10, 'ro', 'needs_check')])).toEqual([['read-only', 'needs-check']]);
  });

  test('read-only and back; repeated states are reported once', () => {
    expect(run(0, [status(10, 'ro'), status(11, 'ro'), status(12), status(12)])).toEqual([['read-only'], [], ['writable'], []]);
  });

  test('out of space straight to read-only (metadata trouble): each mode once', () => {
    expect(run(0, [status(1024, 'out_of_data_space'), status(1024, 'ro')])).toEqual([['low-water', 'out-of-data-space'], ['read-only']]);
  });

  test('Fail and Error are "failed"; what they cannot say is kept; recovery to rw is "writable"', () => {
    const fail = parseThinPoolStatus('Fail');
    const error = parseThinPoolStatus('Error');
    expect(run(256, [status(900), fail, error, status(900)])).toEqual([['low-water'], ['failed'], [], ['writable']]);
    const below = poolCondition(status(900), 256);
    expect(poolCondition(fail, 256, below)).toEqual({ failed: true, mode: null, needsCheck: false, belowLowWater: true });
    expect(run(0, [fail, status(10, 'ro', 'needs_check')])).toEqual([['failed'], ['read-only', 'needs-check']]);
  });

  test('a healthy pool makes no event; a low-water mark of 0 fires only when full', () => {
    expect(run(32768, [status(0, 'rw', '-', 40000)])).toEqual([[]]);
    expect(run(0, [status(1023), status(1024)])).toEqual([[], ['low-water']]);
  });

  test('a pool smaller than its low-water mark is below it from the start', () => {
    expect(poolCondition(status(0), 32768)).toMatchObject({ belowLowWater: true });
  });
});
