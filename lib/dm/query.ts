/** Read-only questions to the kernel: info, status, table, deps, lists and versions. */
import { DevmapperError, ErrorCodes } from '../errors';
import { constants as osConstants } from 'node:os';
import { native, type NativeInfo, type NativeTaskResult } from '../native';
import { parseThinPoolStatus, parseThinStatus } from './parse';
import { runQuery, runTask } from './task';
import { statusSpec } from './specs';
import type { TargetLine, ThinPoolStatus, ThinStatus } from './types';
import { resolveDeviceName } from './validate';

// dm-thin ends its table and status lines with a space; callers compare exact strings.
function trimmed(lines: TargetLine[] | undefined): TargetLine[] {
  return (lines ?? []).map((l) => ({ ...l, params: l.params.trimEnd() }));
}

/**
 * libdevmapper reports a missing device as success with exists=0 for info, status, table and
 * deps; the questions that need a device turn that into the kernel's ENXIO.
 */
function requireExists(res: NativeTaskResult, dev: string, operation: string): NativeTaskResult {
  if (res.info && !res.info.exists)
    throw new DevmapperError(`${operation} on ${dev} failed: no such device`, {
      code: 'ENXIO',
      errno: osConstants.errno.ENXIO,
      operation,
      device: dev,
    });
  return res;
}

/**
 * What the kernel says about one device (DM_DEV_STATUS / dm_task_get_info), plus its name.
 * Fields: `exists`; `suspended`; `liveTable` and `inactiveTable` (a loaded table waiting for
 * a resume); `openCount` (holders: mounts, processes, stacked devices); `eventNr`; `major`
 * and `minor` of /dev/dm-N; `readOnly`; `targetCount`; `deferredRemove` (a deferred remove
 * is pending); `internalSuspend` (suspended by the kernel itself, e.g. a pool's thin
 * devices while the pool is suspended); `uuid` when the device has one.
 */
export type DeviceInfo = NativeInfo & {
  /** The bare device-mapper name. */
  name: string;
};

/**
 * The device's info, or null when no device of that name exists.
 *
 * @throws {@link DevmapperError} ERR_INVALID_ARGUMENT for a bad name
 *
 * @example
 * ```ts
 * const info = await dm.getInfo('myapp-base');
 * if (info && info.openCount > 0) console.log('in use: mounted or held open');
 * ```
 */
export async function getInfo(name: string): Promise<DeviceInfo | null> {
  const dev = resolveDeviceName(name);
  const res = await runQuery({ type: 'info', name: dev, operation: 'info' });
  if (!res.info?.exists) return null;
  return { name: dev, ...res.info };
}

/**
 * The live table's status lines (`dmsetup status`), params with the kernel's trailing space
 * trimmed. By default the kernel flushes the pool's pending metadata first so counts are
 * current; `noFlush` skips that.
 *
 * @throws {@link DevmapperError} ENXIO when the device does not exist
 */
export async function getStatus(name: string, opts: { noFlush?: boolean } = {}): Promise<TargetLine[]> {
  const dev = resolveDeviceName(name);
  const spec = statusSpec(dev, opts.noFlush);
  // Without noFlush a pool commits its metadata first (I/O): that one always hops.
  const res = requireExists(await (opts.noFlush ? runQuery(spec) : runTask(spec)), dev, 'status');
  return trimmed(res.targets);
}

/**
 * The live table (or, with inactive, the loaded inactive one), as `dmsetup table` prints it:
 * devices as major:minor.
 *
 * @throws {@link DevmapperError} ENXIO when the device does not exist
 */
export async function getTable(name: string, opts: { inactive?: boolean } = {}): Promise<TargetLine[]> {
  const dev = resolveDeviceName(name);
  const res = requireExists(await runQuery({ type: 'table', name: dev, queryInactiveTable: opts.inactive, operation: 'table' }), dev, 'table');
  return trimmed(res.targets);
}

function singleTarget(lines: TargetLine[], type: string, dev: string): TargetLine {
  if (lines.length !== 1 || lines[0].type !== type)
    throw new DevmapperError(`${dev} is not a ${type} device (table: ${lines.map((l) => l.type).join(', ') || 'empty'})`, {
      code: ErrorCodes.INVALID_ARGUMENT,
      argument: 'name',
      device: dev,
    });
  return lines[0];
}

