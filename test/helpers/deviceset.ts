/**
 * A throwaway DeviceSet root under the scratch directory, always shut down and removed, and
 * a way to run DeviceSet operations in another process (reopen and crash-point tests).
 */
import { execFile } from 'node:child_process';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { DeviceSet, type DeviceSetOptions } from '../../lib/deviceset';
import { kernelEnv } from './kernel-env';
import { SCRATCH_ROOT, uniquePrefix } from './names';

/** Small and quick: 64 MiB base, ext4, sparse 1 GiB data file. */
export function testOptions(extra: string[] = []): string[] {
  const opts = ['dm.basesize=64M', 'dm.loopdatasize=1G', 'dm.loopmetadatasize=64M', 'dm.fs=ext4'];
  // Without udevd the library refuses to start unless told it is fine (device nodes may race).
  if (kernelEnv().udev === 'off') opts.push('dm.override_udev_sync_check=true');
  return [...opts, ...extra];
}

/** The typed form of testOptions(), for the options only the typed form has (ours, such as errorIfNoSpace). */
export function typedTestOptions(extra: DeviceSetOptions = {}): DeviceSetOptions {
  return {
    baseSize: '64M',
    loopDataSize: '1G',
    loopMetadataSize: '64M',
    fs: 'ext4',
    overrideUdevSyncCheck: kernelEnv().udev === 'off',
    ...extra,
  };
}

export async function newRoot(): Promise<string> {
  const dir = join(SCRATCH_ROOT, uniquePrefix());
  await mkdir(dir, { recursive: true });
  return join(dir, 'root');
}

export async function withDeviceSet<T>(
  fn: (ds: DeviceSet, root: string) => Promise<T>,
  opts: { options?: string[] | DeviceSetOptions; root?: string } = {},
): Promise<T> {
  const root = opts.root ?? (await newRoot());
  const ds = await DeviceSet.open(root, { doInit: true, options: opts.options ?? testOptions() });
  try {
    return await fn(ds, root);
  } finally {
    await ds.shutdown();
    if (!opts.root) await rm(join(root, '..'), { recursive: true, force: true });
  }
}

export interface ChildResult {
  /** Exit code, or null when killed. */
  code: number | null;
  signal: NodeJS.Signals | null;
  result: { ok: boolean; out?: unknown[]; code?: string; message?: string } | null;
  /** Every JSON line the child printed, in order (the cycle reports of a `cycles` run). */
  lines: Record<string, unknown>[];
  stderr: string;
}

const CHILD = join(__dirname, '..', 'fixtures', 'deviceset-child.js');

/** Runs ops on the root in a new process; crashPoint makes it SIGKILL itself there. */
export function runChild(
  spec: { root: string; options: string[] | DeviceSetOptions; ops?: object[]; cycles?: object[]; shutdown?: boolean; check?: boolean },
  crash?: { point: string; after?: number },
): Promise<ChildResult> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CHILD, JSON.stringify({ ...spec, crash })], { timeout: 300_000 }, (err, stdout, stderr) => {
      const e = err as (Error & { code?: number | string; signal?: NodeJS.Signals }) | null;
      const lines: Record<string, unknown>[] = [];
      for (const text of stdout.trim().split('\n')) {
        try {
          if (text) lines.push(JSON.parse(text));
        } catch {
          // not a report line
        }
      }
      const last = lines[lines.length - 1];
      const result = last && 'ok' in last ? (last as ChildResult['result']) : null;
      resolve({
        code: e ? (typeof e.code === 'number' ? e.code : null) : 0,
        signal: e?.signal ?? null,
        result,
        lines,
        stderr,
      });
    });
  });
}

export async function readJson(path: string): Promise<Record<string, unknown>> {
  return JSON.parse(await readFile(path, 'utf8'));
}

/**
 * thin_check of a pool's metadata file once the pool is gone. thin_check opens with O_DIRECT,
 * which tmpfs refuses, so it reads the file through a read-only loop device.
 */
export async function thinCheck(metadataFile: string): Promise<void> {
  const { execFile: ef } = await import('node:child_process');
  const { sys } = await import('../../lib');
  const loop = await sys.attachLoopDevice(metadataFile, { readOnly: true });
  try {
    await new Promise<void>((resolve, reject) =>
      ef('thin_check', ['-q', loop.path], (err, _out, stderr) =>
        err ? reject(new Error(`thin_check ${metadataFile} failed: ${stderr.trim() || err.message}`)) : resolve(),
      ),
    );
  } finally {
    await loop.detach();
  }
}
