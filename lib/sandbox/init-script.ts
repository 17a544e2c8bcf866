/**
 * The guest's init script: the sandbox kernel runs it as PID 1, with the host's whole file
 * system as its root (hostfs). Rendering is pure so the quoting can be unit-tested.
 */
import { invalidArgument } from '../errors';

/** Loaded in this order (each needs the ones before it); a failure aborts the run. */
export const REQUIRED_MODULES = ['dm-mod', 'dm-bufio', 'dm-persistent-data', 'dm-bio-prison', 'dm-thin-pool', 'loop'];
/** Fault-injection targets (dm-log-writes: the power-cut replay), loaded when the kernel has them. */
export const OPTIONAL_MODULES = ['dm-flakey', 'dm-delay', 'dm-dust', 'dm-log-writes'];

/** The guest consoles the command's stdout and stderr go to; the runner wires them to the host. */
export const GUEST_STDOUT_TTY = '/dev/tty1';
export const GUEST_STDERR_TTY = '/dev/tty2';

/** Where the guest mounts the sandbox kernel's modules (a tmpfs of its own). */
const GUEST_MODROOT = '/run/devmapper-sandbox/modroot';

export interface InitScriptOptions {
  /** The command and its arguments; argv[0] is looked up in the exported PATH. */
  argv: string[];
  /** Absolute directory the command runs in. */
  cwd: string;
  /** Exported to the command; undefined values and names that are not shell names are dropped. */
  env: Record<string, string | undefined>;
  /** Start systemd-udevd in the guest (else no udev at all: /run is a fresh tmpfs). */
  udev: boolean;
  /** Host path (seen unchanged through hostfs) the guest writes its result to. */
  resultFile: string;
  /** Host directory holding the sandbox kernel's modules, one subdirectory per release. */
  modulesDir?: string;
  /**
   * Each module's file relative to the release's directory ('kernel/drivers/md/dm-mod.ko'),
   * as the host read it from modules.dep: saves the guest a search (processes are slow
   * there). Without it the guest searches; a module missing from a given map is absent.
   */
  modulePaths?: Record<string, string>;
  /** Silence the kernel's own "System halted" line at the end. Default true. */
  quiet?: boolean;
}

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** The guest mounts fresh file systems on these: host paths under them are invisible inside. */
export const GUEST_LOCAL_DIRS = ['/tmp', '/run', '/dev', '/proc', '/sys'];

export function isGuestLocalPath(path: string): boolean {
  return GUEST_LOCAL_DIRS.some((d) => path === d || path.startsWith(`${d}/`));
}

