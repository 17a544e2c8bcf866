/** mount(2) and umount2(2), without a shell or a child process. */
import { invalidArgument } from '../errors';
import { native } from '../native';

export type MountFlagName = keyof ReturnType<typeof native>['mountFlags'];

/** The MS_* and MNT_* constants of this platform. */
export function mountFlags(): Record<MountFlagName, number> {
  return native().mountFlags;
}

export interface MountOptions {
  readOnly?: boolean;
  /** Extra MS_* flag names. */
  flags?: MountFlagName[];
  /** File-system specific options, the `data` argument ("nouuid,discard"). */
  data?: string;
}

function checkPath(v: unknown, name: string): string {
  if (typeof v !== 'string' || !v.startsWith('/') || v.includes('\0')) throw invalidArgument(name, 'an absolute path', v);
  return v;
}

export async function mount(source: string, target: string, fstype: string, opts: MountOptions = {}): Promise<void> {
  checkPath(source, 'source');
  checkPath(target, 'target');
  if (typeof fstype !== 'string' || !/^[a-z0-9_.]*$/.test(fstype)) throw invalidArgument('fstype', 'a file-system type name', fstype);
  const f = mountFlags();
  let flags = opts.readOnly ? f.MS_RDONLY : 0;
  for (const name of opts.flags ?? []) {
    if (!(name in f) || !name.startsWith('MS_')) throw invalidArgument('flags', 'MS_* flag names', name);
    flags |= f[name];
  }
  await native().mount(source, target, fstype, flags, opts.data ?? '');
}

export interface UnmountOptions {
  /** MNT_DETACH: detach now, finish when the last user goes. */
  detach?: boolean;
  force?: boolean;
}

export async function unmount(target: string, opts: UnmountOptions = {}): Promise<void> {
  checkPath(target, 'target');
  const f = mountFlags();
  const flags = (opts.detach ? f.MNT_DETACH : 0) | (opts.force ? f.MNT_FORCE : 0) | f.UMOUNT_NOFOLLOW;
  await native().umount(target, flags);
}
