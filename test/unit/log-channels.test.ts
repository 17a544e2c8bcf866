import diagnosticsChannel from 'node:diagnostics_channel';
import { CHANNELS } from '../../lib';
import { DevmapperError } from '../../lib/errors';
import { libdmRecords, reportTask } from '../../lib/dm/diagnostics';
import { publish } from '../../lib/log/channels';
import type { NativeTaskResult } from '../../lib/native';

const LINES = [
  { level: 3, file: 'libdm-iface.c', line: 1988, errno: 17, message: 'device-mapper: message ioctl on  failed: File exists' },
  { level: 4, errno: 0, message: 'a warning' },
  { level: 7, file: 'libdm-common.c', line: 100, errno: 0, message: 'debug detail' },
];

function result(logs = LINES): NativeTaskResult {
  return { udevTimedOut: false, udevReaped: false, cookie: 0, logs };
}

/** Subscribes to a channel for the length of fn and returns what was published. */
async function collect(name: string, fn: () => unknown): Promise<unknown[]> {
  const seen: unknown[] = [];
  const sub = (m: unknown) => seen.push(m);
  diagnosticsChannel.subscribe(name, sub);
  try {
    await fn();
  } finally {
    diagnosticsChannel.unsubscribe(name, sub);
  }
  return seen;
}

describe('diagnostics channels', () => {
  test('the names', () => {
    expect(CHANNELS).toEqual({ libdm: 'devmapper:libdm', dm: 'devmapper:dm', deviceset: 'devmapper:deviceset' });
    expect(Object.isFrozen(CHANNELS)).toBe(true);
  });

  test('publish builds nothing without a subscriber', async () => {
    const build = jest.fn(() => ({ x: 1 }));
    publish(diagnosticsChannel.channel(CHANNELS.dm), build);
    expect(build).not.toHaveBeenCalled();
    expect(await collect(CHANNELS.dm, () => publish(diagnosticsChannel.channel(CHANNELS.dm), build))).toEqual([{ x: 1 }]);
    expect(build).toHaveBeenCalledTimes(1);
  });

  test('libdm lines are forwarded at or below the level, with the call they came from', () => {
    expect(libdmRecords(LINES, 2, 'create_thin 1', 'p')).toEqual([]);
    expect(libdmRecords(LINES, 3, 'create_thin 1', 'p')).toEqual([
      { level: 3, file: 'libdm-iface.c', line: 1988, errno: 17, message: LINES[0].message, operation: 'create_thin 1', device: 'p' },
    ]);
    expect(libdmRecords(LINES, 7, 'op', '').map((r) => r.level)).toEqual([3, 4, 7]);
    expect(libdmRecords(LINES, 4, 'op', '')[1]).toEqual({ level: 4, errno: 0, message: 'a warning', operation: 'op', device: '' });
  });

  test('reportTask: nothing is built or asked without subscribers', () => {
    const level = jest.fn(() => 7);
    reportTask({ type: 'status', name: 'p', operation: 'status' }, 1.5, { ok: true, result: result() }, level);
    expect(level).not.toHaveBeenCalled();
  });

  test('reportTask: a success gives an operation record and its lines', async () => {
    const level = jest.fn(() => 4);
    const libdm: unknown[] = [];
    const ops = await collect(CHANNELS.dm, () =>
      collect(CHANNELS.libdm, () => reportTask({ type: 'status', name: 'p', operation: 'status' }, 1.5, { ok: true, result: result() }, level)).then(
        (l) => libdm.push(...l),
      ),
    );
    expect(ops).toEqual([{ type: 'status', operation: 'status', device: 'p', durationMs: 1.5, ok: true }]);
    expect(libdm).toHaveLength(2);
    expect(level).toHaveBeenCalledTimes(1);
  });

  test('reportTask: a failure gives errno and code, and the lines the error carried', async () => {
    const err = new DevmapperError('message create_thin 1 on p failed: File exists', { errno: 17, operation: 'create_thin 1', device: 'p', logs: LINES });
    const spec = { type: 'targetMsg' as const, name: 'p', message: 'create_thin 1', operation: 'create_thin 1' };
    const libdm = await collect(CHANNELS.libdm, () => reportTask(spec, 3, { ok: false, error: err }, () => 3));
    expect(libdm).toEqual([expect.objectContaining({ level: 3, errno: 17, operation: 'create_thin 1', device: 'p' })]);
    const ops = await collect(CHANNELS.dm, () => reportTask(spec, 3, { ok: false, error: err }, () => 3));
    expect(ops).toEqual([{ type: 'targetMsg', operation: 'create_thin 1', device: 'p', durationMs: 3, ok: false, errno: 17, code: 'EEXIST' }]);
  });

  test('reportTask: a udev timeout is flagged; an operation without a name has device ""', async () => {
    const ops = await collect(CHANNELS.dm, () => {
      reportTask({ type: 'resume', name: 'd', operation: 'resume' }, 1, { ok: true, result: { ...result([]), udevTimedOut: true } }, () => 2);
      reportTask({ type: 'list' }, 1, { ok: true, result: result([]) }, () => 2);
    });
    expect(ops).toEqual([
      { type: 'resume', operation: 'resume', device: 'd', durationMs: 1, ok: true, udevTimedOut: true },
      { type: 'list', operation: 'list', device: '', durationMs: 1, ok: true },
    ]);
  });
});