/** Quotes one word for /bin/sh: everything between single quotes is literal, newlines too. */
export function shellQuote(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

function checkNoNul(argument: string, value: string): void {
  if (value.includes('\0')) throw invalidArgument(argument, 'a string without NUL bytes', value);
}

/**
 * The part of the script that runs the command: a subshell that changes directory,
 * exports the environment and execs argv with stdin from /dev/null. Its exit status is
 * the command's (125 when the cd fails). Runs unchanged under the host's /bin/sh.
 */
export function renderCommandSegment(opts: Pick<InitScriptOptions, 'argv' | 'cwd' | 'env' | 'udev'>): string {
  if (opts.argv.length === 0) throw invalidArgument('argv', 'a command', opts.argv);
  if (!opts.cwd.startsWith('/')) throw invalidArgument('cwd', 'an absolute path', opts.cwd);
  checkNoNul('cwd', opts.cwd);
  opts.argv.forEach((a, i) => checkNoNul(`argv[${i}]`, a));
  const lines = ['(', `  cd ${shellQuote(opts.cwd)} || exit 125`];
  for (const [name, value] of Object.entries(opts.env)) {
    if (value === undefined || !NAME.test(name)) continue;
    if (name === 'DEVMAPPER_SANDBOX' || name === 'DEVMAPPER_UDEV') continue;
    checkNoNul(`env.${name}`, value);
    lines.push(`  export ${name}=${shellQuote(value)}`);
  }
  lines.push('  export DEVMAPPER_SANDBOX=1', `  export DEVMAPPER_UDEV=${opts.udev ? 'on' : 'off'}`);
  lines.push(`  exec ${opts.argv.map(shellQuote).join(' ')} </dev/null`, ')');
  return lines.join('\n');
}

/** The script lines that load one module: a known path, or a search in the guest. */
function loadModule(name: string, required: boolean, paths: Record<string, string> | undefined): string {
  const sysfsName = name.replace(/-/g, '_');
  const kind = required ? 'required' : 'optional';
  let find: string;
  if (paths === undefined) find = `find_module ${name}`;
  else {
    const path = paths[name];
    if (path !== undefined && (path.includes('\0') || path.startsWith('/') || path.split('/').includes('..'))) {
      throw invalidArgument(`modulePaths.${name}`, 'a path relative to the modules directory', path);
    }
    find = `_ko=${shellQuote(path ?? '')}`;
  }
  return `${find}; load_module ${name} ${sysfsName} ${kind}`;
}

export function renderInitScript(opts: InitScriptOptions): string {
  const result = opts.resultFile;
  if (!result.startsWith('/') || isGuestLocalPath(result)) {
    throw invalidArgument('resultFile', `an absolute host path outside ${GUEST_LOCAL_DIRS.join(', ')}`, result);
  }
  checkNoNul('resultFile', result);
  const modulesDir = opts.modulesDir ?? '/usr/lib/uml/modules';
  checkNoNul('modulesDir', modulesDir);
  const quiet = opts.quiet ?? true;
  const loads = [
    ...REQUIRED_MODULES.map((m) => loadModule(m, true, opts.modulePaths)),
    ...OPTIONAL_MODULES.map((m) => loadModule(m, false, opts.modulePaths)),
  ];

  return `#!/bin/sh
# devmapper sandbox: init (PID 1) of the user-mode Linux guest. Generated; do not edit.
# Every process costs ~0.1 s in this kernel: builtins are used wherever they will do.
set -u
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH
RESULT=${shellQuote(result)}

finish() {
  sync
${quiet ? '  echo 0 >/proc/sys/kernel/printk 2>/dev/null\n' : ''}  halt -f >/dev/null 2>&1
  poweroff -f >/dev/null 2>&1
  echo o >/proc/sysrq-trigger
  sleep 30
}
# The result reaches the host through hostfs (/ is the host's /).
write_result() {
  printf '%s\\n' "$@" >"$RESULT"
}
fail() {
  echo "sandbox init: $1" >&2
  write_result "init-failed=$1"
  finish
}
is_mounted() {
  while read -r _dev _dir _rest; do
    [ "$_dir" = "$1" ] && return 0
  done </proc/mounts
  return 1
}

mount -t proc proc /proc || fail 'mount /proc'
is_mounted /sys || mount -t sysfs sysfs /sys || fail 'mount /sys'
is_mounted /dev || mount -t devtmpfs devtmpfs /dev || fail 'mount /dev'
# The command's stdout and stderr are consoles of their own, wired to the host's.
# (A failed redirection of exec would end PID 1, hence the check first.)
[ -c ${GUEST_STDOUT_TTY} ] && [ -c ${GUEST_STDERR_TTY} ] || fail 'no ${GUEST_STDOUT_TTY} or ${GUEST_STDERR_TTY}'
exec </dev/null >${GUEST_STDOUT_TTY} 2>${GUEST_STDERR_TTY}
# They are ttys: no CR added to each newline.
stty -opost <&1 2>/dev/null
stty -opost <&2 2>/dev/null
mount -t tmpfs -o mode=755,nosuid,nodev tmpfs /run || fail 'mount /run'
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /tmp || fail 'mount /tmp'
mkdir -p /dev/pts /dev/shm /run/devmapper-sandbox/modroot/lib/modules || fail 'mkdir'
is_mounted /dev/pts || mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /dev/pts || fail 'mount /dev/pts'
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /dev/shm || fail 'mount /dev/shm'

# The kernel hands init its unrecognised boot parameters (mem=, umid=, ...) as environment:
# drop them all, the command gets exactly the environment it was given.
export -p >/run/devmapper-sandbox/boot-env
while read -r _export _def; do
  unset "\${_def%%=*}"
done </run/devmapper-sandbox/boot-env
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH

read -r KREL </proc/sys/kernel/osrelease
MODROOT=${GUEST_MODROOT}
MODDIR="$MODROOT/lib/modules/$KREL"
mount -t hostfs -o ${shellQuote(modulesDir)} hostfs "$MODROOT/lib/modules" || fail 'mount the modules (hostfs)'
[ -d "$MODDIR/kernel" ] || fail "no modules for $KREL in "${shellQuote(modulesDir)}
find_module() { # NAME: sets _ko to its file relative to $MODDIR, or empty
  _ko=$(sed -n "s|^\\(kernel/.*/$1\\.ko[^:]*\\):.*|\\1|p" "$MODDIR/modules.dep" 2>/dev/null | head -n 1)
  [ -n "$_ko" ] || _ko=$(cd "$MODDIR" && find kernel -name "$1.ko*" | head -n 1)
}
load_module() { # NAME SYSFS-NAME required|optional
  [ -d "/sys/module/$2" ] && return 0
  [ -n "$_ko" ] || { [ "$3" = required ] && fail "module $1 not found under $MODDIR"; return 0; }
  insmod "$MODDIR/$_ko" || { [ "$3" = optional ] || fail "insmod $1"; }
}
${loads.join('\n')}
# Other targets (zero, snapshot, crypt, ...) load on demand through modprobe.
for _m in /usr/sbin/modprobe /sbin/modprobe; do
  [ -x "$_m" ] || continue
  printf '#!/bin/sh\\nexec %s -d %s "$@"\\n' "$_m" "$MODROOT" >/run/devmapper-sandbox/modprobe &&
    chmod 755 /run/devmapper-sandbox/modprobe &&
    echo /run/devmapper-sandbox/modprobe >/proc/sys/kernel/modprobe
  break
done
ulimit -n 1048576 2>/dev/null || ulimit -n 65536 2>/dev/null
${
  opts.udev
    ? `SYSTEMD_LOG_LEVEL=warning /usr/lib/systemd/systemd-udevd --daemon || fail 'start systemd-udevd'
# UML has ~600 tty devices: replaying their events would cost seconds and serve nothing.
udevadm trigger --action=add --subsystem-nomatch=tty || fail 'udevadm trigger'
udevadm settle -t 30 || echo 'sandbox init: udevadm settle timed out' >&2`
    : '# udev off: nothing listens on /run/udev/control (a fresh tmpfs).'
}

${renderCommandSegment(opts)}
_status=$?
${opts.udev ? 'udevadm control --exit 2>/dev/null\n' : ''}write_result "release=$KREL" "status=$_status"
finish
`;
}

export interface GuestResult {
  status?: number;
  release?: string;
  initFailure?: string;
}

/** Parses the result file; an unusable one gives an object without status. */
export function parseGuestResult(text: string): GuestResult {
  const out: GuestResult = {};
  for (const line of text.split('\n')) {
    const eq = line.indexOf('=');
    if (eq < 0) continue;
    const key = line.slice(0, eq);
    const value = line.slice(eq + 1);
    if (key === 'status' && /^\d{1,3}$/.test(value) && Number(value) <= 255) out.status = Number(value);
    else if (key === 'release' && value !== '') out.release = value;
    else if (key === 'init-failed') out.initFailure = value;
  }
  return out;
}
