import { DevmapperError, ErrorCodes } from '../../lib/errors';
import {
  formatDeviceNumber,
  formatTargetLine,
  formatThinPoolTable,
  formatThinTable,
  parseDeviceNumber,
  parseTargetLine,
  parseThinPoolStatus,
  parseThinPoolTable,
  parseThinStatus,
  parseThinTable,
} from '../../lib/dm/parse';
import type { TargetLine, ThinPoolStatus, ThinPoolTable, ThinStatus, ThinTable } from '../../lib/dm/types';

/** Runs fn, expects a DevmapperError with the given code whose message matches every pattern. */
function expectError(code: string, fn: () => unknown, ...patterns: (RegExp | string)[]): DevmapperError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(DevmapperError);
  const err = caught as DevmapperError;
  expect(err.code).toBe(code);
  for (const p of patterns) {
    if (typeof p === 'string') expect(err.message).toContain(p);
    else expect(err.message).toMatch(p);
  }
  return err;
}

const expectParseError = (fn: () => unknown, ...patterns: (RegExp | string)[]) =>
  expectError(ErrorCodes.PARSE, fn, ...patterns);
const expectInvalid = (fn: () => unknown, ...patterns: (RegExp | string)[]) =>
  expectError(ErrorCodes.INVALID_ARGUMENT, fn, ...patterns);

// A Docker-like pool: 100 GiB of data in 64 KiB blocks (1638400 blocks), 2 GiB of metadata in
// 4 KiB blocks (524288 blocks); the kernel's metadata low watermark is min(1024, total / 4).
// The kernel ends every thin-pool status line with a space, as the fixtures do.
const HEALTHY = '5 4121/524288 25730/1638400 - rw discard_passdown queue_if_no_space - 1024 ';

