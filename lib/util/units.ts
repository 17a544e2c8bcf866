/**
 * Docker's size units (github.com/docker/go-units v0.5.0, vendored by moby v24): `RAMInBytes`
 * for the size options and `HumanSize` for status output. Both are ports that give Go's
 * results byte for byte, including Go's float parsing and its round-half-even `%.4g`.
 */
import { invalidArgument } from '../errors';

const KIB = 1024;
/** go-units' binaryMap: RAMInBytes reads every suffix as a binary multiple ("512M" = 512 MiB). */
const BINARY_MULTIPLIERS: Readonly<Record<string, number>> = {
  k: KIB,
  m: KIB ** 2,
  g: KIB ** 3,
  t: KIB ** 4,
  p: KIB ** 5,
};

/** go-units' decimapAbbrs: HumanSize's unit names, powers of 1000. */
const DECIMAL_ABBREVIATIONS = ['B', 'kB', 'MB', 'GB', 'TB', 'PB', 'EB', 'ZB', 'YB'] as const;

const SIZE_EXPECTED = 'a size such as "512M" or "10G" (bytes, or k/m/g/t/p binary multiples, optional "b" or "ib")';

/**
 * Parses a size the way Docker's `units.RAMInBytes` did, for options such as `dm.basesize`:
 * a number (Go float syntax, so "1.5G" and "1e3" work) with an optional suffix k, m, g, t
 * or p (binary multiples, case-insensitive) optionally followed by "b" or "ib", or a bare
 * "b"; one space may separate the number and the suffix. The result is truncated to whole
 * bytes as Go's int64 conversion did.
 *
 * Refused, as DevmapperError ERR_INVALID_ARGUMENT naming `argument`: anything RAMInBytes
 * refused, negative sizes, and results that are not finite or exceed
 * Number.MAX_SAFE_INTEGER (Go would have returned a wrapped or rounded int64 for those).
 *
 * @param text the option's value, e.g. "512M"
 * @param argument the option's name for the error, e.g. 'dm.basesize'
 * @returns the size in bytes, a non-negative safe integer
 * @throws {@link DevmapperError} ERR_INVALID_ARGUMENT naming `argument`
 *
 * @example
 * ```ts
 * parseSize('512M', 'dm.basesize');   // 536870912 (binary: M = MiB)
 * parseSize('1.5g', 'size');          // 1610612736
 * parseSize('10 GiB', 'size');        // 10737418240
 * ```
 */
export function parseSize(text: string, argument: string): number {
  if (typeof text !== 'string') throw invalidArgument(argument, SIZE_EXPECTED, text);
  // The number ends at the last digit, dot or space (go-units' LastIndexAny).
  let sep = -1;
  for (let i = text.length - 1; i >= 0; i--) {
    if (/[0-9. ]/.test(text[i])) {
      sep = i;
      break;
    }
  }
  if (sep === -1) throw invalidArgument(argument, SIZE_EXPECTED, text);
  // A space separator belongs to neither part.
  const num = text[sep] === ' ' ? text.slice(0, sep) : text.slice(0, sep + 1);
  const suffix = text.slice(sep + 1);

  let size = goParseFloat(num);
  if (size === undefined || size < 0) throw invalidArgument(argument, SIZE_EXPECTED, text);

  if (suffix.length > 0) {
    // Go measures the suffix in bytes before lowercasing it, and compares bytes after.
    if (Buffer.byteLength(suffix, 'utf8') > 3) throw invalidArgument(argument, SIZE_EXPECTED, text);
    const lower = suffix.toLowerCase();
    const length = Buffer.byteLength(lower, 'utf8');
    if (lower[0] === 'b') {
      if (length > 1) throw invalidArgument(argument, SIZE_EXPECTED, text);
    } else {
      const multiplier = Object.prototype.hasOwnProperty.call(BINARY_MULTIPLIERS, lower[0])
        ? BINARY_MULTIPLIERS[lower[0]]
        : undefined;
      if (multiplier === undefined) throw invalidArgument(argument, SIZE_EXPECTED, text);
      if ((length === 2 && lower[1] !== 'b') || (length === 3 && lower.slice(1) !== 'ib'))
        throw invalidArgument(argument, SIZE_EXPECTED, text);
      size *= multiplier;
    }
  }

  // Go's "inf b" slips through RAMInBytes as a garbage int64: refuse it, and anything a
  // JavaScript number cannot hold exactly.
  if (!Number.isFinite(size)) throw invalidArgument(argument, SIZE_EXPECTED, text);
  const bytes = Math.trunc(size);
  if (bytes > Number.MAX_SAFE_INTEGER)
    throw invalidArgument(argument, `${SIZE_EXPECTED} of at most ${Number.MAX_SAFE_INTEGER} bytes`, text);
  return bytes === 0 ? 0 : bytes; // no -0
}

