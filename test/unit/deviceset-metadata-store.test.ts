import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DevmapperError, ErrorCodes } from '../../lib/errors';
import {
  decodeDevice,
  encodeDevice,
  encodeDeviceSet,
  encodeTransaction,
  goJsonString,
  MetadataStore,
  type DeviceMetadata,
} from '../../lib/deviceset/metadata-store';

const UUID = 'd41f0c9e-6d3b-4f5e-9a57-0b8a2f0c7e11';

let root: string;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'devmapper-meta-'));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

const dev = (deviceId: number, transactionId: number, initialized = false): DeviceMetadata => ({
  deviceId,
  size: 536870912,
  transactionId,
  initialized,
  deleted: false,
});

async function caught(p: Promise<unknown>): Promise<DevmapperError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(DevmapperError);
    return err as DevmapperError;
  }
  throw new Error('did not reject');
}

const mode = async (path: string) => (await stat(path)).mode & 0o777;

describe('byte-exact files (Docker v24\'s files as observed)', () => {
  test('the files Docker v24 left after image, c1-init and c1', async () => {
    const store = new MetadataStore(root);
    await store.open();
    await store.writeDevice('', dev(1, 1, true));
    await store.writeDevice('image', dev(2, 2));
    await store.writeDevice('c1-init', dev(3, 3));
    await store.writeDevice('c1', dev(4, 4));
    await store.writeDeviceSet({ nextDeviceId: 4, baseDeviceUuid: UUID, baseDeviceFilesystem: 'ext4' });
    await store.writeTransaction({ openTransactionId: 4, deviceHash: 'c1', deviceId: 4 });

    const read = (name: string) => readFile(join(root, 'metadata', name), 'utf8');
    expect(await read('base')).toBe('{"device_id":1,"size":536870912,"transaction_id":1,"initialized":true,"deleted":false}');
    expect(await read('image')).toBe('{"device_id":2,"size":536870912,"transaction_id":2,"initialized":false,"deleted":false}');
    expect(await read('c1-init')).toBe('{"device_id":3,"size":536870912,"transaction_id":3,"initialized":false,"deleted":false}');
    expect(await read('c1')).toBe('{"device_id":4,"size":536870912,"transaction_id":4,"initialized":false,"deleted":false}');
    expect(await read('deviceset-metadata')).toBe(`{"next_device_id":4,"BaseDeviceUUID":"${UUID}","BaseDeviceFilesystem":"ext4"}`);
    expect(await read('transaction-metadata')).toBe('{"open_transaction_id":4,"device_hash":"c1","device_id":4}');

    // Permissions as Docker left them: directory 0700, files 0600; no temporary file left.
    expect(await mode(join(root, 'metadata'))).toBe(0o700);
    const names = (await readdir(join(root, 'metadata'))).sort();
    expect(names).toEqual(['base', 'c1', 'c1-init', 'deviceset-metadata', 'image', 'transaction-metadata']);
    for (const name of names) expect(await mode(join(root, 'metadata', name))).toBe(0o600);

    // And they read back.
    expect(await store.listDevices()).toEqual(
      new Map([
        ['', dev(1, 1, true)],
        ['c1', dev(4, 4)],
        ['c1-init', dev(3, 3)],
        ['image', dev(2, 2)],
      ]),
    );
    expect(await store.readDeviceSet()).toEqual({ nextDeviceId: 4, baseDeviceUuid: UUID, baseDeviceFilesystem: 'ext4' });
    expect(await store.readTransaction()).toEqual({ openTransactionId: 4, deviceHash: 'c1', deviceId: 4 });
  });

  test("strings are escaped as Go's encoding/json escapes them", () => {
    // Go 1.19 json.Marshal of the same string (DEL, '/' and 'é' stay as they are).
    const s = 'a<b>&c\u2028\u2029\u0001\u0008\u000c\n\t\r"\\\u007f/\u00e9';
    expect(goJsonString(s)).toBe('"a\\u003cb\\u003e\\u0026c\\u2028\\u2029\\u0001\\u0008\\u000c\\n\\t\\r\\"\\\\\u007f/\u00e9"');
    expect(JSON.parse(goJsonString(s))).toBe(s);
    expect(goJsonString('\ud83d\ude00')).toBe('"\ud83d\ude00"');
    expect(goJsonString('x\ud800y')).toBe('"x\\ufffdy"'); // invalid UTF-8 to Go
    expect(encodeTransaction({ openTransactionId: 7, deviceHash: 'a<b', deviceId: 3 })).toBe(
      '{"open_transaction_id":7,"device_hash":"a\\u003cb","device_id":3}',
    );
  });

  test('the seed example: an older Docker file without "deleted" reads with deleted false', () => {
    expect(decodeDevice('{"device_id":5,"size":21474836480,"transaction_id":8,"initialized":false}', 'f')).toEqual({
      deviceId: 5,
      size: 21474836480,
      transactionId: 8,
      initialized: false,
      deleted: false,
    });
  });

  test('values are checked before anything is written', async () => {
    const store = new MetadataStore(root);
    await store.open();
    for (const bad of [
      { ...dev(1, 1), deviceId: 0x1000000 },
      { ...dev(1, 1), deviceId: -1 },
      { ...dev(1, 1), size: 1.5 },
      { ...dev(1, 1), transactionId: 2 ** 53 },
      { ...dev(1, 1), deleted: 'no' as unknown as boolean },
    ]) {
      const e = await caught(store.writeDevice('x', bad));
      expect(e.code).toBe(ErrorCodes.INVALID_ARGUMENT);
    }
    expect(() => encodeDeviceSet({ nextDeviceId: 1, baseDeviceUuid: 5 as unknown as string, baseDeviceFilesystem: '' })).toThrow(
      DevmapperError,
    );
    expect(() => encodeDevice(null as unknown as DeviceMetadata)).toThrow(DevmapperError);
    expect(await readdir(join(root, 'metadata'))).toEqual([]);
  });

  test.each(['../x', 'a/b', '.hidden', '.', '..', 'base', 'deviceset-metadata', 'transaction-metadata', 'x.migrated', 'a\0b'])(
    'device file name %j is refused',
    async (hash) => {
      const store = new MetadataStore(root);
      await store.open();
      const e = await caught(store.writeDevice(hash, dev(1, 1)));
      expect(e.code).toBe(ErrorCodes.INVALID_ARGUMENT);
      expect(e.argument).toBe('hash');
      await expect(store.readDevice(hash)).rejects.toThrow(DevmapperError);
      await expect(store.removeDevice(hash)).rejects.toThrow(DevmapperError);
      expect(await readdir(join(root, 'metadata'))).toEqual([]);
    },
  );
});

