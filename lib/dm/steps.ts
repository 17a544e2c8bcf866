/**
 * Steps for {@link runSteps}: plain descriptions the addon runs in order in one job. Each
 * carries a phase, the part of its sequence it belongs to ('create', 'register', ...): a
 * failed job names the phase that failed, and the caller picks its undo by phase. Errnos a
 * step tolerates are given by name and sent as numbers.
 */
import { constants as osConstants } from 'node:os';
import { native, type NativeStep, type NativeTaskSpec } from '../native';

/**
 * An errno name a step may tolerate.
 *
 * @internal
 */
export type ErrnoName = 'ENOENT' | 'ENXIO' | 'ENODATA' | 'EINVAL' | 'ENOTEMPTY' | 'EBUSY' | 'EEXIST';

/**
 * The part of a sequence a step belongs to. The kernel sequences of lib/dm/sequences.ts use
 * suspend, create, resume, activate, mount, layout, unmount, rmdir, remove, discard and
 * delete; the DeviceSet adds intent, register, unregister and commit around them.
 *
 * @internal
 */
export type Phase =
  | 'intent'
  | 'suspend'
  | 'create'
  | 'resume'
  | 'register'
  | 'unregister'
  | 'commit'
  | 'mountpoint'
  | 'activate'
  | 'mount'
  | 'layout'
  | 'unmount'
  | 'rmdir'
  | 'remove'
  | 'discard'
  | 'delete'
  | 'metadata'
  | 'crash';

/**
 * A step of a job: what the addon runs, and the phase it belongs to.
 *
 * @internal
 */
export interface Step extends NativeStep {
  phase: Phase;
}

/**
 * Options every step kind takes.
 *
 * @internal
 */
export interface StepOptions {
  /** errnos that count as done. */
  ok?: ErrnoName[];
  /** Run even after an earlier step failed. */
  always?: boolean;
  /** What to call the step in an error message. */
  operation?: string;
  /** The step's phase (each builder has a default). */
  phase?: Phase;
}

function common(o: StepOptions, phase: Phase): Pick<Step, 'okErrnos' | 'always' | 'operation' | 'phase'> {
  const out: Pick<Step, 'okErrnos' | 'always' | 'operation' | 'phase'> = { phase: o.phase ?? phase };
  if (o.ok?.length) out.okErrnos = o.ok.map((n) => osConstants.errno[n]);
  if (o.always) out.always = true;
  if (o.operation) out.operation = o.operation;
  return out;
}

/**
 * The same steps, all in `phase` (for steps built elsewhere, such as the metadata store's).
 *
 * @internal
 */
export function inPhase(phase: Phase, steps: Step[]): Step[] {
  return steps.map((s) => (s.kind === 'crash' ? s : { ...s, phase }));
}

/**
 * A device-mapper task (its description from lib/dm/specs.ts). Default phase: 'create'.
 *
 * @internal
 */
export function taskStep(task: NativeTaskSpec, o: StepOptions = {}): Step {
  return { kind: 'task', task, ...common(o, 'create') };
}

/**
 * Replaces `path` atomically (temporary file beside it, fsync, rename); pair with {@link syncDirStep}.
 *
 * @internal
 */
export function writeFileStep(path: string, data: string, o: StepOptions = {}): Step {
  return { kind: 'writeFile', path, data, mode: 0o600, ...common(o, 'metadata') };
}

/**
 * A new file with exactly `mode` (EEXIST when it exists; tolerate it with `ok`); not synced.
 *
 * @internal
 */
export function createFileStep(path: string, data: string, mode: number, o: StepOptions = {}): Step {
  return { kind: 'createFile', path, data, mode, ...common(o, 'layout') };
}

/**
 * A directory with exactly `mode` (EEXIST when it exists).
 *
 * @internal
 */
export function mkdirStep(path: string, mode: number, o: StepOptions = {}): Step {
  return { kind: 'mkdir', path, mode, ...common(o, 'layout') };
}

/**
 * fsync of a directory, so the renames and unlinks before it survive a crash.
 *
 * @internal
 */
export function syncDirStep(dir: string, o: StepOptions = {}): Step {
  return { kind: 'syncDir', path: dir, ...common(o, 'metadata') };
}

/** @internal */
export function unlinkStep(path: string, o: StepOptions = {}): Step {
  return { kind: 'unlink', path, ...common(o, 'metadata') };
}

/** @internal */
export function mountStep(source: string, target: string, fstype: string, data: string, o: StepOptions & { flags?: number } = {}): Step {
  return { kind: 'mount', source, path: target, fstype, data, flags: o.flags ?? 0, ...common(o, 'mount') };
}

/**
 * umount2 with MNT_DETACH unless other flags are given.
 *
 * @internal
 */
export function umountStep(target: string, o: StepOptions & { flags?: number } = {}): Step {
  return { kind: 'umount', path: target, flags: o.flags ?? native().mountFlags.MNT_DETACH, ...common(o, 'unmount') };
}

/** @internal */
export function rmdirStep(path: string, o: StepOptions = {}): Step {
  return { kind: 'rmdir', path, ...common(o, 'rmdir') };
}

/**
 * BLKDISCARD of `lengthBytes` bytes from `offsetBytes` of a block device. With
 * `unlessUnmapped` (a thin device's status task) the addon asks first, in the same job, and
 * skips the discard when nothing is mapped (the result says `skipped`).
 *
 * @internal
 */
export function discardStep(
  path: string,
  offsetBytes: number,
  lengthBytes: number,
  o: StepOptions & { unlessUnmapped?: NativeTaskSpec } = {},
): Step {
  const step: Step = { kind: 'discard', path, offset: offsetBytes, length: lengthBytes, ...common(o, 'discard') };
  if (o.unlessUnmapped) step.unlessUnmapped = o.unlessUnmapped;
  return step;
}

/**
 * SIGKILL of the process at this point of the job: the crash-safety tests' power cut.
 *
 * @internal
 */
export function crashStep(): Step {
  return { kind: 'crash', phase: 'crash' };
}
