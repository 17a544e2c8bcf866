/**
 * The leak check: after each test, nothing the test made may remain: no
 * device-mapper device with the test prefix, no mount under the test scratch root, no
 * loop device over a file there, and the same SysV semaphore count (udev cookies).
 */
import { readFileSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { dm, sys } from '../../lib';
import { TEST_PREFIX, SCRATCH_ROOT } from './names';
import { settled } from './wait';

export interface Snapshot {
  semaphores: number;
  /** The semaphore sets by id, each described (key, last semop time), to name a leak. */
  semaphoreSets?: Map<string, string>;
  /** Every device-mapper device before the test: anything new after it is a leak. */
  devices: Set<string>;
}

export async function takeSnapshot(): Promise<Snapshot> {
  const semaphoreSets = semaphoresById();
  return { semaphores: semaphoreSets.size, semaphoreSets, devices: new Set((await dm.listDevices()).map((d) => d.name)) };
}

/** /proc/sysvipc/sem by semid: "key 0x0d4d..., otime T" (libdevmapper's cookies have keys 0x0d4dXXXX). */
export function semaphoresById(): Map<string, string> {
  const out = new Map<string, string>();
  try {
    for (const line of readFileSync('/proc/sysvipc/sem', 'utf8').trim().split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 9) continue;
      out.set(f[1] as string, `key 0x${Number(f[0]).toString(16).padStart(8, '0')}, otime ${f[8]}`);
    }
  } catch {
    // no SysV IPC: nothing to count
  }
  return out;
}

export function semaphoreCount(): number {
  try {
    const lines = readFileSync('/proc/sysvipc/sem', 'utf8').trim().split('\n');
    return Math.max(0, lines.length - 1);
  } catch {
    return 0;
  }
}

export function mountsUnder(root: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((mp): mp is string => mp !== undefined && (mp === root || mp.startsWith(root + '/')));
}

/** Devices with the test prefix, or (given a snapshot) any device that is new since it. */
export async function testDevices(before?: Snapshot): Promise<string[]> {
  return (await dm.listDevices())
    .map((d) => d.name)
    .filter((n) => n.startsWith(TEST_PREFIX) || (before !== undefined && !before.devices.has(n)));
}

export async function loopsOverScratch(): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir('/sys/block').catch(() => [] as string[])) {
    if (!entry.startsWith('loop')) continue;
    let backing = '';
    try {
      backing = readFileSync(`/sys/block/${entry}/loop/backing_file`, 'utf8').trim();
    } catch {
      continue; // unbound
    }
    if (backing.startsWith(SCRATCH_ROOT + '/')) found.push(`/dev/${entry} -> ${backing}`);
  }
  return found;
}

/** Removes whatever a failed test left behind, thin devices before pools. */
export async function forceCleanup(before?: Snapshot): Promise<void> {
  for (const mp of mountsUnder(SCRATCH_ROOT).reverse()) await sys.unmount(mp, { detach: true }).catch(() => undefined);
  const names = await testDevices(before);
  const pools = names.filter((n) => n.endsWith('-pool'));
  for (const n of [...names.filter((n) => !n.endsWith('-pool')), ...pools])
    await dm.removeDevice(n, { retryBudgetMs: 2000 }).catch(() => undefined);
  for (const l of await loopsOverScratch()) await sys.detachLoopDevice(l.split(' ')[0]).catch(() => undefined);
}

export async function findLeaks(before: Snapshot): Promise<string[]> {
  const leaks: string[] = [];
  const devices = await testDevices(before);
  if (devices.length) leaks.push(`device-mapper devices: ${devices.join(', ')}`);
  const mounts = mountsUnder(SCRATCH_ROOT);
  if (mounts.length) leaks.push(`mounts: ${mounts.join(', ')}`);
  // An autoclear loop device goes on its last close, which may be udev's, a moment later.
  const loops = await settled(loopsOverScratch);
  if (loops.length) leaks.push(`loop devices: ${loops.join(', ')}`);
  const sets = semaphoresById();
  if (sets.size !== before.semaphores) {
    const was = before.semaphoreSets ?? new Map<string, string>();
    const added = [...sets].filter(([id]) => !was.has(id)).map(([id, d]) => `+${id} (${d})`);
    const gone = [...was].filter(([id]) => !sets.has(id)).map(([id, d]) => `-${id} (${d})`);
    leaks.push(`SysV semaphores: ${before.semaphores} before, ${sets.size} after [${[...added, ...gone].join('; ')}; now ${Math.floor(Date.now() / 1000)}]`);
  }
  return leaks;
}
