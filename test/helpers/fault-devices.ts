/**
 * Faulty disks for the pool to sit on: a dm device over a loop device whose table starts as
 * `linear` and is swapped, while the pool runs, for dm-flakey, dm-delay, dm-dust or `error`,
 * then back. Built with the library's own dm task layer (no dmsetup process per step).
 */
import { execFile } from 'node:child_process';
import { dm, sys } from '../../lib';
import { native } from '../../lib/native';
import { runTask } from '../../lib/dm/task';
import type { TargetLine } from '../../lib/dm';

/** A fault on the device under the pool: the table that replaces `linear` while it lasts. */
export type Fault =
  /** dm-flakey, always down: writes fail with EIO, reads pass. */
  | { kind: 'flakey-error-writes' }
  /** dm-flakey, always down: writes are acknowledged and thrown away, reads pass. */
  | { kind: 'flakey-drop-writes' }
  /**
   * dm-flakey, always down, no feature: every read and write fails. The 6.1 kernel has no
   * `error_reads` feature (added in 6.5; 6.1 refuses it as unknown), so this is how reads fail.
   */
  | { kind: 'flakey-error-all' }
  /** dm-delay: every read and write held for `ms`. */
  | { kind: 'delay'; ms: number }
  /** dm-dust with 64 KiB blocks: reads of the listed blocks fail once enabled. */
  | { kind: 'dust'; badBlocks: number[] }
  /** The `error` target: every I/O fails. */
  | { kind: 'error' };

export const DUST_BLOCK_BYTES = 64 * 1024;

/** udev makes the node and skips the disk rules (blkid on every table swap costs seconds with udev on). */
function privateUdevFlags(): number {
  const f = native().udevFlags;
  return f.DISABLE_DISK_RULES | f.DISABLE_OTHER_RULES;
}

export function faultName(f: Fault): string {
  switch (f.kind) {
    case 'delay':
      return `delay ${f.ms} ms`;
    case 'dust':
      return `dust, ${f.badBlocks.length} bad blocks`;
    default:
      return f.kind;
  }
}

export class FaultyDisk {
  private constructor(
    /** The device-mapper name; the pool is given /dev/mapper/NAME. */
    readonly name: string,
    readonly loop: sys.LoopDevice,
    readonly sectors: number,
  ) {}

  get path(): string {
    return `/dev/mapper/${this.name}`;
  }

  /**
   * A linear device of the whole file, over a new loop device. We keep the loop device open
   * until {@link remove}: an `error` table holds no reference to it, and an autoclear loop
   * device that nobody holds unbinds itself, so the healed table would map a dead device.
   */
  static async create(name: string, file: string): Promise<FaultyDisk> {
    const loop = await sys.attachLoopDevice(file);
    try {
      const sectors = await dm.deviceSizeSectors(loop.path);
      const disk = new FaultyDisk(name, loop, sectors);
      await runTask({ type: 'create', name, targets: [disk.linear()], addNode: 'create', udevFlags: privateUdevFlags(), operation: 'create fault device' });
      return disk;
    } catch (err) {
      await loop.detach();
      throw err;
    }
  }

  private linear(): TargetLine {
    return { start: 0, length: this.sectors, type: 'linear', params: `${this.loop.path} 0` };
  }

  private table(f: Fault): TargetLine {
    const base = { start: 0, length: this.sectors };
    const dev = this.loop.path;
    switch (f.kind) {
      case 'flakey-error-writes':
        return { ...base, type: 'flakey', params: `${dev} 0 0 3600 1 error_writes` };
      case 'flakey-drop-writes':
        return { ...base, type: 'flakey', params: `${dev} 0 0 3600 1 drop_writes` };
      case 'flakey-error-all':
        return { ...base, type: 'flakey', params: `${dev} 0 0 3600` };
      case 'delay':
        return { ...base, type: 'delay', params: `${dev} 0 ${f.ms}` };
      case 'dust':
        return { ...base, type: 'dust', params: `${dev} 0 ${DUST_BLOCK_BYTES}` };
      case 'error':
        return { ...base, type: 'error', params: '' };
    }
  }

  /** Swaps the table for the fault's (the pool above keeps running); dust's bad blocks are added and enabled. */
  async inject(f: Fault): Promise<void> {
    await this.load(this.table(f));
    if (f.kind === 'dust') {
      for (const b of f.badBlocks) await dm.sendMessage(this.name, `addbadblock ${b}`);
      await dm.sendMessage(this.name, 'enable');
    }
  }

  /** Back to linear: the disk works again. */
  async heal(): Promise<void> {
    await this.load(this.linear());
  }

  async targetType(): Promise<string> {
    return (await dm.getTable(this.name))[0].type;
  }

  private async load(t: TargetLine): Promise<void> {
    await runTask({ type: 'reload', name: this.name, targets: [t], operation: `load ${t.type}` });
    await runTask({ type: 'resume', name: this.name, udevFlags: privateUdevFlags(), operation: `resume ${t.type}` });
  }

  async remove(): Promise<void> {
    try {
      await dm.removeDevice(this.name, { retryBudgetMs: 5000 });
    } finally {
      await this.loop.detach();
    }
  }
}

function run(cmd: string, args: string[]): Promise<{ ok: boolean; stdout: string; stderr: string }> {
  return new Promise((resolve) =>
    execFile(cmd, args, { timeout: 60_000, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => resolve({ ok: !err, stdout, stderr })),
  );
}

/** thin_check of a metadata device (pool torn down): clean or not, and what it said. */
export async function thinCheckDevice(device: string, extra: string[] = []): Promise<{ ok: boolean; output: string }> {
  const r = await run('thin_check', [...extra, device]);
  return { ok: r.ok, output: `${r.stdout}${r.stderr}`.trim() };
}

/** What a metadata device (pool torn down) holds, from one thin_dump: its thin ids and committed transaction id. */
export async function thinDumpSummary(device: string): Promise<{ ids: number[]; transactionId: number }> {
  const r = await run('thin_dump', [device]);
  const tx = /<superblock [^>]*transaction="(\d+)"/.exec(r.stdout);
  if (!r.ok || !tx) throw new Error(`thin_dump ${device}: ${r.stderr.trim() || 'no superblock line'}`);
  const ids = [...r.stdout.matchAll(/<device dev_id="(\d+)"/g)].map((m) => Number(m[1])).sort((a, b) => a - b);
  return { ids, transactionId: Number(tx[1]) };
}