describe('parseTargetLine / formatTargetLine', () => {
  it("parses Docker's thin-pool line", () => {
    expect(parseTargetLine('0 4194304 thin-pool 7:1 7:0 128 32768 1 skip_block_zeroing')).toEqual({
      start: 0,
      length: 4194304,
      type: 'thin-pool',
      params: '7:1 7:0 128 32768 1 skip_block_zeroing',
    });
  });

  it("parses Docker's thin line", () => {
    expect(parseTargetLine('0 1048576 thin 254:0 4')).toEqual({
      start: 0,
      length: 1048576,
      type: 'thin',
      params: '254:0 4',
    });
  });

  it('parses a target without params', () => {
    expect(parseTargetLine('0 20971520 error')).toEqual({ start: 0, length: 20971520, type: 'error', params: '' });
  });

  it('parses a status line the same way', () => {
    const t = parseTargetLine('0 20971520 thin 2097152 10485759\n');
    expect(t).toEqual({ start: 0, length: 20971520, type: 'thin', params: '2097152 10485759' });
    expect(parseThinStatus(t.params)).toEqual({ state: 'ok', mappedSectors: 2097152, highestMappedSector: 10485759 });
  });

  it('parses a non-zero start (second target of a table)', () => {
    expect(parseTargetLine('2097152 2097152 linear 8:16 0')).toEqual({
      start: 2097152,
      length: 2097152,
      type: 'linear',
      params: '8:16 0',
    });
  });

  it('tolerates extra whitespace, tabs and a trailing newline, keeping params verbatim inside', () => {
    expect(parseTargetLine('  0\t4194304   thin-pool   7:1 7:0  128 32768 0 \n')).toEqual({
      start: 0,
      length: 4194304,
      type: 'thin-pool',
      params: '7:1 7:0  128 32768 0',
    });
    expect(parseTargetLine('0 8 error\r\n').params).toBe('');
  });

  it.each([
    '0 4194304 thin-pool 7:1 7:0 128 32768 1 skip_block_zeroing',
    '0 1048576 thin 254:0 4',
    '0 20971520 error',
    '2097152 2097152 linear 8:16 0',
  ])('round-trips %j', (line) => {
    expect(formatTargetLine(parseTargetLine(line))).toBe(line);
  });

  it('round-trips objects', () => {
    const t: TargetLine = { start: 1024, length: 2048, type: 'thin', params: '254:0 16777215' };
    expect(parseTargetLine(formatTargetLine(t))).toEqual(t);
    const bare: TargetLine = { start: 0, length: 8, type: 'zero', params: '' };
    expect(formatTargetLine(bare)).toBe('0 8 zero');
    expect(parseTargetLine(formatTargetLine(bare))).toEqual(bare);
  });

  it('formats trimmed params', () => {
    expect(formatTargetLine({ start: 0, length: 8, type: 'thin', params: '  254:0 4 ' })).toBe('0 8 thin 254:0 4');
  });

  it.each([
    ['', /got 0 field/],
    ['   \n', /got 0 field/],
    ['0', /got 1 field/],
    ['0 4194304', /got 2 field/],
    ['-1 8 error', /field 1 \(start sector\) "-1" is negative/],
    ['0 1.5 error', /field 2 \(length in sectors\) "1.5" is not an integer/],
    ['0 0 error', /field 2 \(length in sectors\) "0": a target cannot be empty/],
    ['x 8 error', /field 1 \(start sector\) "x" is not a non-negative decimal integer/],
    ['0 1e3 error', /field 2 \(length in sectors\) "1e3" is not a non-negative decimal integer/],
    ['0 0x10 error', /"0x10" is not a non-negative decimal integer/],
    ['0 +8 error', /"\+8" is not a non-negative decimal integer/],
    ['0 008 error', /"008" has leading zeros/],
    ['0 18446744073709551615 error', /field 2 \(length in sectors\) "18446744073709551615" is too large/],
    ['9007199254740991 1 error', /start \+ length is too large/],
    ['0 8 error\n8 8 error', /line break/],
  ])('rejects %j', (line, pattern) => {
    expectParseError(() => parseTargetLine(line), pattern, 'invalid target line', JSON.stringify(line));
  });

  it('rejects a non-string', () => {
    expectParseError(() => parseTargetLine(undefined as unknown as string), /expected a string, got undefined/);
    expectParseError(() => parseTargetLine(null as unknown as string), /got null/);
  });

  it.each<[Partial<TargetLine>, string]>([
    [{ start: -1 }, 'start'],
    [{ start: 0.5 }, 'start'],
    [{ length: 0 }, 'length'],
    [{ length: Number.NaN }, 'length'],
    [{ start: Number.MAX_SAFE_INTEGER, length: 1 }, 'length'],
    [{ type: '' }, 'type'],
    [{ type: 'thin pool' }, 'type'],
    [{ params: '254:0 4\n0 8 error' }, 'params'],
  ])('formatTargetLine rejects %j', (patch, argument) => {
    const t: TargetLine = { start: 0, length: 8, type: 'thin', params: '254:0 4', ...patch };
    const err = expectInvalid(() => formatTargetLine(t), argument);
    expect(err.argument).toBe(argument);
  });
});

describe('parseDeviceNumber / formatDeviceNumber', () => {
  it.each([
    ['7:1', 7, 1],
    ['254:0', 254, 0],
    ['0:0', 0, 0],
    ['259:1048575', 259, 1048575],
    ['4095:12', 4095, 12],
    [' 8:16\n', 8, 16],
  ])('parses %j', (text, major, minor) => {
    expect(parseDeviceNumber(text)).toEqual({ major, minor });
  });

  it.each(['7:1', '254:0', '4095:1048575'])('round-trips %j', (text) => {
    expect(formatDeviceNumber(parseDeviceNumber(text))).toBe(text);
  });

  it.each([
    ['', /expected <major>:<minor>/],
    ['7', /expected <major>:<minor>/],
    ['7:1:2', /expected <major>:<minor>/],
    ['7: 1', /expected <major>:<minor>/],
    ['/dev/loop1', /expected <major>:<minor>/],
    ['7:', /minor "" is empty/],
    [':1', /major "" is empty/],
    ['a:b', /major "a" is not a non-negative decimal integer/],
    ['-7:1', /major "-7" is negative/],
    ['7.0:1', /major "7.0" is not an integer/],
    ['07:1', /major "07" has leading zeros/],
    ['4096:0', /major 4096 is above 4095/],
    ['0:1048576', /minor 1048576 is above 1048575/],
  ])('rejects %j', (text, pattern) => {
    expectParseError(() => parseDeviceNumber(text), pattern, 'invalid device number');
  });

  it('formats and validates', () => {
    expect(formatDeviceNumber({ major: 254, minor: 3 })).toBe('254:3');
    expectInvalid(() => formatDeviceNumber({ major: -1, minor: 0 }), 'major');
    expectInvalid(() => formatDeviceNumber({ major: 7, minor: 1.5 }), 'minor');
    expectInvalid(() => formatDeviceNumber({ major: 4096, minor: 0 }), 'major');
    expectInvalid(() => formatDeviceNumber({ major: 7, minor: 2 ** 20 }), 'minor');
  });
});

