/**
 * docs/guide.md's troubleshooting tables must name every code the library defines, so the
 * guide moves with lib/errors.ts: a new ErrorCodes entry without a row fails here. The last
 * cell of each row is the `devmapper` exit status for its codes, checked against the CLI.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DevmapperError, ErrorCodes } from '../../lib';
import { exitCodeFor } from '../../lib/cli/exit-codes';

const GUIDE = join(__dirname, '..', '..', 'docs', 'guide.md');

/** The errno codes the guide promises to explain, besides ErrorCodes. */
const COMMON_ERRNO_CODES = ['EBUSY', 'EEXIST', 'ENXIO', 'ENODEV', 'ENOTDIR', 'ENOSPC', 'EPERM', 'EACCES', 'ETIMEDOUT'];

/** The `## Troubleshooting` section: from its heading to the next level-2 heading. */
function troubleshootingSection(markdown: string): string {
  const start = markdown.search(/^## Troubleshooting\s*$/m);
  if (start < 0) throw new Error(`${GUIDE} has no "## Troubleshooting" section`);
  const rest = markdown.slice(start + 1);
  const next = rest.search(/^## /m);
  return next < 0 ? rest : rest.slice(0, next);
}

/** Each table row's codes (first cell: `EBUSY`, or `EPERM` / `EACCES`) and its last cell. */
function tableRows(section: string): { codes: string[]; last: string }[] {
  const rows: { codes: string[]; last: string }[] = [];
  for (const line of section.split('\n')) {
    if (!/^\|.*\|\s*$/.test(line)) continue;
    const cells = line.trim().slice(1, -1).split('|');
    const codes = [...cells[0].matchAll(/`([A-Z][A-Z0-9_]*)`/g)].map((m) => m[1]);
    if (codes.length > 0) rows.push({ codes, last: cells[cells.length - 1].trim() });
  }
  return rows;
}

/** The codes in the first cell of each table row. */
function codesInTables(section: string): Set<string> {
  return new Set(tableRows(section).flatMap((r) => r.codes));
}

describe('docs/guide.md troubleshooting', () => {
  const section = troubleshootingSection(readFileSync(GUIDE, 'utf8'));
  const documented = codesInTables(section);

  test.each(Object.entries(ErrorCodes))('ErrorCodes.%s (%s) has a row', (_key, code) => {
    expect(documented).toContain(code);
  });

  test.each(COMMON_ERRNO_CODES)('%s has a row', (code) => {
    expect(documented).toContain(code);
  });

  test.each(tableRows(section).flatMap((r) => r.codes.map((code) => [code, r.last] as const)))(
    '%s: the exit status in the row is the CLI\'s (%s)',
    (code, last) => {
      expect(last).toBe(String(exitCodeFor(new DevmapperError('x', { code }))));
    },
  );

  test('the table reader finds codes only in first cells', () => {
    const sample = ['| Code | What | Do | Exit |', '|---|---|---|---|', '| `EBUSY` | see `ENXIO` | x | 4 |', '| `EPERM` / `EACCES` | y | z | 6 |', 'text `ENODEV`'];
    expect([...codesInTables(sample.join('\n'))].sort()).toEqual(['EACCES', 'EBUSY', 'EPERM']);
    expect(tableRows(sample.join('\n')).map((r) => r.last)).toEqual(['4', '6']);
  });
});
