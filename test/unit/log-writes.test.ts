/**
 * The dm-log-writes reader and replayer (test/helpers/log-writes.ts) on logs built here in the
 * kernel's layout: the super, headers, marks, data, flushes, FUA writes and discards.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DevmapperError, ErrorCodes } from '../../lib/errors';
import { flushPoints, LOG_FLAGS, LogReplayer, parseLog } from '../helpers/log-writes';

interface Rec {
  sector?: number;
  flags?: number;
  data?: Buffer;
  discard?: number;
  mark?: string;
}

/** A log as the kernel lays it out, with sector size ss. */
function buildLog(recs: Rec[], ss = 512, count = recs.length): Buffer {
  const parts: Buffer[] = [];
  const sup = Buffer.alloc(ss);
  sup.writeBigUInt64LE(0x6a736677736872n, 0);
  sup.writeBigUInt64LE(1n, 8);
  sup.writeBigUInt64LE(BigInt(count), 16);
  sup.writeUInt32LE(ss, 24);
  parts.push(sup);
  for (const r of recs) {
    const h = Buffer.alloc(ss);
    let flags = r.flags ?? 0;
    let sectors = 0;
    let len = 0;
    if (r.mark !== undefined) {
      flags |= LOG_FLAGS.MARK;
      len = Buffer.byteLength(r.mark);
      h.write(r.mark, 32);
    } else if (r.discard !== undefined) {
      flags |= LOG_FLAGS.DISCARD;
      sectors = r.discard;
    } else if (r.data) sectors = r.data.length / ss;
    h.writeBigUInt64LE(BigInt(r.sector ?? 0), 0);
    h.writeBigUInt64LE(BigInt(sectors), 8);
    h.writeBigUInt64LE(BigInt(flags), 16);
    h.writeBigUInt64LE(BigInt(len), 24);
    parts.push(h);
    if (r.data) parts.push(r.data);
  }
  return Buffer.concat(parts);
}

const fill = (byte: number, bytes: number): Buffer => Buffer.alloc(bytes, byte);

describe('dm-log-writes log reader', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'logw-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const RECS: Rec[] = [
    { sector: 2, data: fill(0xaa, 1024) },
    { sector: 0, data: fill(0xbb, 512) },
    { flags: LOG_FLAGS.FLUSH },
    { mark: 'op-1' },
    { sector: 1, data: fill(0xcc, 2048), flags: LOG_FLAGS.FUA | LOG_FLAGS.METADATA },
    { sector: 2, discard: 2 },
    { flags: LOG_FLAGS.FLUSH },
    { sector: 7, data: fill(0xdd, 512) },
  ];

  test('parses the super, headers, marks and data offsets', () => {
    const path = join(dir, 'log');
    writeFileSync(path, buildLog(RECS));
    const log = parseLog(path);
    expect(log.super).toEqual({ entries: 8, sectorSize: 512 });
    expect(log.entries.map((e) => [e.sector, e.sectors, e.flags])).toEqual([
      [2, 2, 0],
      [0, 1, 0],
      [0, 0, LOG_FLAGS.FLUSH],
      [0, 0, LOG_FLAGS.MARK],
      [1, 4, LOG_FLAGS.FUA | LOG_FLAGS.METADATA],
      [2, 2, LOG_FLAGS.DISCARD],
      [0, 0, LOG_FLAGS.FLUSH],
      [7, 1, 0],
    ]);
    expect(log.entries[3].mark).toBe('op-1');
    // Header at 512, data of entry 0 right after it; entry 1's header after 1024 bytes of data.
    expect(log.entries[0].dataOffset).toBe(1024);
    expect(log.entries[1].dataOffset).toBe(512 + 512 + 1024 + 512);
    expect(flushPoints(log).map((e) => e.index)).toEqual([2, 4, 6]);
  });

  test('replays forward in stretches: each flush point gives the device as it stood then', () => {
    const path = join(dir, 'log');
    const target = join(dir, 'dev');
    writeFileSync(path, buildLog(RECS));
    writeFileSync(target, Buffer.alloc(8 * 512, 0x11));
    const log = parseLog(path);
    const r = new LogReplayer(path, log, target);
    const at = (n: number): number[] => {
      r.replayTo(n);
      const b = readFileSync(target);
      return Array.from({ length: 8 }, (_, i) => b[i * 512]);
    };
    try {
      expect(at(2)).toEqual([0xbb, 0x11, 0xaa, 0xaa, 0x11, 0x11, 0x11, 0x11]);
      expect(at(4)).toEqual([0xbb, 0xcc, 0xcc, 0xcc, 0xcc, 0x11, 0x11, 0x11]);
      expect(at(6)).toEqual([0xbb, 0xcc, 0, 0, 0xcc, 0x11, 0x11, 0x11]);
      expect(at(7)).toEqual([0xbb, 0xcc, 0, 0, 0xcc, 0x11, 0x11, 0xdd]);
      expect(r.position).toBe(8);
      expect(() => r.replayTo(3)).toThrow(DevmapperError);
      expect(() => r.replayTo(8)).toThrow(DevmapperError);
    } finally {
      r.close();
    }
  });

  test('a 4096-byte sector size counts sectors and offsets in 4096-byte units', () => {
    const path = join(dir, 'log');
    const target = join(dir, 'dev');
    writeFileSync(path, buildLog([{ sector: 1, data: fill(0x5a, 4096) }, { flags: LOG_FLAGS.FLUSH }], 4096));
    writeFileSync(target, Buffer.alloc(3 * 4096));
    const log = parseLog(path);
    expect(log.entries[0]).toMatchObject({ sector: 1, sectors: 1, dataOffset: 8192 });
    const r = new LogReplayer(path, log, target);
    r.replayTo(1);
    r.close();
    const b = readFileSync(target);
    expect([b[4095], b[4096], b[8191], b[8192]]).toEqual([0, 0x5a, 0x5a, 0]);
  });

  test('only the entries the super counts are read', () => {
    const path = join(dir, 'log');
    writeFileSync(path, buildLog(RECS, 512, 3));
    expect(parseLog(path).entries).toHaveLength(3);
  });

  test.each([
    ['a bad magic', (b: Buffer) => b.writeBigUInt64LE(0x1234n, 0), /bad magic/],
    ['another version', (b: Buffer) => b.writeBigUInt64LE(2n, 8), /version 2/],
    ['a sector size that is not a power of two', (b: Buffer) => b.writeUInt32LE(1000, 24), /sector size 1000/],
    ['more entries than the file holds', (b: Buffer) => b.writeBigUInt64LE(99n, 16), /past the end/],
  ])('refuses %s with ERR_PARSE', (_what, spoil, message) => {
    const path = join(dir, 'log');
    const log = buildLog(RECS);
    spoil(log);
    writeFileSync(path, log);
    expect(() => parseLog(path)).toThrow(expect.objectContaining({ code: ErrorCodes.PARSE, message: expect.stringMatching(message) }));
  });

  test('refuses a truncated data block', () => {
    const path = join(dir, 'log');
    const log = buildLog(RECS);
    writeFileSync(path, log.subarray(0, log.length - 100));
    expect(() => parseLog(path)).toThrow(expect.objectContaining({ code: ErrorCodes.PARSE, message: expect.stringMatching(/data runs past/) }));
  });
});
