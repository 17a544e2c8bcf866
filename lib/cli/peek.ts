/**
 * `devmapper peek ID [PATH]`: looks into a stopped container's volume the way a person would
 * by hand, without opening the DeviceSet and without writing to the root at all: read the
 * metadata file's device_id and size, map that thin id from the pool read-only (bringing the
 * pool up read-only from its loop files when it is not active), mount it read-only on a
 * temporary directory, list a directory, then unmount, unmap and remove everything it made,
 * whatever happened.
 */
import { lstat, mkdtemp, readdir, readFile, rmdir, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative, resolve, sep } from 'node:path';
import * as dm from '../dm';
import { DevmapperError, ErrorCodes } from '../errors';
import * as sys from '../sys';
import { unknownDevice } from '../deviceset/devices';
import { probeFilesystem } from '../deviceset/filesystem';
import { checkDeviceHash, deviceName, devicePrefixFromStat, poolName as poolNameOf } from '../deviceset/hash';
import { decodeDevice, decodeDeviceSet, DEVICE_SET_FILE } from '../deviceset/metadata-store';
import { resolveOptions } from '../deviceset/options';
import { usageError } from './args';
import { arg, optionalArg, type CommandContext, type CommandSpec, type ParsedCommand } from './command';

export interface PeekEntry {
  name: string;
  type: 'file' | 'directory' | 'symlink' | 'other';
  /** Permission bits, octal ("755"). */
  mode: string;
  sizeBytes: number;
  uid: number;
  gid: number;
}

export interface PeekResult {
  id: string;
  deviceId: number;
  /** The directory listed, relative to the volume's top ('' = the top). */
  path: string;
  entries: PeekEntry[];
}

/** PATH inside the volume: relative, never leaving it. */
export function checkPeekPath(path: string | undefined): string {
  if (path === undefined || path === '' || path === '/' || path === '.') return '';
  if (path.includes('\0')) throw usageError('peek: PATH contains a NUL byte', 'PATH');
  const rel = relative('/', resolve('/', path));
  if (rel.startsWith('..')) throw usageError(`peek: PATH must stay inside the volume, not ${JSON.stringify(path)}`, 'PATH');
  return rel;
}

async function readText(file: string): Promise<string | null> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

/** Undo steps run last-in first-out; every one runs, the first failure is kept. */
class Cleanup {
  private readonly steps: Array<() => Promise<void>> = [];
  push(step: () => Promise<void>): void {
    this.steps.push(step);
  }
  async run(): Promise<unknown> {
    let failure: unknown;
    for (const step of this.steps.reverse()) {
      try {
        await step();
      } catch (err) {
        failure ??= err;
      }
    }
    return failure;
  }
}

/** The pool, found active or brought up read-only from the root's loop files (undone by cleanup). */
async function poolForPeek(root: string, poolName: string, external: boolean, blockSizeSectors: number, cleanup: Cleanup): Promise<string> {
  if (await dm.getInfo(poolName)) return poolName;
  if (external)
    throw new DevmapperError(`the pool ${poolName} (dm.thinpooldev) is not active`, { code: 'ENXIO', device: poolName, argument: 'dm.thinpooldev' });
  const dataFile = join(root, 'devicemapper', 'data');
  const metadataFile = join(root, 'devicemapper', 'metadata');
  for (const f of [dataFile, metadataFile]) {
    if (!(await stat(f).catch(() => null))?.isFile())
      throw new DevmapperError(`the pool ${poolName} is not active and ${f} does not exist: bring the pool up first (devmapper pool status)`, {
        code: 'ENXIO',
        device: poolName,
      });
  }
  // A name of our own, so nothing takes this read-only pool for the root's real one.
  const tempPool = `devmapper-peek-${process.pid}-pool`;
  const loops = [];
  try {
    // The loop devices stay writable (the thin-pool target opens its data device read-write);
    // the pool's read_only feature is what keeps its metadata and data untouched.
    for (const f of [dataFile, metadataFile]) {
      const found = (await sys.findLoopDevices(f))[0];
      loops.push(found ? { path: found.path, release: () => undefined } : await sys.attachLoopDevice(f));
    }
    await dm.createPool(tempPool, loops[0]!.path, loops[1]!.path, { blockSizeSectors, features: ['read_only', 'skip_block_zeroing'] });
  } finally {
    // From here the pool holds the loop devices; with autoclear they go when it goes.
    for (const l of loops) l.release();
  }
  cleanup.push(() => dm.removeDevice(tempPool));
  return tempPool;
}

