/**
 * docs/guide.md's troubleshooting tables must name every code the library defines, so the
 * guide moves with lib/errors.ts: a new ErrorCodes entry without a row fails here.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ErrorCodes } from '../../lib';

const GUIDE = join(__dirname, '..', '..', 'docs', 'guide.md');

/** The errno codes the guide promises to explain, besides ErrorCodes. */
const COMMON_ERRNO_CODES = ['EBUSY', 'EEXIST', 'ENXIO', 'ENODEV', 'ENOSPC', 'EPERM', 'EACCES', 'ETIMEDOUT'];

/** The `## Troubleshooting` section: from its heading to the next level-2 heading. */
function troubleshootingSection(markdown: string): string {
  const start = markdown.search(/^## Troubleshooting\s*$/m);
  if (start < 0) throw new Error(`${GUIDE} has no "## Troubleshooting" section`);
  const rest = markdown.slice(start + 1);
  const next = rest.search(/^## /m);
  return next < 0 ? rest : rest.slice(0, next);
}

/** The codes in the first cell of each table row: `EBUSY`, or `EPERM` / `EACCES`. */
function codesInTables(section: string): Set<string> {
  const codes = new Set<string>();
  for (const line of section.split('\n')) {
    const row = /^\|([^|]*)\|/.exec(line);
    if (!row) continue;
    for (const m of row[1].matchAll(/`([A-Z][A-Z0-9_]*)`/g)) codes.add(m[1]);
  }
  return codes;
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

  test('the table reader finds codes only in first cells', () => {
    const sample = ['| Code | What | Do |', '|---|---|---|', '| `EBUSY` | see `ENXIO` | x |', '| `EPERM` / `EACCES` | y | z |', 'text `ENODEV`'];
    expect([...codesInTables(sample.join('\n'))].sort()).toEqual(['EACCES', 'EBUSY', 'EPERM']);
  });
});
