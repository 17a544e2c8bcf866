/**
 * DeviceSet concurrency: `parallel` DeviceSet lifecycles (lifecycle.ts's steps,
 * each on its own hash and mount point) started at once with Promise.all, against the same
 * number one after another, on one DeviceSet (its own root in the guest's /tmp, an image
 * device to snapshot). Wall time, throughput, one lifecycle's time, and the event loop's
 * delay while each runs (a fresh monitor each time, see concurrency.ts). The order of the two
 * alternates from repetition to repetition. With udev, each run's wall time and lifecycles
 * carry the udev work it left behind (udev-backlog.ts; after the monitored run), and udev
 * settles between runs.
 */
import { mkdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeviceSet } from '../dist/deviceset';
import { devicePrefixFromStat } from '../dist/internal';
import { combine, monitored } from './concurrency';
import { deviceSetOptions, deviceSetSteps, timeSteps, unmountUnder } from './lifecycle';
import { removeWithPrefix } from './pool';
import { summarize } from './stats';
import { emptyBacklog, settleReaper, UdevBacklog } from './udev-backlog';
import type { DelayStats, DsConcurrencyResult } from './types';

export interface DsConcurrencyPlan {
  udevSync: boolean;
  parallel: number;
  repetitions: number;
  progress?: (line: string) => void;
}

export async function measureDeviceSetConcurrency(plan: DsConcurrencyPlan): Promise<DsConcurrencyResult> {
  const log = plan.progress ?? (() => undefined);
  const options = deviceSetOptions(plan.udevSync);
  const dir = join(tmpdir(), `devmapper-bench-${process.pid}-dsconcurrency`);
  const root = join(dir, 'root');
  const mnt = join(dir, 'mnt');
  await mkdir(root, { recursive: true, mode: 0o700 });
  await mkdir(mnt, { recursive: true, mode: 0o700 });
  const prefix = devicePrefixFromStat(await stat(root, { bigint: true }));
  let ds: DeviceSet | null = null;
  try {
    log(`a DeviceSet with an image device (${options.join(' ')})`);
    ds = await DeviceSet.open(root, { options });
    await ds.addDevice('image', '');
    const theDs = ds;
    const lifecycle = async (hash: string) => (await timeSteps(deviceSetSteps(theDs, hash, join(mnt, hash)))).ns;
    await lifecycle('warm-up');
    const udev = new UdevBacklog(plan.udevSync);
    await udev.quiesce(settleReaper);
    const udevTaken = emptyBacklog();
    const backlogMs = { serial: [] as number[], concurrent: [] as number[] };

    const eld = { serial: [] as DelayStats[], concurrent: [] as DelayStats[] };
    const serialMs: number[] = [];
    const concurrentMs: number[] = [];
    const serialNs: number[] = [];
    const concurrentNs: number[] = [];
    const hashes = (r: number, kind: string) => Array.from({ length: plan.parallel }, (_, i) => `r${r}-${kind}-${i}`);
    const runs = {
      serial: (r: number) =>
        monitored(eld.serial, async () => {
          const t0 = process.hrtime.bigint();
          for (const h of hashes(r, 'serial')) serialNs.push(await lifecycle(h));
          serialMs.push(Number(process.hrtime.bigint() - t0) / 1e6);
        }),
      concurrent: (r: number) =>
        monitored(eld.concurrent, async () => {
          const t0 = process.hrtime.bigint();
          concurrentNs.push(...(await Promise.all(hashes(r, 'concurrent').map(lifecycle))));
          concurrentMs.push(Number(process.hrtime.bigint() - t0) / 1e6);
        }),
    };
    for (let r = 0; r < plan.repetitions; r++) {
      const order = r % 2 === 0 ? (['serial', 'concurrent'] as const) : (['concurrent', 'serial'] as const);
      for (const kind of order) {
        await runs[kind](r);
        // The settle after the run, in its wall time and shared out over its lifecycles.
        const [wall, items] = kind === 'serial' ? [serialMs, serialNs] : [concurrentMs, concurrentNs];
        const ms = (await udev.afterBatch(items, plan.parallel, settleReaper, udevTaken)) / 1e6;
        wall[wall.length - 1] = (wall[wall.length - 1] as number) + ms;
        backlogMs[kind].push(ms);
      }
      log(
        `repetition ${r + 1}/${plan.repetitions}: ${plan.parallel} serially ${(serialMs[r]! / 1000).toFixed(1)} s, ` +
          `at once ${(concurrentMs[r]! / 1000).toFixed(1)} s`,
      );
    }
    return {
      options,
      parallel: plan.parallel,
      repetitions: plan.repetitions,
      serialMs,
      concurrentMs,
      serialBacklogMs: backlogMs.serial,
      concurrentBacklogMs: backlogMs.concurrent,
      ...(udevTaken.udevadmMs.length ? { udevadmSettleMs: udevTaken.udevadmMs } : {}),
      eldSerial: combine(eld.serial),
      eldConcurrent: combine(eld.concurrent),
      eldRuns: eld,
      serialItem: summarize(serialNs),
      concurrentItem: summarize(concurrentNs),
    };
  } finally {
    await ds?.shutdown().catch((err: unknown) => log(`DeviceSet shutdown: ${String(err)}`));
    await unmountUnder(dir);
    await removeWithPrefix(`${prefix}-`).catch((err: unknown) => log(`removing devices: ${String(err)}`));
    await rm(dir, { recursive: true, force: true });
  }
}