export async function peekVolume(root: string, options: string[], id: string, path: string): Promise<PeekResult> {
  const opts = resolveOptions(options);
  const rootStat = await stat(root, { bigint: true }).catch(() => null);
  if (!rootStat?.isDirectory()) throw new DevmapperError(`no devmapper root at ${root}`, { code: 'ENOENT', device: root });
  const prefix = devicePrefixFromStat(rootStat);
  checkDeviceHash(id, { devicePrefix: prefix });

  const file = join(root, 'metadata', id);
  const text = await readText(file);
  if (text === null) throw unknownDevice(id);
  const meta = decodeDevice(text, file);
  if (meta.deleted) throw unknownDevice(id);
  const setText = await readText(join(root, 'metadata', DEVICE_SET_FILE));
  const recordedFs = setText === null ? '' : decodeDeviceSet(setText, DEVICE_SET_FILE).baseDeviceFilesystem;

  const own = await dm.getInfo(deviceName(prefix, id));
  if (own && own.openCount > 0)
    throw new DevmapperError(`${id} is in use (its device ${deviceName(prefix, id)} is open, mounted?): look at it where it is mounted`, {
      code: 'EBUSY',
      device: id,
    });

  const cleanup = new Cleanup();
  let result: PeekResult | undefined;
  let failure: unknown;
  try {
    const pool = await poolForPeek(root, opts.thinPoolDevice ?? poolNameOf(prefix), opts.thinPoolDevice !== null, opts.blockSizeSectors, cleanup);
    const name = `devmapper-peek-${process.pid}-${meta.deviceId}`;
    await dm.activateDevice(pool, name, meta.deviceId, meta.size, { readOnly: true, udevPrivate: true });
    cleanup.push(() => dm.removeDevice(name));
    const device = `/dev/mapper/${name}`;
    const fs = recordedFs === 'ext4' || recordedFs === 'xfs' ? recordedFs : (await probeFilesystem(device)).type;
    if (fs !== 'ext4' && fs !== 'xfs') throw new DevmapperError(`no ext4 or xfs file system on ${id}`, { code: ErrorCodes.BASE_DEVICE_CHANGED, device: id });

    const dir = await mkdtemp(join(tmpdir(), 'devmapper-peek-'));
    cleanup.push(() => rmdir(dir));
    // Never replay a journal: the device is read-only, and the volume must stay as it was.
    await sys.mount(device, dir, fs, { readOnly: true, data: fs === 'xfs' ? 'nouuid,norecovery' : 'noload' });
    cleanup.push(() => sys.unmount(dir));

    const target = join(dir, path);
    if (target !== dir && !target.startsWith(dir + sep)) throw usageError('peek: PATH leaves the volume', 'PATH');
    const st = await lstat(target).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') throw new DevmapperError(`${id} has no ${path}`, { code: 'ENOENT', device: id });
      throw err;
    });
    if (!st.isDirectory()) throw new DevmapperError(`${path} in ${id} is not a directory`, { code: 'ENOTDIR', device: id });
    const entries: PeekEntry[] = [];
    for (const e of (await readdir(target, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const s = await lstat(join(target, e.name));
      entries.push({
        name: e.name,
        type: s.isFile() ? 'file' : s.isDirectory() ? 'directory' : s.isSymbolicLink() ? 'symlink' : 'other',
        mode: (s.mode & 0o7777).toString(8),
        sizeBytes: s.size,
        uid: s.uid,
        gid: s.gid,
      });
    }
    result = { id, deviceId: meta.deviceId, path, entries };
  } catch (err) {
    failure = err;
  }
  const cleanupFailure = await cleanup.run();
  if (failure !== undefined) throw failure;
  if (cleanupFailure !== undefined) throw cleanupFailure;
  return result as PeekResult;
}

export async function peek(cmd: ParsedCommand, ctx: CommandContext): Promise<void> {
  const id = arg(cmd, 'ID');
  const path = checkPeekPath(optionalArg(cmd, 'PATH'));
  const result = await peekVolume(cmd.global.root, cmd.global.options, id, path);
  ctx.out.result(result, (r) =>
    ctx.out.table(
      ['MODE', 'UID', 'GID', 'SIZE', 'NAME'],
      r.entries.map((e) => [`${e.type === 'directory' ? 'd' : e.type === 'symlink' ? 'l' : e.type === 'file' ? '-' : '?'}${e.mode.padStart(4, '0')}`, e.uid, e.gid, e.sizeBytes, e.name]),
      { align: ['left', 'right', 'right', 'right', 'left'] },
    ),
  );
}

export const peekCommands: CommandSpec[] = [
  {
    name: 'peek',
    summary: "lists a stopped layer's files read-only (top level: id, lost+found, rootfs), writing nothing",
    description:
      'Reads metadata/ID, maps its thin id from the pool read-only (the pool itself comes up read-only\n' +
      'from devicemapper/data and metadata when it is not active), mounts it read-only on a temporary\n' +
      'directory, lists PATH, then unmounts and unmaps everything. The root is never written to; a\n' +
      'mounted layer is refused (exit 4).',
    positionals: [
      { name: 'ID', required: true, description: 'the layer (a stopped container, an image)' },
      { name: 'PATH', required: false, description: 'a directory inside the volume (default its top; rootfs/etc, ...)' },
    ],
    check: (cmd) => void checkPeekPath(optionalArg(cmd, 'PATH')),
    examples: ['devmapper peek ctr', 'devmapper peek ctr rootfs/etc --json'],
    run: peek,
  },
];
