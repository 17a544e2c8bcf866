import { EventQueue } from '../../lib/util/event-queue';

describe('EventQueue', () => {
  test('values come out in order, queued or awaited; end() finishes after the queued ones', async () => {
    const stop = jest.fn();
    const q = new EventQueue<number>(stop);
    q.push(1);
    q.push(2);
    expect(await q.next()).toEqual({ value: 1, done: false });
    expect(await q.next()).toEqual({ value: 2, done: false });
    const awaited = q.next();
    q.push(3);
    expect(await awaited).toEqual({ value: 3, done: false });
    const waiting = q.next();
    q.push(4);
    q.end();
    q.push(5); // after the end: dropped
    expect(await waiting).toEqual({ value: 4, done: false });
    expect(await q.next()).toEqual({ value: undefined, done: true });
    expect(stop).toHaveBeenCalledTimes(1);
  });

  test('for await ... break calls return(): onStop runs once and the queue is closed', async () => {
    const stop = jest.fn();
    const q = new EventQueue<string>(stop);
    q.push('a');
    q.push('b');
    const seen: string[] = [];
    for await (const v of q) {
      seen.push(v);
      break;
    }
    expect(seen).toEqual(['a']);
    expect(q.closed).toBe(true);
    expect(stop).toHaveBeenCalledTimes(1);
    expect(await q.next()).toEqual({ value: undefined, done: true });
    q.end();
    expect(stop).toHaveBeenCalledTimes(1);
  });

  test('fail(): a waiting reader gets the error, later reads are done', async () => {
    const stop = jest.fn();
    const q = new EventQueue<number>(stop);
    const r1 = q.next();
    const r2 = q.next();
    q.fail(new Error('gone'));
    await expect(r1).rejects.toThrow('gone');
    expect(await r2).toEqual({ value: undefined, done: true });
    expect(await q.next()).toEqual({ value: undefined, done: true });
    expect(stop).toHaveBeenCalledTimes(1);
  });

  test('fail() with values queued: they come first, then the error once, then done', async () => {
    const q = new EventQueue<number>(() => undefined);
    q.push(1);
    q.fail(new Error('gone'));
    expect(await q.next()).toEqual({ value: 1, done: false });
    await expect(q.next()).rejects.toThrow('gone');
    expect(await q.next()).toEqual({ value: undefined, done: true });
  });

  test('the signal aborts a pending read with ABORT_ERR; an aborted signal closes it at once', async () => {
    const ac = new AbortController();
    const stop = jest.fn();
    const q = new EventQueue<number>(stop, ac.signal, 'pool events');
    const pending = q.next();
    ac.abort();
    await expect(pending).rejects.toMatchObject({ code: 'ABORT_ERR', operation: 'pool events' });
    expect(stop).toHaveBeenCalledTimes(1);

    const stop2 = jest.fn();
    const q2 = new EventQueue<number>(stop2, ac.signal);
    expect(q2.closed).toBe(true);
    expect(stop2).toHaveBeenCalledTimes(1);
    await expect(q2.next()).rejects.toMatchObject({ code: 'ABORT_ERR' });
  });

  test('onStop may re-enter end() or fail() without effect', async () => {
    const ref: { q?: EventQueue<number> } = {};
    const stop = jest.fn(() => {
      ref.q?.end();
      ref.q?.fail(new Error('late'));
    });
    const q = new EventQueue<number>(stop);
    ref.q = q;
    const pending = q.next();
    q.fail(new Error('first'));
    await expect(pending).rejects.toThrow('first');
    expect(stop).toHaveBeenCalledTimes(1);
  });
});
