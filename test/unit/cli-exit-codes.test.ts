/** Error classes to exit statuses, and the one-line error format. */
import { errorLine } from '../../lib/cli/main';
import { EXIT_CODE_HELP, ExitCode, exitCodeFor } from '../../lib/cli/exit-codes';
import { DevmapperError, ErrorCodes, invalidArgument } from '../../lib/errors';

const err = (code: string) => new DevmapperError('x', { code });

describe('devmapper exit statuses', () => {
  test.each([
    [invalidArgument('size', 'a size', 'q'), ExitCode.USAGE],
    [err(ErrorCodes.UDEV_SYNC_UNSUPPORTED), ExitCode.USAGE],
    [new DevmapperError('unknown device x', { code: 'ENOENT', errno: 2 }), ExitCode.NOT_FOUND],
    [new DevmapperError('no such device', { errno: 6 }), ExitCode.NOT_FOUND],
    [new DevmapperError('busy', { errno: 16 }), ExitCode.BUSY],
    [err('EBUSY'), ExitCode.BUSY],
    [err('ERR_ROOT_BUSY'), ExitCode.BUSY],
    [err(ErrorCodes.POOL_NOT_WRITABLE), ExitCode.POOL_SPACE],
    [err(ErrorCodes.POOL_LOW_SPACE), ExitCode.POOL_SPACE],
    [err(ErrorCodes.POOL_FAILED), ExitCode.POOL_SPACE],
    [err('ENOSPC'), ExitCode.POOL_SPACE],
    [err('EPERM'), ExitCode.PERMISSION],
    [Object.assign(new Error('EACCES: permission denied'), { code: 'EACCES' }), ExitCode.PERMISSION],
    [err(ErrorCodes.NO_DEVICE_MAPPER), ExitCode.NO_DEVICE_MAPPER],
    [err(ErrorCodes.ADDON), ExitCode.ADDON],
    [err('EEXIST'), ExitCode.EXISTS],
    [err(ErrorCodes.TRANSACTION_MISMATCH), ExitCode.INCONSISTENT],
    [err(ErrorCodes.BASE_DEVICE_CHANGED), ExitCode.INCONSISTENT],
    [err(ErrorCodes.METADATA_CORRUPT), ExitCode.INCONSISTENT],
    [err('ETIMEDOUT'), ExitCode.TIMEOUT],
    [new DevmapperError('timed out', { errno: 110 }), ExitCode.TIMEOUT],
    [err(ErrorCodes.ABORTED), ExitCode.TIMEOUT],
    [err(ErrorCodes.COMMAND_FAILED), ExitCode.COMMAND_FAILED],
    [err(ErrorCodes.XFS_NOSPACE_RETRIES), ExitCode.USAGE],
    [new DevmapperError('not a directory', { errno: 20 }), ExitCode.NOT_FOUND],
    [err(ErrorCodes.DM_FAILED), ExitCode.UNEXPECTED],
    [new DevmapperError('io', { errno: 5 }), ExitCode.UNEXPECTED],
    [new TypeError('bug'), ExitCode.UNEXPECTED],
    ['a string', ExitCode.UNEXPECTED],
  ])('%s -> %d', (e, code) => {
    expect(exitCodeFor(e)).toBe(code);
  });

  test.each(Object.entries(ErrorCodes))('ErrorCodes.%s (%s) has a status that --help lists', (_key, code) => {
    const status = exitCodeFor(err(code));
    expect(EXIT_CODE_HELP.map(([c]) => c)).toContain(status);
  });

  test('only the codes no command line can cause end as 1 (unexpected)', () => {
    const unexpected = Object.values(ErrorCodes).filter((code) => exitCodeFor(err(code)) === ExitCode.UNEXPECTED);
    expect(unexpected.sort()).toEqual([ErrorCodes.CLOSED, ErrorCodes.DM_FAILED, ErrorCodes.PARSE].sort());
  });

  test('every class has its own status', () => {
    const values = Object.values(ExitCode);
    expect(new Set(values).size).toBe(values.length);
  });

  test('one line: devmapper: <message> (<code>)', () => {
    expect(errorLine(new DevmapperError('unknown device ctr', { code: 'ENOENT' }))).toBe('devmapper: unknown device ctr (ENOENT)\n');
    expect(errorLine(new DevmapperError('first\nsecond', { code: 'EBUSY' }))).toBe('devmapper: first (EBUSY)\n');
    expect(errorLine(new Error('plain'))).toBe('devmapper: plain (ERR_UNEXPECTED)\n');
  });
});
