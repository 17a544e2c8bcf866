/**
 * The addon's udev reaper: udev cookies of tasks run with `udevReap` are waited for off the
 * caller's path (see src-native/udev_reaper.h). Each cookie stays bounded by its task's udev
 * wait bound; these calls say how many are pending and wait for them.
 */
import { native, type UdevReaperStats } from '../native';

export type { UdevReaperStats };

/**
 * Waits until udev has finished every reaped cookie (their semaphores destroyed), or the
 * timeout passed, and returns the reaper's counts then: `pending` is 0 unless it timed out.
 * After it, /dev/mapper matches the kernel for every device whose cookie went to the reaper.
 *
 * @example
 * ```ts
 * const { pending, timedOut } = await dm.udevSettle(30_000);
 * ```
 */
export function udevSettle(timeoutMs: number): Promise<UdevReaperStats> {
  return native().udevSettle(timeoutMs);
}

/** The reaper's counts for this process: pending, reaped, timedOut. Synchronous. */
export function udevReaperStats(): UdevReaperStats {
  return native().udevReaperStats();
}

/** Resolves once no reaped cookie of device `name` is pending (so udev made or removed its /dev/mapper node). */
export function udevWaitName(name: string): Promise<void> {
  return native().udevWaitName(name);
}

/**
 * Destroys udev cookie semaphores that udev completed at least `minAgeSeconds` ago and that no
 * waiter collected: their process died before its wait (a SIGKILL while udev worked). Cookies
 * udev has not completed are left alone. Synchronous; returns how many went.
 */
export function sweepAbandonedUdevCookies(minAgeSeconds: number): number {
  return native().sweepAbandonedUdevCookies(minAgeSeconds);
}

/**
 * A path to open device-mapper device `name` by, now: /dev/mapper/NAME, or, while udev is
 * still making it (an activation handed to the reaper), the kernel's own /dev/dm-MINOR
 * (devtmpfs made it with the device); without devtmpfs, once udev is done. The same choice a
 * native job makes for its mount and discard steps.
 *
 * @internal
 */
export function usableDevicePath(name: string): Promise<string> {
  return native().usableDevicePath(name);
}
