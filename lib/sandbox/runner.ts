/** Boots the user-mode Linux kernel on one command and carries its exit status out. */
import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { DevmapperError, ErrorCodes, invalidArgument } from '../errors';
import {
  isGuestLocalPath,
  OPTIONAL_MODULES,
  parseGuestResult,
  renderInitScript,
  REQUIRED_MODULES,
} from './init-script';
import { ensureSandboxInstalled, UML_BINARY, UML_MODULES_ROOT, umlKernelRelease, umlModulePaths } from './packages';

/** Per-run control directories (init script, result, UML's pid file and socket) live here. */
export const SANDBOX_BASE_DIR = '/var/tmp/devmapper-sandbox';
/** Exit code of a run that produced no usable result (panic, timeout, init failure). */
export const SANDBOX_FAILURE_EXIT = 125;

export interface SandboxRunOptions {
  argv: string[];
  /** Directory the command runs in; default process.cwd(). Must not be under /tmp or /run. */
  cwd?: string;
  /** The command's whole environment; default the host's, minus host-only variables. */
  env?: Record<string, string | undefined>;
  /** Run systemd-udevd in the guest. */
  udev: boolean;
  /** Guest memory, as linux.uml's mem= takes it; default '2G'. */
  memory?: string;
  /** Kill the guest after this long; no limit when undefined or 0. */
  timeoutMs?: number;
  /** false shows the kernel's messages; default hides them (a panic still shows). */
  quiet?: boolean;
}

export interface SandboxRunResult {
  exitCode: number;
  kernelRelease?: string;
}

/** Variables that describe the host session and mean nothing (or harm) inside the guest. */
const HOST_ONLY_ENV = new Set([
  'TMPDIR', 'TMP', 'TEMP', 'XDG_RUNTIME_DIR', 'DISPLAY', 'WAYLAND_DISPLAY', 'XAUTHORITY',
  'DBUS_SESSION_BUS_ADDRESS', 'SSH_AUTH_SOCK', 'SSH_AGENT_PID', 'GPG_AGENT_INFO',
  'NOTIFY_SOCKET', 'LISTEN_FDS', 'LISTEN_PID', 'LISTEN_FDNAMES', 'INVOCATION_ID', 'JOURNAL_STREAM',
  'PWD', 'OLDPWD', 'SHLVL', '_',
]);

/** The host's environment as the guest command gets it by default. */
export function sandboxEnvironment(env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) {
    if (value !== undefined && !HOST_ONLY_ENV.has(name)) out[name] = value;
  }
  return out;
}

/** linux.uml's own environment: its guest memory file goes to TMPDIR when set, else /dev/shm. */
function umlEnvironment(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  // A TMPDIR that is missing or not a tmpfs makes linux.uml give up (exit 1) or run slowly.
  delete env.TMPDIR;
  delete env.TMP;
  delete env.TEMP;
  return env;
}

/**
 * The base directory is shared (under world-writable /var/tmp): refuse one that someone
 * else could have planted or can write into.
 */
function ensureBaseDir(): void {
  mkdirSync(SANDBOX_BASE_DIR, { recursive: true, mode: 0o755 });
  const st = lstatSync(SANDBOX_BASE_DIR);
  const uid = process.getuid?.() ?? 0;
  const openToOthers = (st.mode & 0o022) !== 0 && (st.mode & 0o1000) === 0;
  if (!st.isDirectory() || (st.uid !== uid && st.uid !== 0) || openToOthers) {
    throw new DevmapperError(
      `sandbox: ${SANDBOX_BASE_DIR} is not a directory owned by root or by us and closed to others`,
      { code: 'EPERM', operation: 'sandbox setup', device: SANDBOX_BASE_DIR },
    );
  }
}

function kernelParams(o: { memory: string; init: string; umid: string; umlDir: string; quiet: boolean }): string[] {
  return [
    `mem=${o.memory}`,
    'root=/dev/root',
    'rootfstype=hostfs',
    'rootflags=/',
    'rw',
    `init=${o.init}`,
    // con0 is the kernel console (-> fd 3), con1/con2 the command's stdout/stderr (see init-script).
    'con=null',
    'con0=null,fd:3',
    'con1=null,fd:1',
    'con2=null,fd:2',
    `umid=${o.umid}`,
    `uml_dir=${o.umlDir}/`,
    // quiet alone still lets warnings through; loglevel=1 keeps only emergencies (panics).
    ...(o.quiet ? ['quiet', 'loglevel=1'] : []),
  ];
}

function signalNumber(sig: NodeJS.Signals): number {
  return osConstants.signals[sig] ?? 0;
}

/**
 * Waits (bounded) until no process of the group is left. Killed helpers of linux.uml are
 * not our children: they linger as zombies until init reaps them.
 */