/**
 * Formats a byte count the way Docker's `units.HumanSize` did: decimal units (kB, MB, GB,
 * ...) with at most 4 significant digits, Go's `%.4g` (round half to even, trailing zeros
 * dropped): 65536 gives "65.54kB", 536870912 "536.9MB", 0 "0B".
 *
 * @param bytes a byte count
 * @returns the count in decimal units, as Docker's status rows print sizes
 */
export function humanSize(bytes: number): string {
  let size = bytes;
  let unit = 0;
  // go-units' getSizeAndUnit: divide while at least 1000, up to the last unit.
  while (size >= 1000 && unit < DECIMAL_ABBREVIATIONS.length - 1) {
    size /= 1000;
    unit++;
  }
  return formatG(size, 4) + DECIMAL_ABBREVIATIONS[unit];
}

/**
 * Go's strconv.ParseFloat(s, 64), returning undefined where Go returns an error (syntax, or
 * a value out of range). Accepts what Go accepts: an optional sign, decimal digits with an
 * optional point and exponent, hexadecimal mantissas with a mandatory 'p' exponent,
 * underscores between digits, and inf/infinity/nan.
 */
function goParseFloat(s: string): number | undefined {
  let i = 0;
  let negative = false;
  if (s[0] === '+' || s[0] === '-') {
    negative = s[0] === '-';
    i = 1;
  }
  const rest = s.slice(i).toLowerCase();
  if (rest === 'inf' || rest === 'infinity') return negative ? -Infinity : Infinity;
  if (s.toLowerCase() === 'nan') return NaN;

  let hex = false;
  if (i + 2 < s.length && s[i] === '0' && (s[i + 1] === 'x' || s[i + 1] === 'X')) {
    hex = true;
    i += 2;
  }
  const isDigit = hex ? (c: string) => /^[0-9a-fA-F]$/.test(c) : (c: string) => c >= '0' && c <= '9';
  let mantissa = '';
  let fractionDigits = 0;
  let sawDot = false;
  let underscores = false;
  for (; i < s.length; i++) {
    const c = s[i];
    if (c === '_') {
      underscores = true;
    } else if (c === '.') {
      if (sawDot) break;
      sawDot = true;
    } else if (isDigit(c)) {
      mantissa += c;
      if (sawDot) fractionDigits++;
    } else {
      break;
    }
  }
  if (mantissa.length === 0) return undefined;

  let exponent = 0;
  let exponentText = '';
  if (i < s.length && s[i].toLowerCase() === (hex ? 'p' : 'e')) {
    i++;
    let sign = '';
    if (s[i] === '+' || s[i] === '-') sign = s[i++];
    if (i >= s.length || !(s[i] >= '0' && s[i] <= '9')) return undefined;
    for (; i < s.length && ((s[i] >= '0' && s[i] <= '9') || s[i] === '_'); i++) {
      if (s[i] === '_') underscores = true;
      else exponentText += s[i];
    }
    exponentText = sign + exponentText;
    exponent = Number(exponentText);
  } else if (hex) {
    return undefined; // Go requires the 'p' exponent of a hexadecimal float
  }
  if (i !== s.length) return undefined;
  if (underscores && !underscoresOk(s)) return undefined;

  let value: number;
  if (hex) {
    // Exact integer mantissa, rounded once to a double, then scaled by a power of two.
    value = Number(BigInt(`0x${mantissa}`)) * 2 ** (exponent - 4 * fractionDigits);
    if (Number.isNaN(value)) value = 0; // 0 * Infinity when the mantissa is zero
  } else {
    // JavaScript's Number() rounds decimal text correctly, as Go does.
    const intPart = mantissa.slice(0, mantissa.length - fractionDigits) || '0';
    const fracPart = mantissa.slice(mantissa.length - fractionDigits);
    value = Number(`${intPart}.${fracPart}e${exponentText || '0'}`);
  }
  if (!Number.isFinite(value)) return undefined; // Go: ErrRange
  return negative ? -value : value;
}