/**
 * The whole thin-pool status line, parsed: transaction id, metadata and data usage, held
 * root, mode, discards, no-space policy, needs_check, metadata low-water mark; or Fail/Error.
 * Check `mode` and `needsCheck`, not just the counts: a full or read-only pool still answers.
 *
 * @throws {@link DevmapperError} ENXIO when there is no such device; ERR_INVALID_ARGUMENT
 *   when the device is not a single thin-pool target; ERR_PARSE for a line this parser cannot read
 *
 * @example
 * ```ts
 * const st = await dm.getPoolStatus('myapp-pool');
 * if (st.state !== 'ok') throw new Error('pool failed: run thin_check');
 * const freeData = st.dataTotalBlocks - st.dataUsedBlocks;
 * if (st.mode !== 'rw' || st.needsCheck) console.warn(`pool is ${st.mode}`);
 * ```
 */
export async function getPoolStatus(poolName: string, opts: { noFlush?: boolean } = {}): Promise<ThinPoolStatus> {
  const dev = resolveDeviceName(poolName, 'poolName');
  const line = singleTarget(await getStatus(dev, opts), 'thin-pool', dev);
  return parseThinPoolStatus(line.params);
}

/**
 * A thin device's status: mapped sectors and the highest mapped sector.
 *
 * @throws {@link DevmapperError} ENXIO when there is no such device; ERR_INVALID_ARGUMENT
 *   when it is not a single thin target
 */
export async function getThinStatus(name: string): Promise<ThinStatus> {
  const dev = resolveDeviceName(name);
  // A thin target's status commits nothing (only a pool's does): ask without a flush, so
  // the query can run on the JS thread.
  const line = singleTarget(await getStatus(dev, { noFlush: true }), 'thin', dev);
  return parseThinStatus(line.params);
}

/**
 * The block devices the device's table uses (a thin device: its pool; a pool: its data and
 * metadata devices).
 *
 * @throws {@link DevmapperError} ENXIO when the device does not exist
 */
export async function getDeps(name: string): Promise<
  {
    /** Major number. */
    major: number;
    /** Minor number. */
    minor: number;
  }[]
> {
  const dev = resolveDeviceName(name);
  const res = requireExists(await runTask({ type: 'deps', name: dev, operation: 'deps' }), dev, 'deps');
  return res.deps ?? [];
}

/** Every device-mapper device on the system (all of them, not only this library's), as `dmsetup ls`. */
export async function listDevices(): Promise<
  {
    /** Device-mapper name. */
    name: string;
    /** Major number. */
    major: number;
    /** Minor number (N of /dev/dm-N). */
    minor: number;
  }[]
> {
  const res = await runTask({ type: 'list', operation: 'list' });
  return res.names ?? [];
}

/**
 * The kernel's device-mapper ioctl interface version, e.g. '4.47.0' (deferred removal needs
 * 4.27 or later).
 *
 * @throws {@link DevmapperError} when libdevmapper cannot use /dev/mapper/control: the errno
 *   of its failed open (EACCES without root, ENXIO/ENODEV when the kernel has no
 *   device-mapper), or ERR_DM_FAILED when it logged none
 */
export async function getDriverVersion(): Promise<string> {
  const res = await runTask({ type: 'version', operation: 'version' });
  return res.driverVersion ?? '';
}

/**
 * The target types the kernel has loaded, with their versions (`dmsetup targets`). A module
 * such as dm-thin-pool that is not loaded yet is missing here until a table needs it.
 */
export async function getTargetVersions(): Promise<
  {
    /** Target type: 'thin-pool', 'thin', 'linear', ... */
    name: string;
    /** Major, minor, patch. */
    version: [number, number, number];
  }[]
> {
  const res = await runTask({ type: 'listVersions', operation: 'list target versions' });
  return res.versions ?? [];
}

/**
 * libdevmapper's version, e.g. '1.02.185 (2022-05-18)'. Synchronous.
 *
 * @throws {@link DevmapperError} ERR_ADDON_NOT_LOADED when the native addon is missing
 */
export function getLibraryVersion(): string {
  return native().libraryVersion();
}

/**
 * Whether libdevmapper synchronises with udev: udevd is running (/run/udev/control), SysV
 * semaphores work, and DM_DISABLE_UDEV is not set. When false, libdevmapper creates and
 * removes the /dev/mapper nodes itself. Synchronous.
 *
 * @throws {@link DevmapperError} ERR_ADDON_NOT_LOADED when the native addon is missing
 */
export function udevSyncSupported(): boolean {
  return native().udevSyncSupported();
}