describe('open', () => {
  test('creates root/metadata 0700, and makes an existing one 0700', async () => {
    const store = new MetadataStore(join(root, 'deep', 'root'));
    expect(await store.open()).toEqual([]);
    expect(await mode(join(root, 'deep', 'root', 'metadata'))).toBe(0o700);

    await mkdir(join(root, 'r2', 'metadata'), { recursive: true });
    await chmod(join(root, 'r2', 'metadata'), 0o755);
    await new MetadataStore(join(root, 'r2')).open();
    expect(await mode(join(root, 'r2', 'metadata'))).toBe(0o700);
  });

  test("removes stray .tmp files, keeps other dotfiles, lists devices with Docker's skip rules", async () => {
    const dir = join(root, 'metadata');
    await mkdir(join(dir, 'subdir'), { recursive: true, mode: 0o700 });
    const files: Record<string, string> = {
      base: encodeDevice(dev(1, 1, true)),
      c1: encodeDevice(dev(4, 4)),
      'x.migrated': encodeDevice(dev(9, 9)),
      '.hidden': 'whatever',
      '.tmp123': 'half-written',
      '.tmp': '',
      'deviceset-metadata': encodeDeviceSet({ nextDeviceId: 4, baseDeviceUuid: UUID, baseDeviceFilesystem: 'xfs' }),
      'transaction-metadata': encodeTransaction({ openTransactionId: 4, deviceHash: 'c1', deviceId: 4 }),
      [join('subdir', 'nested')]: encodeDevice(dev(7, 7)),
    };
    for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text, { mode: 0o600 });

    const store = new MetadataStore(root);
    expect(await store.open()).toEqual(['', 'c1']);
    const left = (await readdir(dir)).sort();
    expect(left).toEqual(['.hidden', 'base', 'c1', 'deviceset-metadata', 'subdir', 'transaction-metadata', 'x.migrated']);
    expect([...(await store.listDevices()).keys()]).toEqual(['', 'c1']);
  });

  test('a metadata path that is a file is a typed error', async () => {
    await writeFile(join(root, 'metadata'), 'not a directory');
    const e = await caught(new MetadataStore(root).open());
    expect(e.operation).toBe('open metadata directory');
    expect(e.device).toBe(join(root, 'metadata'));
    expect(['EEXIST', 'ENOTDIR']).toContain(e.code);
  });
});

