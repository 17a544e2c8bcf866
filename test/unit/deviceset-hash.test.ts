import { DevmapperError, ErrorCodes } from '../../lib/errors';
import {
  checkDeviceHash,
  devicePrefix,
  devicePrefixFromStat,
  deviceName,
  devMajor,
  devMinor,
  metadataFileName,
  poolName,
} from '../../lib/deviceset/hash';

const PREFIX = 'docker-0:18-3';

function refusal(hash: unknown, prefix = PREFIX): DevmapperError {
  try {
    checkDeviceHash(hash, { devicePrefix: prefix });
  } catch (err) {
    expect(err).toBeInstanceOf(DevmapperError);
    return err as DevmapperError;
  }
  throw new Error(`${JSON.stringify(hash)} was accepted`);
}

describe('checkDeviceHash: ids are never used as paths unchecked', () => {
  test.each([
    ['c1', 'c1'],
    ['c1-init', 'c1-init'],
    ['a'.repeat(64), 'a'.repeat(64)],
    ['x.y:z=w@v#u+t_s', 'x.y:z=w@v#u+t_s'],
    ['base-2', 'base-2'],
    ['migrated', 'migrated'],
  ])('accepts %j', (hash, expected) => {
    expect(checkDeviceHash(hash, { devicePrefix: PREFIX })).toBe(expected);
  });

  test.each([
    ['../x', "no '/'"],
    ['a/b', "no '/'"],
    ['', 'not empty'],
    ['.', "not '.' or '..'"],
    ['..', "not '.' or '..'"],
    ['.hidden', "start with '.'"],
    ['.tmp123', "start with '.'"],
    ['base', 'reserved'],
    ['deviceset-metadata', 'reserved'],
    ['transaction-metadata', 'reserved'],
    ['x.migrated', '.migrated'],
    ['a\0b', 'NUL'],
    ['a\nb', 'control'],
    ['a\u007fb', 'control'],
    ['a\u0085b', 'control'],
    ['a b', 'unmangled'],
    ['a\\x20b', 'unmangled'],
    ['caf\u00e9', 'unmangled'],
    ['a%b', 'unmangled'],
  ])('refuses %j (%s)', (hash, rule) => {
    const e = refusal(hash);
    expect(e.code).toBe(ErrorCodes.INVALID_ARGUMENT);
    expect(e.argument).toBe('hash');
    expect(e.message).toContain(rule);
  });

  test('refuses non-strings', () => {
    expect(refusal(42).argument).toBe('hash');
    expect(refusal(undefined).argument).toBe('hash');
  });

  test('the dm name must stay under 128 bytes (DM_NAME_LEN with its NUL)', () => {
    // "docker-0:18-3-" is 14 bytes: a 113-byte hash makes 127, a 114-byte one 128.
    expect(checkDeviceHash('h'.repeat(113), { devicePrefix: PREFIX })).toHaveLength(113);
    const e = refusal('h'.repeat(114));
    expect(e.message).toContain('127 bytes');
    expect(e.message).toContain('has 128');
    // The limit depends on the prefix.
    const longPrefix = 'docker-259:1234567-18446744073709551615';
    expect(() => checkDeviceHash('h'.repeat(127 - longPrefix.length - 1), { devicePrefix: longPrefix })).not.toThrow();
    expect(refusal('h'.repeat(127 - longPrefix.length), longPrefix).message).toContain('127 bytes');
  });
});

describe('names', () => {
  test("deviceName: the hash after the prefix, 'base' for the base device", () => {
    expect(deviceName(PREFIX, 'c1')).toBe('docker-0:18-3-c1');
    expect(deviceName(PREFIX, '')).toBe('docker-0:18-3-base');
  });

  test("poolName and metadataFileName", () => {
    expect(poolName(PREFIX)).toBe('docker-0:18-3-pool');
    expect(metadataFileName('')).toBe('base');
    expect(metadataFileName('c1')).toBe('c1');
  });

  test('devicePrefix: docker-<major>:<minor>-<inode>', () => {
    expect(devicePrefix(0, 18, 3)).toBe(PREFIX);
    expect(devicePrefix(259, 1, 18446744073709551615n)).toBe('docker-259:1-18446744073709551615');
    for (const bad of [-1, 1.5, NaN]) expect(() => devicePrefix(bad, 0, 1)).toThrow(DevmapperError);
    expect(() => devicePrefix(0, 0, -1n)).toThrow(DevmapperError);
  });

  test("Docker's major()/minor() decoding of st_dev", () => {
    // 0:18 (a tmpfs) as the kernel encodes it: (minor & 0xff) | (major << 8) | ((minor & ~0xff) << 12).
    const encode = (major: number, minor: number) => (minor & 0xff) | (major << 8) | ((minor & ~0xff) << 12);
    expect([devMajor(encode(0, 18)), devMinor(encode(0, 18))]).toEqual([0, 18]);
    expect([devMajor(encode(8, 1)), devMinor(encode(8, 1))]).toEqual([8, 1]);
    const big = encode(259, 0x12345);
    expect([devMajor(big), devMinor(big)]).toEqual([259, 0x12345]);
    expect([devMajor(BigInt(big)), devMinor(BigInt(big))]).toEqual([259, 0x12345]);
    expect(devicePrefixFromStat({ dev: encode(0, 18), ino: 3 })).toBe(PREFIX);
    expect(devicePrefixFromStat({ dev: BigInt(encode(253, 3)), ino: 2n ** 60n })).toBe(`docker-253:3-${2n ** 60n}`);
  });
});
