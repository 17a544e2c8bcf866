import { DevmapperError, ErrorCodes, errnoName } from '../../lib';

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
    expect(new DevmapperError('x', { code: ErrorCodes.TIMEOUT }).code).toBe('ETIMEDOUT');
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
