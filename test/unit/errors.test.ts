import { constants as osConstants } from 'node:os';
import { arg, type ParsedCommand } from '../../lib/cli/command';
import { DevmapperError, dm, ErrorCodes, errnoName, sys } from '../../lib';

describe('DevmapperError', () => {
  test('an errno becomes its symbolic code', () => {
    const e = new DevmapperError('x', { errno: 16, operation: 'remove', device: 'd' });
    expect(e).toBeInstanceOf(Error);
    expect(e.name).toBe('DevmapperError');
    expect(e.code).toBe('EBUSY');
    expect(e.errno).toBe(16);
    expect(e.operation).toBe('remove');
    expect(e.device).toBe('d');
    expect(e.logs).toEqual([]);
  });

  test('no errno: the project code given, or ERR_DM_FAILED', () => {
    expect(new DevmapperError('x').code).toBe(ErrorCodes.DM_FAILED);
    expect(new DevmapperError('x', { errno: 0 }).errno).toBeUndefined();
    expect(new DevmapperError('x', { code: ErrorCodes.ROOT_BUSY }).code).toBe('ERR_ROOT_BUSY');
  });

  test('errnoName knows the kernel codes the library relies on', () => {
    expect([17, 61, 6, 16, 28, 22].map(errnoName)).toEqual(['EEXIST', 'ENODATA', 'ENXIO', 'EBUSY', 'ENOSPC', 'EINVAL']);
    expect(errnoName(99999)).toBeUndefined();
  });

  test('the cause is kept', () => {
    const cause = new Error('inner');
    expect(new DevmapperError('outer', { cause }).cause).toBe(cause);
  });
});

describe('errors of the sites outside the kernel paths are DevmapperErrors with a code', () => {
  const expectCode = (fn: () => unknown, fields: Record<string, unknown>): void => {
    let caught: unknown;
    try {
      fn();
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(DevmapperError);
    expect(caught).toMatchObject(fields);
  };

  test('the addon: isMountPoint on a name too long for statx', () => {
    const path = `/${'a'.repeat(300)}`;
    expectCode(() => sys.isMountPoint(path), { code: 'ENAMETOOLONG', errno: osConstants.errno.ENAMETOOLONG, operation: 'statx', device: path });
  });

  test('dm.setTaskDefaults names the argument it refuses', () => {
    const before = dm.getTaskDefaults();
    expectCode(() => dm.setTaskDefaults({ udevTimeoutMs: -1 }), { code: ErrorCodes.INVALID_ARGUMENT, argument: 'udevTimeoutMs' });
    expectCode(() => dm.setTaskDefaults({ udevTimeoutMs: 1.5 }), { code: ErrorCodes.INVALID_ARGUMENT, argument: 'udevTimeoutMs' });
    expect(dm.getTaskDefaults()).toEqual(before);
  });

  test('the CLI: a positional that is not one value', () => {
    const cmd = { args: { ids: ['a', 'b'] } } as unknown as ParsedCommand;
    expectCode(() => arg(cmd, 'ids'), { code: ErrorCodes.INVALID_ARGUMENT, argument: 'ids' });
    expectCode(() => arg(cmd, 'missing'), { code: ErrorCodes.INVALID_ARGUMENT, argument: 'missing' });
  });
});
