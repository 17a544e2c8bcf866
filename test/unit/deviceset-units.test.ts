import { DevmapperError, ErrorCodes } from '../../lib/errors';
import { humanSize, parseSize } from '../../lib/util';

// Go's results for these inputs, from go-units v0.5.0 (vendored by moby v24.0.9) run under
// Go 1.19: RAMInBytes(input), and HumanSize(value). null = Go returned an error, or a value
// beyond Number.MAX_SAFE_INTEGER ("1e18", "8191.9999p"), which parseSize refuses.
const GO_RAM_IN_BYTES: [string, number | null][] = [
  ["512M", 536870912], ["1.5G", 1610612736], ["1e3", 1000], ["1e3k", 1024000], ["0x1p4", 16],
  ["0x1p4k", 16384], ["1_000", 1000], ["1_0k", 10240], ["5 k", 5120], ["5  k", null], [" 5", null],
  ["5 ", 5], ["+5", 5], ["-0", 0], ["-1", null], ["", null], ["k", null], ["1.2.3", null], ["1i", null],
  ["1ib", null], ["1kib", 1024], ["1KiB", 1024], ["1KB", 1024], ["1kb", 1024], ["1kbb", null], ["1kB", 1024],
  ["1b", 1], ["1bb", null], ["10G", 10737418240], ["100G", 107374182400], ["2G", 2147483648], ["64K", 65536],
  ["64k", 65536], [".5k", 512], ["5.", 5], ["Inf", null], ["1e400", null], ["1e18", null], ["1E3", 1000],
  ["0x10", null], ["0x1.8p1k", 3072], ["0x_1p4", 16], ["1__0", null], ["1 b", 1], ["1 kib", 1024],
  ["1 ki", null], ["1p", 1125899906842624], ["1P", 1125899906842624], ["1.9999999999999999999", 2],
  ["1Kb", 1024], ["2147483648.7", 2147483648], ["1e-400", 0], ["5. k", 5120], ["k5", null], ["5k5", null],
  ["1\u212a", 1024], ["1\u212ab", null], ["1kI", null], ["1KIB", 1024], ["1 KiB", 1024], ["1\t", null],
  ["1\u00a0", null], ["   ", null], [".", null], ["0x", null], ["0x1", null], ["0x1p", null], ["0X1p4", 16],
  ["0x.8p1k", 1024], ["1e", null], ["1e+", null], ["1e+1", 10], ["1_e1", null], ["1e1_0", 10000000000],
  ["+.5k", 512], ["-.0", 0], ["--1", null], ["+-1", null], ["1.5b", 1], ["007k", 7168], ["1.1G", 1181116006],
  ["0.5", 0], ["0.9k", 921], ["8191.9999p", null], ["1e-3k", 1], ["1x", null], ["1kk", null],
  ["1mib", 1048576], ["1gib", 1073741824], ["1tib", 1099511627776], ["1pib", 1125899906842624],
  ["1eib", null], ["1zb", null], ["nan", null], ["1 ", 1], ["10M", 10485760], ["20GB", 21474836480],
];
const GO_HUMAN_SIZE: [number, string][] = [
  [0, "0B"], [1, "1B"], [999, "999B"], [1000, "1kB"], [1001, "1.001kB"], [65536, "65.54kB"],
  [536870912, "536.9MB"], [2147483648, "2.147GB"], [10737418240, "10.74GB"], [107374182400, "107.4GB"],
  [10625, "10.62kB"], [10635, "10.63kB"], [1062500, "1.062MB"], [999950, "1000kB"], [999949, "999.9kB"],
  [999999, "1000kB"], [1000000, "1MB"], [12500, "12.5kB"], [100000, "100kB"], [123456789, "123.5MB"],
  [1099511627776, "1.1TB"], [9007199254740991, "9.007PB"], [1e30, "1e+06YB"], [1e28, "1e+04YB"],
  [5e27, "5000YB"], [0.5, "0.5B"], [0.00001, "1e-05B"], [1536, "1.536kB"], [4096, "4.096kB"],
  [21474836480, "21.47GB"], [209715200, "209.7MB"], [2.5, "2.5B"], [10615, "10.62kB"], [10605, "10.61kB"],
  [104857600, "104.9MB"], [-5, "-5B"], [-1500, "-1500B"], [1e-7, "1e-07B"], [0.000123456, "0.0001235B"],
  [123456789012345680, "123.5PB"], [99999, "100kB"], [9999.5, "9.999kB"], [1e27, "1000YB"],
  [1.5e-5, "1.5e-05B"], [-0, "-0B"], [1.0005, "1B"], [999.95, "1000B"], [0.1, "0.1B"], [1e21, "1ZB"],
  [4194304, "4.194MB"], [1048576, "1.049MB"], [34359738368, "34.36GB"],
];