describe('reading', () => {
  test('a device file that is a symbolic link is refused as corrupt metadata, naming it; the target is not read', async () => {
    const store = new MetadataStore(root);
    await store.open();
    const dir = join(root, 'metadata');
    const outside = join(root, 'outside.json');
    await writeFile(outside, encodeDevice(dev(5, 5)));
    await symlink(outside, join(dir, 'c1'));
    const listed = await caught(store.listDevices());
    expect(listed).toMatchObject({ code: ErrorCodes.METADATA_CORRUPT, device: 'c1' });
    expect(listed.message).toMatch(/symbolic link/);
    expect(await caught(store.readDevice('c1'))).toMatchObject({ code: ErrorCodes.METADATA_CORRUPT, device: join(dir, 'c1') });
    // Links under names Docker skips are skipped too.
    await rm(join(dir, 'c1'));
    await symlink(outside, join(dir, 'x.migrated'));
    expect([...(await store.listDevices()).keys()]).toEqual([]);
  });

  test('deviceset-metadata as a symbolic link, transaction-metadata as a FIFO: refused, and the FIFO does not block the read', async () => {
    const store = new MetadataStore(root);
    await store.open();
    const dir = join(root, 'metadata');
    const outside = join(root, 'set.json');
    await writeFile(outside, encodeDeviceSet({ nextDeviceId: 4, baseDeviceUuid: UUID, baseDeviceFilesystem: 'ext4' }));
    await symlink(outside, join(dir, 'deviceset-metadata'));
    expect(await caught(store.readDeviceSet())).toMatchObject({ code: ErrorCodes.METADATA_CORRUPT, device: join(dir, 'deviceset-metadata') });
    expect(spawnSync('mkfifo', [join(dir, 'transaction-metadata')]).status).toBe(0);
    const fifo = await caught(store.readTransaction());
    expect(fifo).toMatchObject({ code: ErrorCodes.METADATA_CORRUPT, device: join(dir, 'transaction-metadata') });
    expect(fifo.message).toMatch(/not a regular file/);
  });

  test('missing files read as null; removing a missing device is no error', async () => {
    const store = new MetadataStore(root);
    await store.open();
    expect(await store.readDevice('nope')).toBeNull();
    expect(await store.readDevice('')).toBeNull();
    expect(await store.readDeviceSet()).toBeNull();
    expect(await store.readTransaction()).toBeNull();
    await expect(store.removeDevice('nope')).resolves.toBeUndefined();
    await expect(store.removeTransaction()).resolves.toBeUndefined();
  });

  test('Docker-written files with whitespace, a newline, extra fields or other key case read fine', async () => {
    const store = new MetadataStore(root);
    await store.open();
    const dir = join(root, 'metadata');
    await writeFile(
      join(dir, 'c1'),
      '{\n  "device_id": 4,\n  "size": 536870912,\n  "transaction_id": 4,\n  "initialized": false,\n  "deleted": true,\n  "future": [1, {"x": null}]\n}\n',
    );
    expect(await store.readDevice('c1')).toEqual({ ...dev(4, 4), deleted: true });
    // Go's json.Unmarshal matches keys case-insensitively; null leaves the zero value.
    await writeFile(join(dir, 'c2'), '{"DEVICE_ID":5,"Size":1024,"transaction_id":null,"Initialized":true}');
    expect(await store.readDevice('c2')).toEqual({ deviceId: 5, size: 1024, transactionId: 0, initialized: true, deleted: false });
    await writeFile(join(dir, 'deviceset-metadata'), `{"next_device_id":9,"basedeviceuuid":"${UUID}"}\n`);
    expect(await store.readDeviceSet()).toEqual({ nextDeviceId: 9, baseDeviceUuid: UUID, baseDeviceFilesystem: '' });
    await writeFile(join(dir, 'transaction-metadata'), ' {"open_transaction_id":12,"device_hash":"c2","device_id":5} \n');
    expect(await store.readTransaction()).toEqual({ openTransactionId: 12, deviceHash: 'c2', deviceId: 5 });
  });

  test.each([
    ['c1', '{"device_id":4,"size":5', 'not valid JSON'],
    ['c1', '', 'not valid JSON'],
    ['c1', '[1,2]', 'not a JSON object'],
    ['c1', 'null', 'not a JSON object'],
    ['c1', '\ufeff{"device_id":1}', 'not valid JSON'],
    ['c1', '{"device_id":"4"}', 'device_id'],
    ['c1', '{"device_id":16777216}', 'device_id'],
    ['c1', '{"device_id":-1}', 'device_id'],
    ['c1', '{"size":-1}', 'size'],
    ['c1', '{"size":1e300}', 'size'],
    ['c1', '{"initialized":1}', 'initialized'],
    ['deviceset-metadata', '{"BaseDeviceUUID":7}', 'BaseDeviceUUID'],
    ['transaction-metadata', '{"open_transaction_id":1.5}', 'open_transaction_id'],
  ])('%s containing %j is a typed error naming the file', async (name, text, mentions) => {
    const store = new MetadataStore(root);
    await store.open();
    const file = join(root, 'metadata', name);
    await writeFile(file, text);
    const read =
      name === 'deviceset-metadata' ? store.readDeviceSet() : name === 'transaction-metadata' ? store.readTransaction() : store.readDevice(name);
    const e = await caught(read);
    expect(e.code).toBe(ErrorCodes.METADATA_CORRUPT);
    expect(e.device).toBe(file);
    expect(e.message).toContain(file);
    expect(e.message).toContain(mentions);
    if (name === 'c1') {
      const listed = await caught(store.listDevices());
      expect(listed.code).toBe(ErrorCodes.METADATA_CORRUPT);
    }
  });
});

