/**
 * Polls until check() gives an empty list or the time is up, and returns the last answer.
 * For kernel state that settles asynchronously (an autoclear loop device detaches when udev,
 * probing it, closes it last).
 */
export async function settled<T>(check: () => Promise<T[]>, timeoutMs = 5_000): Promise<T[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const left = await check();
    if (left.length === 0 || Date.now() >= deadline) return left;
    await new Promise((r) => setTimeout(r, 25));
  }
}