describe('parseThinPoolTable / formatThinPoolTable', () => {
  const docker: ThinPoolTable = {
    metadataDevice: '7:1',
    dataDevice: '7:0',
    blockSizeSectors: 128,
    lowWaterMarkBlocks: 32768,
    features: ['skip_block_zeroing'],
  };

  it("parses Docker's table", () => {
    expect(parseThinPoolTable('7:1 7:0 128 32768 1 skip_block_zeroing')).toEqual(docker);
  });

  it('parses the kernel output with its trailing space', () => {
    expect(parseThinPoolTable('7:1 7:0 128 32768 1 skip_block_zeroing ')).toEqual(docker);
  });

  it('parses zero features', () => {
    expect(parseThinPoolTable('253:1 253:2 1024 0 0 ')).toEqual({
      metadataDevice: '253:1',
      dataDevice: '253:2',
      blockSizeSectors: 1024,
      lowWaterMarkBlocks: 0,
      features: [],
    });
  });

  it('parses several features in order', () => {
    expect(parseThinPoolTable('253:1 253:2 2048 1600 3 skip_block_zeroing no_discard_passdown error_if_no_space'))
      .toEqual({
        metadataDevice: '253:1',
        dataDevice: '253:2',
        blockSizeSectors: 2048,
        lowWaterMarkBlocks: 1600,
        features: ['skip_block_zeroing', 'no_discard_passdown', 'error_if_no_space'],
      });
  });

  // pool_ctr accepts at most 4 feature args, but the parser does not second-guess the count.
  it('parses all five known features and the block size limits', () => {
    const t = parseThinPoolTable(
      '8:33 8:32 2097152 10 5 skip_block_zeroing ignore_discard no_discard_passdown read_only error_if_no_space',
    );
    expect(t.blockSizeSectors).toBe(2097152);
    expect(t.features).toHaveLength(5);
    expect(parseThinPoolTable('8:33 8:32 128 10 0').blockSizeSectors).toBe(128);
  });

  it('keeps unknown features verbatim', () => {
    expect(parseThinPoolTable('7:1 7:0 128 32768 2 Skip_Block_Zeroing future_feature').features).toEqual([
      'Skip_Block_Zeroing',
      'future_feature',
    ]);
  });

  it('accepts device paths, as used when loading a table', () => {
    expect(parseThinPoolTable('/dev/loop1 /dev/loop0 128 32768 1 skip_block_zeroing')).toEqual({
      ...docker,
      metadataDevice: '/dev/loop1',
      dataDevice: '/dev/loop0',
    });
  });

  it('tolerates extra whitespace', () => {
    expect(parseThinPoolTable('\t7:1   7:0 128\t32768  1   skip_block_zeroing\n')).toEqual(docker);
  });

  it.each([
    '7:1 7:0 128 32768 1 skip_block_zeroing',
    '253:1 253:2 1024 0 0',
    '253:1 253:2 2048 1600 3 skip_block_zeroing no_discard_passdown error_if_no_space',
    '/dev/loop1 /dev/loop0 65536 1 2 ignore_discard read_only',
  ])('round-trips %j', (params) => {
    expect(formatThinPoolTable(parseThinPoolTable(params))).toBe(params);
    expect(formatThinPoolTable(parseThinPoolTable(`${params} `))).toBe(params);
  });

  it('round-trips objects', () => {
    expect(parseThinPoolTable(formatThinPoolTable(docker))).toEqual(docker);
    const none: ThinPoolTable = { ...docker, features: [] };
    expect(formatThinPoolTable(none)).toBe('7:1 7:0 128 32768 0');
    expect(parseThinPoolTable(formatThinPoolTable(none))).toEqual(none);
  });

  it.each([
    ['', /got 0 field/],
    ['7:1 7:0 128', /got 3 field/],
    ['7:1 7:0 128 32768', /got 4 field/],
    ['7:1 7:1 128 32768 0', /field 2 \(data device\) is the same as the metadata device/],
    ['7:1 7:0 0 32768 0', /field 3 \(data block size in sectors\) 0 is not a multiple of 128 from 128 to 2097152/],
    ['7:1 7:0 64 32768 0', /field 3 \(data block size in sectors\) 64 is not a multiple/],
    ['7:1 7:0 129 32768 0', /field 3 \(data block size in sectors\) 129 is not a multiple/],
    ['7:1 7:0 2097280 32768 0', /field 3 \(data block size in sectors\) 2097280 is not a multiple/],
    ['7:1 7:0 128.0 32768 0', /field 3 \(data block size in sectors\) "128.0" is not an integer/],
    ['7:1 7:0 -128 32768 0', /field 3 \(data block size in sectors\) "-128" is negative/],
    ['7:1 7:0 128 -1 0', /field 4 \(low water mark in blocks\) "-1" is negative/],
    ['7:1 7:0 128 3.2e4 0', /field 4 \(low water mark in blocks\) "3.2e4" is not a non-negative decimal integer/],
    ['7:1 7:0 128 NaN 0', /field 4 \(low water mark in blocks\) "NaN" is not a non-negative decimal integer/],
    ['7:1 7:0 128 99999999999999999999 0', /field 4 \(low water mark in blocks\) "99999999999999999999" is too large/],
    ['7:1 7:0 128 32768 x', /field 5 \(number of feature args\) "x" is not a non-negative decimal integer/],
    ['7:1 7:0 128 32768 -1 skip_block_zeroing', /field 5 \(number of feature args\) "-1" is negative/],
    ['7:1 7:0 128 32768 skip_block_zeroing', /field 5 \(number of feature args\) "skip_block_zeroing"/],
    ['7:1 7:0 128 32768 1', /says 1 but 0 feature arg\(s\) follow/],
    ['7:1 7:0 128 32768 2 skip_block_zeroing', /says 2 but 1 feature arg\(s\) follow/],
    ['7:1 7:0 128 32768 0 skip_block_zeroing', /says 0 but 1 feature arg\(s\) follow/],
    ['7:1 7:0 128 32768 1 skip_block_zeroing ignore_discard', /says 1 but 2 feature arg\(s\) follow/],
    ['7:1 7:0 128 32768 1\nskip_block_zeroing', /line break/],
  ])('rejects %j', (params, pattern) => {
    expectParseError(() => parseThinPoolTable(params), pattern, 'invalid thin-pool table', JSON.stringify(params));
  });

  it.each<[Partial<ThinPoolTable>, string]>([
    [{ metadataDevice: '' }, 'metadataDevice'],
    [{ dataDevice: '7 0' }, 'dataDevice'],
    [{ dataDevice: '7:1' }, 'dataDevice'],
    [{ blockSizeSectors: 100 }, 'blockSizeSectors'],
    [{ blockSizeSectors: 64 }, 'blockSizeSectors'],
    [{ blockSizeSectors: 4194304 }, 'blockSizeSectors'],
    [{ lowWaterMarkBlocks: -1 }, 'lowWaterMarkBlocks'],
    [{ lowWaterMarkBlocks: 2 ** 53 }, 'lowWaterMarkBlocks'],
    [{ features: ['skip_block_zeroing', ''] }, 'features[1]'],
    [{ features: ['skip block zeroing'] }, 'features[0]'],
  ])('formatThinPoolTable rejects %j', (patch, argument) => {
    const err = expectInvalid(() => formatThinPoolTable({ ...docker, ...patch }), argument);
    expect(err.argument).toBe(argument);
  });
});

