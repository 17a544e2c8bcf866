import { DevmapperError, ErrorCodes } from '../../lib/errors';
import {
  chooseFilesystem,
  DOCKER_OPTION_KEYS,
  joinMountOptions,
  resolveOptions,
  type DeviceSetOptions,
  type Filesystem,
  type ResolvedOptions,
} from '../../lib/deviceset/options';

const GIB = 1024 ** 3;

/** True when A and B are the same type, readonly and optional modifiers included. */
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;

/**
 * The public option types, written out: both are derived from the option table, and this is
 * the shape callers compile against. A field added, renamed or retyped in the table fails
 * the compile (tsc -p tsconfig.test.json, and ts-jest) until this expectation is changed too.
 */
interface ExpectedDeviceSetOptions {
  baseSize?: number | string;
  loopDataSize?: number | string;
  loopMetadataSize?: number | string;
  fs?: Filesystem | '' | null;
  mkfsArgs?: readonly string[];
  mountOpt?: string | readonly string[];
  dataDev?: string;
  metadataDev?: string;
  thinPoolDev?: string;
  blockSize?: number | string;
  blkDiscard?: boolean;
  overrideUdevSyncCheck?: boolean;
  useDeferredRemoval?: boolean;
  useDeferredDeletion?: boolean;
  minFreeSpace?: number | string;
  xfsNospaceMaxRetries?: number;
  libdmLogLevel?: number;
  udevWaitTimeoutMs?: number;
  deferredDeletionRetryMs?: number;
  removeRetryBudgetMs?: number;
  keepActive?: number;
  udevReap?: boolean;
  errorIfNoSpace?: boolean;
  lowWaterMarkBlocks?: number;
  directLvmDevice?: never;
  directLvmDeviceForce?: never;
  thinpPercent?: never;
  thinpMetaPercent?: never;
  thinpAutoextendPercent?: never;
  thinpAutoextendThreshold?: never;
}

interface ExpectedResolvedOptions {
  readonly baseSizeBytes: number;
  readonly baseSizeExplicit: boolean;
  readonly loopDataSizeBytes: number;
  readonly loopMetadataSizeBytes: number;
  readonly fs: Filesystem | null;
  readonly mkfsArgs: readonly string[];
  readonly mountOptions: string;
  readonly dataDevice: string | null;
  readonly metadataDevice: string | null;
  readonly thinPoolDevice: string | null;
  readonly blockSizeBytes: number;
  readonly blockSizeSectors: number;
  readonly blkDiscard: boolean;
  readonly overrideUdevSyncCheck: boolean;
  readonly useDeferredRemoval: boolean;
  readonly useDeferredDeletion: boolean;
  readonly minFreeSpacePercent: number;
  readonly xfsNospaceMaxRetries: number | null;
  readonly libdmLogLevel: number;
  readonly udevWaitTimeoutMs: number;
  readonly deferredDeletionRetryMs: number;
  readonly removeRetryBudgetMs: number;
  readonly keepActiveDevices: number;
  readonly udevReap: boolean;
  readonly errorIfNoSpace: boolean;
  readonly lowWaterMarkBlocks: number;
  readonly explicitKeys: readonly string[];
}

describe('the option types derived from the table', () => {
  test('DeviceSetOptions and ResolvedOptions have exactly the public fields and types', () => {
    const sameInput: Equal<DeviceSetOptions, ExpectedDeviceSetOptions> = true;
    const sameResolved: Equal<ResolvedOptions, ExpectedResolvedOptions> = true;
    expect([sameInput, sameResolved]).toEqual([true, true]);
  });
});

/** The error resolveOptions throws for these options. */
function failure(options: string[] | DeviceSetOptions): DevmapperError {
  try {
    resolveOptions(options);
  } catch (err) {
    expect(err).toBeInstanceOf(DevmapperError);
    return err as DevmapperError;
  }
  throw new Error(`resolveOptions(${JSON.stringify(options)}) did not throw`);
}

