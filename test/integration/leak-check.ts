/** Runs the leak check around every integration test (see test/helpers/leaks.ts). */
import { kernelEnv } from '../helpers/kernel-env';
import { findLeaks, forceCleanup, takeSnapshot, type Snapshot } from '../helpers/leaks';

const usable = kernelEnv().usable;
let before: Snapshot = { semaphores: 0, devices: new Set() };

beforeEach(async () => {
  if (usable) before = await takeSnapshot();
});

afterEach(async () => {
  if (!usable) return;
  const leaks = await findLeaks(before);
  if (leaks.length) {
    await forceCleanup(before);
    throw new Error(`the test leaked: ${leaks.join('; ')}`);
  }
});
