/**
 * Property tests (fast-check) of the pure parsers: tables print and parse back to the same
 * value, status lines written in the kernel's format parse to the values they were made
 * from, sizes parse to their number times their binary multiple, and any input at all either
 * parses or fails with a DevmapperError of the parser's code, never another kind of error.
 */
import fc from 'fast-check';
import { dm, DevmapperError, ErrorCodes } from '../../lib';
import { resolveOptions } from '../../lib/deviceset';
import { parseSize } from '../../lib/util';

const uint = (max = Number.MAX_SAFE_INTEGER) => fc.integer({ min: 0, max });
// A table or status token: printable, no whitespace.
const token = fc.stringMatching(/^[!-~]{1,12}$/);
const devNumber = fc.record({ major: uint(dm.MAX_DEVICE_MAJOR), minor: uint(dm.MAX_DEVICE_MINOR) });
const device = fc.oneof(devNumber.map(dm.formatDeviceNumber), token.map((t) => `/dev/${t}`));

/** Runs fn; returns what it returned, or the error it threw. */
function attempt<T>(fn: () => T): T | unknown {
  try {
    return fn();
  } catch (err) {
    return err;
  }
}

function expectOnlyTypedFailures(parse: (s: string) => unknown, code: string): void {
  fc.assert(
    fc.property(fc.oneof(fc.string(), fc.stringMatching(/^[0-9 /:a-z_-]{0,40}$/)), (input) => {
      const out = attempt(() => parse(input));
      if (out instanceof Error) {
        expect(out).toBeInstanceOf(DevmapperError);
        expect((out as DevmapperError).code).toBe(code);
      }
    }),
    { numRuns: 500 },
  );
}

describe('table lines print and parse back', () => {
  test('target lines: parse(format(t)) is t (params trimmed, inner spacing kept)', () => {
    const target = fc
      .record({
        start: uint(2 ** 40),
        length: fc.integer({ min: 1, max: 2 ** 40 }),
        type: token,
        params: fc.array(token, { maxLength: 6 }).chain((words) =>
          fc.array(fc.constantFrom(' ', '  ', '\t'), { minLength: words.length, maxLength: words.length }).map((seps) => words.map((w, i) => (i ? seps[i] : '') + w).join('')),
        ),
      });
    fc.assert(
      fc.property(target, (t) => {
        expect(dm.parseTargetLine(dm.formatTargetLine(t))).toEqual({ ...t, params: t.params.trim() });
      }),
    );
  });

  test('device numbers, thin-pool and thin tables: parse(format(x)) is x', () => {
    fc.assert(fc.property(devNumber, (d) => expect(dm.parseDeviceNumber(dm.formatDeviceNumber(d))).toEqual(d)));
    const pool = fc
      .record({
        metadataDevice: device,
        dataDevice: device,
        blockSizeSectors: fc.integer({ min: 1, max: dm.MAX_POOL_BLOCK_SIZE_SECTORS / 128 }).map((n) => n * 128),
        lowWaterMarkBlocks: uint(2 ** 32),
        features: fc.array(fc.constantFrom('skip_block_zeroing', 'ignore_discard', 'no_discard_passdown', 'read_only', 'error_if_no_space'), { maxLength: 4 }),
      })
      .filter((t) => t.metadataDevice !== t.dataDevice);
    fc.assert(fc.property(pool, (t) => expect(dm.parseThinPoolTable(dm.formatThinPoolTable(t))).toEqual(t)));
    const thin = fc
      .record({ poolDevice: device, deviceId: uint(dm.MAX_THIN_DEVICE_ID), externalOrigin: fc.option(device, { nil: undefined }) })
      .filter((t) => t.externalOrigin !== t.poolDevice)
      .map((t) => (t.externalOrigin === undefined ? { poolDevice: t.poolDevice, deviceId: t.deviceId } : t));
    fc.assert(fc.property(thin, (t) => expect(dm.parseThinTable(dm.formatThinTable(t))).toEqual(t)));
  });

  test('what a formatter refuses is ERR_INVALID_ARGUMENT; what a parser refuses is ERR_PARSE', () => {
    expectOnlyTypedFailures(dm.parseTargetLine, ErrorCodes.PARSE);
    expectOnlyTypedFailures(dm.parseDeviceNumber, ErrorCodes.PARSE);
    expectOnlyTypedFailures(dm.parseThinPoolTable, ErrorCodes.PARSE);
    expectOnlyTypedFailures(dm.parseThinTable, ErrorCodes.PARSE);
    fc.assert(
      fc.property(fc.record({ major: fc.integer(), minor: fc.integer() }), (d) => {
        const out = attempt(() => dm.formatDeviceNumber(d));
        const valid = d.major >= 0 && d.major <= dm.MAX_DEVICE_MAJOR && d.minor >= 0 && d.minor <= dm.MAX_DEVICE_MINOR;
        if (valid) expect(out).toBe(`${d.major}:${d.minor}`);
        else expect(out).toMatchObject({ code: ErrorCodes.INVALID_ARGUMENT });
      }),
    );
  });
});