describe('writing', () => {
  test('overwrites atomically, removes, and keeps the transaction file until asked', async () => {
    const store = new MetadataStore(root);
    await store.open();
    await store.writeDevice('c1', dev(4, 4));
    await store.writeDevice('c1', { ...dev(4, 4), initialized: true });
    expect(await store.readDevice('c1')).toEqual(dev(4, 4, true));
    await store.writeTransaction({ openTransactionId: 5, deviceHash: 'c1', deviceId: 4 });
    await store.removeDevice('c1');
    expect(await store.readDevice('c1')).toBeNull();
    expect(await store.readTransaction()).toEqual({ openTransactionId: 5, deviceHash: 'c1', deviceId: 4 });
    await store.removeTransaction();
    expect(await store.readTransaction()).toBeNull();
    expect(await readdir(join(root, 'metadata'))).toEqual([]);
  });

  test('many concurrent writes of different files leave no temporary file', async () => {
    const store = new MetadataStore(root);
    await store.open();
    await Promise.all(Array.from({ length: 64 }, (_, i) => store.writeDevice(`d${i}`, dev(i + 1, i + 1))));
    const devices = await store.listDevices();
    expect(devices.size).toBe(64);
    expect(devices.get('d63')).toEqual(dev(64, 64));
    expect((await readdir(join(root, 'metadata'))).filter((n) => n.startsWith('.'))).toEqual([]);
  });

  test('a write into a missing directory fails with the errno code, naming the file', async () => {
    const store = new MetadataStore(root);
    await store.open();
    await rm(join(root, 'metadata'), { recursive: true });
    const e = await caught(store.writeDevice('c1', dev(4, 4)));
    expect(e.code).toBe('ENOENT');
    expect(e.errno).toBe(2);
    expect(e.device).toBe(join(root, 'metadata', 'c1'));
    expect(e.operation).toBe('write metadata');
  });
});

