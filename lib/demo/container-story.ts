/**
 * The README's first command: the story of a container's storage, as Docker's devicemapper
 * driver told it, one line per step. A pool on loopback files, the base device, an image
 * layer imported from a small tar built here, the container's `<ctr>-init` and `<ctr>`
 * layers, mount, write, unmount, the metadata files and the pool table, the stopped
 * container's volume opened read-only and listed, the status table, and teardown.
 *
 * Run it with `npm run demo` (which boots the sandbox kernel when the host has no
 * device-mapper), or as root on a device-mapper host: `node dist/demo/container-story.js`.
 */
import { lstat, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pack } from 'tar-stream';
import { DeviceSet, dm, Driver } from '../index';

const IMAGE = 'image';
const CTR = 'ctr';
const OPTIONS = ['dm.basesize=256M', 'dm.loopdatasize=2G', 'dm.loopmetadatasize=128M', 'dm.fs=ext4'];

function step(text: string): void {
  process.stdout.write(`• ${text}\n`);
}

function detail(text: string): void {
  process.stdout.write(`    ${text}\n`);
}

/** A tiny image layer: a directory tree with modes and owners, a script, a symlink. */
function imageTar(): Readable {
  const p = pack();
  const mtime = new Date('2026-01-01T00:00:00Z');
  p.entry({ name: 'etc/', type: 'directory', mode: 0o755, mtime });
  p.entry({ name: 'etc/os-release', mode: 0o644, mtime }, 'NAME="devmapper demo"\nID=demo\n');
  p.entry({ name: 'bin/', type: 'directory', mode: 0o755, mtime });
  p.entry({ name: 'bin/hello', mode: 0o755, mtime }, '#!/bin/sh\necho hello from the image layer\n');
  p.entry({ name: 'bin/hi', type: 'symlink', linkname: 'hello', mode: 0o777, mtime });
  p.entry({ name: 'srv/', type: 'directory', mode: 0o750, uid: 1, gid: 2, mtime });
  p.entry({ name: 'tmp/', type: 'directory', mode: 0o1777, mtime });
  p.finalize();
  return Readable.from(p);
}

export async function runContainerStory(): Promise<void> {
  const home = join(await mkdtemp(join(tmpdir(), 'devmapper-story-')), 'devicemapper');
  let driver: Driver | null = null;
  let failure: unknown;
  try {
    step(`device-mapper driver ${await dm.getDriverVersion()}, libdevmapper ${dm.getLibraryVersion()}, udev sync ${dm.udevSyncSupported() ? 'on' : 'off'}`);
    const options = dm.udevSyncSupported() ? OPTIONS : [...OPTIONS, 'dm.override_udev_sync_check=true'];

    step(`Driver.init(${home}): sparse loopback files, the thin pool, the base device (mkfs.ext4)`);
    driver = await Driver.init(home, options);
    const ds = driver.deviceSet;
    const st = await ds.status();
    detail(`pool ${ds.poolName}: data ${st.dataLoopFile} on ${st.dataDevice}, metadata ${st.metadataLoopFile} on ${st.metadataDevice}`);
    const base = ds.getDeviceMetadata('')!;
    detail(`base device ${ds.deviceName('')}: thin id ${base.deviceId}, ${base.size / 2 ** 20} MiB, ${st.backingFilesystem}`);

    step(`create ${IMAGE} (a snapshot of the base) and import a layer tar into it`);
    await driver.create(IMAGE, '');
    const bytes = await driver.applyDiff(IMAGE, '', imageTar());
    detail(`applied ${bytes} bytes; changes: ${(await driver.changes(IMAGE, '')).map((c) => `${c.kind} ${c.path}`).join(', ')}`);

    step(`create ${CTR}-init from ${IMAGE}, and ${CTR} from ${CTR}-init (the container's layers)`);
    await driver.create(`${CTR}-init`, IMAGE);
    await driver.create(CTR, `${CTR}-init`);

    step(`get ${CTR}: mount it, write a file, list its root`);
    const rootfs = await driver.get(CTR);
    detail(`mounted at ${rootfs}`);
    await writeFile(join(rootfs, 'srv', 'greeting.txt'), `written by the container at ${new Date().toISOString()}\n`);
    detail(`ls ${rootfs}: ${(await readdir(rootfs)).sort().join(' ')}`);
    detail(`table of ${ds.deviceName(CTR)}: ${dm.formatTargetLine((await dm.getTable(ds.deviceName(CTR)))[0])}`);

    step(`put ${CTR}: unmount (the device stays active for the remove); what the container changed against ${CTR}-init`);
    await driver.put(CTR);
    for (const c of await driver.changes(CTR, `${CTR}-init`)) detail(`${c.kind} ${c.path}`);

    step('the metadata files (Docker\'s format) and the pool table');
    const metaDir = join(home, 'metadata');
    for (const f of ['base', IMAGE, `${CTR}-init`, CTR, 'deviceset-metadata', 'transaction-metadata'])
      detail(`metadata/${f}: ${await readFile(join(metaDir, f), 'utf8')}`);
    detail(`${ds.poolName}: ${dm.formatTargetLine((await dm.getTable(ds.poolName))[0])}`);

    step('status, as `docker info` showed it');
    for (const row of await driver.status()) detail(`${row[0]}: ${row[1]}`);

    step('stop everything (Driver.cleanup: the pool goes down), then open the stopped container\'s volume read-only and list it');
    await driver.cleanup();
    driver = null;
    const ro = await DeviceSet.openReadOnly(home, options);
    const listing = await ro.withVolume(CTR, async (dir, meta) => {
      const top = (await readdir(dir, { withFileTypes: true })).map((e) => `${e.name}${e.isDirectory() ? '/' : ''}`).sort();
      const srv = [];
      for (const name of (await readdir(join(dir, 'rootfs', 'srv'))).sort()) {
        const st = await lstat(join(dir, 'rootfs', 'srv', name));
        srv.push(`${name} (${(st.mode & 0o7777).toString(8)}, uid ${st.uid})`);
      }
      return { deviceId: meta.deviceId, top, srv };
    });
    detail(`device id ${listing.deviceId}: ${listing.top.join(' ')}`);
    detail(`rootfs/srv: ${listing.srv.join(' ')}`);
    detail(`devices left active by the look: ${(await dm.listDevices()).filter((d) => d.name.startsWith('devmapper-ro-')).length}`);

    step('teardown: reopen, remove the three layers, clean up');
    driver = await Driver.init(home, options);
    for (const id of [CTR, `${CTR}-init`, IMAGE]) await driver.remove(id);
    detail(`layers left: ${(await driver.deviceSet.list()).length}`);
  } catch (err) {
    failure = err;
  }
  try {
    await driver?.cleanup();
  } catch (err) {
    failure ??= err;
  }
  await rm(join(home, '..'), { recursive: true, force: true });
  if (failure !== undefined) throw failure;
}

if (require.main === module) {
  runContainerStory().then(
    () => step('done'),
    (err: unknown) => {
      process.stderr.write(`demo failed: ${err instanceof Error ? err.stack : String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
