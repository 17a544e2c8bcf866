/**
 * The whiteout naming rules of the OCI image layer format (and Docker's): a file named
 * `.wh.<name>` in a layer deletes `<name>` of the same directory from the layers below, and
 * `.wh..wh..opq` makes its directory opaque (nothing from below shows through). Other names
 * starting with `.wh..wh.` are aufs bookkeeping that carries no change and is skipped.
 * Whiteout files are instructions, never files on disk.
 */

export const WHITEOUT_PREFIX = '.wh.';
export const WHITEOUT_META_PREFIX = '.wh..wh.';
export const OPAQUE_MARKER = '.wh..wh..opq';

export type WhiteoutKind =
  | { kind: 'opaque' }
  | { kind: 'whiteout'; target: string }
  | { kind: 'meta' }
  | { kind: 'none' };

/** What a base name of a layer entry means. */
export function classifyName(base: string): WhiteoutKind {
  if (base === OPAQUE_MARKER) return { kind: 'opaque' };
  if (base.startsWith(WHITEOUT_META_PREFIX)) return { kind: 'meta' };
  if (base.startsWith(WHITEOUT_PREFIX)) return { kind: 'whiteout', target: base.slice(WHITEOUT_PREFIX.length) };
  return { kind: 'none' };
}

/** The whiteout base name that deletes `base`. */
export function whiteoutFor(base: string): string {
  return WHITEOUT_PREFIX + base;
}
