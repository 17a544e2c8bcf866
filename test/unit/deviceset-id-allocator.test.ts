import { DevmapperError, ErrorCodes } from '../../lib/errors';
import { DeviceIdAllocator } from '../../lib/deviceset/id-allocator';

const MAX_ID = 0xffffff;

/** An allocator with every id used except `free`. */
function nearlyFull(free: number[]): DeviceIdAllocator {
  const ids = new DeviceIdAllocator();
  const sorted = [...free].sort((a, b) => a - b);
  let k = 0;
  for (let id = 0; id <= MAX_ID; id++) {
    if (id === sorted[k]) k++;
    else ids.markUsed(id);
  }
  return ids;
}

describe('DeviceIdAllocator', () => {
  test("Docker's sequence: next_device_id starts at 0, the base device gets 1", () => {
    const ids = new DeviceIdAllocator();
    expect(ids.nextDeviceId).toBe(0);
    expect([ids.allocate(), ids.allocate(), ids.allocate(), ids.allocate()]).toEqual([1, 2, 3, 4]);
    // Docker v24, observed: after base, image, c1-init and c1, deviceset-metadata held next_device_id 4.
    expect(ids.nextDeviceId).toBe(4);
    expect(ids.usedCount).toBe(4);
  });

  test('skips used ids', () => {
    const ids = new DeviceIdAllocator();
    for (const id of [1, 2, 4, 5, 6]) ids.markUsed(id);
    expect(ids.allocate()).toBe(3);
    expect(ids.allocate()).toBe(7);
    expect(ids.isUsed(3)).toBe(true);
    expect(ids.isUsed(8)).toBe(false);
  });

  test('a released id is not reused until the counter wraps around to it', () => {
    const ids = new DeviceIdAllocator();
    const a = ids.allocate();
    ids.allocate();
    ids.release(a);
    expect(ids.isUsed(a)).toBe(false);
    expect(ids.allocate()).toBe(a + 2);
  });

  test('wraps around from 2^24-1 to 0, and 0 is a valid id', () => {
    const ids = new DeviceIdAllocator();
    ids.nextDeviceId = MAX_ID - 1;
    expect(ids.allocate()).toBe(MAX_ID);
    expect(ids.allocate()).toBe(0);
    expect(ids.allocate()).toBe(1);
    ids.nextDeviceId = MAX_ID;
    ids.markUsed(2);
    ids.markUsed(3);
    expect(ids.allocate()).toBe(4);
  });

  test('markUsed and release are idempotent and keep usedCount right', () => {
    const ids = new DeviceIdAllocator();
    ids.markUsed(7);
    ids.markUsed(7);
    expect(ids.usedCount).toBe(1);
    ids.release(7);
    ids.release(7);
    expect(ids.usedCount).toBe(0);
  });

  test.each([-1, MAX_ID + 1, 1.5, NaN])('refuses id %p', (bad) => {
    const ids = new DeviceIdAllocator();
    for (const call of [() => ids.markUsed(bad), () => ids.release(bad), () => ids.isUsed(bad), () => (ids.nextDeviceId = bad)]) {
      let err: unknown;
      try {
        call();
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(DevmapperError);
      expect((err as DevmapperError).code).toBe(ErrorCodes.INVALID_ARGUMENT);
    }
  });

  test('seeded nearly full: the last free ids, in wrap-around order, then a typed error', () => {
    const free = [0, 5, 31, 32, 9_000_000, MAX_ID];
    const ids = nearlyFull(free);
    expect(ids.usedCount).toBe(MAX_ID + 1 - free.length);
    ids.nextDeviceId = 100;
    const got = free.map(() => ids.allocate());
    expect(got).toEqual([9_000_000, MAX_ID, 0, 5, 31, 32]);
    expect(ids.usedCount).toBe(MAX_ID + 1);

    let err: unknown;
    try {
      ids.allocate();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(DevmapperError);
    expect((err as DevmapperError).code).toBe(ErrorCodes.NO_FREE_DEVICE_ID);
    expect(ids.nextDeviceId).toBe(32); // unchanged by the failure

    // Freeing one makes it available again, found by a scan over the full map.
    ids.release(12_345_678);
    expect(ids.allocate()).toBe(12_345_678);
  });

  test('a full scan from just after the only free id finds it (the search wraps all the way round)', () => {
    const ids = nearlyFull([77]);
    ids.nextDeviceId = 77;
    expect(ids.allocate()).toBe(77);
    for (const only of [MAX_ID, 0, 32, 8 * 1024 * 1024 + 3]) {
      ids.release(only);
      ids.nextDeviceId = only;
      expect(ids.allocate()).toBe(only);
    }
  });

  test('allocation state survives a restart: rebuilt from the registered ids and next_device_id', () => {
    const before = new DeviceIdAllocator();
    const registered: number[] = [];
    for (let i = 0; i < 50; i++) registered.push(before.allocate());
    for (const id of [3, 10, 49]) {
      before.release(id);
      registered.splice(registered.indexOf(id), 1);
    }
    const saved = before.nextDeviceId;

    const after = new DeviceIdAllocator();
    for (const id of registered) after.markUsed(id);
    after.nextDeviceId = saved;
    expect(after.usedCount).toBe(before.usedCount);
    for (let i = 0; i < 20; i++) expect(after.allocate()).toBe(before.allocate());
  });
});
