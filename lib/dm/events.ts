/**
 * Device-mapper events of one device: a target raises one when something happens that
 * userspace should act on (a thin pool crossing its low-water mark, changing mode, running
 * out of data space). A native thread sleeps on /dev/mapper/control (DM_DEV_ARM_POLL,
 * Linux 4.13+) and calls back when the device's event counter moves; nothing polls on a timer.
 */
import type { DevmapperError } from '../errors';
import { native, type NativeEventWatcher } from '../native';
import { resolveDeviceName } from './validate';

/** A running watch of one device's device-mapper events ({@link watchDeviceEvents}); `close()` stops it. */
export interface DeviceEventWatch {
  /** The device-mapper name watched. */
  readonly name: string;
  /** The device's event counter as last read. */
  readonly eventNr: number;
  /** Times the watcher thread woke: any device-mapper event in the system wakes it. */
  readonly wakeups: number;
  /** Wake-ups at which this device's counter had moved: the onEvent calls made. */
  readonly deviceEvents: number;
  /** The thread is running (false after close() or a failure). */
  readonly active: boolean;
  /** Stops the thread and closes its files. Idempotent; no callback comes after it. */
  close(): void;
}

/** The callbacks of {@link watchDeviceEvents}. */
export interface WatchDeviceEventsOptions {
  /** Called on the JS thread with the device's new event counter. */
  onEvent: (eventNr: number) => void;
  /**
   * Called once if the watch fails (for example the device was removed behind our back);
   * the thread has ended then. Without it the failure is dropped and `active` turns false.
   */
  onError?: (err: DevmapperError) => void;
}

/**
 * Watches a device's events from a thread of its own. The thread does not keep the process
 * alive; close() stops it. Throws ENXIO when the device does not exist.
 */
export function watchDeviceEvents(name: string, opts: WatchDeviceEventsOptions): DeviceEventWatch {
  const dev = resolveDeviceName(name);
  const { onEvent, onError } = opts;
  const watcher: NativeEventWatcher = new (native().EventWatcher)(dev, (err, eventNr) => {
    if (err) onError?.(err);
    else if (eventNr !== null) onEvent(eventNr);
  });
  return {
    name: dev,
    get eventNr() {
      return watcher.eventNr;
    },
    get wakeups() {
      return watcher.wakeups;
    },
    get deviceEvents() {
      return watcher.deviceEvents;
    },
    get active() {
      return watcher.active;
    },
    close: () => watcher.close(),
  };
}
