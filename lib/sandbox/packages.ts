/** The Debian packages the sandbox needs: checked, and installed when we are root. */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { DevmapperError, ErrorCodes } from '../errors';

/** The user-mode Linux kernel binary (Debian package user-mode-linux). */
export const UML_BINARY = '/usr/bin/linux.uml';
/** Where user-mode-linux keeps the modules of its kernel, one directory per release. */
export const UML_MODULES_ROOT = '/usr/lib/uml/modules';
export const UDEVD_BINARY = '/usr/lib/systemd/systemd-udevd';

interface Requirement {
  /** What the sandbox needs, for messages. */
  what: string;
  /** Any of these paths will do (merged-/usr and older layouts). */
  paths: string[];
  pkg: string;
  udevOnly?: boolean;
}

let cachedRelease: string | undefined;

/** The release of the installed user-mode Linux kernel (`linux.uml --version`), or undefined. */
export function umlKernelRelease(): string | undefined {
  if (cachedRelease !== undefined) return cachedRelease;
  if (!existsSync(UML_BINARY)) return undefined;
  const r = spawnSync(UML_BINARY, ['--version'], { encoding: 'utf8', timeout: 10_000 });
  const rel = r.status === 0 ? r.stdout.trim().split('\n').pop()?.trim() : undefined;
  if (rel) cachedRelease = rel;
  return rel || undefined;
}

/**
 * Where each named module of the sandbox kernel is, relative to its release directory, as
 * modules.dep says ('kernel/drivers/md/dm-mod.ko'); undefined when modules.dep is unreadable.
 * Modules the kernel lacks are left out.
 */
export function umlModulePaths(release: string, names: string[]): Record<string, string> | undefined {
  let dep: string;
  try {
    dep = readFileSync(`${UML_MODULES_ROOT}/${release}/modules.dep`, 'utf8');
  } catch {
    return undefined;
  }
  const out: Record<string, string> = {};
  for (const line of dep.split('\n')) {
    const file = line.slice(0, line.indexOf(':'));
    const name = /([^/]+)\.ko(\.[a-z]+)?$/.exec(file)?.[1];
    if (name !== undefined && names.includes(name) && out[name] === undefined) out[name] = file;
  }
  return out;
}

function requirements(): Requirement[] {
  const rel = umlKernelRelease();
  return [
    { what: 'the user-mode Linux kernel', paths: [UML_BINARY], pkg: 'user-mode-linux' },
    {
      what: 'its modules',
      // Without the kernel we cannot tell its release; the package brings both anyway.
      paths: rel ? [`${UML_MODULES_ROOT}/${rel}/kernel`] : [],
      pkg: 'user-mode-linux',
    },
    { what: 'insmod', paths: ['/usr/sbin/insmod', '/sbin/insmod'], pkg: 'kmod' },
    { what: 'dmsetup', paths: ['/usr/sbin/dmsetup', '/sbin/dmsetup'], pkg: 'dmsetup' },
    { what: 'systemd-udevd', paths: [UDEVD_BINARY, '/lib/systemd/systemd-udevd'], pkg: 'udev', udevOnly: true },
    { what: 'udevadm', paths: ['/usr/bin/udevadm', '/bin/udevadm'], pkg: 'udev', udevOnly: true },
  ];
}

/** The Debian packages the sandbox still needs, each named once, with what is missing. */
export function missingSandboxPackages(opts: { udev: boolean }): { packages: string[]; missing: string[] } {
  const packages: string[] = [];
  const missing: string[] = [];
  for (const req of requirements()) {
    if (req.udevOnly && !opts.udev) continue;
    if (req.paths.some((p) => existsSync(p))) continue;
    missing.push(req.paths[0] ?? req.what);
    if (!packages.includes(req.pkg)) packages.push(req.pkg);
  }
  return { packages, missing };
}

function aptGet(args: string[]): void {
  // apt's chatter is kept and shown only when it fails: the caller's output stays readable.
  const r = spawnSync('apt-get', args, {
    encoding: 'utf8',
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    stdio: ['ignore', 'pipe', 'pipe'],
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.status !== 0) {
    const tail = `${r.stdout ?? ''}${r.stderr ?? ''}`.trim().split('\n').slice(-15).join('\n');
    const why = r.error?.message ?? `exit ${r.status}`;
    throw new DevmapperError(`sandbox: apt-get ${args.join(' ')} failed (${why})\n${tail}`, {
      code: ErrorCodes.COMMAND_FAILED,
      operation: `apt-get ${args[0]}`,
      cause: r.error,
    });
  }
}

/**
 * Makes sure the sandbox kernel and the tools the guest runs are installed. As root the
 * missing Debian packages are installed (one line on stderr says which); otherwise this
 * throws naming them.
 */
export function ensureSandboxInstalled(opts: { udev: boolean }): void {
  const { packages, missing } = missingSandboxPackages(opts);
  if (packages.length === 0) return;
  const cmd = `apt-get install -y ${packages.join(' ')}`;
  if (process.getuid?.() !== 0) {
    throw new DevmapperError(
      `sandbox: missing ${missing.join(', ')}; install the Debian packages ${packages.join(', ')} as root (${cmd})`,
      { code: 'ENOENT', operation: 'sandbox install check', device: missing[0] },
    );
  }
  process.stderr.write(`sandbox: installing ${packages.join(' ')} (${cmd})\n`);
  aptGet(['update', '-q']);
  aptGet(['install', '-y', '-q', ...packages]);
  cachedRelease = undefined;
  const after = missingSandboxPackages(opts);
  if (after.packages.length > 0) {
    const still = after.missing.join(', ');
    throw new DevmapperError(`sandbox: still missing ${still} after installing ${packages.join(' ')}`, {
      code: 'ENOENT',
      operation: 'sandbox install',
      device: after.missing[0],
    });
  }
}
