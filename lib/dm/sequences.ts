/**
 * The library's kernel sequences, each written once as the steps of one native job: the
 * public dm verbs run them alone (one thread hop each), and the DeviceSet runs the same
 * steps inside its transactions, between its metadata steps. Each step carries its phase,
 * so that whoever runs a sequence undoes by the phase that failed.
 */
import { DevmapperError, ErrorCodes } from '../errors';
import { abortError, KeyedLock, sleep } from '../util';
import { getInfo, type DeviceInfo } from './query';
import { runStepsOrThrow } from './run-steps';
import {
  activateSpec,
  cancelDeferredRemoveSpec,
  createSnapSpec,
  createThinSpec,
  deleteThinSpec,
  mknodesSpec,
  removeSpec,
  resumeSpec,
  setTransactionIdSpec,
  statusSpec,
  suspendSpec,
  type ActivateSpecOptions,
} from './specs';
import { discardStep, mountStep, rmdirStep, taskStep, umountStep, type Step } from './steps';
import { resolveDeviceName } from './validate';

/**
 * create_thin of a new thin id.
 *
 * @internal
 */
export function createThinSteps(poolName: string, deviceId: number): Step[] {
  return [taskStep(createThinSpec(poolName, deviceId), { phase: 'create' })];
}

// Snapshots of one origin are serialised so that none resumes the origin while another's
// create_snap still needs it suspended.
const originLocks = new KeyedLock();

/**
 * Runs fn holding the lock of the origin's snapshots (none for a snapshot of an inactive origin by id only).
 *
 * @internal
 */
export function withOriginLock<T>(origin: string | null, fn: () => Promise<T>): Promise<T> {
  return origin === null ? fn() : originLocks.run(origin, fn);
}

/**
 * create_snap of `baseDeviceId` as `deviceId`. When `origin` (the base's mapped device) is
 * active and running, it is suspended for the message (its file system frozen, its I/O
 * flushed) and resumed on every path: phases suspend, create, resume. Asks the kernel once
 * (a query, on the JS thread when it can) whether the origin is active. Run it inside
 * {@link withOriginLock}, and nothing must activate the origin meanwhile.
 *
 * @internal
 */
export async function snapshotSteps(poolName: string, deviceId: number, baseDeviceId: number, origin: string | null): Promise<Step[]> {
  const spec = createSnapSpec(poolName, deviceId, baseDeviceId);
  const create = taskStep(spec, { phase: 'create' });
  if (origin === null) return [create];
  const info = await getInfo(origin);
  if (!info || info.suspended) return [create];
  return [
    taskStep(suspendSpec(origin, { operation: `suspend origin for ${spec.message}` }), { phase: 'suspend' }),
    create,
    taskStep(resumeSpec(origin, `resume origin after ${spec.message}`), { phase: 'resume', always: true }),
  ];
}

/**
 * Activation of a thin device given what the kernel has now: a create with the thin table
 * when it has nothing of that name, a cancel of a pending deferred remove when it has one,
 * nothing when the device is active. Phase: activate.
 *
 * @internal
 */
export function activationSteps(
  current: DeviceInfo | null,
  poolName: string,
  name: string,
  deviceId: number,
  sizeBytes: number,
  opts: ActivateSpecOptions = {},
): Step[] {
  if (!current) return [taskStep(activateSpec(poolName, name, deviceId, sizeBytes, opts), { phase: 'activate' })];
  if (current.deferredRemove) return [taskStep(cancelDeferredRemoveSpec(name), { phase: 'activate' })];
  return [];
}

/**
 * How a device is removed.
 *
 * @internal
 */
export interface RemovalOptions {
  /** Deferred removal: an open device goes at its last close. */
  deferred?: boolean;
  /** A device that does not exist counts as removed (ENXIO tolerated). */
  missingOk?: boolean;
  /** Hand the udev cookie to the reaper: the call returns before udev is done with the node. */
  udevReap?: boolean;
}

/**
 * Removal of a mapped device. libdevmapper drops the /dev/mapper node after any successful
 * remove, even one the kernel only deferred because the device is open: with `deferred` a
 * mknodes puts it back while the device lives (and deletes it once gone). Phase: remove.
 *
 * @internal
 */
export function removalSteps(name: string, o: RemovalOptions = {}): Step[] {
  const steps = [taskStep(removeSpec(name, o.deferred, o.udevReap), { phase: 'remove', ok: o.missingOk ? ['ENXIO'] : [] })];
  if (o.deferred) steps.push(taskStep(mknodesSpec(name, 'refresh node after deferred remove'), { phase: 'remove' }));
  return steps;
}