describe('resolveOptions: defaults', () => {
  test("Docker's defaults (deviceset.go NewDeviceSet)", () => {
    const o = resolveOptions([]);
    expect(o).toEqual({
      baseSizeBytes: 10 * GIB,
      baseSizeExplicit: false,
      loopDataSizeBytes: 100 * GIB,
      loopMetadataSizeBytes: 2 * GIB,
      fs: null,
      mkfsArgs: [],
      mountOptions: '',
      dataDevice: null,
      metadataDevice: null,
      thinPoolDevice: null,
      blockSizeBytes: 65536,
      blockSizeSectors: 128,
      blkDiscard: true,
      overrideUdevSyncCheck: false,
      useDeferredRemoval: false,
      useDeferredDeletion: false,
      minFreeSpacePercent: 10,
      xfsNospaceMaxRetries: null,
      libdmLogLevel: 2,
      udevWaitTimeoutMs: 30000,
      deferredDeletionRetryMs: 30000,
      removeRetryBudgetMs: 5000,
      keepActiveDevices: 64,
      udevReap: true,
      errorIfNoSpace: false,
      lowWaterMarkBlocks: 32768,
      explicitKeys: [],
    });
    expect(resolveOptions()).toEqual(o);
    expect(resolveOptions({})).toEqual(o);
  });

  test('the result and its arrays are frozen', () => {
    const o = resolveOptions(['dm.mkfsarg=-N', 'dm.mkfsarg=100']);
    expect(Object.isFrozen(o)).toBe(true);
    expect(Object.isFrozen(o.mkfsArgs)).toBe(true);
    expect(Object.isFrozen(o.explicitKeys)).toBe(true);
  });

  test('every key of NewDeviceSet is known', () => {
    expect([...DOCKER_OPTION_KEYS].sort()).toEqual(
      [
        'dm.basesize',
        'dm.loopdatasize',
        'dm.loopmetadatasize',
        'dm.fs',
        'dm.mkfsarg',
        'dm.mountopt',
        'dm.metadatadev',
        'dm.datadev',
        'dm.thinpooldev',
        'dm.blkdiscard',
        'dm.blocksize',
        'dm.override_udev_sync_check',
        'dm.use_deferred_removal',
        'dm.use_deferred_deletion',
        'dm.min_free_space',
        'dm.xfs_nospace_max_retries',
        'dm.directlvm_device',
        'dm.directlvm_device_force',
        'dm.thinp_percent',
        'dm.thinp_metapercent',
        'dm.thinp_autoextend_percent',
        'dm.thinp_autoextend_threshold',
        'dm.libdm_log_level',
      ].sort(),
    );
  });
});

