/**
 * File systems on thin devices: mkfs as Docker did, a superblock probe for the type and
 * UUID (no blkid process, no cache), and growing after a device got bigger.
 */
import { execFile } from 'node:child_process';
import { open, mkdtemp, rmdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { DevmapperError, ErrorCodes } from '../errors';
import * as sys from '../sys';

const execFileP = promisify(execFile);

export type FilesystemType = 'ext4' | 'xfs';

export interface ProbedFilesystem {
  type: FilesystemType | 'ext2/3' | null;
  uuid: string | null;
}

function formatUuid(b: Buffer): string {
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** Reads the superblock: ext4 (magic 0xEF53 at 1080) or xfs ('XFSB' at 0). `label` names the device in errors (default its path). */
export async function probeFilesystem(device: string, label = device): Promise<ProbedFilesystem> {
  // A device whose disk fails gives EIO here: typed, naming the device, like every other failure.
  const typed = (err: unknown) => {
    const e = err as NodeJS.ErrnoException;
    return new DevmapperError(`reading the file system's superblock on ${label}${label === device ? '' : ` (${device})`}: ${e.message}`, {
      code: typeof e.code === 'string' ? e.code : ErrorCodes.DM_FAILED,
      errno: typeof e.errno === 'number' ? Math.abs(e.errno) : undefined,
      operation: 'probe file system',
      device: label,
      cause: err,
    });
  };
  const fh = await open(device, 'r').catch((err: unknown) => {
    throw typed(err);
  });
  try {
    const buf = Buffer.alloc(2048);
    await fh.read(buf, 0, buf.length, 0).catch((err: unknown) => {
      throw typed(err);
    });
    if (buf.toString('latin1', 0, 4) === 'XFSB') return { type: 'xfs', uuid: formatUuid(buf.subarray(32, 48)) };
    if (buf.readUInt16LE(1024 + 56) === 0xef53) {
      const incompat = buf.readUInt32LE(1024 + 96);
      const extents = (incompat & 0x40) !== 0;
      return { type: extents ? 'ext4' : 'ext2/3', uuid: formatUuid(buf.subarray(1024 + 104, 1024 + 120)) };
    }
    return { type: null, uuid: null };
  } finally {
    await fh.close();
  }
}

async function run(cmd: string, args: string[], device: string): Promise<void> {
  try {
    await execFileP(cmd, args, { maxBuffer: 4 * 1024 * 1024 });
  } catch (err) {
    const e = err as { stderr?: string; code?: number | string };
    const why = (e.stderr ?? '').trim().split('\n').slice(-2).join(' ');
    throw new DevmapperError(`${cmd} ${args.join(' ')} failed${why ? `: ${why}` : ''}`, {
      code: e.code === 'ENOENT' ? 'ENOENT' : ErrorCodes.COMMAND_FAILED,
      operation: cmd,
      device,
      cause: err,
    });
  }
}

/**
 * mkfs as Docker did: ext4 without discard at mkfs time and with inode tables and journal
 * initialised now (lazy init would write behind the user's back and fill thin devices),
 * then tune2fs to turn off periodic checks; xfs as is. `extraArgs` are dm.mkfsarg.
 */
export async function makeFilesystem(device: string, type: FilesystemType, extraArgs: readonly string[]): Promise<void> {
  if (type === 'ext4') {
    await run('mkfs.ext4', ['-q', '-F', '-E', 'nodiscard,lazy_itable_init=0,lazy_journal_init=0', ...extraArgs, device], device);
    await run('tune2fs', ['-c', '-1', '-i', '0', device], device);
  } else {
    await run('mkfs.xfs', ['-q', '-f', ...extraArgs, device], device);
  }
}

/** Mount options a snapshot needs: xfs refuses a second mount of the same UUID without nouuid. */
export function requiredMountOptions(type: FilesystemType): string[] {
  return type === 'xfs' ? ['nouuid'] : [];
}

/** Grows the file system to the device's size, online, on a private temporary mount. */
export async function growFilesystem(device: string, type: FilesystemType): Promise<void> {
  const mnt = await mkdtemp(join(tmpdir(), 'devmapper-grow-'));
  try {
    await sys.mount(device, mnt, type, { data: requiredMountOptions(type).join(',') });
    try {
      if (type === 'ext4') await run('resize2fs', [device], device);
      else await run('xfs_growfs', [mnt], device);
    } finally {
      await sys.unmount(mnt);
    }
  } finally {
    await rmdir(mnt);
  }
}

/** Docker's default: xfs when mkfs.xfs exists and the kernel has xfs, else ext4. */
export async function defaultFilesystem(): Promise<FilesystemType> {
  try {
    await execFileP('mkfs.xfs', ['-V']);
  } catch {
    return 'ext4';
  }
  await execFileP('modprobe', ['xfs']).catch(() => undefined);
  const { readFile } = await import('node:fs/promises');
  const fss = await readFile('/proc/filesystems', 'utf8').catch(() => '');
  return /\bxfs\b/.test(fss) ? 'xfs' : 'ext4';
}
