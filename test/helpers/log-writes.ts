/**
 * A reader and replayer of dm-log-writes logs (no replayer is packaged in Debian), written
 * from the format the kernel documents (admin-guide/device-mapper/log-writes.rst,
 * drivers/md/dm-log-writes.c):
 *
 * - block 0 of the log is the super: magic u64, version u64, entry count u64, sector size
 *   u32, all little-endian; the sector size is the logged device's logical block size;
 * - entries follow from block 1, each a header block (sector u64, sector count u64, flags
 *   u64, data length u64; a MARK's name follows the header in the same block) and then,
 *   unless it is a DISCARD, `sector count` blocks of the data written;
 * - sectors and counts are in units of the log's sector size;
 * - entries are in completion order, a FLUSH entry after every write it covered, so the
 *   device as it stands after replaying entries 0..N is what a power cut just after N leaves.
 *
 * Reading and writing are synchronous on purpose: inside the sandbox kernel a libuv hop costs
 * more than the syscall, and a log has thousands of entries.
 */
import { closeSync, fstatSync, openSync, readSync, writeSync } from 'node:fs';
import { DevmapperError, ErrorCodes } from '../../lib/errors';

export const LOG_FLAGS = { FLUSH: 1, FUA: 2, DISCARD: 4, MARK: 8, METADATA: 16 } as const;

const MAGIC = 0x6a736677736872n;
const VERSION = 1n;
const HEADER_BYTES = 32;
const SUPER_BYTES = 28;

export interface LogSuper {
  /** Entries the super counts (the kernel rewrites it after each FUA and MARK entry). */
  entries: number;
  /** Bytes per log sector: the logged device's logical block size. */
  sectorSize: number;
}

export interface LogEntry {
  /** Position in the log, from 0. */
  index: number;
  /** First sector written (in sectorSize units). */
  sector: number;
  /** Sectors written or discarded (0 for a bare flush or a mark). */
  sectors: number;
  flags: number;
  /** A MARK's name. */
  mark?: string;
  /** Byte offset of the data in the log file (entries with data only). */
  dataOffset: number;
}

export interface ParsedLog {
  super: LogSuper;
  entries: LogEntry[];
}

function parseError(path: string, what: string): DevmapperError {
  return new DevmapperError(`${path}: not a dm-log-writes log this reader understands: ${what}`, { code: ErrorCodes.PARSE, device: path });
}

/** Reads a file front to back through one large buffer. */
class SequentialReader {
  private buf: Buffer;
  private bufStart = 0;
  private bufLen = 0;

  constructor(
    private readonly fd: number,
    readonly size: number,
    chunk = 8 << 20,
  ) {
    this.buf = Buffer.alloc(chunk);
  }

  /** `len` bytes at `offset` (a view into the buffer, valid until the next call). */
  read(offset: number, len: number): Buffer {
    if (offset + len > this.size) throw new RangeError(`read past the end (${offset + len} > ${this.size})`);
    if (offset < this.bufStart || offset + len > this.bufStart + this.bufLen) {
      if (len > this.buf.length) this.buf = Buffer.alloc(len);
      this.bufStart = offset;
      this.bufLen = readSync(this.fd, this.buf, 0, Math.min(this.buf.length, this.size - offset), offset);
      if (this.bufLen < len) throw new RangeError(`short read at ${offset}`);
    }
    return this.buf.subarray(offset - this.bufStart, offset - this.bufStart + len);
  }
}

function u64(buf: Buffer, at: number, path: string, field: string): number {
  const v = buf.readBigUInt64LE(at);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw parseError(path, `${field} ${v} is out of range`);
  return Number(v);
}

