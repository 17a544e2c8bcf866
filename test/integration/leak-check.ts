/** Runs the leak check around every integration test (see test/helpers/leaks.ts). */
import { kernelEnv } from '../helpers/kernel-env';
import { findLeaks, forceCleanup, semaphoreCount, type Snapshot } from '../helpers/leaks';

const usable = kernelEnv().usable;
let before: Snapshot = { semaphores: 0 };

beforeEach(() => {
  if (usable) before = { semaphores: semaphoreCount() };
});

afterEach(async () => {
  if (!usable) return;
  const leaks = await findLeaks(before);
  if (leaks.length) {
    await forceCleanup();
    throw new Error(`the test leaked: ${leaks.join('; ')}`);
  }
});
