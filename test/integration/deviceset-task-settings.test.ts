/**
 * A DeviceSet's udevWaitTimeoutMs and dm.libdm_log_level go with its own device-mapper tasks
 * and change nothing process-wide: two DeviceSets opened and used at the same time with
 * different settings each send theirs on every task (as seen by the addon), the addon
 * captures libdm lines at each one's level (debug lines for one, none past errors for the
 * other), and dm.getLogLevel() / dm.getTaskDefaults() are what they were before.
 */
import diagnosticsChannel from 'node:diagnostics_channel';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { CHANNELS, DeviceSet, dm, type LibdmLogRecord } from '../../lib';
import { native, type NativeTaskSpec } from '../../lib/native';
import { describeKernel } from '../helpers/kernel-env';
import { newRoot, typedTestOptions } from '../helpers/deviceset';

/** The device-mapper name prefix of a DeviceSet's devices (its pool is `<prefix>-pool`). */
const prefixOf = (ds: DeviceSet): string => ds.poolName.slice(0, -'-pool'.length);

describeKernel('task settings per DeviceSet', () => {
  jest.setTimeout(180_000);

  test('two DeviceSets with different settings do not change each other’s, nor the process’s', async () => {
    const before = { level: dm.getLogLevel(), defaults: dm.getTaskDefaults() };
    const settings = [
      { udevWaitTimeoutMs: 20_001, libdmLogLevel: 7 },
      { udevWaitTimeoutMs: 20_002, libdmLogLevel: 3 },
    ];
    const addon = native();
    const spies = [jest.spyOn(addon, 'runTask'), jest.spyOn(addon, 'runTaskSync'), jest.spyOn(addon, 'tryRunTaskSync')];
    const stepsSpy = jest.spyOn(addon, 'runSteps');
    const libdm: LibdmLogRecord[] = [];
    const onLibdm = (m: unknown) => libdm.push(m as LibdmLogRecord);
    diagnosticsChannel.subscribe(CHANNELS.libdm, onLibdm);
    const roots = await Promise.all(settings.map(() => newRoot()));
    const sets: DeviceSet[] = [];
    try {
      // Opened and used at the same time, so that their tasks interleave.
      sets.push(...(await Promise.all(roots.map((root, i) => DeviceSet.open(root, { options: typedTestOptions(settings[i]) })))));
      expect(sets.map((ds) => ds.options.libdmLogLevel)).toEqual([7, 3]);
      await Promise.all(
        sets.map(async (ds) => {
          await ds.addDevice('a', '');
          await ds.getDeviceStatus('a');
          await ds.status();
          await ds.deleteDevice('a', { sync: true });
        }),
      );
      expect(dm.getLogLevel()).toBe(before.level);
      expect(dm.getTaskDefaults()).toEqual(before.defaults);
      await Promise.all(sets.map((ds) => ds.shutdown()));

      const sent: NativeTaskSpec[] = [
        ...spies.flatMap((spy) => spy.mock.calls.map(([spec]) => spec)),
        ...stepsSpy.mock.calls.flatMap(([steps]) => steps.flatMap((s) => (s.task ? [s.task] : []))),
      ];
      sets.forEach((ds, i) => {
        const prefix = prefixOf(ds);
        const own = sent.filter((spec) => spec.name?.startsWith(prefix));
        // Pool creation, the base's mkfs activation, create/activate/remove/delete, shutdown.
        expect(own.length).toBeGreaterThan(5);
        for (const spec of own)
          expect({ name: spec.name, type: spec.type, udevTimeoutMs: spec.udevTimeoutMs, logLevel: spec.logLevel }).toEqual({
            name: spec.name,
            type: spec.type,
            udevTimeoutMs: settings[i].udevWaitTimeoutMs,
            logLevel: settings[i].libdmLogLevel,
          });
      });
      const linesOf = (ds: DeviceSet) => libdm.filter((r) => r.device.startsWith(prefixOf(ds)));
      // Level 7: libdevmapper's debug lines of each ioctl were captured and forwarded.
      expect(linesOf(sets[0]).some((r) => r.level === 7)).toBe(true);
      // Level 3: nothing past errors, in the same process at the same time.
      expect(linesOf(sets[1]).filter((r) => r.level > 3)).toEqual([]);
      expect(dm.getLogLevel()).toBe(before.level);
      expect(dm.getTaskDefaults()).toEqual(before.defaults);
    } finally {
      diagnosticsChannel.unsubscribe(CHANNELS.libdm, onLibdm);
      for (const spy of [...spies, stepsSpy]) spy.mockRestore();
      await Promise.allSettled(sets.map((ds) => ds.shutdown()));
      await Promise.all(roots.map((root) => rm(join(root, '..'), { recursive: true, force: true })));
    }
  });
});
