/**
 * A corpus of malformed input, in one table, against the DeviceSet, the Driver, the dm and
 * sys calls, the dm.* option strings, the command line and layer tars, in the kernel: each
 * case must fail with a DevmapperError of the expected code that names what was wrong, and
 * must leave nothing behind: no device-mapper device, no file in the metadata directory or
 * under mnt/, no mount, no loop device, no root directory for an open that was refused.
 */
import { existsSync } from 'node:fs';
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { DeviceSet, DevmapperError, Driver, dm, ErrorCodes, sys } from '../../lib';
import { runCli } from '../../lib/cli/main';
import { newRoot, testOptions } from '../helpers/deviceset';
import { describeKernel } from '../helpers/kernel-env';
import { loopsOverScratch, mountsUnder } from '../helpers/leaks';
import { tarOf } from '../helpers/layer-tar';

interface Case {
  what: string;
  run: () => Promise<unknown>;
  /** The error code expected. */
  code: string;
  /** Text the error's argument, device or message must contain: what was wrong. */
  names: string;
}

const INVALID = ErrorCodes.INVALID_ARGUMENT;
const BAD_SIZES = ['-1', 'NaN', '18446744073709551616', '12Q', '', '1.5.5G', 'Infinity', '1e400', '--1', '0x10'];

function sink(): { write(s: string): boolean; text: string } {
  return {
    text: '',
    write(s: string) {
      this.text += s;
      return true;
    },
  };
}

