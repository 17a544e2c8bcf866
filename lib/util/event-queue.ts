/**
 * An async iterator fed by push(): values wait in order until next() takes them. end()
 * finishes the iteration after the values already queued; fail(err) makes the next read
 * reject with err. return() (a `break` out of `for await`) and abort of the signal stop it
 * at once and call onStop, once.
 */
import { abortError } from './abort';

const DONE: IteratorResult<never> = Object.freeze({ value: undefined, done: true });

export class EventQueue<T> implements AsyncIterableIterator<T> {
  private readonly values: T[] = [];
  private readonly readers: { resolve: (r: IteratorResult<T>) => void; reject: (e: unknown) => void }[] = [];
  private finished = false;
  private failure: { error: unknown } | null = null;
  private stopped = false;

  constructor(
    private readonly onStop: () => void,
    private readonly signal?: AbortSignal,
    private readonly operation = 'events',
  ) {
    if (signal?.aborted) {
      this.fail(abortError(operation, undefined, signal));
    } else {
      signal?.addEventListener('abort', this.onAbort, { once: true });
    }
  }

  private readonly onAbort = (): void => {
    this.values.length = 0;
    this.fail(abortError(this.operation, undefined, this.signal));
  };

  /** Whether the iteration is over (ended, failed or returned). */
  get closed(): boolean {
    return this.finished || this.failure !== null;
  }

  push(value: T): void {
    if (this.closed) return;
    const reader = this.readers.shift();
    if (reader) reader.resolve({ value, done: false });
    else this.values.push(value);
  }

  /** No more values: readers get the ones queued, then done. */
  end(): void {
    if (this.closed) return;
    this.finished = true;
    this.stop();
    for (const r of this.readers.splice(0)) r.resolve(DONE);
  }

  /** The iteration fails: readers get the values queued, then the error (once), then done. */
  fail(error: unknown): void {
    if (this.closed) return;
    const readers = this.readers.splice(0);
    const first = readers.shift();
    // The state is settled before onStop runs, which may come back here.
    if (first) this.finished = true;
    else this.failure = { error };
    this.stop();
    first?.reject(error);
    for (const r of readers) r.resolve(DONE);
  }

  next(): Promise<IteratorResult<T>> {
    if (this.values.length > 0) return Promise.resolve({ value: this.values.shift() as T, done: false });
    if (this.failure !== null) {
      const { error } = this.failure;
      this.failure = null;
      this.finished = true;
      return Promise.reject(error);
    }
    if (this.finished) return Promise.resolve(DONE);
    return new Promise((resolve, reject) => this.readers.push({ resolve, reject }));
  }

  return(): Promise<IteratorResult<T>> {
    this.values.length = 0;
    if (this.failure !== null) {
      this.failure = null;
      this.finished = true;
    }
    this.end();
    return Promise.resolve(DONE);
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<T> {
    return this;
  }

  private stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.signal?.removeEventListener('abort', this.onAbort);
    this.onStop();
  }
}