async function groupGone(pgid: number | undefined, maxMs: number): Promise<void> {
  if (pgid === undefined) return;
  for (const start = Date.now(); Date.now() - start < maxMs; ) {
    try {
      process.kill(-pgid, 0);
    } catch {
      return;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Runs argv as root under the user-mode Linux kernel, which has device-mapper. The host's
 * file system is the guest's root, so the command sees the same files; its output streams
 * to ours. Resolves with the command's exit status (125 when the guest gave none).
 */
export async function runInSandbox(opts: SandboxRunOptions): Promise<SandboxRunResult> {
  if (opts.argv.length === 0) throw invalidArgument('argv', 'a command', opts.argv);
  const memory = opts.memory ?? '2G';
  if (!/^[1-9][0-9]*[KMG]?$/i.test(memory)) throw invalidArgument('memory', "a size such as '2G' or '512M'", memory);
  const timeoutMs = opts.timeoutMs ?? 0;
  if (!Number.isFinite(timeoutMs) || timeoutMs < 0) throw invalidArgument('timeoutMs', 'a duration >= 0', timeoutMs);
  const cwd = resolve(opts.cwd ?? process.cwd());
  if (isGuestLocalPath(cwd)) {
    const expected = 'a directory outside /tmp, /run, /dev, /proc and /sys (the guest mounts its own there)';
    throw invalidArgument('cwd', expected, cwd);
  }
  const quiet = opts.quiet !== false;

  ensureSandboxInstalled({ udev: opts.udev });
  ensureBaseDir();
  const controlDir = mkdtempSync(join(SANDBOX_BASE_DIR, 'run-')); // mode 0700
  const resultFile = join(controlDir, 'result');
  const initPath = join(controlDir, 'init');
  const removeControlDir = (): void => rmSync(controlDir, { recursive: true, force: true });

  let child: ChildProcess;
  try {
    const release = umlKernelRelease();
    const script = renderInitScript({
      argv: opts.argv,
      cwd,
      env: opts.env ?? sandboxEnvironment(),
      udev: opts.udev,
      resultFile,
      modulesDir: UML_MODULES_ROOT,
      modulePaths: release ? umlModulePaths(release, [...REQUIRED_MODULES, ...OPTIONAL_MODULES]) : undefined,
      quiet,
    });
    writeFileSync(initPath, script, { mode: 0o755 });
    chmodSync(initPath, 0o755);
    const params = kernelParams({
      memory,
      init: initPath,
      umid: `devmapper-${basename(controlDir)}`,
      umlDir: join(controlDir, 'uml'),
      quiet,
    });
    // Own process group (linux.uml forks helpers) so one kill reaches them all. Pipes rather
    // than our own fds: linux.uml makes its fds non-blocking, which would leak to our caller.
    child = spawn(UML_BINARY, params, {
      cwd: '/',
      env: umlEnvironment(),
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
    });
  } catch (err) {
    removeControlDir();
    throw err;
  }
  const pid = child.pid;
  child.stdout?.pipe(process.stdout, { end: false });
  child.stderr?.pipe(process.stderr, { end: false });
  (child.stdio[3] as NodeJS.ReadableStream | null)?.pipe(process.stderr, { end: false });

  const killGroup = (): void => {
    if (pid === undefined) return;
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // already gone
    }
  };
  // SIGTERM makes linux.uml kill and reap its helpers and exit at once (~0.1 s); killing
  // the whole group leaves zombies until init reaps them, so it is only the fallback.
  let killTimer: NodeJS.Timeout | undefined;
  const stopGuest = (): void => {
    if (pid === undefined || killTimer) return;
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      // already gone
    }
    killTimer = setTimeout(killGroup, 2000);
  };
  let timedOut = false;
  let interrupted: NodeJS.Signals | undefined;
  const onSignal = (sig: NodeJS.Signals): void => {
    interrupted = sig;
    stopGuest();
  };
  const onExit = (): void => {
    killGroup();
    removeControlDir();
  };
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  for (const s of signals) process.on(s, onSignal);
  process.on('exit', onExit);
  const timer =
    timeoutMs > 0
      ? setTimeout(() => {
          timedOut = true;
          process.stderr.write(`sandbox: timed out after ${timeoutMs / 1000} s; killing the guest\n`);
          stopGuest();
        }, timeoutMs)
      : undefined;

  let ended: { code: number | null; signal: NodeJS.Signals | null };
  try {
    ended = await new Promise((resolveEnd, rejectEnd) => {
      child.once('error', rejectEnd);
      // Sweep helpers that outlive the main process: their pipe ends would hold 'close' back.
      child.once('exit', killGroup);
      child.once('close', (code, signal) => resolveEnd({ code, signal }));
    });
  } catch (err) {
    killGroup();
    removeControlDir();
    throw new DevmapperError(`sandbox: cannot run ${UML_BINARY}: ${(err as Error).message}`, {
      code: (err as NodeJS.ErrnoException).code ?? ErrorCodes.COMMAND_FAILED,
      operation: 'sandbox spawn',
      cause: err,
    });
  } finally {
    if (timer) clearTimeout(timer);
    if (killTimer) clearTimeout(killTimer);
    for (const s of signals) process.off(s, onSignal);
    process.off('exit', onExit);
  }

  await groupGone(pid, 3000);

  let resultText = '';
  try {
    resultText = readFileSync(resultFile, 'utf8');
  } catch {
    // no result: reported below
  }
  removeControlDir();
  const result = parseGuestResult(resultText);

  if (interrupted) {
    process.stderr.write(`sandbox: interrupted by ${interrupted}; guest killed\n`);
    // Nobody else handles the signal: die of it, as we would have without our handler.
    if (process.listenerCount(interrupted) === 0) process.kill(process.pid, interrupted);
    return { exitCode: 128 + signalNumber(interrupted), kernelRelease: result.release };
  }
  if (result.status !== undefined && !result.initFailure) {
    return { exitCode: result.status, kernelRelease: result.release };
  }
  if (result.initFailure) {
    process.stderr.write(`sandbox: guest init failed: ${result.initFailure}\n`);
  } else {
    if (!timedOut && ended.signal) process.stderr.write(`sandbox: ${UML_BINARY} was killed by ${ended.signal}\n`);
    if (!timedOut && ended.code) process.stderr.write(`sandbox: ${UML_BINARY} exited with code ${ended.code}\n`);
    process.stderr.write('sandbox: no result from the guest (kernel panic, timeout or init failure)\n');
  }
  return { exitCode: SANDBOX_FAILURE_EXIT, kernelRelease: result.release };
}
