/**
 * `devmapper peek ID [PATH]`: looks into a stopped container's volume without opening the
 * DeviceSet and without writing to the root at all, through a read-only DeviceSet
 * ({@link DeviceSet.openReadOnly}): its file system mounted read-only for the listing, and
 * everything undone after.
 */
import { lstat, readdir } from 'node:fs/promises';
import { join, relative, resolve, sep } from 'node:path';
import { DevmapperError } from '../errors';
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

/** Lists `path` (relative, checked by {@link checkPeekPath}) of volume `id`, through a read-only DeviceSet. */
export async function peekVolume(root: string, options: string[], id: string, path: string): Promise<PeekResult> {
  const { DeviceSet } = await import('../deviceset');
  const ro = await DeviceSet.openReadOnly(root, options);
  return ro.withVolume(id, async (dir, meta) => {
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
    return { id, deviceId: meta.deviceId, path, entries };
  });
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
