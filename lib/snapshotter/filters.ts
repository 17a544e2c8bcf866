/**
 * containerd's filter syntax for Walk (and the List RPC), over snapshot infos: a list of
 * filters of which any may match; each filter is selectors joined by ',' that must all match.
 * A selector is a field path (`name`, `parent`, `kind`, `labels.KEY`, a part quoted with "..."
 * when it has other characters) alone (present and not empty), or followed by `==`, `!=` or
 * `~=` (a regular expression) and a value (bare, "quoted" or, for `~=`, /slashed/).
 */
import { invalidArgument } from '../errors';
import type { SnapshotInfo } from './types';

interface Selector {
  path: string[];
  op: '' | '==' | '!=' | '~=';
  value: string;
  regex: RegExp | null;
}

/** A parsed filter list: matches an info when any of its filters does. */
export type SnapshotFilter = (info: SnapshotInfo) => boolean;

const FIELD = /^[A-Za-z_][A-Za-z0-9_]*/;

function quoted(text: string, at: number, close: string, where: string): [string, number] {
  let out = '';
  let i = at + 1;
  while (i < text.length && text[i] !== close) {
    if (text[i] === '\\' && i + 1 < text.length) {
      const c = text[i + 1] as string;
      out += close === '/' && c !== '/' ? `\\${c}` : c === 'n' ? '\n' : c === 't' ? '\t' : c;
      i += 2;
    } else out += text[i++];
  }
  if (i >= text.length) throw invalidArgument('filters', `a closing ${close} in ${where}`, text);
  return [out, i + 1];
}

function parseFilter(text: string): Selector[] {
  const selectors: Selector[] = [];
  let i = 0;
  const skip = () => {
    while (text[i] === ' ' || text[i] === '\t') i++;
  };
  for (;;) {
    skip();
    const path: string[] = [];
    for (;;) {
      if (text[i] === '"') {
        const [part, next] = quoted(text, i, '"', 'a field path');
        path.push(part);
        i = next;
      } else {
        const m = FIELD.exec(text.slice(i));
        if (!m) throw invalidArgument('filters', `a field name at offset ${i}`, text);
        path.push(m[0]);
        i += m[0].length;
      }
      if (text[i] !== '.') break;
      i++;
    }
    skip();
    let op: Selector['op'] = '';
    let value = '';
    const two = text.slice(i, i + 2);
    if (two === '==' || two === '!=' || two === '~=') {
      op = two;
      i += 2;
      skip();
      if (text[i] === '"' || (op === '~=' && text[i] === '/')) {
        [value, i] = quoted(text, i, text[i] as string, 'a value');
      } else {
        const start = i;
        while (i < text.length && text[i] !== ',' && text[i] !== ' ') i++;
        value = text.slice(start, i);
        if (value === '') throw invalidArgument('filters', `a value after ${op} at offset ${start}`, text);
      }
    }
    let regex: RegExp | null = null;
    if (op === '~=') {
      try {
        regex = new RegExp(value);
      } catch {
        throw invalidArgument('filters', 'a valid regular expression after ~=', value);
      }
    }
    selectors.push({ path, op, value, regex });
    skip();
    if (i >= text.length) return selectors;
    if (text[i] !== ',') throw invalidArgument('filters', `',' or the end at offset ${i}`, text);
    i++;
  }
}

function field(info: SnapshotInfo, path: string[]): string | undefined {
  const [head, ...rest] = path;
  if (head === 'labels') return rest.length === 0 ? undefined : info.labels[rest.join('.')];
  if (rest.length > 0) return undefined;
  if (head === 'name') return info.name;
  if (head === 'parent') return info.parent;
  if (head === 'kind') return info.kind;
  return undefined;
}

function matches(info: SnapshotInfo, s: Selector): boolean {
  const v = field(info, s.path);
  switch (s.op) {
    case '':
      return v !== undefined && v !== '';
    case '==':
      return v === s.value;
    case '!=':
      return v !== s.value;
    case '~=':
      return v !== undefined && (s.regex as RegExp).test(v);
  }
}

/**
 * Parses a filter list; an empty list (or only empty strings) matches everything.
 *
 * @throws DevmapperError ERR_INVALID_ARGUMENT (argument 'filters') naming what was wrong
 */
export function parseFilters(filters: readonly string[] = []): SnapshotFilter {
  if (!Array.isArray(filters) || filters.some((f) => typeof f !== 'string')) throw invalidArgument('filters', 'an array of strings', filters);
  const parsed = filters.filter((f) => f.trim() !== '').map(parseFilter);
  if (parsed.length === 0) return () => true;
  return (info) => parsed.some((sels) => sels.every((s) => matches(info, s)));
}
