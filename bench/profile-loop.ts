/**
 * One kind of call in a loop, for bench/profile-syscalls.ts to count system calls with
 * strace: `node dist-bench/profile-loop.js MODE COUNT DEVICE POOL`. Everything the loop needs
 * is loaded and warmed before it starts, so that COUNT 0 is the baseline to subtract.
 */
import { stat } from 'node:fs/promises';
import { statSync } from 'node:fs';
import * as dm from '../dist/dm';
import { native } from '../dist/internal';

export const PROFILE_MODES = ['addon-sync-info', 'addon-async-info', 'dm-getInfo', 'dm-createDevice+deleteDevice', 'fs-stat-sync', 'fs-stat-async'] as const;
export type ProfileMode = (typeof PROFILE_MODES)[number];

/** Calls (kernel operations) one iteration of the mode makes. */
export const CALLS_PER_ITERATION: Record<ProfileMode, number> = {
  'addon-sync-info': 1,
  'addon-async-info': 1,
  'dm-getInfo': 1,
  'dm-createDevice+deleteDevice': 2,
  'fs-stat-sync': 1,
  'fs-stat-async': 1,
};

async function iteration(mode: ProfileMode, device: string, pool: string, id: number): Promise<void> {
  switch (mode) {
    case 'addon-sync-info':
      native().runTaskSync({ type: 'info', name: device });
      return;
    case 'addon-async-info':
      await native().runTask({ type: 'info', name: device });
      return;
    case 'dm-getInfo':
      await dm.getInfo(device);
      return;
    case 'dm-createDevice+deleteDevice':
      await dm.createDevice(pool, id);
      await dm.deleteDevice(pool, id);
      return;
    case 'fs-stat-sync':
      statSync('/proc/self');
      return;
    case 'fs-stat-async':
      await stat('/proc/self');
      return;
  }
}

async function main(): Promise<void> {
  const [mode, count, device, pool] = process.argv.slice(2) as [ProfileMode, string, string, string];
  if (!PROFILE_MODES.includes(mode)) throw new Error(`mode must be one of ${PROFILE_MODES.join(', ')}`);
  const id = 900_000;
  // Warm every path once.
  for (const m of PROFILE_MODES) await iteration(m, device, pool, id);
  const n = Number(count);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) await iteration(mode, device, pool, id);
  const ns = Number(process.hrtime.bigint() - t0);
  process.stdout.write(`${JSON.stringify({ mode, count: n, nsPerIteration: n ? ns / n : 0 })}\n`);
}

if (require.main === module) {
  main().catch((err: unknown) => {
    process.stderr.write(`profile-loop: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  });
}
