/**
 * The diagnostics channels with the real kernel: a failing create_thin shows up as a dm
 * operation record with its errno and as libdevmapper's error line (at libdm level 3, not
 * at Docker's default 2); DeviceSet steps are published with their durations.
 */
import diagnosticsChannel from 'node:diagnostics_channel';
import { CHANNELS, dm, type DeviceSetRecord, type DmOperationRecord, type LibdmLogRecord } from '../../lib';
import { native } from '../../lib/native';
import { describeKernel } from '../helpers/kernel-env';
import { testOptions, withDeviceSet } from '../helpers/deviceset';

describeKernel('diagnostics channels', () => {
  jest.setTimeout(120_000);

  test('a failing create_thin: a dm record with EEXIST and the libdm error line; DeviceSet steps', async () => {
    const records = { libdm: [] as LibdmLogRecord[], dm: [] as DmOperationRecord[], deviceset: [] as DeviceSetRecord[] };
    const subs = {
      libdm: (m: unknown) => records.libdm.push(m as LibdmLogRecord),
      dm: (m: unknown) => records.dm.push(m as DmOperationRecord),
      deviceset: (m: unknown) => records.deviceset.push(m as DeviceSetRecord),
    };
    for (const k of ['libdm', 'dm', 'deviceset'] as const) diagnosticsChannel.subscribe(CHANNELS[k], subs[k]);
    try {
      await withDeviceSet(
        async (ds) => {
          const open = records.deviceset.find((r) => r.step === 'open');
          expect(open).toMatchObject({ ok: true, poolName: ds.poolName });
          expect(open!.durationMs).toBeGreaterThan(0);
          expect(records.deviceset.find((r) => r.step === 'recovery')).toMatchObject({ ok: true, detail: { rolledBack: [] } });
          expect(records.dm.find((r) => r.operation === 'create pool')).toMatchObject({ type: 'create', device: ds.poolName, ok: true });

          const baseId = ds.getDeviceMetadata('')!.deviceId;
          const op = `create_thin ${baseId}`;
          records.libdm.length = 0;
          records.dm.length = 0;
          // The DeviceSet's dm.libdm_log_level=3 is its own; a direct dm call asks for 3 itself.
          await expect(dm.withTaskSettings({ logLevel: 3 }, () => dm.createDevice(ds.poolName, baseId))).rejects.toMatchObject({ code: 'EEXIST' });
          expect(records.dm).toEqual([
            expect.objectContaining({ type: 'targetMsg', operation: op, device: ds.poolName, ok: false, code: 'EEXIST', errno: 17 }),
          ]);
          expect(records.dm[0].durationMs).toBeGreaterThan(0);
          const errorLines = records.libdm.filter((r) => r.operation === op);
          expect(errorLines.length).toBeGreaterThan(0);
          expect(errorLines.every((r) => r.level <= 3 && r.device === ds.poolName)).toBe(true);
          expect(errorLines.some((r) => r.errno === 17 || /File exists/.test(r.message))).toBe(true);

          // At Docker's default level (2, fatal only) the error line stays in the error's logs.
          const level = native().getLogLevel();
          native().setLogLevel(2);
          try {
            records.libdm.length = 0;
            records.dm.length = 0;
            const err = await dm.createDevice(ds.poolName, baseId).catch((e: unknown) => e);
            expect(err).toMatchObject({ code: 'EEXIST' });
            expect((err as { logs: unknown[] }).logs.length).toBeGreaterThan(0);
            expect(records.libdm).toEqual([]);
            expect(records.dm).toHaveLength(1);
          } finally {
            native().setLogLevel(level);
          }

          await ds.addDevice('logged', '');
          await ds.deleteDevice('logged');
          for (const step of ['create', 'delete'])
            expect(records.deviceset.find((r) => r.step === step)).toMatchObject({ ok: true, hash: 'logged', root: expect.any(String) });
          await expect(ds.addDevice('logged-bad', 'no-such-parent')).rejects.toMatchObject({ code: 'ENOENT' });
          expect(records.deviceset.find((r) => r.hash === 'logged-bad')).toMatchObject({ step: 'create', ok: false, error: expect.objectContaining({ code: 'ENOENT' }) });
        },
        { options: testOptions(['dm.libdm_log_level=3']) },
      );
      expect(records.deviceset.at(-1)).toMatchObject({ step: 'shutdown', ok: true });
    } finally {
      for (const k of ['libdm', 'dm', 'deviceset'] as const) diagnosticsChannel.unsubscribe(CHANNELS[k], subs[k]);
    }
  });
});