/** Go's strconv.underscoreOK: underscores only between digits (or after a base prefix). */
function underscoresOk(text: string): boolean {
  let s = text;
  if (s[0] === '-' || s[0] === '+') s = s.slice(1);
  let saw = '^';
  let i = 0;
  let hex = false;
  if (s.length >= 2 && s[0] === '0' && 'box'.includes(s[1].toLowerCase())) {
    i = 2;
    saw = '0';
    hex = s[1].toLowerCase() === 'x';
  }
  for (; i < s.length; i++) {
    const c = s[i];
    if ((c >= '0' && c <= '9') || (hex && /^[a-fA-F]$/.test(c))) {
      saw = '0';
      continue;
    }
    if (c === '_') {
      if (saw !== '0') return false;
      saw = '_';
      continue;
    }
    if (saw === '_') return false;
    saw = '!';
  }
  return saw !== '_';
}

/** The exact decimal digits of a positive finite double: value = 0.DIGITS × 10^dp. */
function exactDecimal(value: number): { digits: string; dp: number } {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, value);
  const high = view.getUint32(0);
  const low = view.getUint32(4);
  const biasedExponent = (high >>> 20) & 0x7ff;
  let mantissa = (BigInt(high & 0xfffff) << 32n) | BigInt(low);
  let exponent: number;
  if (biasedExponent === 0) {
    exponent = -1074; // subnormal
  } else {
    mantissa |= 1n << 52n;
    exponent = biasedExponent - 1075;
  }
  let digits: string;
  let dp: number;
  if (exponent >= 0) {
    digits = (mantissa << BigInt(exponent)).toString();
    dp = digits.length;
  } else {
    // m × 2^-k = m × 5^k / 10^k: an exact integer over a power of ten.
    digits = (mantissa * 5n ** BigInt(-exponent)).toString();
    dp = digits.length + exponent;
  }
  return { digits: digits.replace(/0+$/, ''), dp };
}

/** Go's fmt `%.{precision}g` of a float64 (strconv.FormatFloat(v, 'g', precision, 64)). */
function formatG(value: number, precision: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  const negative = value < 0 || Object.is(value, -0);
  const sign = negative ? '-' : '';
  let digits = '';
  let dp = 0;
  if (value !== 0) {
    ({ digits, dp } = exactDecimal(Math.abs(value)));
    if (digits.length > precision) {
      // Round half to even on the exact value, as Go's fixed-precision formatting does.
      const kept = digits.slice(0, precision);
      const first = digits[precision];
      const tail = digits.slice(precision + 1);
      const up = first > '5' || (first === '5' && (/[1-9]/.test(tail) || Number(kept[kept.length - 1]) % 2 === 1));
      let rounded = BigInt(kept) + (up ? 1n : 0n);
      if (rounded.toString().length > precision) {
        rounded /= 10n;
        dp++;
      }
      digits = rounded.toString().replace(/0+$/, '');
    }
  }
  const nd = digits.length;
  let eprec = precision;
  if (eprec > nd && nd >= dp) eprec = nd;
  const exp = dp - 1;
  if (exp < -4 || exp >= eprec) {
    // %e with min(precision, nd) - 1 digits after the point.
    const fraction = Math.min(precision, nd) - 1;
    let out = sign + (nd > 0 ? digits[0] : '0');
    if (fraction > 0) out += '.' + digits.slice(1, fraction + 1).padEnd(fraction, '0');
    const e = nd === 0 ? 0 : exp;
    return `${out}e${e < 0 ? '-' : '+'}${String(Math.abs(e)).padStart(2, '0')}`;
  }
  // %f with max(p - dp, 0) fraction digits, where p is nd when precision exceeds dp.
  const p = precision > dp ? nd : precision;
  const fraction = Math.max(p - dp, 0);
  let out = sign;
  out += dp > 0 ? digits.slice(0, dp).padEnd(dp, '0') : '0';
  if (fraction > 0) {
    out += '.';
    for (let k = 1; k <= fraction; k++) {
      const j = dp + k - 1;
      out += j >= 0 && j < nd ? digits[j] : '0';
    }
  }
  return out;
}
