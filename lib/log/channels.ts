/**
 * The library's logging, by Node's convention: named `node:diagnostics_channel` channels
 * that anyone may subscribe to, and that cost nothing while nobody does (a record is built
 * only when its channel has subscribers).
 *
 *   devmapper:libdm      one record per libdevmapper log line at or below the call's
 *                        libdm log level (a DeviceSet's dm.libdm_log_level for its own
 *                        calls, else dm.setLogLevel's; 2 fatal ... 7 debug)
 *   devmapper:dm         one record per device-mapper operation: type, name, device,
 *                        duration, errno and code on failure
 *   devmapper:deviceset  one record per DeviceSet step: open, recovery, create, delete,
 *                        mount, unmount, activate, deactivate, resize, shutdown, pool events and the pool watch
 */
import diagnosticsChannel from 'node:diagnostics_channel';
import type { NativeTaskType } from '../native';

/** The channel names, for `diagnostics_channel.subscribe(name, fn)`. */
export const CHANNELS = Object.freeze({
  /** libdevmapper's log lines ({@link LibdmLogRecord}). */
  libdm: 'devmapper:libdm',
  /** One record per device-mapper operation ({@link DmOperationRecord}). */
  dm: 'devmapper:dm',
  /** One record per DeviceSet step ({@link DeviceSetRecord}). */
  deviceset: 'devmapper:deviceset',
} as const);

/** A libdevmapper log line, with the operation it came from. */
export interface LibdmLogRecord {
  /** syslog-style: 2 fatal, 3 error, 4 warning, 5 notice, 6 info, 7 debug. */
  level: number;
  /** The line's text, as libdevmapper formatted it. */
  message: string;
  /** The errno libdevmapper attached to the line, 0 when none. */
  errno: number;
  /** libdevmapper's source file and line, when it gave them. */
  file?: string;
  /** The line number in that source file. */
  line?: number;
  /** The device-mapper operation during which the line was logged ('create_thin 5', 'status', ...). */
  operation: string;
  /** The device it was about, '' when none. */
  device: string;
}

/** One device-mapper operation (one dm_task, with its udev wait). */
export interface DmOperationRecord {
  /** The dm_task type: 'create', 'targetMsg', 'status', ... */
  type: NativeTaskType;
  /** What was being done: 'create_thin 5', 'activate', 'status', ... */
  operation: string;
  /** The device-mapper name, '' for operations without one (list, version). */
  device: string;
  /** Wall time from the call to its result, udev wait included, in ms. */
  durationMs: number;
  /** The operation succeeded. */
  ok: boolean;
  /** On failure: the kernel's errno when there was one, and the error's code. */
  errno?: number;
  /** On failure: the error's code ('EBUSY', 'ERR_DM_FAILED', ...). */
  code?: string;
  /** udev did not confirm within the timeout (the cookie was released by us). */
  udevTimedOut?: boolean;
}

/** The DeviceSet steps that publish a record. */
export type DeviceSetStep =
  | 'open'
  | 'recovery'
  | 'create'
  | 'delete'
  | 'mount'
  | 'unmount'
  | 'activate'
  | 'deactivate'
  | 'resize'
  | 'shutdown'
  | 'pool-event'
  | 'pool-watch';

/** One DeviceSet step. */
export interface DeviceSetRecord {
  /** Which step. */
  step: DeviceSetStep;
  /** The DeviceSet's root directory. */
  root: string;
  /** The pool's device-mapper name ('' while open has not found it yet). */
  poolName: string;
  /** The device the step was about ('' = the base device), when it was about one. */
  hash?: string;
  /** How long the step took, in ms (steps that take time). */
  durationMs?: number;
  /** The step succeeded. */
  ok: boolean;
  /** The failure, when ok is false. */
  error?: unknown;
  /**
   * Step-specific facts: for 'pool-event' the event's type and the pool's event counter;
   * for 'pool-watch' whether it started or stopped; for 'recovery' what was rolled back; for
   * 'delete' with dm.blkdiscard `discarded`, whether the device's blocks were discarded first
   * (false: nothing was mapped, or something held the device open).
   */
  detail?: Record<string, unknown>;
}

/** @internal The channel objects the library publishes on. */
export const libdmChannel = diagnosticsChannel.channel(CHANNELS.libdm);
/** @internal */
export const dmChannel = diagnosticsChannel.channel(CHANNELS.dm);
/** @internal */
export const deviceSetChannel = diagnosticsChannel.channel(CHANNELS.deviceset);

/**
 * Publishes the record `build` makes, only when the channel has a subscriber: without one,
 * nothing is built.
 *
 * @internal
 */
export function publish<T>(channel: diagnosticsChannel.Channel, build: () => T): void {
  if (channel.hasSubscribers) channel.publish(build());
}