/**
 * The bound on {@link removeWithRetries}.
 *
 * @internal
 */
export interface RetryOptions {
  /** How long to keep retrying while the device is busy (EBUSY), in ms; 0 = one try. */
  retryBudgetMs: number;
  /** Stops the retries: rejects with ABORT_ERR while waiting between tries. */
  signal?: AbortSignal;
}

/**
 * {@link removalSteps}, retried while the device is busy (EBUSY) within the budget, with
 * backoff from 10 ms doubling to 250 ms. A busy device is one something holds open: a mount
 * in any namespace, a process, udev probing it just after a change.
 *
 * @internal
 */
export async function removeWithRetries(name: string, o: RemovalOptions & RetryOptions): Promise<void> {
  const dev = resolveDeviceName(name);
  const budget = o.retryBudgetMs;
  if (!Number.isInteger(budget) || budget < 0)
    throw new DevmapperError(`retryBudgetMs: expected a non-negative integer, got ${String(budget)}`, {
      code: ErrorCodes.INVALID_ARGUMENT,
      argument: 'retryBudgetMs',
    });
  const steps = removalSteps(dev, o);
  const started = Date.now();
  let delay = 10;
  for (let attempt = 1; ; attempt++) {
    if (o.signal?.aborted) throw abortError('remove', dev, o.signal);
    try {
      await runStepsOrThrow(steps);
      return;
    } catch (err) {
      if (!(err instanceof DevmapperError) || err.code !== 'EBUSY') throw err;
      const left = budget - (Date.now() - started);
      if (left <= 0) {
        err.message += ` (still busy after ${attempt} attempt${attempt > 1 ? 's' : ''} in ${Date.now() - started} ms)`;
        throw err;
      }
      await sleep(Math.min(delay, left), o.signal, 'remove', dev);
      delay = Math.min(delay * 2, 250);
    }
  }
}

/**
 * `set_transaction_id old new`: the pool's commit of userspace's transaction. Phase: commit.
 *
 * @internal
 */
export function setTransactionIdSteps(poolName: string, oldId: number, newId: number): Step[] {
  return [taskStep(setTransactionIdSpec(poolName, oldId, newId), { phase: 'commit' })];
}

/**
 * Deletion of thin id `deviceId` from the pool (the `delete` message). With `missingOk` an id
 * the pool no longer has (ENODATA) counts as deleted. Phase: delete.
 *
 * @internal
 */
export function deletionSteps(poolName: string, deviceId: number, o: { missingOk?: boolean } = {}): Step[] {
  return [taskStep(deleteThinSpec(poolName, deviceId), { phase: 'delete', ok: o.missingOk ? ['ENODATA'] : [] })];
}

/**
 * Discard of an active thin device's first `bytes` bytes, so that the pool unmaps its blocks
 * (and a loop file under the pool punches the holes), unless the thin target reports nothing
 * mapped: the addon asks it in the same job. Phase: discard.
 *
 * @internal
 */
export function discardSteps(name: string, bytes: number): Step[] {
  const dev = resolveDeviceName(name);
  // By name: while udev still works on a just activated device, its devtmpfs node is used.
  return [{ ...discardStep(`/dev/mapper/${dev}`, 0, bytes, { unlessUnmapped: statusSpec(dev, true) }), dmName: dev }];
}

/**
 * mount(2) of an active device. Phase: mount. With `dmName`, the source is that
 * device-mapper device: /dev/mapper/NAME, or /dev/dm-MINOR while udev is still at work on it
 * (a reaped activation).
 *
 * @internal
 */
export function mountSteps(devicePath: string, target: string, fstype: string, data: string, o: { dmName?: string } = {}): Step[] {
  const step = mountStep(devicePath, target, fstype, data);
  return [o.dmName === undefined ? step : { ...step, dmName: resolveDeviceName(o.dmName) }];
}

/**
 * Unmount with MNT_DETACH (copies of the mount leaked into other mount namespaces go with
 * the mount point), then the mount point removed. Nothing mounted there (EINVAL) and a
 * mount point already gone (ENOENT) are fine; a mount point still held elsewhere or not
 * empty stays. Phases: unmount, rmdir. Deactivation follows with {@link removalSteps}.
 *
 * @internal
 */
export function unmountSteps(target: string): Step[] {
  return [umountStep(target, { ok: ['EINVAL', 'ENOENT'] }), rmdirStep(target, { ok: ['ENOENT', 'ENOTEMPTY', 'EBUSY'] })];
}