describeKernel('bad input: typed errors, nothing left behind', () => {
  jest.setTimeout(300_000);

  test('each malformed input of the corpus is a typed error naming the problem, and changes nothing', async () => {
    const home = await newRoot();
    const driver = await Driver.init(home, testOptions());
    const ds = driver.deviceSet;
    const pool = ds.poolName;
    const scratch = join(home, '..');
    try {
      await driver.create('ok', '');
      const roots: string[] = [];
      // A root path that must not come to exist when its open is refused.
      const freshRoot = () => {
        const r = join(scratch, `refused-${roots.length}`);
        roots.push(r);
        return r;
      };

      const cases: Case[] = [];
      const add = (what: string, code: string, names: string, run: () => Promise<unknown>) => cases.push({ what, run, code, names });

      // dm.* option strings, refused by DeviceSet.open before anything exists.
      for (const key of ['dm.basesize', 'dm.loopdatasize', 'dm.loopmetadatasize'])
        for (const v of BAD_SIZES) add(`${key}=${JSON.stringify(v)}`, INVALID, key, () => DeviceSet.open(freshRoot(), { doInit: true, options: testOptions([`${key}=${v}`]) }));
      const badOptions: [string, string][] = [
        ['dm.fs=btrfs', 'dm.fs'],
        ['dm.fs=', 'dm.fs'],
        ['dm.blkdiscard=maybe', 'dm.blkdiscard'],
        ['dm.min_free_space=101%', 'dm.min_free_space'],
        ['dm.min_free_space=-1%', 'dm.min_free_space'],
        ['dm.min_free_space=abc', 'dm.min_free_space'],
        ['dm.blocksize=3K', 'dm.blocksize'],
        ['dm.blocksize=0', 'dm.blocksize'],
        ['dm.blocksize=2G', 'dm.blocksize'],
        ['dm.use_deferred_removal=sometimes', 'dm.use_deferred_removal'],
        ['dm.xfs_nospace_max_retries=-1', 'dm.xfs_nospace_max_retries'],
        ['dm.xfs_nospace_max_retries=x', 'dm.xfs_nospace_max_retries'],
        ['dm.libdm_log_level=9', 'dm.libdm_log_level'],
        ['dm.libdm_log_level=warn', 'dm.libdm_log_level'],
        ['dm.override_udev_sync_check=sure', 'dm.override_udev_sync_check'],
        ['dm.nope=1', 'dm.nope'],
        ['dm.basesize', 'dm.basesize'],
      ];
      for (const [opt, key] of badOptions) add(opt, INVALID, key, () => DeviceSet.open(freshRoot(), { doInit: true, options: testOptions([opt]) }));
      add('dm.use_deferred_deletion without deferred removal', INVALID, 'dm.use_deferred_deletion', () =>
        DeviceSet.open(freshRoot(), { doInit: true, options: testOptions(['dm.use_deferred_deletion=true', 'dm.use_deferred_removal=false']) }),
      );
      add('typed options: baseSize -1', INVALID, 'baseSize', () => DeviceSet.open(freshRoot(), { doInit: true, options: { baseSize: -1 } }));
      add('typed options: unknown key', INVALID, 'quota', () => DeviceSet.open(freshRoot(), { doInit: true, options: { quota: 1 } as never }));
      add('a relative root', INVALID, 'root', () => DeviceSet.open('relative/root', { doInit: true, options: testOptions() }));

      // Device hashes, parents and sizes for the DeviceSet.
      const badHashes: unknown[] = ['../x', 'a/b', '', '.', '..', '.hidden', 'base', 'deviceset-metadata', 'transaction-metadata', 'x.migrated', 'a\0b', 'x'.repeat(200), 42, null];
      for (const h of badHashes) add(`addDevice(${JSON.stringify(h)})`, INVALID, 'hash', () => ds.addDevice(h as string, ''));
      add('addDevice of a missing parent', 'ENOENT', 'nope', () => ds.addDevice('child', 'nope'));
      add('addDevice with a parent that is not a string', INVALID, 'baseHash', () => ds.addDevice('child', 7 as unknown as string));
      for (const size of [-1, 0, 1.5, 511, Number.NaN, 2 ** 64, '1G'])
        add(`addDevice size ${String(size)}`, INVALID, 'size', () => ds.addDevice('child', '', { size: size as number }));
      add('addDevice size below the base', INVALID, 'size', () => ds.addDevice('child', '', { size: 1 << 20 }));
      add('addDevice of an existing hash', 'EEXIST', 'ok', () => ds.addDevice('ok', ''));
      add('deleteDevice of the base', INVALID, 'hash', () => ds.deleteDevice(''));
      add('deleteDevice of a missing hash', 'ENOENT', 'nope', () => ds.deleteDevice('nope'));
      add('mountDevice at a relative path', INVALID, 'path', () => ds.mountDevice('ok', 'mnt/x'));
      add('mountDevice of a missing hash', 'ENOENT', 'nope', () => ds.mountDevice('nope', join(home, 'nowhere')));
      add('mountDevice with a label holding a comma', INVALID, 'mountLabel', () => ds.mountDevice('ok', join(home, 'mp'), 'a,b', { mountPointMode: 0o755 }));
      add('mountDevice with mountPointMode -1', INVALID, 'mountPointMode', () => ds.mountDevice('ok', join(home, 'mp'), undefined, { mountPointMode: -1 }));
      add('mountDevice with mountPointMode 0o10000', INVALID, 'mountPointMode', () => ds.mountDevice('ok', join(home, 'mp'), undefined, { mountPointMode: 0o10000 }));
      add('mountDevice with a layout path escaping', INVALID, 'layout.path', () =>
        ds.mountDevice('ok', join(home, 'mp'), undefined, { mountPointMode: 0o755, layout: [{ path: '../escape', mode: 0o600, content: 'x' }] }),
      );
      add('mountDevice with an absolute layout path', INVALID, 'layout.path', () =>
        ds.mountDevice('ok', join(home, 'mp'), undefined, { mountPointMode: 0o755, layout: [{ path: '/etc/x', mode: 0o600 }] }),
      );
      add('mountDevice with a layout mode 1.5', INVALID, 'layout.mode', () =>
        ds.mountDevice('ok', join(home, 'mp'), undefined, { mountPointMode: 0o755, layout: [{ path: 'x', mode: 1.5 }] }),
      );
      add('unmountDevice at a relative path', INVALID, 'path', () => ds.unmountDevice('ok', 'mnt/x'));
      add('unmountDevice of a missing hash', 'ENOENT', 'nope', () => ds.unmountDevice('nope', join(home, 'nowhere')));

      // The Driver: ids, parents, storage options, layers.
      for (const id of ['../x', 'a/b', '', '.hidden', 'base', 'x'.repeat(200)]) add(`Driver.create(${JSON.stringify(id)})`, INVALID, 'id', () => driver.create(id, ''));
      add('Driver.create of a missing parent', 'ENOENT', 'nope', () => driver.create('child', 'nope'));
      for (const size of ['-1', '12Q', 'NaN', '18446744073709551616'])
        add(`Driver.create storageOpt size ${size}`, INVALID, 'size', () => driver.create('child', '', { storageOpt: { size } }));
      add('Driver.create storageOpt unknown key', INVALID, 'storageOpt.quota', () => driver.create('child', '', { storageOpt: { quota: '1G' } }));
      add('Driver.create storageOpt size below the base', INVALID, 'size', () => driver.create('child', '', { storageOpt: { size: '32M' } }));
      add('Driver.get of a missing id', 'ENOENT', 'nope', () => driver.get('nope'));
      add('Driver.get of a bad id', INVALID, 'id', () => driver.get('../x'));
      add('Driver.put of a bad id', INVALID, 'id', () => driver.put('a/b'));
      add('Driver.applyDiff of something that is not a stream', INVALID, 'tarStream', () => driver.applyDiff('ok', '', 'not a stream' as unknown as Readable));
      add('Driver.applyDiff of a tar entry escaping the layer', ErrorCodes.UNSAFE_LAYER_ENTRY, '..', () =>
        driver.applyDiff('ok', '', tarOf([{ name: '../escape', content: 'x' }])),
      );
      add('Driver.applyDiff of an absolute symlink hard link target outside', ErrorCodes.UNSAFE_LAYER_ENTRY, 'outside', () =>
        driver.applyDiff('ok', '', tarOf([{ name: 'link', type: 'link', linkname: '../outside' }])),
      );
      add('Driver.applyDiff of a broken tar', INVALID, 'tar', () => driver.applyDiff('ok', '', Readable.from([Buffer.alloc(1024, 7)])));

      // The dm calls: names, ids, sizes, budgets.
      for (const id of [-1, 2 ** 24, 1.5, Number.NaN]) add(`dm.createDevice id ${id}`, INVALID, 'deviceId', () => dm.createDevice(pool, id));
      for (const name of ['', 'a/b', 'x'.repeat(128), '.', '..'])
        add(`dm.activateDevice name ${JSON.stringify(name.slice(0, 20))}`, INVALID, 'name', () => dm.activateDevice(pool, name, 1, 64 << 20));
      for (const size of [0, 513, -512, 2 ** 64]) add(`dm.activateDevice size ${size}`, INVALID, 'sizeBytes', () => dm.activateDevice(pool, 'dmt-bad', 1, size));
      add('dm.activateDevice of a pool that is no name', INVALID, 'poolName', () => dm.activateDevice('', 'dmt-bad', 1, 64 << 20));
      add('dm.createSnapDevice id 2^24', INVALID, 'deviceId', () => dm.createSnapDevice(pool, 2 ** 24, null, 1));
      add('dm.setTransactionId -1', INVALID, 'oldId', () => dm.setTransactionId(pool, -1, 1));
      add('dm.removeDevice with a negative retry budget', INVALID, 'retryBudgetMs', () => dm.removeDevice('dmt-bad', { retryBudgetMs: -1 }));
      add('dm.getPoolStatus of an empty name', INVALID, 'poolName', () => dm.getPoolStatus(''));
      add('dm.getPoolStatus of a device that does not exist', 'ENXIO', 'dmt-missing', () => dm.getPoolStatus('dmt-missing-pool'));
      add('dm.sendMessage to a device that does not exist', 'ENXIO', 'dmt-missing', () => dm.sendMessage('dmt-missing', 'create_thin 1'));
      add('dm.setTaskDefaults udevTimeoutMs -1', INVALID, 'udevTimeoutMs', async () => dm.setTaskDefaults({ udevTimeoutMs: -1 }));
      add('dm.setLogLevel 9', INVALID, 'level', async () => dm.setLogLevel(9));

      // The sys calls.
      add('sys.discardBlocks with a negative offset', INVALID, 'offset', () => sys.discardBlocks('/dev/null', -1, 512));
      add('sys.attachLoopDevice of a missing file', 'ENOENT', 'missing.img', () => sys.attachLoopDevice(join(scratch, 'missing.img')));
      add('sys.getBlockDeviceSize of a missing path', 'ENOENT', 'missing', () => sys.getBlockDeviceSize(join(scratch, 'missing')));
      add('sys.mount of a missing source', 'ENOENT', 'missing', () => sys.mount(join(scratch, 'missing'), scratch, 'ext4'));

      // The command line, in process, against this root: a typed error line, a non-zero status.
      const cli = (args: string[]) => async () => {
        const stdout = sink();
        const stderr = sink();
        const status = await runCli(args, { stdout, stderr });
        const m = /\((ERR_[A-Z_]+|E[A-Z]+)\)\s*$/.exec(stderr.text);
        if (status === 0) return stdout.text;
        throw new DevmapperError(stderr.text.trim(), { code: m?.[1] ?? `exit ${status}` });
      };
      const other = join(scratch, 'cli-root');
      add('cli: create with a bad size', INVALID, 'size', cli(['--root', other, 'create', 'x', '--size', 'huge']));
      add('cli: an unknown dm option', INVALID, 'dm.nope', cli(['--root', other, '--opt', 'dm.nope=1', 'pool', 'status']));
      add('cli: a bad dm.basesize', INVALID, 'dm.basesize', cli(['--root', other, '--opt', 'dm.basesize=-1', 'pool', 'status']));
      add('cli: an unknown command', INVALID, 'frobnicate', cli(['--root', other, 'frobnicate']));
      add('cli: an unknown flag', INVALID, '--bogus', cli(['--root', other, 'pool', 'status', '--bogus']));

      // Metadata files with the wrong JSON types, in roots of their own: open refuses them.
      for (const [file, text, names] of [
        ['c1', '{"device_id":"4","size":1,"transaction_id":1,"initialized":false,"deleted":false}', 'c1'],
        ['deviceset-metadata', '{"next_device_id":"x"}', 'deviceset-metadata'],
        ['transaction-metadata', '[1,2]', 'transaction-metadata'],
      ] as const)
        add(`metadata file ${file} holding ${text.slice(0, 24)}`, ErrorCodes.METADATA_CORRUPT, names, async () => {
          const root = freshRoot();
          await mkdir(join(root, 'metadata'), { recursive: true, mode: 0o700 });
          await writeFile(join(root, 'metadata', file), text, { mode: 0o600 });
          try {
            return await DeviceSet.open(root, { doInit: true, options: testOptions() });
          } finally {
            // What the case itself wrote; the check below is that open added nothing to it.
            expect((await readdir(join(root, 'metadata'))).sort()).toEqual([file]);
            expect(existsSync(join(root, 'devicemapper'))).toBe(false);
            await rm(root, { recursive: true, force: true });
          }
        });

      expect(cases.length).toBeGreaterThanOrEqual(100);

      const state = async () => ({
        devices: (await dm.listDevices()).map((d) => d.name).sort(),
        metadata: (await readdir(join(home, 'metadata'))).sort(),
        mnt: (await readdir(join(home, 'mnt'))).sort(),
        homeEntries: (await readdir(home)).sort(),
        mounts: mountsUnder(scratch),
        loops: await loopsOverScratch(),
        okActive: await dm.getInfo(ds.deviceName('ok')),
      });
      // The cases that mount 'ok' leave it active, idle (keepActive): start from that state.
      await driver.get('ok');
      await driver.put('ok');
      const before = await state();
      const failures: string[] = [];
      for (const c of cases) {
        let err: unknown = null;
        try {
          const made = await c.run();
          // Accepted after all: close what it opened, so the next cases start from the same state.
          if (made instanceof DeviceSet) await made.shutdown();
        } catch (e) {
          err = e;
        }
        const where = `${c.what}: `;
        if (!(err instanceof DevmapperError)) {
          failures.push(`${where}expected a DevmapperError ${c.code}, got ${err === null ? 'success' : String(err)}`);
          continue;
        }
        if (err.code !== c.code) failures.push(`${where}code ${err.code}, expected ${c.code} (${err.message})`);
        const said = `${err.argument ?? ''} ${err.device ?? ''} ${err.message}`;
        if (!said.includes(c.names)) failures.push(`${where}the error does not name ${JSON.stringify(c.names)}: ${said}`);
        const now = await state();
        for (const k of Object.keys(before) as (keyof typeof before)[])
          if (JSON.stringify(now[k]) !== JSON.stringify(before[k])) failures.push(`${where}left ${k} behind: ${JSON.stringify(now[k])}`);
      }
      for (const r of roots) if (existsSync(r)) failures.push(`an open that was refused left its root ${r}`);
      process.stdout.write(`bad input: ${cases.length} cases, ${failures.length} failures\n${failures.map((f) => `  ${f}\n`).join('')}`);
      expect(failures).toEqual([]);
    } finally {
      await driver.cleanup();
      await rm(scratch, { recursive: true, force: true });
    }
  });
});
