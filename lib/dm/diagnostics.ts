/**
 * What each device-mapper operation tells the diagnostics channels: an operation record on
 * devmapper:dm, and libdevmapper's log lines of that call on devmapper:libdm. The lines are
 * those the addon captured for the call (src-native/libdm_lock.cc); only the ones at or
 * below the process's libdm log level go out, as dm.libdm_log_level meant in Docker.
 */
import { DevmapperError, type LibdmLogLine } from '../errors';
import { dmChannel, libdmChannel, publish, type DmOperationRecord, type LibdmLogRecord } from '../log';
import type { NativeTaskResult, NativeTaskSpec } from '../native';

export type TaskOutcome = { ok: true; result: NativeTaskResult } | { ok: false; error: unknown };

/** The lines to forward: those at or below `maxLevel` (2 fatal ... 7 debug), with their call. */
export function libdmRecords(lines: readonly LibdmLogLine[], maxLevel: number, operation: string, device: string): LibdmLogRecord[] {
  const out: LibdmLogRecord[] = [];
  for (const l of lines) {
    if (l.level > maxLevel) continue;
    const rec: LibdmLogRecord = { level: l.level, message: l.message, errno: l.errno, operation, device };
    if (l.file !== undefined) {
      rec.file = l.file;
      rec.line = l.line;
    }
    out.push(rec);
  }
  return out;
}

export function dmOperationRecord(spec: NativeTaskSpec, durationMs: number, outcome: TaskOutcome): DmOperationRecord {
  const rec: DmOperationRecord = {
    type: spec.type,
    operation: spec.operation ?? spec.type,
    device: spec.name ?? spec.uuid ?? '',
    durationMs,
    ok: outcome.ok,
  };
  if (outcome.ok) {
    if (outcome.result.udevTimedOut) rec.udevTimedOut = true;
  } else if (outcome.error instanceof DevmapperError) {
    if (outcome.error.errno !== undefined) rec.errno = outcome.error.errno;
    rec.code = outcome.error.code;
  }
  return rec;
}

/**
 * Publishes one finished task: its libdm lines (when devmapper:libdm has subscribers; the
 * level is asked for only then) and its operation record (when devmapper:dm has).
 */
export function reportTask(spec: NativeTaskSpec, durationMs: number, outcome: TaskOutcome, libdmLevel: () => number): void {
  if (libdmChannel.hasSubscribers) {
    const lines = outcome.ok ? outcome.result.logs : outcome.error instanceof DevmapperError ? outcome.error.logs : [];
    if (lines.length > 0) {
      const records = libdmRecords(lines, libdmLevel(), spec.operation ?? spec.type, spec.name ?? spec.uuid ?? '');
      for (const r of records) libdmChannel.publish(r);
    }
  }
  publish(dmChannel, () => dmOperationRecord(spec, durationMs, outcome));
}
