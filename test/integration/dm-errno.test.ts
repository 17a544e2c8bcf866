/** The errno contract: each kernel refusal reaches the caller as a DevmapperError with its code. */
import { DevmapperError, dm } from '../../lib';
import { describeKernel } from '../helpers/kernel-env';
import { withPool } from '../helpers/pool';

async function codeOf(p: Promise<unknown>): Promise<{ code: string; errno: number | undefined; err: DevmapperError }> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(DevmapperError);
    const e = err as DevmapperError;
    return { code: e.code, errno: e.errno, err: e };
  }
  throw new Error('expected a rejection');
}

describeKernel('dm errno contract', () => {
  jest.setTimeout(60_000);

  test('a second create_thin of one id is EEXIST, with the libdm log line and the caller stack', async () => {
    await withPool(async (p) => {
      await dm.createDevice(p.poolName, 7);
      const { code, errno, err } = await codeOf(dm.createDevice(p.poolName, 7));
      expect(code).toBe('EEXIST');
      expect(errno).toBe(17);
      expect(err.operation).toBe('create_thin 7');
      expect(err.device).toBe(p.poolName);
      expect(err.logs.some((l) => l.level === 3 && /message ioctl/.test(l.message))).toBe(true);
      expect(err.stack).toContain('dm-errno.test.ts');
      await dm.deleteDevice(p.poolName, 7);
    });
  });

  test('delete of a missing id is ENODATA', async () => {
    await withPool(async (p) => {
      expect((await codeOf(dm.deleteDevice(p.poolName, 4242))).code).toBe('ENODATA');
    });
  });

  test('creating a device under an existing name is EBUSY and leaves the first intact', async () => {
    await withPool(async (p) => {
      await dm.createDevice(p.poolName, 0);
      await dm.activateDevice(p.poolName, p.name('a'), 0, 16 << 20);
      expect((await codeOf(dm.activateDevice(p.poolName, p.name('a'), 0, 16 << 20))).code).toBe('EBUSY');
      expect((await dm.getInfo(p.name('a')))?.liveTable).toBe(true);
      await dm.removeDevice(p.name('a'));
      await dm.deleteDevice(p.poolName, 0);
    });
  });

  test('a table the kernel refuses is a typed error and leaves no half-created device', async () => {
    await withPool(async (p) => {
      await dm.createDevice(p.poolName, 0);
      const { code } = await codeOf(
        dm.activateDevice(p.poolName, p.name('bad'), 0, 16 << 20, { externalOrigin: '/dev/does-not-exist' }),
      );
      expect(code).toBe('ENODEV');
      expect(await dm.getInfo(p.name('bad'))).toBeNull();
      await dm.deleteDevice(p.poolName, 0);
    });
  });

  test('removing a pool with an active thin device is EBUSY within the retry budget', async () => {
    await withPool(async (p) => {
      await dm.createDevice(p.poolName, 1);
      await dm.activateDevice(p.poolName, p.name('t'), 1, 16 << 20);
      const started = Date.now();
      const { code, err } = await codeOf(dm.removeDevice(p.poolName, { retryBudgetMs: 400 }));
      expect(code).toBe('EBUSY');
      expect(err.message).toMatch(/still busy after \d+ attempts/);
      expect(Date.now() - started).toBeLessThan(5_000);
      expect(await dm.getInfo(p.poolName)).not.toBeNull();
      await dm.removeDevice(p.name('t'));
      await dm.deleteDevice(p.poolName, 1);
    });
  });

  test('a missing device: getInfo is null, suspend/resume/status/remove are ENXIO', async () => {
    await withPool(async (p) => {
      const missing = p.name('missing');
      expect(await dm.getInfo(missing)).toBeNull();
      expect((await codeOf(dm.suspendDevice(missing))).code).toBe('ENXIO');
      expect((await codeOf(dm.resumeDevice(missing))).code).toBe('ENXIO');
      expect((await codeOf(dm.getStatus(missing))).code).toBe('ENXIO');
      expect((await codeOf(dm.removeDevice(missing))).code).toBe('ENXIO');
      expect((await codeOf(dm.createDevice(missing, 1))).code).toBe('ENXIO');
    });
  });

  test('set_transaction_id with the wrong old id fails and keeps the pool id', async () => {
    await withPool(async (p) => {
      expect((await codeOf(dm.setTransactionId(p.poolName, 5, 6))).code).toBe('EINVAL');
      await dm.setTransactionId(p.poolName, 0, 1);
      const status = await dm.getPoolStatus(p.poolName);
      expect(status.state === 'ok' && status.transactionId).toBe(1);
      expect((await codeOf(dm.setTransactionId(p.poolName, 0, 2))).code).toBe('EINVAL');
    });
  });

  test('getPoolStatus of a thin device is a typed error naming the device', async () => {
    await withPool(async (p) => {
      await dm.createDevice(p.poolName, 3);
      await dm.activateDevice(p.poolName, p.name('t'), 3, 8 << 20);
      const { code, err } = await codeOf(dm.getPoolStatus(p.name('t')));
      expect(code).toBe('ERR_INVALID_ARGUMENT');
      expect(err.message).toContain(p.name('t'));
      await dm.removeDevice(p.name('t'));
      await dm.deleteDevice(p.poolName, 3);
    });
  });
});
