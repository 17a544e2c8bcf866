/**
 * Every error code written in the sources is one the model knows: a value of ErrorCodes or
 * an errno name of this platform. A code invented at a throw site (`code: 'ERR_SOMETHING'`)
 * would have no docs row and no exit status of its own, so it fails here.
 *
 * What counts as a code literal: any string `ERR_...` or `..._ERR`; every string on the rest
 * of a line after `code:` / `code =` / `code ??` (so both arms of a ternary are seen) that is
 * not the right side of a comparison (`e.code === 'ENOENT'`, `typeof x === 'string'`); in
 * C++, a string passed as "code". Process-warning codes (`DEVMAPPER_...`, given to
 * process.emitWarning) are not errors: they must be named in docs/guide.md instead.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { join, relative } from 'node:path';
import { ErrorCodes } from '../../lib';

const ROOT = join(__dirname, '..', '..');
const GUIDE = readFileSync(join(ROOT, 'docs', 'guide.md'), 'utf8');

/** Code strings the sources hold without throwing them, and why each is not a code of ours. */
const NOT_THROWN: Readonly<Record<string, string>> = {
  ERR_PARSE_ARGS_UNKNOWN_OPTION: "Node's util.parseArgs code, read by the CLI and rethrown as ERR_INVALID_ARGUMENT",
  ERR_PARSE_ARGS_INVALID_OPTION_VALUE: "Node's util.parseArgs code, read by the CLI and rethrown as ERR_INVALID_ARGUMENT",
  ERR_UNEXPECTED: "the CLI's label in its error line for an error that has no code (a bug)",
};

export interface CodeLiteral {
  file: string;
  line: number;
  code: string;
  /** Given to process.emitWarning rather than to an error. */
  warning: boolean;
}

function filesUnder(dir: string, ext: RegExp): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...filesUnder(p, ext));
    else if (ext.test(e.name)) out.push(p);
  }
  return out;
}

const STRING = /(['"`])([A-Za-z][A-Za-z0-9_]*)\1/g;
const ERR_LITERAL = /(['"`])((?:ERR_[A-Z0-9_]+)|(?:[A-Z][A-Z0-9_]*_ERR))\1/g;
const AFTER_CODE_TS = /\bcode\s*(?::|\?\?|=(?!=))([^\n]*)/g;
const NATIVE_CODE = /"code"\s*,\s*"([^"]*)"/g;

/** The code literals of one source text (exported for the self-test below). */
export function codeLiterals(text: string, file: string): CodeLiteral[] {
  const found = new Map<number, CodeLiteral>();
  const lineOf = (index: number): number => text.slice(0, index).split('\n').length;
  const add = (index: number, code: string): void => {
    const before = text.slice(Math.max(0, index - 300), index);
    const warning = code.startsWith('DEVMAPPER_') && before.includes('emitWarning(');
    found.set(index, { file, line: lineOf(index), code, warning });
  };
  for (const m of text.matchAll(ERR_LITERAL)) add(m.index, m[2]);
  if (file.endsWith('.ts')) {
    for (const m of text.matchAll(AFTER_CODE_TS)) {
      const restStart = m.index + m[0].length - m[1].length;
      for (const s of m[1].matchAll(STRING)) {
        if (!/[!=]==?\s*$/.test(m[1].slice(0, s.index))) add(restStart + s.index, s[2]);
      }
    }
  } else {
    for (const m of text.matchAll(NATIVE_CODE)) add(m.index, m[1]);
  }
  return [...found.values()];
}

const projectCodes = new Set<string>(Object.values(ErrorCodes));
const errnoNames = new Set(Object.keys(osConstants.errno));

function problem(l: CodeLiteral): string | undefined {
  if (l.warning) return GUIDE.includes(`\`${l.code}\``) ? undefined : 'a process warning that docs/guide.md does not name';
  if (projectCodes.has(l.code) || errnoNames.has(l.code) || l.code in NOT_THROWN) return undefined;
  return 'neither a value of ErrorCodes nor an errno name';
}

const sources = [
  ...filesUnder(join(ROOT, 'lib'), /\.ts$/),
  ...filesUnder(join(ROOT, 'src-native'), /\.(cc|h)$/),
];
const literals = sources.flatMap((f) => codeLiterals(readFileSync(f, 'utf8'), relative(ROOT, f)));

describe('error codes in the sources', () => {
  test('the scan reads the sources and finds the codes in them', () => {
    expect(sources.some((f) => f.endsWith('.cc'))).toBe(true);
    const codes = new Set(literals.map((l) => l.code));
    // Known sites: an errno on a throw, a project code spelled out, a warning.
    expect(codes).toContain('EBUSY');
    expect(codes).toContain('ENOENT');
    expect(literals.some((l) => l.warning && l.code === 'DEVMAPPER_UDEV_TIMEOUT')).toBe(true);
  });

  test('every code literal is a value of ErrorCodes, an errno name, or a documented warning', () => {
    const bad = literals.flatMap((l) => {
      const why = problem(l);
      return why ? [`${l.file}:${l.line}: '${l.code}' is ${why}`] : [];
    });
    expect(bad).toEqual([]);
  });

  test('each exception listed here is still in the sources', () => {
    const codes = new Set(literals.map((l) => l.code));
    for (const code of Object.keys(NOT_THROWN)) expect({ code, found: codes.has(code) }).toEqual({ code, found: true });
  });

  test('no project code is also an errno name (the two models stay apart)', () => {
    expect([...projectCodes].filter((c) => errnoNames.has(c))).toEqual([]);
  });

  test('the reader finds codes at throw sites, in ternaries, in C++ and in warnings', () => {
    const ts = [
      "throw new DevmapperError('x', { code: 'ERR_MADE_UP', device });",
      "const c = { code: e.code === 'ENOENT' ? 'ENOENT' : 'ERR_OTHER' };",
      "  code: (err as NodeJS.ErrnoException).code ?? 'FALLBACK_CODE',",
      "if (err.code === 'EXDEV') return;",
      "const code = typeof e.code === 'string' ? e.code : 'BAD_ONE';",
      "process.emitWarning('w', {\n  code: 'DEVMAPPER_SOMETHING',\n});",
    ].join('\n');
    expect(codeLiterals(ts, 'x.ts').map((l) => [l.code, l.warning])).toEqual([
      ['ERR_MADE_UP', false],
      ['ERR_OTHER', false],
      ['ENOENT', false],
      ['FALLBACK_CODE', false],
      ['BAD_ONE', false],
      ['DEVMAPPER_SOMETHING', true],
    ]);
    const cc = 'opts.Set("code", "EWHATEVER");\nthrow Napi::Error::New(env, "ERR_NATIVE_THING");';
    expect(codeLiterals(cc, 'x.cc').map((l) => l.code).sort()).toEqual(['ERR_NATIVE_THING', 'EWHATEVER']);
    expect(problem({ file: 'x.ts', line: 1, code: 'ERR_MADE_UP', warning: false })).toMatch(/neither/);
    expect(problem({ file: 'x.ts', line: 1, code: 'EBUSY', warning: false })).toBeUndefined();
    expect(problem({ file: 'x.ts', line: 1, code: 'DEVMAPPER_NOT_IN_GUIDE', warning: true })).toMatch(/warning/);
  });
});
