/** Consumes a DeviceSet's pool events in the background, for tests that wait for one. */
import type { DeviceSet, PoolEvent, PoolEventType } from '../../lib';

export interface PoolEventCollector {
  seen: PoolEvent[];
  types(): PoolEventType[];
  /** The first event of that type, waiting at most `ms` for it. */
  waitFor(type: PoolEventType, ms: number): Promise<PoolEvent>;
  stop(): Promise<void>;
}

export function collectPoolEvents(ds: DeviceSet): PoolEventCollector {
  const seen: PoolEvent[] = [];
  const waiter: { wake: (() => void) | null } = { wake: null };
  const it = ds.events();
  const done = (async () => {
    for await (const e of it) {
      seen.push(e);
      waiter.wake?.();
    }
  })();
  return {
    seen,
    types: () => seen.map((e) => e.type),
    async waitFor(type, ms) {
      const deadline = Date.now() + ms;
      for (;;) {
        const e = seen.find((x) => x.type === type);
        if (e) return e;
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`no ${type} event within ${ms} ms (saw: ${seen.map((x) => x.type).join(', ') || 'none'})`);
        // The timer only bounds the wait; the event wakes it as soon as it comes.
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, left);
          waiter.wake = () => {
            clearTimeout(t);
            resolve();
          };
        });
        waiter.wake = null;
      }
    },
    async stop() {
      await it.return?.();
      await done;
    },
  };
}
