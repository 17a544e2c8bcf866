/**
 * Device-mapper tasks inside one native job of several steps (lib/dm/steps.ts), in the kernel:
 * a whole create / activate / mount / unmount / remove / delete sequence in two jobs, a
 * failing message with the origin's resume marked `always`, tolerated errnos, and the
 * diagnostics records every task step still publishes.
 */
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { existsSync } from 'node:fs';
import { mkdir, open, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { dm, sys } from '../../lib';
import { activateSpec, createSnapSpec, createThinSpec, deleteThinSpec, removeSpec, resumeSpec, suspendSpec } from '../../lib/dm/specs';
import { mountStep, rmdirStep, runSteps, runStepsOrThrow, taskStep, umountStep } from '../../lib/dm';
import { describeKernel } from '../helpers/kernel-env';
import { mkfsExt4, withPool } from '../helpers/pool';

describeKernel('native step jobs', () => {
  jest.setTimeout(120_000);

  test('create + activate in one job, mount in the next, then umount + rmdir + remove + delete in one', async () => {
    await withPool(async (p) => {
      const name = p.name('steps');
      // Private to udev's disk rules, as the DeviceSet activates layers: with every rule, udev
      // watches the device and probes it after the umount, and an immediate remove is EBUSY
      // (the DeviceSet retries that; this job would not).
      const size = 64 << 20;
      const made = await runStepsOrThrow([taskStep(createThinSpec(p.poolName, 7)), taskStep(activateSpec(p.poolName, name, 7, size, { udevPrivate: true }))]);
      expect(made[1].task?.info).toMatchObject({ exists: true, suspended: false, liveTable: true });
      expect(existsSync(`/dev/mapper/${name}`)).toBe(true);
      await mkfsExt4(`/dev/mapper/${name}`);
      const mp = join(p.dir, 'mnt');
      await mkdir(mp);
      await runStepsOrThrow([mountStep(`/dev/mapper/${name}`, mp, 'ext4', '')]);
      expect(sys.isMountPoint(mp)).toBe(true);
      await writeFile(join(mp, 'f'), 'data');

      const records: string[] = [];
      const onRecord = (m: unknown) => records.push((m as { operation: string }).operation);
      subscribe('devmapper:dm', onRecord);
      try {
        const out = await runSteps([
          umountStep(mp),
          rmdirStep(mp),
          taskStep(removeSpec(name)),
          taskStep(deleteThinSpec(p.poolName, 7)),
          // Tolerated: already gone.
          taskStep(removeSpec(name), { ok: ['ENXIO'] }),
          taskStep(deleteThinSpec(p.poolName, 7), { ok: ['ENODATA'] }),
        ]);
        expect(out.error).toBeNull();
        expect(out.results.map((r) => r.errno)).toEqual([0, 0, 0, 0, 6 /* ENXIO */, 61 /* ENODATA */]);
      } finally {
        unsubscribe('devmapper:dm', onRecord);
      }
      expect(records).toEqual(['remove', 'delete 7', 'remove', 'delete 7']);
      expect(existsSync(mp)).toBe(false);
      expect(await dm.getInfo(name)).toBeNull();
      expect(existsSync(`/dev/mapper/${name}`)).toBe(false);
      await expect(dm.deleteDevice(p.poolName, 7)).rejects.toMatchObject({ code: 'ENODATA' });
    });
  });

  test('a failing create_snap of a suspended origin: the `always` resume runs, the steps after it do not', async () => {
    await withPool(async (p) => {
      const origin = p.name('origin');
      await dm.createDevice(p.poolName, 1);
      await dm.createDevice(p.poolName, 2);
      await dm.activateDevice(p.poolName, origin, 1, 64 << 20);
      const out = await runSteps([
        taskStep(suspendSpec(origin), { phase: 'suspend' }),
        // Id 2 is taken: EEXIST.
        taskStep(createSnapSpec(p.poolName, 2, 1), { phase: 'create' }),
        taskStep(resumeSpec(origin), { always: true, phase: 'resume' }),
        taskStep(createThinSpec(p.poolName, 3), { phase: 'register' }),
      ]);
      expect(out.failedPhase).toBe('create');
      expect(out.error).toMatchObject({ code: 'EEXIST', operation: 'create_snap 2 1' });
      expect(out.results.map((r) => r.ran)).toEqual([true, true, true, false]);
      expect((await dm.getInfo(origin))?.suspended).toBe(false);
      // The skipped create_thin 3 never reached the pool.
      await expect(dm.deleteDevice(p.poolName, 3)).rejects.toMatchObject({ code: 'ENODATA' });
      await dm.removeDevice(origin);
    });
  });
  test('a thin discard asks the thin target first: skipped while nothing is mapped, done (blocks unmapped) once something is', async () => {
    await withPool(async (p) => {
      const name = p.name('discard');
      const size = 64 << 20;
      await runStepsOrThrow([taskStep(createThinSpec(p.poolName, 9)), taskStep(activateSpec(p.poolName, name, 9, size, { udevPrivate: true }))]);
      const records: string[] = [];
      const onRecord = (m: unknown) => records.push((m as { operation: string; device: string }).operation);
      subscribe('devmapper:dm', onRecord);
      try {
        const empty = await runStepsOrThrow(dm.discardSteps(name, size));
        // The status the discard asked is published as the dm operation it is.
        expect(records).toEqual(['status']);
        expect(empty[0]).toMatchObject({ phase: 'discard', ran: true, skipped: true, errno: 0 });
        expect(empty[0].task?.targets?.[0]?.params).toMatch(/^0 /);

        // 1 MiB written: 16 blocks of 64 KiB mapped, then unmapped by the discard.
        const fh = await open(`/dev/mapper/${name}`, 'r+');
        try {
          await fh.write(Buffer.alloc(1 << 20, 7), 0, 1 << 20, 0);
          await fh.sync();
        } finally {
          await fh.close();
        }
        expect(await dm.getThinStatus(name)).toMatchObject({ state: 'ok', mappedSectors: 2048 });
        records.length = 0;
        const written = await runStepsOrThrow(dm.discardSteps(name, size));
        expect(records).toEqual(['status']);
        expect(written[0].skipped).toBeUndefined();
        expect(await dm.getThinStatus(name)).toMatchObject({ state: 'ok', mappedSectors: 0 });
      } finally {
        unsubscribe('devmapper:dm', onRecord);
      }
      // A discard of a device that is not there fails in its query, with the query's error.
      await dm.removeDevice(name);
      const gone = await runSteps(dm.discardSteps(name, size));
      expect(gone).toMatchObject({ failedPhase: 'discard', error: { code: 'ENXIO' } });
      await dm.deleteDevice(p.poolName, 9);
    });
  });
});
