/**
 * The soak: many container lifecycles (create from an image layer, get, write, put, remove)
 * in one process, through the Driver. Resources must stay flat: RSS, heap after a collection,
 * open descriptors and SysV semaphores, from the first sample after warm-up to the last; and,
 * at the soak tier's size, the p99 of each step in the last window no worse than in the
 * first. DEVMAPPER_SOAK_LIFECYCLES sets the count: the quick tier's 40, `npm run test:soak`'s
 * 10,000.
 */
import { execFile } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describeKernel } from '../helpers/kernel-env';
import { newRoot, testOptions } from '../helpers/deviceset';
import { semaphoreCount } from '../helpers/leaks';

const execFileP = promisify(execFile);
const CHILD = join(__dirname, '..', 'fixtures', 'soak-child.js');
const LIFECYCLES = Number(process.env.DEVMAPPER_SOAK_LIFECYCLES ?? '40');
const SAMPLES = 10;
/** Windows of a thousand lifecycles at the soak's size, fewer (5 windows) below it. */
const WINDOW = Math.max(1, Math.min(1000, Math.floor(LIFECYCLES / 5)));
const STEPS = ['create', 'get', 'write', 'put', 'remove'] as const;
/** Below this count the windows are too small for their p99 to mean much: reported, not asserted. */
const P99_ASSERTED_FROM = 2000;

interface Sample {
  done: number;
  rss: number;
  heapUsed: number;
  fds: number;
  semaphores: number;
}
type Window = { from: number; to: number } & Record<(typeof STEPS)[number], { p50: number; p99: number }>;

const MiB = 1 << 20;
const ms = (v: number) => v.toFixed(1);

describeKernel('soak: container lifecycles in one process', () => {
  test(`${LIFECYCLES} lifecycles: RSS, heap, descriptors and semaphores flat; p99 per step stable`, async () => {
    const home = await newRoot();
    const semBefore = semaphoreCount();
    try {
      const spec = { home, options: testOptions(), lifecycles: LIFECYCLES, sampleEvery: Math.max(1, Math.floor(LIFECYCLES / SAMPLES)), window: WINDOW };
      const { stdout } = await execFileP(process.execPath, ['--expose-gc', CHILD, JSON.stringify(spec)], {
        timeout: LIFECYCLES * 3000 + 120_000,
        maxBuffer: 64 * MiB,
      });
      const report = JSON.parse(stdout.trim().split('\n').pop() ?? '{}') as { ok: boolean; message?: string; samples: Sample[]; windows: Window[] };
      expect(report.message).toBeUndefined();
      expect(report.ok).toBe(true);
      const { samples, windows } = report;
      for (const s of samples)
        process.stdout.write(`soak after ${s.done}: rss ${(s.rss / MiB).toFixed(1)} MiB, heap ${(s.heapUsed / MiB).toFixed(2)} MiB, fds ${s.fds}, semaphores ${s.semaphores}\n`);
      for (const w of windows)
        process.stdout.write(`soak lifecycles ${w.from}-${w.to}: ${STEPS.map((st) => `${st} p50 ${ms(w[st].p50)} p99 ${ms(w[st].p99)} ms`).join(', ')}\n`);

      // Warm-up: the first lifecycles load code and fill caches; compare from the first sample after them.
      const warm = samples[1];
      const last = samples[samples.length - 1];
      expect(samples.length).toBeGreaterThanOrEqual(3);
      expect(last.heapUsed - warm.heapUsed).toBeLessThan(2 * MiB);
      expect(last.rss - warm.rss).toBeLessThan(16 * MiB);
      expect(last.fds).toBe(warm.fds);
      for (const s of samples) expect(s.semaphores).toBe(semBefore);
      if (LIFECYCLES >= P99_ASSERTED_FROM) {
        const first = windows[0];
        const end = windows[windows.length - 1];
        // Slower by more than half, and by more than 10 ms, is a trend, not noise.
        for (const st of STEPS) expect(end[st].p99).toBeLessThan(Math.max(first[st].p99 * 1.5, first[st].p99 + 10));
      }
    } finally {
      await rm(join(home, '..'), { recursive: true, force: true });
    }
    expect(semaphoreCount()).toBe(semBefore);
  }, LIFECYCLES * 3000 + 180_000);
});