// ENOSPC needs a full file system: a 64 KiB tmpfs, which needs root and mount(2).
const tmpfsDir = mkdtempSync(join(tmpdir(), 'devmapper-enospc-'));
const tmpfsSkipReason = (() => {
  if (process.getuid?.() !== 0) return 'not root';
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64k,mode=0700', 'tmpfs', tmpfsDir], { encoding: 'utf8' });
  return r.status === 0 ? null : `mount -t tmpfs failed: ${(r.stderr || String(r.error)).trim()}`;
})();
afterAll(() => {
  if (tmpfsSkipReason === null) spawnSync('umount', [tmpfsDir]);
  rmSync(tmpfsDir, { recursive: true, force: true });
});

(tmpfsSkipReason === null ? test : test.skip)(
  `a full metadata file system: typed ENOSPC naming the file, previous file intact, no temporary file${
    tmpfsSkipReason === null ? '' : ` (skipped: ${tmpfsSkipReason})`
  }`,
  async () => {
    const store = new MetadataStore(tmpfsDir);
    await store.open();
    await store.writeDevice('c1', dev(4, 4));
    await store.writeTransaction({ openTransactionId: 4, deviceHash: 'c1', deviceId: 4 });

    // Fill every remaining page.
    const fd = openSync(join(tmpfsDir, 'filler'), 'w');
    try {
      for (;;) writeSync(fd, Buffer.alloc(4096, 1));
    } catch (err) {
      expect((err as NodeJS.ErrnoException).code).toBe('ENOSPC');
    } finally {
      closeSync(fd);
    }

    const file = join(tmpfsDir, 'metadata', 'c1');
    const e = await caught(store.writeDevice('c1', { ...dev(4, 4), initialized: true }));
    expect(e.code).toBe('ENOSPC');
    expect(e.errno).toBe(28);
    expect(e.device).toBe(file);
    expect(e.message).toContain(file);
    const t = await caught(store.writeTransaction({ openTransactionId: 5, deviceHash: 'c2', deviceId: 5 }));
    expect(t.code).toBe('ENOSPC');

    expect(await readFile(file, 'utf8')).toBe(encodeDevice(dev(4, 4)));
    expect(await store.readTransaction()).toEqual({ openTransactionId: 4, deviceHash: 'c1', deviceId: 4 });
    expect((await readdir(join(tmpfsDir, 'metadata'))).sort()).toEqual(['c1', 'transaction-metadata']);

    // Space back: writes work again.
    await rm(join(tmpfsDir, 'filler'));
    await store.writeDevice('c1', { ...dev(4, 4), initialized: true });
    expect(await store.readDevice('c1')).toEqual(dev(4, 4, true));
  },
);