describe('parseThinTable / formatThinTable', () => {
  it("parses Docker's thin table", () => {
    expect(parseThinTable('254:0 4')).toEqual({ poolDevice: '254:0', deviceId: 4 });
  });

  it('has no externalOrigin key without an external origin', () => {
    expect(Object.keys(parseThinTable('254:0 4'))).toEqual(['poolDevice', 'deviceId']);
  });

  it('parses an external origin', () => {
    expect(parseThinTable('254:0 17 7:2')).toEqual({ poolDevice: '254:0', deviceId: 17, externalOrigin: '7:2' });
  });

  it('parses the 24-bit id limits and paths', () => {
    expect(parseThinTable('/dev/mapper/docker-8:1-1234-pool 16777215\n')).toEqual({
      poolDevice: '/dev/mapper/docker-8:1-1234-pool',
      deviceId: 16777215,
    });
    expect(parseThinTable(' 254:0   0 ').deviceId).toBe(0);
  });

  it.each(['254:0 4', '254:0 17 7:2', '/dev/mapper/pool 16777215'])('round-trips %j', (params) => {
    expect(formatThinTable(parseThinTable(params))).toBe(params);
  });

  it('round-trips objects', () => {
    const plain: ThinTable = { poolDevice: '254:0', deviceId: 4 };
    const ext: ThinTable = { poolDevice: '254:0', deviceId: 5, externalOrigin: '7:3' };
    expect(parseThinTable(formatThinTable(plain))).toEqual(plain);
    expect(parseThinTable(formatThinTable(ext))).toEqual(ext);
    expect(formatThinTable({ poolDevice: '254:0', deviceId: 4, externalOrigin: undefined })).toBe('254:0 4');
  });

  it.each([
    ['', /got 0 field/],
    ['254:0', /got 1 field/],
    ['254:0 4 7:2 extra', /got 4 field/],
    ['254:0 -4', /field 2 \(device id\) "-4" is negative/],
    ['254:0 4.0', /field 2 \(device id\) "4.0" is not an integer/],
    ['254:0 four', /field 2 \(device id\) "four" is not a non-negative decimal integer/],
    ['254:0 4e0', /field 2 \(device id\) "4e0" is not a non-negative decimal integer/],
    ['254:0 16777216', /field 2 \(device id\) 16777216 is above the 24-bit limit 16777215/],
    ['254:0 99999999999999999999', /field 2 \(device id\) "99999999999999999999" is too large/],
    ['254:0 4 254:0', /field 3 \(external origin\) is the same as the pool device/],
  ])('rejects %j', (params, pattern) => {
    expectParseError(() => parseThinTable(params), pattern, 'invalid thin table', JSON.stringify(params));
  });

  it('formatThinTable validates', () => {
    expectInvalid(() => formatThinTable({ poolDevice: '254:0', deviceId: 2 ** 24 }), 'deviceId');
    expectInvalid(() => formatThinTable({ poolDevice: '254:0', deviceId: -1 }), 'deviceId');
    expectInvalid(() => formatThinTable({ poolDevice: '', deviceId: 1 }), 'poolDevice');
    expectInvalid(() => formatThinTable({ poolDevice: '254:0', deviceId: 1, externalOrigin: '' }), 'externalOrigin');
    expectInvalid(
      () => formatThinTable({ poolDevice: '254:0', deviceId: 1, externalOrigin: '254:0' }),
      'externalOrigin',
    );
  });
});

