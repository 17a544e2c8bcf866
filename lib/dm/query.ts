/** Read-only questions to the kernel: info, status, table, deps, lists and versions. */
import { DevmapperError, ErrorCodes } from '../errors';
import { constants as osConstants } from 'node:os';
import { native, type NativeInfo, type NativeTaskResult } from '../native';
import { parseThinPoolStatus, parseThinStatus } from './parse';
import { runTask } from './task';
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

export type DeviceInfo = NativeInfo & { name: string };

/** The device's info, or null when no device of that name exists. */
export async function getInfo(name: string): Promise<DeviceInfo | null> {
  const dev = resolveDeviceName(name);
  const res = await runTask({ type: 'info', name: dev, operation: 'info' });
  if (!res.info?.exists) return null;
  return { name: dev, ...res.info };
}

/** The live table's status lines. ENXIO when the device does not exist. */
export async function getStatus(name: string, opts: { noFlush?: boolean } = {}): Promise<TargetLine[]> {
  const dev = resolveDeviceName(name);
  const res = requireExists(await runTask({ type: 'status', name: dev, noFlush: opts.noFlush, operation: 'status' }), dev, 'status');
  return trimmed(res.targets);
}

/** The live table (or, with inactive, the loaded inactive one). ENXIO when the device does not exist. */
export async function getTable(name: string, opts: { inactive?: boolean } = {}): Promise<TargetLine[]> {
  const dev = resolveDeviceName(name);
  const res = requireExists(await runTask({ type: 'table', name: dev, queryInactiveTable: opts.inactive, operation: 'table' }), dev, 'table');
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
 */
export async function getPoolStatus(poolName: string, opts: { noFlush?: boolean } = {}): Promise<ThinPoolStatus> {
  const dev = resolveDeviceName(poolName, 'poolName');
  const line = singleTarget(await getStatus(dev, opts), 'thin-pool', dev);
  return parseThinPoolStatus(line.params);
}

/** A thin device's status: mapped sectors and the highest mapped sector. */
export async function getThinStatus(name: string): Promise<ThinStatus> {
  const dev = resolveDeviceName(name);
  const line = singleTarget(await getStatus(dev), 'thin', dev);
  return parseThinStatus(line.params);
}

/** The block devices the device's table uses. */
export async function getDeps(name: string): Promise<{ major: number; minor: number }[]> {
  const dev = resolveDeviceName(name);
  const res = requireExists(await runTask({ type: 'deps', name: dev, operation: 'deps' }), dev, 'deps');
  return res.deps ?? [];
}

/** Every device-mapper device on the system. */
export async function listDevices(): Promise<{ name: string; major: number; minor: number }[]> {
  const res = await runTask({ type: 'list', operation: 'list' });
  return res.names ?? [];
}

/** The kernel's device-mapper ioctl interface version, e.g. '4.47.0'. */
export async function getDriverVersion(): Promise<string> {
  const res = await runTask({ type: 'version', operation: 'version' });
  return res.driverVersion ?? '';
}

/** The target types the kernel has loaded, with their versions. */
export async function getTargetVersions(): Promise<{ name: string; version: [number, number, number] }[]> {
  const res = await runTask({ type: 'listVersions', operation: 'list target versions' });
  return res.versions ?? [];
}

/** libdevmapper's version, e.g. '1.02.185 (2022-05-18)'. */
export function getLibraryVersion(): string {
  return native().libraryVersion();
}

/**
 * Whether libdevmapper synchronises with udev: udevd is running (/run/udev/control), SysV
 * semaphores work, and DM_DISABLE_UDEV is not set. When false, libdevmapper creates and
 * removes the /dev/mapper nodes itself.
 */
export function udevSyncSupported(): boolean {
  return native().udevSyncSupported();
}
