/**
 * Bad input is refused before the kernel is asked: the native addon is replaced by one that
 * fails the test if any call reaches it.
 */
jest.mock('../../lib/native', () => ({
  native: () => {
    throw new Error('the kernel was asked');
  },
}));

import { DevmapperError, dm, sys } from '../../lib';

async function refused(p: Promise<unknown>, argument: string): Promise<DevmapperError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(DevmapperError);
    const e = err as DevmapperError;
    expect(e.code).toBe('ERR_INVALID_ARGUMENT');
    expect(e.argument).toBe(argument);
    expect(e.message).toContain(argument);
    return e;
  }
  throw new Error('expected a rejection');
}

describe('thin ids', () => {
  test.each([-1, 2 ** 24, 1.5, NaN, Infinity, '3' as unknown as number, null as unknown as number])('id %p is refused', async (id) => {
    await refused(dm.createDevice('pool', id), 'deviceId');
    await refused(dm.deleteDevice('pool', id), 'deviceId');
    await refused(dm.createSnapDevice('pool', id, null, 0), 'deviceId');
    await refused(dm.createSnapDevice('pool', 1, null, id), 'baseDeviceId');
    await refused(dm.activateDevice('pool', 'x', id, 4096), 'deviceId');
  });
});

describe('names', () => {
  const long = 'a'.repeat(128);
  test.each(['', long, 'a/b', '.', '..', 'nul\0byte', '/dev/mapper/', '/dev/mapper/' + long])('name %p is refused', async (name) => {
    await refused(dm.getInfo(name), 'name');
    await refused(dm.removeDevice(name), 'name');
    await refused(dm.createDevice(name, 1), 'poolName');
  });

  test('127 bytes is the longest name; multi-byte characters count as bytes', () => {
    expect(dm.resolveDeviceName('a'.repeat(127))).toHaveLength(127);
    expect(() => dm.resolveDeviceName('é'.repeat(64))).toThrow(/at most 127 bytes/);
  });

  test('a /dev/mapper path resolves to its name', () => {
    expect(dm.resolveDeviceName('/dev/mapper/docker-0:18-3-pool')).toBe('docker-0:18-3-pool');
  });

  test('a non-string name is refused with a type hint', () => {
    expect(() => dm.resolveDeviceName(42)).toThrow(DevmapperError);
  });
});

describe('sizes and pool options', () => {
  test.each([0, -512, 1000, 512.5, 2 ** 60])('size %p is refused', async (size) => {
    await refused(dm.activateDevice('pool', 'x', 1, size), 'sizeBytes');
  });

  test.each([64, 129, 2097152 * 2, 0])('block size %p is refused', async (bs) => {
    await refused(dm.createPool('pool', '/dev/loop0', '/dev/loop1', { blockSizeSectors: bs }), 'blockSizeSectors');
  });

  test('unknown, repeated or too many features are refused', async () => {
    await refused(dm.createPool('pool', '/dev/loop0', '/dev/loop1', { features: ['skip_block_zeroin' as never] }), 'features');
    await refused(dm.createPool('pool', '/dev/loop0', '/dev/loop1', { features: ['read_only', 'read_only'] }), 'features');
    await refused(dm.createPool('pool', '/dev/loop0', '/dev/loop1', { features: [...dm.THIN_POOL_FEATURES] }), 'features');
  });

  test('devices must be absolute paths or major:minor', async () => {
    await refused(dm.createPool('pool', 'loop0', '/dev/loop1'), 'dataDevice');
    await refused(dm.createPool('pool', '/dev/loop0', '/dev/loop 1'), 'metadataDevice');
    await refused(dm.activateDevice('pool', 'x', 1, 4096, { externalOrigin: 'sda' }), 'externalOrigin');
  });

  test('transaction ids and retry budgets', async () => {
    await refused(dm.setTransactionId('pool', -1, 0), 'oldId');
    await refused(dm.setTransactionId('pool', 0, 0.5), 'newId');
    await refused(dm.removeDevice('x', { retryBudgetMs: -1 }), 'retryBudgetMs');
  });
});

describe('sys input', () => {
  test('loop, block and mount calls refuse relative or odd paths', async () => {
    await refused(sys.attachLoopDevice('data'), 'file');
    await refused(sys.findLoopDevices('data'), 'file');
    await refused(sys.detachLoopDevice('/dev/sda'), 'loopPath');
    await refused(sys.getBlockDeviceSize('sda'), 'path');
    await refused(sys.discardBlocks('/dev/x', 1, 512), 'offsetBytes');
    await refused(sys.mount('/dev/x', 'mnt', 'ext4'), 'target');
    await refused(sys.mount('/dev/x', '/mnt', 'ext4;rm'), 'fstype');
    await refused(sys.unmount('relative'), 'target');
  });
});
