/**
 * Task settings: the process-wide ones (dm.setTaskDefaults, dm.setLogLevel) and a caller's
 * own (dm.withTaskSettings, what each DeviceSet runs its operations in). What every task path
 * sends to the addon is withTaskDefaults(spec); the libdm lines forwarded are those at or
 * below libdmLevel(). That the addon captures at the spec's level is proven in the kernel
 * (test/integration/deviceset-task-settings.test.ts).
 */
import { setImmediate as tick } from 'node:timers/promises';
import { DevmapperError, ErrorCodes } from '../../lib/errors';
import * as dm from '../../lib/dm';
import { libdmLevel, withTaskDefaults } from '../../lib/dm/task';
import type { NativeTaskSpec } from '../../lib/native';

const SPEC: NativeTaskSpec = { type: 'remove', name: 'x' };

/** What a task started here would send, and the level its lines are forwarded at. */
const seenHere = () => ({ spec: withTaskDefaults(SPEC), level: libdmLevel() });

let processLevel: number;
beforeEach(() => {
  processLevel = dm.getLogLevel();
});
afterEach(() => {
  dm.setLogLevel(processLevel);
  dm.setTaskDefaults({ udevTimeoutMs: 30_000 });
});

describe('process-wide settings', () => {
  test('setLogLevel sets what getLogLevel reads and outside any scope the tasks use', () => {
    dm.setLogLevel(6);
    expect(dm.getLogLevel()).toBe(6);
    dm.setTaskDefaults({ udevTimeoutMs: 1234 });
    expect(seenHere()).toEqual({ spec: { type: 'remove', name: 'x', udevTimeoutMs: 1234 }, level: 6 });
  });

  test.each([1, 8, 2.5, NaN, '7' as unknown as number])('setLogLevel(%p) is refused and changes nothing', (level) => {
    dm.setLogLevel(4);
    let err: unknown;
    try {
      dm.setLogLevel(level);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(DevmapperError);
    expect(err).toMatchObject({ code: ErrorCodes.INVALID_ARGUMENT, argument: 'level' });
    expect(dm.getLogLevel()).toBe(4);
  });
});

describe('withTaskSettings', () => {
  test("a scope's settings reach the tasks it starts, across awaits and timers, and no other", async () => {
    dm.setLogLevel(5);
    const outside = seenHere();
    const inScope = (udevTimeoutMs: number, logLevel: number) =>
      dm.withTaskSettings({ udevTimeoutMs, logLevel }, async () => {
        const first = seenHere();
        // Interleave with the other scope and with code outside both.
        await tick();
        const afterAwait = seenHere();
        const inTimer = await new Promise<ReturnType<typeof seenHere>>((resolve) => setTimeout(() => resolve(seenHere()), 1));
        return [first, afterAwait, inTimer];
      });
    const [a, b] = await Promise.all([inScope(1000, 7), inScope(2000, 3), tick().then(() => expect(seenHere()).toEqual(outside))]);
    for (const seen of a) expect(seen).toEqual({ spec: { type: 'remove', name: 'x', udevTimeoutMs: 1000, logLevel: 7 }, level: 7 });
    for (const seen of b) expect(seen).toEqual({ spec: { type: 'remove', name: 'x', udevTimeoutMs: 2000, logLevel: 3 }, level: 3 });
    // Nothing leaked into the process's settings.
    expect(outside).toEqual({ spec: { type: 'remove', name: 'x', udevTimeoutMs: 30_000 }, level: 5 });
    expect(seenHere()).toEqual(outside);
    expect(dm.getLogLevel()).toBe(5);
    expect(dm.getTaskDefaults()).toEqual({ udevTimeoutMs: 30_000 });
  });

  test('an unset field keeps the process setting; scopes nest, the innermost wins; the spec wins over both', () => {
    dm.setTaskDefaults({ udevTimeoutMs: 500 });
    dm.withTaskSettings({ logLevel: 6 }, () => {
      expect(seenHere().spec).toEqual({ type: 'remove', name: 'x', udevTimeoutMs: 500, logLevel: 6 });
      dm.withTaskSettings({ udevTimeoutMs: 10 }, () => {
        expect(seenHere()).toEqual({ spec: { type: 'remove', name: 'x', udevTimeoutMs: 10, logLevel: 6 }, level: 6 });
        expect(withTaskDefaults({ ...SPEC, udevTimeoutMs: 1, logLevel: 2 })).toEqual({ ...SPEC, udevTimeoutMs: 1, logLevel: 2 });
      });
    });
  });

  test.each([
    [{ udevTimeoutMs: -1 }, 'udevTimeoutMs'],
    [{ udevTimeoutMs: 1.5 }, 'udevTimeoutMs'],
    [{ logLevel: 9 }, 'logLevel'],
    [{ logLevel: 1 }, 'logLevel'],
  ])('%j is refused naming %s, and fn does not run', (settings, argument) => {
    const fn = jest.fn();
    expect(() => dm.withTaskSettings(settings, fn)).toThrow(expect.objectContaining({ code: ErrorCodes.INVALID_ARGUMENT, argument }));
    expect(fn).not.toHaveBeenCalled();
  });
});