describe("resolveOptions: Docker's dm.* strings", () => {
  test('sizes in binary units', () => {
    const o = resolveOptions(['dm.basesize=512M', 'dm.loopdatasize=2G', 'dm.loopmetadatasize=200M', 'dm.blocksize=512K']);
    expect(o.baseSizeBytes).toBe(512 * 1024 ** 2);
    expect(o.baseSizeExplicit).toBe(true);
    expect(o.loopDataSizeBytes).toBe(2 * GIB);
    expect(o.loopMetadataSizeBytes).toBe(200 * 1024 ** 2);
    expect(o.blockSizeBytes).toBe(512 * 1024);
    expect(o.blockSizeSectors).toBe(1024);
    expect(o.explicitKeys).toEqual(['dm.basesize', 'dm.loopdatasize', 'dm.loopmetadatasize', 'dm.blocksize']);
  });

  test('keys are case-insensitive, key and value are trimmed, later values win', () => {
    const o = resolveOptions([' DM.BaseSize = 1G ', 'dm.basesize=2G', 'Dm.Fs=xfs']);
    expect(o.baseSizeBytes).toBe(2 * GIB);
    expect(o.fs).toBe('xfs');
  });

  test('a value may contain "=" (cut at the first)', () => {
    expect(resolveOptions(['dm.mkfsarg=-E=x']).mkfsArgs).toEqual(['-E=x']);
  });

  test('dm.fs: exactly ext4 or xfs, as Docker compared it', () => {
    expect(resolveOptions(['dm.fs=ext4']).fs).toBe('ext4');
    for (const bad of ['dm.fs=XFS', 'dm.fs=btrfs', 'dm.fs=']) {
      const e = failure([bad]);
      expect(e.code).toBe(ErrorCodes.INVALID_ARGUMENT);
      expect(e.argument).toBe('dm.fs');
    }
  });

  test('dm.mkfsarg accumulates; dm.mountopt comma-joins, skipping empty values', () => {
    const o = resolveOptions(['dm.mkfsarg=-m', 'dm.mkfsarg=0', 'dm.mountopt=noatime', 'dm.mountopt=', 'dm.mountopt=discard,nobarrier']);
    expect(o.mkfsArgs).toEqual(['-m', '0']);
    expect(o.mountOptions).toBe('noatime,discard,nobarrier');
    expect(failure(['dm.mkfsarg=']).argument).toBe('dm.mkfsarg');
  });

  test('joinMountOptions is Docker’s', () => {
    expect(joinMountOptions('', '')).toBe('');
    expect(joinMountOptions('a', '')).toBe('a');
    expect(joinMountOptions('', 'b')).toBe('b');
    expect(joinMountOptions('a', 'b')).toBe('a,b');
  });

  test('dm.thinpooldev strips /dev/mapper/; blkdiscard then defaults to false', () => {
    const o = resolveOptions(['dm.thinpooldev=/dev/mapper/vg-thinpool']);
    expect(o.thinPoolDevice).toBe('vg-thinpool');
    expect(o.blkDiscard).toBe(false);
    expect(resolveOptions(['dm.thinpooldev=mypool']).thinPoolDevice).toBe('mypool');
    expect(resolveOptions(['dm.thinpooldev=']).thinPoolDevice).toBeNull();
    expect(failure(['dm.thinpooldev=/dev/mapper/a/b']).argument).toBe('dm.thinpooldev');
  });

  test('dm.datadev turns the blkdiscard default off, dm.metadatadev alone does not; an explicit value wins', () => {
    expect(resolveOptions(['dm.datadev=/dev/sdb']).blkDiscard).toBe(false);
    expect(resolveOptions(['dm.metadatadev=/dev/sdc']).blkDiscard).toBe(true);
    expect(resolveOptions(['dm.blkdiscard=true', 'dm.datadev=/dev/sdb']).blkDiscard).toBe(true);
    expect(resolveOptions(['dm.blkdiscard=false']).blkDiscard).toBe(false);
    const o = resolveOptions(['dm.datadev=/dev/sdb', 'dm.metadatadev=/dev/sdc']);
    expect([o.dataDevice, o.metadataDevice]).toEqual(['/dev/sdb', '/dev/sdc']);
    expect(resolveOptions(['dm.datadev=']).dataDevice).toBeNull();
    expect(failure(['dm.datadev=sdb']).argument).toBe('dm.datadev');
  });

  test("booleans parse like Go's strconv.ParseBool", () => {
    for (const t of ['1', 't', 'T', 'TRUE', 'true', 'True'])
      expect(resolveOptions([`dm.override_udev_sync_check=${t}`]).overrideUdevSyncCheck).toBe(true);
    for (const f of ['0', 'f', 'F', 'FALSE', 'false', 'False'])
      expect(resolveOptions([`dm.blkdiscard=${f}`]).blkDiscard).toBe(false);
    for (const bad of ['yes', 'TRue', '', '2', 'on']) expect(failure([`dm.blkdiscard=${bad}`]).argument).toBe('dm.blkdiscard');
  });

  test('deferred removal and deletion; deletion alone is refused as Docker refused it', () => {
    const o = resolveOptions(['dm.use_deferred_removal=true', 'dm.use_deferred_deletion=true']);
    expect([o.useDeferredRemoval, o.useDeferredDeletion]).toEqual([true, true]);
    expect(resolveOptions(['dm.use_deferred_removal=true']).useDeferredDeletion).toBe(false);
    const e = failure(['dm.use_deferred_deletion=true']);
    expect(e.code).toBe(ErrorCodes.INVALID_ARGUMENT);
    expect(e.argument).toBe('dm.use_deferred_deletion');
    expect(failure({ useDeferredDeletion: true }).argument).toBe('useDeferredDeletion');
  });

  test('dm.min_free_space: "N%" with N from 0 to 99', () => {
    expect(resolveOptions(['dm.min_free_space=0%']).minFreeSpacePercent).toBe(0);
    expect(resolveOptions(['dm.min_free_space=99%']).minFreeSpacePercent).toBe(99);
    expect(resolveOptions(['dm.min_free_space=05%']).minFreeSpacePercent).toBe(5);
    for (const bad of ['10', '100%', '-1%', '1.5%', '%', '+5%', 'ten%'])
      expect(failure([`dm.min_free_space=${bad}`]).argument).toBe('dm.min_free_space');
  });

  test('dm.xfs_nospace_max_retries: a non-negative integer the kernel takes', () => {
    expect(resolveOptions(['dm.xfs_nospace_max_retries=0']).xfsNospaceMaxRetries).toBe(0);
    expect(resolveOptions(['dm.xfs_nospace_max_retries=100']).xfsNospaceMaxRetries).toBe(100);
    for (const bad of ['-1', '1.5', '', 'x', '2147483648'])
      expect(failure([`dm.xfs_nospace_max_retries=${bad}`]).argument).toBe('dm.xfs_nospace_max_retries');
  });

  test('dm.libdm_log_level: 2 (fatal) to 7 (debug)', () => {
    expect(resolveOptions(['dm.libdm_log_level=7']).libdmLogLevel).toBe(7);
    expect(resolveOptions(['dm.libdm_log_level=+3']).libdmLogLevel).toBe(3);
    for (const bad of ['1', '8', 'debug', '3.0', ''])
      expect(failure([`dm.libdm_log_level=${bad}`]).argument).toBe('dm.libdm_log_level');
  });

  test('dm.blocksize: a multiple of 64K from 64K to 1G', () => {
    expect(resolveOptions(['dm.blocksize=1G']).blockSizeSectors).toBe(2097152);
    expect(resolveOptions(['dm.blocksize=128k']).blockSizeSectors).toBe(256);
    for (const bad of ['32K', '96K', '2G', '0', '65537'])
      expect(failure([`dm.blocksize=${bad}`]).argument).toBe('dm.blocksize');
  });

  test('sizes: bad or zero values are refused naming the key', () => {
    for (const [key, bad] of [
      ['dm.basesize', '10Q'],
      ['dm.basesize', '0'],
      ['dm.basesize', '-1G'],
      ['dm.loopdatasize', ''],
      ['dm.loopmetadatasize', 'big'],
    ]) {
      const e = failure([`${key}=${bad}`]);
      expect(e.code).toBe(ErrorCodes.INVALID_ARGUMENT);
      expect(e.argument).toBe(key);
    }
  });

  test('unknown keys and options without "=" name the key', () => {
    let e = failure(['dm.basesize=1G', 'dm.nosuchthing=1']);
    expect(e.code).toBe(ErrorCodes.INVALID_ARGUMENT);
    expect(e.argument).toBe('dm.nosuchthing');
    e = failure(['dm.basesize']);
    expect(e.code).toBe(ErrorCodes.INVALID_ARGUMENT);
    expect(e.argument).toBe('dm.basesize');
    expect(failure(['dm.udev_wait_timeout_ms=1']).argument).toBe('dm.udev_wait_timeout_ms');
    expect(failure([42 as unknown as string]).argument).toBe('options');
  });

  test.each([
    'dm.directlvm_device=/dev/xvdf',
    'dm.directlvm_device_force=true',
    'dm.thinp_percent=95',
    'dm.thinp_metapercent=1',
    'dm.thinp_autoextend_percent=80',
    'dm.thinp_autoextend_threshold=20',
  ])('direct-lvm %s is refused as not supported', (option) => {
    const e = failure([option]);
    const key = option.slice(0, option.indexOf('='));
    expect(e.code).toBe(ErrorCodes.NOT_SUPPORTED);
    expect(e.argument).toBe(key);
    expect(e.message).toContain(key);
    expect(e.message).toMatch(/not supported/);
  });
});

