/**
 * What the package root gives users: the library, not its test machinery. The crash-safety
 * tests' seam (lib/deviceset/crash-points.ts) is loaded by the tests themselves.
 */
import * as root from '../../lib';
import { armCrashPoint, crashSteps } from '../../lib/deviceset/crash-points';

test('the package root exports no crash points and no step runner outside the dm namespace', () => {
  expect(Object.keys(root)).not.toEqual(expect.arrayContaining(['armCrashPoint']));
  expect(Object.keys(root)).not.toEqual(expect.arrayContaining(['CRASH_POINTS']));
  expect(Object.keys(root)).not.toEqual(expect.arrayContaining(['runSteps']));
  expect(Object.keys(root).sort()).toEqual(expect.arrayContaining(['DeviceSet', 'Driver', 'dm', 'sys', 'layers', 'DevmapperError', 'ErrorCodes']));
});

test('an armed crash point yields its crash step the n-th time it is passed, and only that point', () => {
  armCrashPoint('after-register', 2);
  try {
    expect(crashSteps('after-intent')).toEqual([]);
    expect(crashSteps('after-register')).toEqual([]);
    expect(crashSteps('after-register')).toEqual([{ kind: 'crash', phase: 'crash' }]);
  } finally {
    armCrashPoint(null);
  }
  expect(crashSteps('after-register')).toEqual([]);
  expect(() => armCrashPoint('nowhere' as never)).toThrow(/unknown crash point/);
});
