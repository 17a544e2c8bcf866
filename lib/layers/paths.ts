/**
 * Where a layer entry may go. Entry names are split into components and any `..` is refused
 * outright (even one that would stay inside), a leading `/` or `./` means the root. Parent
 * directories are resolved one component at a time with lstat: a symlink is followed only
 * while what it leads to stays inside the root (an absolute target is taken as a host path,
 * so `link -> /` or `link -> /etc` leads out, and `lib -> usr/lib` stays in); anything that
 * would leave the root is refused, so no write ever lands outside it.
 */
import { lstat, mkdir, readlink } from 'node:fs/promises';
import { join, normalize } from 'node:path';
import { DevmapperError, ErrorCodes } from '../errors';

/** The typed refusal of one layer entry. */
export function unsafeEntry(entry: string, why: string): DevmapperError {
  return new DevmapperError(`layer entry ${JSON.stringify(entry)} refused: ${why}`, {
    code: ErrorCodes.UNSAFE_LAYER_ENTRY,
    operation: 'apply layer',
    device: entry,
  });
}

/** The components of an entry name, or a refusal when one is `..` or holds a NUL. */
export function entryComponents(name: string, entry = name): string[] {
  if (name.includes('\0')) throw unsafeEntry(entry, 'the name holds a NUL byte');
  const parts = name.split('/').filter((c) => c !== '' && c !== '.');
  if (parts.includes('..')) throw unsafeEntry(entry, `"${name}" has a ".." component`);
  return parts;
}

const MAX_SYMLINK_HOPS = 40;

/** How resolveDir treats a missing directory. */
export interface ResolveOptions {
  /** Create missing directories (0755, root-owned) and report each through onCreate. */
  create?: (path: string) => Promise<void>;
}

/**
 * The real path of directory `parts` under root (a real path itself), following symlinks
 * only inside root. Returns null when a component is missing and nothing may be created.
 */
export async function resolveDir(
  root: string,
  parts: string[],
  entry: string,
  opts: ResolveOptions = {},
): Promise<string | null> {
  const pending = [...parts];
  let chain: string[] = [];
  let hops = 0;
  while (pending.length > 0) {
    const c = pending.shift() as string;
    if (c === '' || c === '.') continue;
    if (c === '..') {
      // Only reached through a symlink's target (names with ".." are refused earlier).
      if (chain.length === 0) throw unsafeEntry(entry, 'it goes through a symlink that leads outside the root');
      chain.pop();
      continue;
    }
    const p = join(root, ...chain, c);
    const st = await lstat(p).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return null;
      throw err;
    });
    if (st === null) {
      if (!opts.create) return null;
      await mkdir(p, { mode: 0o755 });
      await opts.create(p);
      chain.push(c);
      continue;
    }
    if (st.isSymbolicLink()) {
      if (++hops > MAX_SYMLINK_HOPS) throw unsafeEntry(entry, 'too many levels of symlinks');
      const target = await readlink(p);
      const shown = `${join('/', ...chain, c)} -> ${target}`;
      if (target.startsWith('/')) {
        const host = normalize(target);
        if (host !== root && !host.startsWith(root + '/'))
          throw unsafeEntry(entry, `it goes through the symlink ${shown}, which leads outside the root`);
        chain = [];
        pending.unshift(...host.slice(root.length).split('/'));
      } else {
        pending.unshift(...target.split('/'));
      }
      continue;
    }
    if (!st.isDirectory()) throw unsafeEntry(entry, `${join('/', ...chain, c)} is not a directory`);
    chain.push(c);
  }
  return join(root, ...chain);
}
