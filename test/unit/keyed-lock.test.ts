import { KeyedLock } from '../../lib/util';

describe('KeyedLock', () => {
  test('one key runs one at a time, in order; other keys run alongside', async () => {
    const lock = new KeyedLock();
    const events: string[] = [];
    const task = (key: string, name: string, ms: number) =>
      lock.run(key, async () => {
        events.push(`start ${name}`);
        await new Promise((r) => setTimeout(r, ms));
        events.push(`end ${name}`);
      });
    await Promise.all([task('a', 'a1', 30), task('a', 'a2', 1), task('b', 'b1', 5)]);
    expect(events.indexOf('end a1')).toBeLessThan(events.indexOf('start a2'));
    expect(events.indexOf('start b1')).toBeLessThan(events.indexOf('end a1'));
    expect(lock.size).toBe(0);
  });

  test('a failure releases the key and reaches the caller', async () => {
    const lock = new KeyedLock();
    await expect(lock.run('k', async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    await expect(lock.run('k', async () => 7)).resolves.toBe(7);
    expect(lock.size).toBe(0);
  });
});
