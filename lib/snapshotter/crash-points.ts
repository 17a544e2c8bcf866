/**
 * Named crash points of the Snapshotter, the crash-safety tests' seam (as the DeviceSet's):
 * test/fixtures/snapshotter-child.js arms one in a child process, and the Snapshotter
 * SIGKILLs the process when it gets there. Not exported from the package. Unarmed, a point
 * costs one comparison.
 */
import { DeviceSet } from '../deviceset';

export const SNAPSHOT_CRASH_POINTS = [
  'prepare-after-intent',
  'prepare-after-device',
  'prepare-after-activate',
  'commit-after-deactivate',
  'commit-after-record',
  'remove-after-intent',
  'remove-after-delete',
] as const;
export type SnapshotCrashPoint = (typeof SNAPSHOT_CRASH_POINTS)[number];

let armed: SnapshotCrashPoint | null = null;

/** Arms (or with null disarms) a point: the process dies the first time it passes it. */
export function armSnapshotCrashPoint(name: SnapshotCrashPoint | null): void {
  if (name !== null && !SNAPSHOT_CRASH_POINTS.includes(name)) throw new TypeError(`unknown snapshot crash point ${String(name)}`);
  armed = name;
}

export async function crashPoint(name: SnapshotCrashPoint): Promise<void> {
  if (armed !== name) return;
  // A crash of the two stores' sequence, not one while udev still works on a device (that
  // leaves its cookie's semaphore to the next open's sweep, tested on its own): udev first.
  await DeviceSet.udevSettle(60_000);
  process.kill(process.pid, 'SIGKILL');
  // The signal is delivered before the process runs on; never continue past the point.
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
}