describe('parseThinPoolStatus', () => {
  const healthy: ThinPoolStatus = {
    state: 'ok',
    transactionId: 5,
    metadataUsedBlocks: 4121,
    metadataTotalBlocks: 524288,
    dataUsedBlocks: 25730,
    dataTotalBlocks: 1638400,
    heldMetadataRoot: null,
    mode: 'rw',
    discards: 'discard_passdown',
    noSpacePolicy: 'queue_if_no_space',
    needsCheck: false,
    metadataLowWatermarkBlocks: 1024,
  };

  it('parses a healthy rw pool', () => {
    expect(parseThinPoolStatus(HEALTHY)).toEqual(healthy);
  });

  it('parses a held metadata root', () => {
    expect(
      parseThinPoolStatus('12 4150/524288 25730/1638400 2201 rw discard_passdown queue_if_no_space - 1024 '),
    ).toEqual({ ...healthy, transactionId: 12, metadataUsedBlocks: 4150, heldMetadataRoot: 2201 });
  });

  it('parses a read-only pool that needs a check', () => {
    expect(
      parseThinPoolStatus('12 4150/524288 25730/1638400 - ro discard_passdown queue_if_no_space needs_check 1024 '),
    ).toEqual({ ...healthy, transactionId: 12, metadataUsedBlocks: 4150, mode: 'ro', needsCheck: true });
  });

  it('parses needs_check on a rw pool', () => {
    const s = parseThinPoolStatus('5 4121/524288 25730/1638400 - rw discard_passdown queue_if_no_space needs_check 1024');
    expect(s).toEqual({ ...healthy, needsCheck: true });
  });

  it('parses a pool out of data space', () => {
    expect(
      parseThinPoolStatus(
        '40 6120/524288 1638400/1638400 - out_of_data_space discard_passdown queue_if_no_space - 1024 ',
      ),
    ).toEqual({
      ...healthy,
      transactionId: 40,
      metadataUsedBlocks: 6120,
      dataUsedBlocks: 1638400,
      mode: 'out_of_data_space',
    });
  });

  it('parses a full metadata device reported as ro', () => {
    const s = parseThinPoolStatus('41 524288/524288 900000/1638400 - ro discard_passdown queue_if_no_space - 1024 ');
    expect(s).toMatchObject({ state: 'ok', mode: 'ro', metadataUsedBlocks: 524288, metadataTotalBlocks: 524288 });
  });

  it('parses error_if_no_space', () => {
    expect(parseThinPoolStatus('5 4121/524288 25730/1638400 - rw discard_passdown error_if_no_space - 1024 ')).toEqual(
      { ...healthy, noSpacePolicy: 'error_if_no_space' },
    );
  });

  it('parses ignore_discard', () => {
    expect(parseThinPoolStatus('5 4121/524288 25730/1638400 - rw ignore_discard queue_if_no_space - 1024 ')).toEqual({
      ...healthy,
      discards: 'ignore_discard',
    });
  });

  it('parses no_discard_passdown', () => {
    expect(
      parseThinPoolStatus('5 4121/524288 25730/1638400 - rw no_discard_passdown error_if_no_space - 1024 '),
    ).toEqual({ ...healthy, discards: 'no_discard_passdown', noSpacePolicy: 'error_if_no_space' });
  });

  it('parses a fresh pool with a small metadata device', () => {
    // 4 MiB of metadata: 1024 blocks, low watermark min(1024, 1024 / 4) = 256.
    expect(parseThinPoolStatus('0 10/1024 0/160 - rw discard_passdown queue_if_no_space - 256 ')).toEqual({
      state: 'ok',
      transactionId: 0,
      metadataUsedBlocks: 10,
      metadataTotalBlocks: 1024,
      dataUsedBlocks: 0,
      dataTotalBlocks: 160,
      heldMetadataRoot: null,
      mode: 'rw',
      discards: 'discard_passdown',
      noSpacePolicy: 'queue_if_no_space',
      needsCheck: false,
      metadataLowWatermarkBlocks: 256,
    });
  });

  it('parses the 8-field form of Linux 4.2 to 4.18 (no metadata low watermark)', () => {
    expect(parseThinPoolStatus('5 4121/524288 25730/1638400 - rw discard_passdown queue_if_no_space - ')).toEqual({
      ...healthy,
      metadataLowWatermarkBlocks: null,
    });
    expect(
      parseThinPoolStatus('5 4121/524288 25730/1638400 - ro discard_passdown queue_if_no_space needs_check'),
    ).toEqual({ ...healthy, mode: 'ro', needsCheck: true, metadataLowWatermarkBlocks: null });
  });

  it('parses the 7-field form (no needs_check)', () => {
    expect(parseThinPoolStatus('5 4121/524288 25730/1638400 - out_of_data_space discard_passdown error_if_no_space '))
      .toEqual({
        ...healthy,
        mode: 'out_of_data_space',
        noSpacePolicy: 'error_if_no_space',
        needsCheck: false,
        metadataLowWatermarkBlocks: null,
      });
  });

  it('parses the 6-field form of Linux 3.x (no trailing space after the discards field)', () => {
    expect(parseThinPoolStatus('5 4121/524288 25730/1638400 - rw no_discard_passdown')).toEqual({
      ...healthy,
      discards: 'no_discard_passdown',
      noSpacePolicy: null,
      needsCheck: false,
      metadataLowWatermarkBlocks: null,
    });
  });

  it('parses the 5-field form (mode only)', () => {
    expect(parseThinPoolStatus('3 141/4096 880/16384 77 ro')).toEqual({
      state: 'ok',
      transactionId: 3,
      metadataUsedBlocks: 141,
      metadataTotalBlocks: 4096,
      dataUsedBlocks: 880,
      dataTotalBlocks: 16384,
      heldMetadataRoot: 77,
      mode: 'ro',
      discards: null,
      noSpacePolicy: null,
      needsCheck: false,
      metadataLowWatermarkBlocks: null,
    });
  });

  it('parses Fail and Error', () => {
    expect(parseThinPoolStatus('Fail')).toEqual({ state: 'fail' });
    expect(parseThinPoolStatus('Fail\n')).toEqual({ state: 'fail' });
    expect(parseThinPoolStatus('Error')).toEqual({ state: 'error' });
    expect(parseThinPoolStatus(' Error \n')).toEqual({ state: 'error' });
  });

  it('tolerates extra whitespace and a trailing newline', () => {
    expect(
      parseThinPoolStatus('  5\t4121/524288   25730/1638400 -  rw discard_passdown\tqueue_if_no_space - 1024\n'),
    ).toEqual(healthy);
  });

  it('ignores fields a later kernel might append', () => {
    expect(parseThinPoolStatus(`${HEALTHY}some_future_field 42`)).toEqual(healthy);
  });

  it('reads the largest safe values', () => {
    const s = parseThinPoolStatus(
      '9007199254740991 4161600/4161600 9007199254740991/9007199254740991 4161599 rw discard_passdown queue_if_no_space - 1024',
    );
    expect(s).toMatchObject({
      transactionId: Number.MAX_SAFE_INTEGER,
      dataTotalBlocks: Number.MAX_SAFE_INTEGER,
      heldMetadataRoot: 4161599,
    });
  });

  it('narrows on state', () => {
    const s = parseThinPoolStatus(HEALTHY);
    if (s.state !== 'ok') throw new Error('expected ok');
    expect(s.dataTotalBlocks - s.dataUsedBlocks).toBe(1612670);
  });

  const base = ['5', '4121/524288', '25730/1638400', '-', 'rw', 'discard_passdown', 'queue_if_no_space', '-', '1024'];
  const withField = (index: number, value: string) => base.map((v, i) => (i === index ? value : v)).join(' ');

  it.each([
    ['', /expected at least 5 fields .* got 0/],
    ['\n', /got 0/],
    ['5', /got 1/],
    ['5 4121/524288 25730/1638400 -', /got 4/],
    ['fail', /got 1/],
    ['FAIL', /got 1/],
    ['Fail Error', /"Fail" must stand alone/],
    ['Error 5 4121/524288 25730/1638400 - rw', /"Error" must stand alone/],
    [withField(0, '-5'), /field 1 \(transaction id\) "-5" is negative/],
    [withField(0, '5.5'), /field 1 \(transaction id\) "5.5" is not an integer/],
    [withField(0, 'five'), /field 1 \(transaction id\) "five" is not a non-negative decimal integer/],
    [withField(0, '1e3'), /field 1 \(transaction id\) "1e3" is not a non-negative decimal integer/],
    [withField(0, 'Infinity'), /field 1 \(transaction id\) "Infinity" is not a non-negative decimal integer/],
    [withField(0, '9007199254740992'), /field 1 \(transaction id\) "9007199254740992" is too large/],
    [withField(0, '18446744073709551615'), /field 1 \(transaction id\) "18446744073709551615" is too large/],
    [withField(0, '05'), /field 1 \(transaction id\) "05" has leading zeros/],
    [withField(1, '4121'), /field 2 \(metadata blocks used\/total\) "4121" is not of the form <used>\/<total>/],
    [withField(1, '4121/524288/1'), /field 2 \(metadata blocks used\/total\) "4121\/524288\/1" is not of the form/],
    [withField(1, '4121/'), /field 2 \(metadata blocks used\/total\): total count "" is empty/],
    [withField(1, '/524288'), /field 2 \(metadata blocks used\/total\): used count "" is empty/],
    [withField(1, '-1/524288'), /field 2 \(metadata blocks used\/total\): used count "-1" is negative/],
    [withField(1, '600000/524288'), /field 2 \(metadata blocks used\/total\) "600000\/524288": used count exceeds total/],
    [withField(2, '25730.5/1638400'), /field 3 \(data blocks used\/total\): used count "25730.5" is not an integer/],
    [withField(2, '25730/1.6e6'), /field 3 \(data blocks used\/total\): total count "1.6e6" is not a non-negative/],
    [withField(2, '25730/NaN'), /field 3 \(data blocks used\/total\): total count "NaN" is not a non-negative/],
    [withField(2, '1/18446744073709551615'), /field 3 \(data blocks used\/total\): total count .* is too large/],
    [withField(3, 'none'), /field 4 \(held metadata root\) "none" is not a non-negative decimal integer/],
    [withField(3, '-2201'), /field 4 \(held metadata root\) "-2201" is negative/],
    [withField(4, 'RW'), /field 5 \(mode\) "RW" is not one of rw, ro, out_of_data_space/],
    [withField(4, 'read_only'), /field 5 \(mode\) "read_only" is not one of/],
    [withField(4, '-'), /field 5 \(mode\) "-" is not one of/],
    [withField(5, 'discard'), /field 6 \(discards\) "discard" is not one of discard_passdown, no_discard_passdown/],
    [withField(6, 'queue'), /field 7 \(no-space policy\) "queue" is not one of error_if_no_space, queue_if_no_space/],
    [withField(7, 'yes'), /field 8 \(needs_check\) "yes" is neither needs_check nor -/],
    [withField(8, '-1'), /field 9 \(metadata low watermark\) "-1" is negative/],
    [withField(8, '-'), /field 9 \(metadata low watermark\) "-" is not a non-negative/],
    [withField(8, '1024.0'), /field 9 \(metadata low watermark\) "1024.0" is not an integer/],
    ['5 4121/524288 25730/1638400 - rw discard_passdown queue_if_no_space - 1024\nFail', /line break/],
  ])('rejects %j', (params, pattern) => {
    expectParseError(() => parseThinPoolStatus(params), pattern, 'invalid thin-pool status', JSON.stringify(params));
  });

  it('rejects a non-string', () => {
    expectParseError(() => parseThinPoolStatus(42 as unknown as string), /expected a string, got number/);
  });

  it('shortens very long input in the message', () => {
    const long = `x ${'y'.repeat(5000)} 1 2 3`;
    const err = expectParseError(() => parseThinPoolStatus(long), /transaction id/);
    expect(err.message.length).toBeLessThan(400);
  });
});