describe('resolveOptions: the typed object', () => {
  test('every setting, sizes as numbers or strings', () => {
    const o = resolveOptions({
      baseSize: '512M',
      loopDataSize: 4 * GIB,
      loopMetadataSize: '256M',
      fs: 'xfs',
      mkfsArgs: ['-K'],
      mountOpt: ['noatime', 'nodiratime'],
      dataDev: '/dev/sdb',
      metadataDev: '/dev/sdc',
      blockSize: 131072,
      blkDiscard: true,
      overrideUdevSyncCheck: true,
      useDeferredRemoval: true,
      useDeferredDeletion: true,
      minFreeSpace: '5%',
      xfsNospaceMaxRetries: 3,
      libdmLogLevel: 4,
      udevWaitTimeoutMs: 1000,
      deferredDeletionRetryMs: 500,
      removeRetryBudgetMs: 0,
      keepActive: 0,
      udevReap: false,
      errorIfNoSpace: true,
      lowWaterMarkBlocks: 1024,
    });
    expect(o).toMatchObject({
      baseSizeBytes: 512 * 1024 ** 2,
      baseSizeExplicit: true,
      loopDataSizeBytes: 4 * GIB,
      loopMetadataSizeBytes: 256 * 1024 ** 2,
      fs: 'xfs',
      mkfsArgs: ['-K'],
      mountOptions: 'noatime,nodiratime',
      dataDevice: '/dev/sdb',
      metadataDevice: '/dev/sdc',
      blockSizeSectors: 256,
      blkDiscard: true,
      overrideUdevSyncCheck: true,
      useDeferredRemoval: true,
      useDeferredDeletion: true,
      minFreeSpacePercent: 5,
      xfsNospaceMaxRetries: 3,
      libdmLogLevel: 4,
      udevWaitTimeoutMs: 1000,
      deferredDeletionRetryMs: 500,
      removeRetryBudgetMs: 0,
      keepActiveDevices: 0,
      udevReap: false,
      errorIfNoSpace: true,
      lowWaterMarkBlocks: 1024,
    });
    expect(o.explicitKeys).toContain('dm.basesize');
    expect(o.explicitKeys).toContain('udevWaitTimeoutMs');
  });

  test('undefined and null mean unset; fs "" means choose', () => {
    const o = resolveOptions({ baseSize: undefined, fs: '', thinPoolDev: undefined, minFreeSpace: null as unknown as number });
    expect(o.baseSizeBytes).toBe(10 * GIB);
    expect(o.baseSizeExplicit).toBe(false);
    expect(o.fs).toBeNull();
    expect(o.minFreeSpacePercent).toBe(10);
    expect(resolveOptions({ minFreeSpace: 0, mountOpt: 'ro' })).toMatchObject({ minFreeSpacePercent: 0, mountOptions: 'ro' });
    expect(resolveOptions({ thinPoolDev: '/dev/mapper/p' })).toMatchObject({ thinPoolDevice: 'p', blkDiscard: false });
  });

  test.each<[DeviceSetOptions, string]>([
    [{ baseSize: -1 }, 'baseSize'],
    [{ baseSize: 1.5 }, 'baseSize'],
    [{ baseSize: '1X' }, 'baseSize'],
    [{ loopDataSize: 0 }, 'loopDataSize'],
    [{ fs: 'btrfs' as 'xfs' }, 'fs'],
    [{ mkfsArgs: '-K' as unknown as string[] }, 'mkfsArgs'],
    [{ blockSize: 4096 }, 'blockSize'],
    [{ blkDiscard: 'true' as unknown as boolean }, 'blkDiscard'],
    [{ minFreeSpace: 100 }, 'minFreeSpace'],
    [{ minFreeSpace: '10' }, 'minFreeSpace'],
    [{ xfsNospaceMaxRetries: -1 }, 'xfsNospaceMaxRetries'],
    [{ libdmLogLevel: 9 }, 'libdmLogLevel'],
    [{ udevWaitTimeoutMs: 0 }, 'udevWaitTimeoutMs'],
    [{ deferredDeletionRetryMs: 2 ** 31 }, 'deferredDeletionRetryMs'],
    [{ removeRetryBudgetMs: -5 }, 'removeRetryBudgetMs'],
    [{ keepActive: -1 }, 'keepActive'],
    [{ keepActive: 2.5 }, 'keepActive'],
    [{ keepActive: 65_537 }, 'keepActive'],
    [{ udevReap: 'yes' as unknown as boolean }, 'udevReap'],
    [{ errorIfNoSpace: 1 as unknown as boolean }, 'errorIfNoSpace'],
    [{ lowWaterMarkBlocks: -1 }, 'lowWaterMarkBlocks'],
    [{ lowWaterMarkBlocks: 1.5 }, 'lowWaterMarkBlocks'],
    [{ dataDev: 'relative' }, 'dataDev'],
    [{ basesize: '1G' } as unknown as DeviceSetOptions, 'basesize'],
  ])('%j is refused naming %s', (options, argument) => {
    const e = failure(options);
    expect(e.code).toBe(ErrorCodes.INVALID_ARGUMENT);
    expect(e.argument).toBe(argument);
    expect(e.message).toContain(argument);
  });

  test('direct-lvm settings are refused as not supported', () => {
    const e = failure({ thinpPercent: 95 } as unknown as DeviceSetOptions);
    expect(e.code).toBe(ErrorCodes.NOT_SUPPORTED);
    expect(e.argument).toBe('thinpPercent');
  });

  test('anything else is refused', () => {
    expect(failure('dm.basesize=1G' as unknown as string[]).argument).toBe('options');
  });
});

describe('chooseFilesystem', () => {
  test('dm.fs wins; else xfs when the probe says so, else ext4 (Docker determineDefaultFS)', async () => {
    const never = jest.fn(() => true);
    await expect(chooseFilesystem(resolveOptions(['dm.fs=ext4']), never)).resolves.toBe('ext4');
    expect(never).not.toHaveBeenCalled();
    await expect(chooseFilesystem(resolveOptions([]), () => true)).resolves.toBe('xfs');
    await expect(chooseFilesystem(resolveOptions([]), async () => false)).resolves.toBe('ext4');
  });
});
