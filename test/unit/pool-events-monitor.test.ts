/** PoolEventMonitor against a fake dm layer: a fake watcher the test fires, fake status reads. */
import { DevmapperError } from '../../lib/errors';
import type { ThinPoolStatus } from '../../lib/dm';

interface FakeWatch {
  onEvent: (nr: number) => void;
  onError?: (err: DevmapperError) => void;
  closed: boolean;
}

const fake = {
  watches: [] as FakeWatch[],
  status: '1 20/4096 100/1024 - rw discard_passdown queue_if_no_space - 1024',
  reads: 0,
  /** Resolves the status reads when set; otherwise they answer at once. */
  gate: null as Promise<void> | null,
};

jest.mock('../../lib/dm', () => {
  const actual = jest.requireActual('../../lib/dm');
  return {
    ...actual,
    watchDeviceEvents: (name: string, opts: { onEvent: (nr: number) => void; onError?: (err: DevmapperError) => void }) => {
      const w: FakeWatch = { onEvent: opts.onEvent, onError: opts.onError, closed: false };
      fake.watches.push(w);
      return {
        name,
        eventNr: 0,
        wakeups: 0,
        deviceEvents: 0,
        active: true,
        close: () => {
          w.closed = true;
        },
      };
    },
    getPoolStatus: async (): Promise<ThinPoolStatus> => {
      fake.reads++;
      const line = fake.status;
      if (fake.gate) await fake.gate;
      return actual.parseThinPoolStatus(line);
    },
    getTable: async () => [{ start: 0, length: 131072, type: 'thin-pool', params: '7:1 7:0 128 256 1 skip_block_zeroing' }],
  };
});

// Imported after the mock is set up.
import { PoolEventMonitor } from '../../lib/deviceset/pool-events';
import type { PoolEvent } from '../../lib/deviceset/pool-transitions';

function monitor() {
  const events: PoolEvent[] = [];
  const readFailures: unknown[] = [];
  const watchFailures: unknown[] = [];
  const m = new PoolEventMonitor('p', {
    event: (e) => events.push(e),
    readFailed: (e) => readFailures.push(e),
    watchFailed: (e) => watchFailures.push(e),
  });
  return { m, events, readFailures, watchFailures };
}

const settle = () => new Promise((r) => setImmediate(r));

beforeEach(() => {
  fake.watches = [];
  fake.status = '1 20/4096 100/1024 - rw discard_passdown queue_if_no_space - 1024';
  fake.reads = 0;
  fake.gate = null;
});

describe('PoolEventMonitor', () => {
  test('a healthy pool: the first read reports nothing; a dm event that shows a crossing reports it', async () => {
    const { m, events } = monitor();
    m.start();
    await m.refresh();
    expect(events).toEqual([]);
    fake.status = '1 20/4096 800/1024 - rw discard_passdown queue_if_no_space - 1024';
    fake.watches[0].onEvent(1);
    await settle();
    await m.refresh();
    expect(events.map((e) => e.type)).toEqual(['low-water']);
    expect(events[0].status).toMatchObject({ state: 'ok', dataUsedBlocks: 800 });
    expect(events[0].at).toBeInstanceOf(Date);
    m.stop();
    expect(fake.watches[0].closed).toBe(true);
  });

  test('a pool already out of space is reported at start', async () => {
    fake.status = '1 20/4096 1024/1024 - out_of_data_space discard_passdown queue_if_no_space - 1024';
    const { m, events } = monitor();
    m.start();
    await m.refresh();
    expect(events.map((e) => e.type)).toEqual(['low-water', 'out-of-data-space']);
    m.stop();
  });

  test('a burst of dm events during a read makes one more read, not one each', async () => {
    const { m } = monitor();
    let open!: () => void;
    fake.gate = new Promise((r) => (open = r));
    m.start(); // read 1 starts and waits at the gate
    for (let i = 1; i <= 10; i++) fake.watches[0].onEvent(i);
    open();
    fake.gate = null;
    await m.refresh();
    await settle();
    expect(fake.reads).toBeLessThanOrEqual(3);
    m.stop();
  });

  test('nothing is reported after stop, even from a read under way; a restart starts from healthy again', async () => {
    fake.status = '1 20/4096 1024/1024 - out_of_data_space discard_passdown queue_if_no_space - 1024';
    const { m, events } = monitor();
    let open!: () => void;
    fake.gate = new Promise((r) => (open = r));
    m.start();
    m.stop();
    open();
    fake.gate = null;
    await settle();
    expect(events).toEqual([]);
    expect(await m.refresh()).toBeUndefined();
    expect(m.watching).toBe(false);
    m.start();
    await m.refresh();
    expect(events.map((e) => e.type)).toEqual(['low-water', 'out-of-data-space']);
    m.stop();
  });

  test('a failed watch stops the monitor and says so once', async () => {
    const { m, watchFailures } = monitor();
    m.start();
    const err = new DevmapperError('event watch on p: no such device', { code: 'ENXIO' });
    fake.watches[0].onError?.(err);
    expect(m.watching).toBe(false);
    expect(fake.watches[0].closed).toBe(true);
    expect(watchFailures).toEqual([err]);
    fake.watches[0].onError?.(err);
    expect(watchFailures).toHaveLength(1);
  });

  test('a failed status read is reported and the watch goes on', async () => {
    fake.status = 'garbage';
    const { m, readFailures, events } = monitor();
    m.start();
    await settle();
    expect(readFailures).toHaveLength(1);
    expect(readFailures[0]).toMatchObject({ code: 'ERR_PARSE' });
    expect(m.watching).toBe(true);
    fake.status = '1 20/4096 10/1024 - ro discard_passdown queue_if_no_space - 1024';
    fake.watches[0].onEvent(2);
    await settle();
    await m.refresh();
    expect(events.map((e) => e.type)).toEqual(['read-only']);
    m.stop();
  });
});