describe('parseThinStatus', () => {
  it.each<[string, ThinStatus]>([
    // 16384 blocks of 128 sectors mapped, highest block 81919: (81919 + 1) * 128 - 1.
    ['2097152 10485759', { state: 'ok', mappedSectors: 2097152, highestMappedSector: 10485759 }],
    ['384 255999\n', { state: 'ok', mappedSectors: 384, highestMappedSector: 255999 }],
    ['128 127', { state: 'ok', mappedSectors: 128, highestMappedSector: 127 }],
    ['0 -', { state: 'ok', mappedSectors: 0, highestMappedSector: null }],
    ['  0   -  \n', { state: 'ok', mappedSectors: 0, highestMappedSector: null }],
    // The two numbers come from separate metadata lookups; a racing mapping may show up in one only.
    ['128 -', { state: 'ok', mappedSectors: 128, highestMappedSector: null }],
    ['Fail', { state: 'fail' }],
    ['Error', { state: 'error' }],
    ['-', { state: 'unset' }],
    ['-\n', { state: 'unset' }],
  ])('parses %j', (params, expected) => {
    expect(parseThinStatus(params)).toEqual(expected);
  });

  it.each([
    ['', /got 0 field/],
    ['384', /got 1 field/],
    ['fail', /got 1 field/],
    ['384 255999 1', /got 3 field/],
    ['Fail Error', /got 2 field|field 1 \(mapped sectors\)/],
    ['- -', /field 1 \(mapped sectors\) "-" is not a non-negative decimal integer/],
    ['-1 -', /field 1 \(mapped sectors\) "-1" is negative/],
    ['384.5 255999', /field 1 \(mapped sectors\) "384.5" is not an integer/],
    ['3.84e2 255999', /field 1 \(mapped sectors\) "3.84e2" is not a non-negative decimal integer/],
    ['384 -5', /field 2 \(highest mapped sector\) "-5" is negative/],
    ['384 25.5', /field 2 \(highest mapped sector\) "25.5" is not an integer/],
    ['384 none', /field 2 \(highest mapped sector\) "none" is not a non-negative decimal integer/],
    ['384 18446744073709551615', /field 2 \(highest mapped sector\) "18446744073709551615" is too large/],
    ['384\n255999', /line break/],
  ])('rejects %j', (params, pattern) => {
    expectParseError(() => parseThinStatus(params), pattern, 'invalid thin status', JSON.stringify(params));
  });

  it('rejects a non-string', () => {
    expectParseError(() => parseThinStatus({} as unknown as string), /expected a string, got object/);
  });
});
