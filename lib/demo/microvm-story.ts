/**
 * The second story (`npm run demo -- microvm`): root disks for microVMs from an image. A
 * small busybox image is built here in both forms (docker save tar, OCI layout with gzip
 * layers) and imported into a Snapshotter: the second import finds every layer committed
 * already. Then 20 copy-on-write root disks are made from it, timed one by one; one is
 * mounted and busybox run from it; the pool's space shows what they share; teardown.
 *
 * Run it with `npm run demo -- microvm` (which boots the sandbox kernel when the host has no
 * device-mapper), or as root on a device-mapper host: `node dist/demo/microvm-story.js`.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { dm, images, Snapshotter, sys } from '../index';
import { writeDockerSave, writeOciLayout } from './busybox-image';

const run = promisify(execFile);
const DISKS = 20;
const MiB = 2 ** 20;
const OPTIONS = ['dm.basesize=256M', 'dm.loopdatasize=2G', 'dm.loopmetadatasize=128M', 'dm.fs=ext4'];

function step(text: string): void {
  process.stdout.write(`• ${text}\n`);
}

function detail(text: string): void {
  process.stdout.write(`    ${text}\n`);
}

const ms = (t: number) => `${t.toFixed(1)} ms`;

export async function runMicrovmStory(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'devmapper-microvm-'));
  const root = join(dir, 'root');
  let sn: Snapshotter | null = null;
  const disks: string[] = [];
  let failure: unknown;
  try {
    step(`device-mapper driver ${await dm.getDriverVersion()}, libdevmapper ${dm.getLibraryVersion()}, udev sync ${dm.udevSyncSupported() ? 'on' : 'off'}`);
    const options = dm.udevSyncSupported() ? OPTIONS : [...OPTIONS, 'dm.override_udev_sync_check=true'];

    step('build a busybox image offline: docker save tar, and OCI layout (gzip layers)');
    const dockerTar = await writeDockerSave(join(dir, 'busybox.tar'), 'busybox:demo');
    const ociDir = await writeOciLayout(join(dir, 'busybox-oci'), 'demo');
    detail(`${dockerTar}, ${ociDir}`);

    step(`Snapshotter.open(${root}): the thin pool on loopback files, the base device`);
    sn = await Snapshotter.open(root, { options });

    step('images.import the docker save tar: each layer unpacked into a snapshot named by its chain ID');
    let t = performance.now();
    const first = await images.import(dockerTar, { snapshotter: sn, name: 'busybox' });
    detail(`${first.image.chainIds.length} layers, ${first.unpacked} unpacked, ${first.reused} reused, ${ms(performance.now() - t)}`);
    for (const c of first.image.chainIds) detail(`committed ${c}`);

    step('images.import the OCI layout: same diff IDs, so the same chain IDs: nothing to unpack');
    t = performance.now();
    const second = await images.import(ociDir, { snapshotter: sn, name: 'busybox-oci' });
    detail(`${second.unpacked} unpacked, ${second.reused} reused, ${ms(performance.now() - t)}; snapshots: ${JSON.stringify(sn.counts())}`);

    const before = (await sn.deviceSet.status()).data.usedBytes;
    step(`${DISKS} root disks of busybox (images.rootDisk: prepare + activate each), one at a time`);
    const times: number[] = [];
    for (let i = 0; i < DISKS; i++) {
      t = performance.now();
      const disk = await images.rootDisk('busybox', `vm-${i}`, { snapshotter: sn, ...(i === 0 ? { size: 512 * MiB } : {}) });
      times.push(performance.now() - t);
      disks.push(disk.key);
      if (i < 2) detail(`vm-${i}: ${disk.device}${i === 0 ? ' (grown to 512 MiB)' : ''}`);
    }
    const sorted = [...times].sort((a, b) => a - b);
    detail(`per disk: p50 ${ms(sorted[Math.floor(DISKS / 2)]!)}, max ${ms(sorted[DISKS - 1]!)} (vm-0 includes its resize2fs), total ${ms(times.reduce((a, b) => a + b, 0))}`);

    step('mount vm-1 as a VM would see its disk, and run busybox from it');
    const mnt = join(dir, 'mnt');
    await mkdir(mnt);
    const [m] = await sn.mounts('vm-1');
    await sys.mount(m!.source, mnt, m!.type);
    try {
      const { stdout } = await run('chroot', [mnt, '/bin/sh', '-c', 'cat /etc/os-release; uname -sr; ls /']);
      for (const line of stdout.trim().split('\n')) detail(line);
    } finally {
      await sys.unmount(mnt);
    }

    const after = (await sn.deviceSet.status()).data.usedBytes;
    const usage = await sn.usage('vm-1');
    step('pool space: the disks share the image\'s blocks');
    detail(`image layers: ${(first.image.chainIds.length)} committed snapshots; data used before the disks ${(before / MiB).toFixed(1)} MiB, after ${DISKS} disks ${(after / MiB).toFixed(1)} MiB (vm-0's grown file system wrote its new metadata)`);
    detail(`vm-1's device maps ${(usage.sizeBytes / MiB).toFixed(1)} MiB, all of it shared with the image until written`);

    step('teardown: remove the disks, then both images (their layers go with the last one)');
    for (const key of disks.splice(0)) await sn.remove(key);
    const a = await images.remove('busybox', { snapshotter: sn });
    const b = await images.remove('busybox-oci', { snapshotter: sn });
    detail(`busybox: ${a.removedLayers.length} layers removed (busybox-oci still used them); busybox-oci: ${b.removedLayers.length}; snapshots left: ${JSON.stringify(sn.counts())}`);
  } catch (err) {
    failure = err;
  }
  try {
    if (sn) for (const key of disks) await sn.remove(key).catch(() => undefined);
    await sn?.close();
  } catch (err) {
    failure ??= err;
  }
  await rm(dir, { recursive: true, force: true });
  if (failure !== undefined) throw failure;
}

if (require.main === module) {
  runMicrovmStory().then(
    () => step('done'),
    (err: unknown) => {
      process.stderr.write(`demo failed: ${err instanceof Error ? err.stack : String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
