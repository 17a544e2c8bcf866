/**
 * Steps for {@link runSteps}: plain descriptions the addon runs in order in one job. Errnos
 * a step tolerates are given by name and sent as numbers.
 */
import { constants as osConstants } from 'node:os';
import { native, type NativeStep, type NativeTaskSpec } from '../native';

/** An errno name a step may tolerate. */
export type ErrnoName = 'ENOENT' | 'ENXIO' | 'ENODATA' | 'EINVAL' | 'ENOTEMPTY' | 'EBUSY' | 'EEXIST';

/** Options every step kind takes. */
export interface StepOptions {
  /** errnos that count as done. */
  ok?: ErrnoName[];
  /** Run even after an earlier step failed. */
  always?: boolean;
  /** What to call the step in an error message. */
  operation?: string;
}

function common(o: StepOptions): Pick<NativeStep, 'okErrnos' | 'always' | 'operation'> {
  const out: Pick<NativeStep, 'okErrnos' | 'always' | 'operation'> = {};
  if (o.ok?.length) out.okErrnos = o.ok.map((n) => osConstants.errno[n]);
  if (o.always) out.always = true;
  if (o.operation) out.operation = o.operation;
  return out;
}

/** A device-mapper task (build it with lib/dm/specs.ts). */
export function taskStep(task: NativeTaskSpec, o: StepOptions = {}): NativeStep {
  return { kind: 'task', task, ...common(o) };
}

/** Replaces `path` atomically (temporary file beside it, fsync, rename); pair with {@link syncDirStep}. */
export function writeFileStep(path: string, data: string, o: StepOptions = {}): NativeStep {
  return { kind: 'writeFile', path, data, mode: 0o600, ...common(o) };
}

/** A new file with exactly `mode` (EEXIST when it exists; tolerate it with `ok`); not synced. */
export function createFileStep(path: string, data: string, mode: number, o: StepOptions = {}): NativeStep {
  return { kind: 'createFile', path, data, mode, ...common(o) };
}

/** A directory with exactly `mode` (EEXIST when it exists). */
export function mkdirStep(path: string, mode: number, o: StepOptions = {}): NativeStep {
  return { kind: 'mkdir', path, mode, ...common(o) };
}

/** fsync of a directory, so the renames and unlinks before it survive a crash. */
export function syncDirStep(dir: string, o: StepOptions = {}): NativeStep {
  return { kind: 'syncDir', path: dir, ...common(o) };
}

export function unlinkStep(path: string, o: StepOptions = {}): NativeStep {
  return { kind: 'unlink', path, ...common(o) };
}

export function mountStep(source: string, target: string, fstype: string, data: string, o: StepOptions & { flags?: number } = {}): NativeStep {
  return { kind: 'mount', source, path: target, fstype, data, flags: o.flags ?? 0, ...common(o) };
}

/** umount2 with MNT_DETACH unless other flags are given. */
export function umountStep(target: string, o: StepOptions & { flags?: number } = {}): NativeStep {
  return { kind: 'umount', path: target, flags: o.flags ?? native().mountFlags.MNT_DETACH, ...common(o) };
}

export function rmdirStep(path: string, o: StepOptions = {}): NativeStep {
  return { kind: 'rmdir', path, ...common(o) };
}

/** SIGKILL of the process at this point of the job: the crash-safety tests' power cut. */
export function crashStep(): NativeStep {
  return { kind: 'crash' };
}
