/**
 * The whiteout naming rules of the OCI image layer format (and Docker's): a file named
 * `.wh.<name>` in a layer deletes `<name>` of the same directory from the layers below, and
 * `.wh..wh..opq` makes its directory opaque (nothing from below shows through). Other names
 * starting with `.wh..wh.` are aufs bookkeeping that carries no change and is skipped.
 * Whiteout files are instructions, never files on disk.
 */

export const WHITEOUT_PREFIX = '.wh.';
/** Names starting so are the layer format's own entries (aufs hard-link dirs, the opaque marker), never files. */
export const WHITEOUT_META_PREFIX = '.wh..wh.';
/** In a directory of a layer: hide everything lower layers had in it. */
export const OPAQUE_MARKER = '.wh..wh..opq';

/** What a base name means in a layer: the opaque marker, a whiteout of `target`, another format entry, or a plain name. */
export type WhiteoutKind =
  | {
      /** The opaque-directory marker. */
      kind: 'opaque';
    }
  | {
      /** A whiteout: it deletes `target`. */
      kind: 'whiteout';
      /** The name it deletes in the same directory. */
      target: string;
    }
  | {
      /** Another of the format's own entries (`.wh..wh.*`): skipped. */
      kind: 'meta';
    }
  | {
      /** An ordinary name. */
      kind: 'none';
    };

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