describe('status lines in the kernel format parse to the values they were made from', () => {
  // The thin-pool status fields in the order the kernel prints them; a kernel may stop after
  // the fifth (older releases) or any later one.
  // used <= total: the parser refuses a count above its total.
  const usage = (max: number) => uint(max).chain((total) => fc.tuple(uint(total), fc.constant(total)));
  const poolStatus = fc.record({
    transactionId: uint(),
    metadata: usage(2 ** 32),
    data: usage(2 ** 40),
    heldMetadataRoot: fc.option(uint(2 ** 40), { nil: null }),
    mode: fc.constantFrom('rw' as const, 'ro' as const, 'out_of_data_space' as const),
    discards: fc.constantFrom('discard_passdown' as const, 'no_discard_passdown' as const, 'ignore_discard' as const),
    noSpacePolicy: fc.constantFrom('error_if_no_space' as const, 'queue_if_no_space' as const),
    needsCheck: fc.boolean(),
    metadataLowWatermarkBlocks: uint(2 ** 32),
    fields: fc.integer({ min: 5, max: 9 }),
  });

  test('thin-pool status, with 5 to 9 fields', () => {
    fc.assert(
      fc.property(poolStatus, (st) => {
        const printed = [
          st.transactionId,
          `${st.metadata[0]}/${st.metadata[1]}`,
          `${st.data[0]}/${st.data[1]}`,
          st.heldMetadataRoot ?? '-',
          st.mode,
          st.discards,
          st.noSpacePolicy,
          st.needsCheck ? 'needs_check' : '-',
          st.metadataLowWatermarkBlocks,
        ].slice(0, st.fields);
        // The kernel ends its status with a space.
        expect(dm.parseThinPoolStatus(`${printed.join(' ')} `)).toEqual({
          state: 'ok',
          transactionId: st.transactionId,
          metadataUsedBlocks: st.metadata[0],
          metadataTotalBlocks: st.metadata[1],
          dataUsedBlocks: st.data[0],
          dataTotalBlocks: st.data[1],
          heldMetadataRoot: st.heldMetadataRoot,
          mode: st.mode,
          discards: st.fields > 5 ? st.discards : null,
          noSpacePolicy: st.fields > 6 ? st.noSpacePolicy : null,
          needsCheck: st.fields > 7 && st.needsCheck,
          metadataLowWatermarkBlocks: st.fields > 8 ? st.metadataLowWatermarkBlocks : null,
        });
      }),
    );
  });

  test('thin status, and Fail / Error / - alone', () => {
    fc.assert(
      fc.property(uint(), fc.option(uint(), { nil: null }), (mapped, highest) => {
        expect(dm.parseThinStatus(`${mapped} ${highest ?? '-'}`)).toEqual({ state: 'ok', mappedSectors: mapped, highestMappedSector: highest });
      }),
    );
    expect(dm.parseThinStatus('Fail')).toEqual({ state: 'fail' });
    expect(dm.parseThinStatus('-')).toEqual({ state: 'unset' });
    expect(dm.parseThinPoolStatus('Error')).toEqual({ state: 'error' });
  });

  test('any other input is a result or ERR_PARSE', () => {
    expectOnlyTypedFailures(dm.parseThinPoolStatus, ErrorCodes.PARSE);
    expectOnlyTypedFailures(dm.parseThinStatus, ErrorCodes.PARSE);
  });
});

describe('sizes and options', () => {
  const MULTIPLIERS: Record<string, number> = { '': 1, b: 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40, p: 2 ** 50 };

  test('parseSize: <integer><unit> is the integer times the binary multiple, in any case and with kb / kib', () => {
    const unit = fc.constantFrom(...Object.keys(MULTIPLIERS));
    const tail = fc.constantFrom('', 'b', 'ib');
    fc.assert(
      fc.property(uint(2 ** 20), unit, tail, fc.boolean(), fc.boolean(), (n, u, t, upper, space) => {
        const suffix = u === '' || u === 'b' ? u : u + t;
        const text = `${n}${space && suffix ? ' ' : ''}${upper ? suffix.toUpperCase() : suffix}`;
        const want = n * MULTIPLIERS[u];
        if (want > Number.MAX_SAFE_INTEGER) expect(attempt(() => parseSize(text, 'size'))).toMatchObject({ code: ErrorCodes.INVALID_ARGUMENT });
        else expect(parseSize(text, 'size')).toBe(want);
      }),
    );
  });

  test('parseSize: any string is a non-negative safe integer or ERR_INVALID_ARGUMENT naming the argument', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.stringMatching(/^[-0-9.eEkKmMgGtTpPbBiI xQ]{0,12}$/)), (text) => {
        const out = attempt(() => parseSize(text, 'dm.basesize'));
        if (typeof out === 'number') {
          expect(Number.isSafeInteger(out) && out >= 0).toBe(true);
        } else {
          expect(out).toBeInstanceOf(DevmapperError);
          expect(out).toMatchObject({ code: ErrorCodes.INVALID_ARGUMENT, argument: 'dm.basesize' });
        }
      }),
      { numRuns: 1000 },
    );
  });

  test('dm.* options: sizes resolve to parseSize, unknown keys and bad values name the key', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 1 << 20 }), fc.constantFrom('k', 'M', 'G'), (n, u) => {
        const opts = resolveOptions([`dm.basesize=${n}${u}`, `dm.loopdatasize=${n}${u}`]);
        expect(opts.baseSizeBytes).toBe(parseSize(`${n}${u}`, 'x'));
        expect(opts.loopDataSizeBytes).toBe(parseSize(`${n}${u}`, 'x'));
      }),
    );
    fc.assert(
      // No Docker key starts with dm.zz.
      fc.property(fc.stringMatching(/^dm\.zz[a-z_]{0,14}$/), (key) => {
        expect(attempt(() => resolveOptions([`${key}=1`]))).toMatchObject({ code: ErrorCodes.INVALID_ARGUMENT, argument: key });
      }),
    );
    fc.assert(
      fc.property(fc.constantFrom('dm.basesize', 'dm.loopdatasize', 'dm.loopmetadatasize'), fc.constantFrom('-1', 'NaN', '12Q', '', 'ten', '1e400', String(2 ** 64)), (key, value) => {
        expect(attempt(() => resolveOptions([`${key}=${value}`]))).toMatchObject({ code: ErrorCodes.INVALID_ARGUMENT, argument: key });
      }),
    );
  });
});