/** Parses the super and every entry it counts (headers only; the data stays in the file). */
export function parseLog(path: string): ParsedLog {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    if (size < 512) throw parseError(path, `${size} bytes, less than a super block`);
    const r = new SequentialReader(fd, size);
    const sup = r.read(0, SUPER_BYTES);
    if (sup.readBigUInt64LE(0) !== MAGIC) throw parseError(path, `bad magic 0x${sup.readBigUInt64LE(0).toString(16)}`);
    if (sup.readBigUInt64LE(8) !== VERSION) throw parseError(path, `version ${sup.readBigUInt64LE(8)}`);
    const count = u64(sup, 16, path, 'entry count');
    const sectorSize = sup.readUInt32LE(24);
    if (sectorSize < 512 || (sectorSize & (sectorSize - 1)) !== 0) throw parseError(path, `sector size ${sectorSize}`);
    const entries: LogEntry[] = [];
    let at = sectorSize;
    for (let index = 0; index < count; index++) {
      if (at + sectorSize > size) throw parseError(path, `entry ${index} of ${count} starts past the end of the log`);
      const h = r.read(at, sectorSize);
      const sector = u64(h, 0, path, `entry ${index} sector`);
      const sectors = u64(h, 8, path, `entry ${index} sector count`);
      const flags = u64(h, 16, path, `entry ${index} flags`);
      const dataLen = u64(h, 24, path, `entry ${index} data length`);
      const entry: LogEntry = { index, sector, sectors, flags, dataOffset: at + sectorSize };
      if (flags & LOG_FLAGS.MARK) {
        if (dataLen > sectorSize - HEADER_BYTES) throw parseError(path, `entry ${index}: mark of ${dataLen} bytes`);
        entry.mark = h.toString('utf8', HEADER_BYTES, HEADER_BYTES + dataLen);
      }
      at += sectorSize;
      if (!(flags & LOG_FLAGS.DISCARD)) at += sectors * sectorSize;
      if (at > size) throw parseError(path, `entry ${index}'s data runs past the end of the log`);
      entries.push(entry);
    }
    return { super: { entries: count, sectorSize }, entries };
  } finally {
    closeSync(fd);
  }
}

/** The entries a power cut can follow: every FLUSH and every FUA write. */
export function flushPoints(log: ParsedLog): LogEntry[] {
  return log.entries.filter((e) => (e.flags & (LOG_FLAGS.FLUSH | LOG_FLAGS.FUA)) !== 0);
}

/**
 * Applies a log's entries in order onto a target (a file or a block device of at least the
 * logged device's size), a stretch at a time: replayTo(n) writes entries up to and including
 * n that were not yet written. DISCARD entries write zeros (what a discard may read back as).
 */
export class LogReplayer {
  private next = 0;
  private readonly logFd: number;
  private readonly targetFd: number;
  private readonly reader: SequentialReader;
  private zeros: Buffer = Buffer.alloc(0);
  /** Bytes written to the target so far. */
  bytesWritten = 0;

  constructor(
    private readonly logPath: string,
    private readonly log: ParsedLog,
    target: string,
  ) {
    this.logFd = openSync(logPath, 'r');
    try {
      this.targetFd = openSync(target, 'r+');
    } catch (err) {
      closeSync(this.logFd);
      throw err;
    }
    this.reader = new SequentialReader(this.logFd, fstatSync(this.logFd).size);
  }

  /** Index of the next entry replayTo would write (entries before it are on the target). */
  get position(): number {
    return this.next;
  }

  replayTo(index: number): void {
    if (!Number.isSafeInteger(index) || index >= this.log.entries.length)
      throw new DevmapperError(`no entry ${index} in a log of ${this.log.entries.length}`, { code: ErrorCodes.INVALID_ARGUMENT, device: this.logPath });
    if (index < this.next - 1)
      throw new DevmapperError(`entry ${index} is already replayed (at ${this.next}): replay only moves forward`, {
        code: ErrorCodes.INVALID_ARGUMENT,
        device: this.logPath,
      });
    const ss = this.log.super.sectorSize;
    for (; this.next <= index; this.next++) {
      const e = this.log.entries[this.next];
      if (e.sectors === 0 || e.flags & LOG_FLAGS.MARK) continue;
      const bytes = e.sectors * ss;
      const at = e.sector * ss;
      if (e.flags & LOG_FLAGS.DISCARD) {
        if (this.zeros.length === 0) this.zeros = Buffer.alloc(1 << 20);
        for (let done = 0; done < bytes; done += this.zeros.length)
          this.writeAll(this.zeros.subarray(0, Math.min(this.zeros.length, bytes - done)), at + done);
      } else {
        this.writeAll(this.reader.read(e.dataOffset, bytes), at);
      }
    }
  }

  private writeAll(buf: Buffer, at: number): void {
    for (let done = 0; done < buf.length; ) done += writeSync(this.targetFd, buf, done, buf.length - done, at + done);
    this.bytesWritten += buf.length;
  }

  close(): void {
    closeSync(this.targetFd);
    closeSync(this.logFd);
  }
}
