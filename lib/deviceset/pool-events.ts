/**
 * Pool events from device-mapper events: a native thread waits for the kernel's events on
 * the pool (dm.watchDeviceEvents); on each, the pool's status and table are read and the
 * changes of condition reported (./pool-transitions.ts). No timer is involved.
 */
import * as dm from '../dm';
import { DevmapperError, ErrorCodes } from '../errors';
import { HEALTHY_POOL, poolCondition, poolTransitions, type PoolCondition, type PoolEvent } from './pool-transitions';

/** The pool watcher's counters, for diagnostics and tests ({@link DeviceSet.poolEventStats}). */
export interface PoolEventStats {
  /** A watcher thread is running. */
  watching: boolean;
  /** Times the current watcher woke: any device-mapper event in the system wakes it. */
  wakeups: number;
  /** Wake-ups at which the pool's own event counter had moved. */
  deviceEvents: number;
  /** The pool's event counter as last read, null when not watching. */
  eventNr: number | null;
}

export interface PoolEventSink {
  event(e: PoolEvent): void;
  /** Reading the status after an event failed; the watch goes on. */
  readFailed(err: unknown): void;
  /** The watch itself failed (the pool went away behind our back); it has stopped. */
  watchFailed(err: DevmapperError): void;
}

export class PoolEventMonitor {
  private watch: dm.DeviceEventWatch | null = null;
  private condition: PoolCondition = HEALTHY_POOL;
  /** Moves on every start and stop: a read begun under an older watch reports nothing. */
  private generation = 0;
  private reading: { generation: number; done: Promise<void> } | null = null;
  private readAgain = false;

  constructor(
    private readonly poolName: string,
    private readonly sink: PoolEventSink,
  ) {}

  get watching(): boolean {
    return this.watch !== null;
  }

  /**
   * Starts the watcher thread (synchronously: a failure throws here) and reads the pool's
   * first status, compared with a healthy pool, so a pool already out of space or below its
   * low-water mark is reported at once.
   */
  start(): void {
    if (this.watch) return;
    const generation = ++this.generation;
    this.condition = HEALTHY_POOL;
    this.watch = dm.watchDeviceEvents(this.poolName, {
      onEvent: () => {
        if (generation === this.generation) void this.refresh();
      },
      onError: (err) => {
        if (generation !== this.generation) return;
        this.stop();
        this.sink.watchFailed(err);
      },
    });
    void this.refresh();
  }

  /** Stops and joins the watcher thread. Idempotent. */
  stop(): void {
    if (!this.watch) return;
    this.generation++;
    this.watch.close();
    this.watch = null;
  }

  stats(): PoolEventStats {
    const w = this.watch;
    return { watching: w !== null, wakeups: w?.wakeups ?? 0, deviceEvents: w?.deviceEvents ?? 0, eventNr: w?.eventNr ?? null };
  }

  /**
   * Reads the status and reports what changed; resolves once reported. Calls while a read is
   * under way make one more read after it, not one each.
   */
  refresh(): Promise<void> {
    if (!this.watch) return Promise.resolve();
    if (this.reading && this.reading.generation === this.generation) {
      this.readAgain = true;
      return this.reading.done;
    }
    const generation = this.generation;
    const reading = {
      generation,
      done: this.readLoop(generation).finally(() => {
        if (this.reading === reading) this.reading = null;
      }),
    };
    this.reading = reading;
    return reading.done;
  }

  private async readLoop(generation: number): Promise<void> {
    do {
      this.readAgain = false;
      let events: PoolEvent[] = [];
      try {
        const [status, table] = await Promise.all([dm.getPoolStatus(this.poolName, { noFlush: true }), dm.getTable(this.poolName)]);
        if (generation !== this.generation) return;
        if (table.length !== 1 || table[0].type !== 'thin-pool')
          throw new DevmapperError(`${this.poolName} is no longer a thin pool`, { code: ErrorCodes.INVALID_ARGUMENT, device: this.poolName });
        const lowWater = dm.parseThinPoolTable(table[0].params).lowWaterMarkBlocks;
        const at = new Date();
        const next = poolCondition(status, lowWater, this.condition);
        const types = poolTransitions(this.condition, next);
        this.condition = next;
        events = types.map((type) => ({ type, status, at }));
      } catch (err) {
        if (generation !== this.generation) return;
        this.sink.readFailed(err);
      }
      for (const e of events) if (generation === this.generation) this.sink.event(e);
    } while (this.readAgain && generation === this.generation);
  }
}
