import { DevmapperError, ErrorCodes } from '../../lib/errors';
import type { DeviceSetStatus } from '../../lib/deviceset/status';
import { driverMetadata, parseStorageOpt, statusRows } from '../../lib/driver';

function status(over: Partial<DeviceSetStatus> = {}): DeviceSetStatus {
  return {
    poolName: 'docker-0:18-3-pool',
    poolKind: 'loopback',
    poolBlockSizeBytes: 65536,
    baseDeviceSizeBytes: 536870912,
    backingFilesystem: 'ext4',
    udevSyncSupported: true,
    dataDevice: '/dev/loop1',
    metadataDevice: '/dev/loop0',
    dataLoopFile: '/var/lib/docker/devicemapper/devicemapper/data',
    metadataLoopFile: '/var/lib/docker/devicemapper/devicemapper/metadata',
    data: { usedBytes: 11_800_000, totalBytes: 2147483648, availableBytes: 2135683648 },
    metadata: { usedBytes: 17_600_000, totalBytes: 209715200, availableBytes: 192115200 },
    pool: { state: 'fail' },
    minFreeSpaceBytes: 214748364,
    deferredRemovalEnabled: false,
    deferredDeletionEnabled: false,
    deferredDeletedDeviceCount: 0,
    libraryVersion: '1.02.185 (2022-05-18)',
    deviceCount: 4,
    warnings: [],
    ...over,
  } as DeviceSetStatus;
}

describe('Driver status rows', () => {
  test("Docker's keys, order and formatting", () => {
    expect(statusRows(status())).toEqual([
      ['Pool Name', 'docker-0:18-3-pool'],
      ['Pool Blocksize', '65.54kB'],
      ['Base Device Size', '536.9MB'],
      ['Backing Filesystem', 'ext4'],
      ['Udev Sync Supported', 'true'],
      ['Data file', '/dev/loop1'],
      ['Metadata file', '/dev/loop0'],
      ['Data loop file', '/var/lib/docker/devicemapper/devicemapper/data'],
      ['Metadata loop file', '/var/lib/docker/devicemapper/devicemapper/metadata'],
      ['Data Space Used', '11.8MB'],
      ['Data Space Total', '2.147GB'],
      ['Data Space Available', '2.136GB'],
      ['Metadata Space Used', '17.6MB'],
      ['Metadata Space Total', '209.7MB'],
      ['Metadata Space Available', '192.1MB'],
      ['Thin Pool Minimum Free Space', '214.7MB'],
      ['Deferred Removal Enabled', 'false'],
      ['Deferred Deletion Enabled', 'false'],
      ['Deferred Deleted Device Count', '0'],
      ['Library Version', '1.02.185 (2022-05-18)'],
    ]);
  });

  test('device and loop file rows only when known; no Library Version row without one', () => {
    const keys = statusRows(
      status({ dataDevice: null, metadataDevice: null, dataLoopFile: null, metadataLoopFile: null, libraryVersion: '' }),
    ).map(([k]) => k);
    expect(keys).not.toContain('Data file');
    expect(keys).not.toContain('Metadata loop file');
    expect(keys).not.toContain('Library Version');
    expect(keys[4]).toBe('Udev Sync Supported');
    expect(keys[5]).toBe('Data Space Used');
    const direct = statusRows(status({ dataLoopFile: null, metadataLoopFile: null, dataDevice: '/dev/sdb1', metadataDevice: '/dev/sdc1' }));
    expect(direct.slice(5, 7)).toEqual([
      ['Data file', '/dev/sdb1'],
      ['Metadata file', '/dev/sdc1'],
    ]);
    expect(statusRows(status({ deferredRemovalEnabled: true, deferredDeletedDeviceCount: 3 }))).toEqual(
      expect.arrayContaining([
        ['Deferred Removal Enabled', 'true'],
        ['Deferred Deleted Device Count', '3'],
      ]),
    );
  });

  test("GetMetadata's map: strings, as Docker's", () => {
    expect(driverMetadata({ deviceId: 4, size: 536870912 }, 'docker-0:18-3-c1')).toEqual({
      DeviceId: '4',
      DeviceSize: '536870912',
      DeviceName: 'docker-0:18-3-c1',
    });
  });
});

describe('Driver storage options', () => {
  test('size, any case, as go-units RAMInBytes', () => {
    expect(parseStorageOpt({ size: '20G' })).toEqual({ size: 20 * 2 ** 30 });
    expect(parseStorageOpt({ SIZE: '512M' })).toEqual({ size: 512 * 2 ** 20 });
    expect(parseStorageOpt({ size: '0' })).toEqual({});
    expect(parseStorageOpt(undefined)).toEqual({});
    expect(parseStorageOpt(null)).toEqual({});
    expect(parseStorageOpt({})).toEqual({});
  });

  test('unknown keys and bad sizes are refused naming the key', () => {
    for (const [opt, argument] of [
      [{ size: '1G', quota: '1G' }, 'storageOpt.quota'],
      [{ 'dm.basesize': '1G' }, 'storageOpt.dm.basesize'],
      [{ size: 'big' }, 'storageOpt.size'],
      [{ size: '-1G' }, 'storageOpt.size'],
      [{ size: '1000' }, 'storageOpt.size'],
    ] as const) {
      let err: unknown;
      try {
        parseStorageOpt(opt);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(DevmapperError);
      expect(err).toMatchObject({ code: ErrorCodes.INVALID_ARGUMENT, argument });
      expect((err as Error).message).toContain(argument);
    }
    expect(() => parseStorageOpt(['size=1G'] as never)).toThrow(DevmapperError);
  });
});