describe('parseSize: Docker units.RAMInBytes', () => {
  test.each(GO_RAM_IN_BYTES)('%j as Go parses it', (input, expected) => {
    if (expected === null) {
      expect(() => parseSize(input, 'dm.basesize')).toThrow(DevmapperError);
    } else {
      expect(parseSize(input, 'dm.basesize')).toBe(expected);
    }
  });

  test('the error is ERR_INVALID_ARGUMENT naming the option and the value', () => {
    let err: unknown;
    try {
      parseSize('12 parsecs', 'dm.loopdatasize');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(DevmapperError);
    const e = err as DevmapperError;
    expect(e.code).toBe(ErrorCodes.INVALID_ARGUMENT);
    expect(e.argument).toBe('dm.loopdatasize');
    expect(e.message).toContain('dm.loopdatasize');
    expect(e.message).toContain('"12 parsecs"');
  });

  test('Go accepts "inf b" as a garbage int64; parseSize refuses it', () => {
    expect(() => parseSize('inf b', 'x')).toThrow(DevmapperError);
    expect(() => parseSize('NaN b', 'x')).toThrow(DevmapperError);
    expect(() => parseSize('-inf', 'x')).toThrow(DevmapperError);
  });

  test('the largest safe size is accepted, one more is refused', () => {
    expect(parseSize(String(Number.MAX_SAFE_INTEGER), 'x')).toBe(Number.MAX_SAFE_INTEGER);
    expect(parseSize('7p', 'x')).toBe(7 * 1024 ** 5);
    expect(() => parseSize('8p', 'x')).toThrow(DevmapperError); // 2^53
  });

  test('non-strings are refused', () => {
    expect(() => parseSize(10 as unknown as string, 'x')).toThrow(DevmapperError);
  });

  test('never returns -0; a negative fraction is refused like any negative size', () => {
    expect(Object.is(parseSize('-0', 'x'), 0)).toBe(true);
    expect(() => parseSize('-0.5k', 'x')).toThrow(DevmapperError);
  });
});

describe('humanSize: Docker units.HumanSize', () => {
  test.each(GO_HUMAN_SIZE)('%d as Go formats it', (value, expected) => {
    expect(humanSize(value)).toBe(expected);
  });

  test('the status rows observed from Docker v24', () => {
    expect(humanSize(65536)).toBe('65.54kB'); // Pool Blocksize
    expect(humanSize(536870912)).toBe('536.9MB'); // Base Device Size
  });

  test('ties round half to even, as Go does (JavaScript toPrecision would round up)', () => {
    expect((10.625).toPrecision(4)).toBe('10.63');
    expect(humanSize(10625)).toBe('10.62kB');
    expect(humanSize(10875)).toBe('10.88kB');
  });

  test('non-finite values print as Go prints them', () => {
    expect(humanSize(Infinity)).toBe('+InfYB');
    expect(humanSize(-Infinity)).toBe('-InfB');
    expect(humanSize(NaN)).toBe('NaNB');
  });
});
