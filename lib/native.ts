/**
 * The one module that loads the native addon. It types the addon's raw surface once and
 * hands it the DevmapperError class; everything else imports from here.
 */
import bindings from 'bindings';
import { DevmapperError, ErrorCodes, type LibdmLogLine } from './errors';
import type { TargetLine } from './dm/types';

/** Task types of libdevmapper's dm_task_create, by the names the addon accepts. */
export type NativeTaskType =
  | 'create'
  | 'reload'
  | 'remove'
  | 'suspend'
  | 'resume'
  | 'info'
  | 'deps'
  | 'rename'
  | 'version'
  | 'status'
  | 'table'
  | 'waitevent'
  | 'list'
  | 'clear'
  | 'mknodes'
  | 'listVersions'
  | 'targetMsg';

/** A plain description of one dm_task, converted to a C++ struct before any work starts. */
export interface NativeTaskSpec {
  type: NativeTaskType;
  name?: string;
  uuid?: string;
  newName?: string;
  major?: number;
  minor?: number;
  targets?: TargetLine[];
  message?: string;
  sector?: number;
  readOnly?: boolean;
  noOpenCount?: boolean;
  skipLockfs?: boolean;
  noFlush?: boolean;
  deferredRemove?: boolean;
  queryInactiveTable?: boolean;
  secureData?: boolean;
  addNode?: 'create' | 'resume';
  eventNr?: number;
  /** Carry a udev cookie (create, resume, remove, rename only). Default true. */
  udev?: boolean;
  udevFlags?: number;
  /** Upper bound on the wait for udev, in ms. Default 30000. */
  udevTimeoutMs?: number;
  /** Hand the cookie to the addon's reaper instead of waiting for udev (see {@link NativeAddon.udevSettle}). */
  udevReap?: boolean;
  /** libdm lines captured beyond errors, up to this level (2-7). Default: the process's (setLogLevel). */
  logLevel?: number;
  /** What the caller is doing, for error messages ("create_thin 5", "activate"). */
  operation?: string;
}

export interface NativeInfo {
  exists: boolean;
  suspended: boolean;
  liveTable: boolean;
  inactiveTable: boolean;
  openCount: number;
  eventNr: number;
  major: number;
  minor: number;
  readOnly: boolean;
  targetCount: number;
  deferredRemove: boolean;
  internalSuspend: boolean;
  uuid?: string;
}

export interface NativeTaskResult {
  info?: NativeInfo;
  targets?: TargetLine[];
  response?: string;
  deps?: { major: number; minor: number }[];
  names?: { name: string; major: number; minor: number }[];
  versions?: { name: string; version: [number, number, number] }[];
  driverVersion?: string;
  /** udev did not finish within udevTimeoutMs; the cookie was completed and released by us. */
  udevTimedOut: boolean;
  /** The cookie went to the reaper: udev may still be at work on the device. */
  udevReaped: boolean;
  /** The udev cookie used, 0 when none (udev not running, or a task type without one). */
  cookie: number;
  logs: LibdmLogLine[];
}

export interface NativeLoopEntry {
  path: string;
  number: number;
  major: number;
  minor: number;
  autoclear: boolean;
  readOnly: boolean;
  backingFile: string;
}

/**
 * A watcher thread of one device's device-mapper events (src-native/event_watcher.cc).
 * The callback gets (null, eventNr) when the device's event counter moved, or (error, null)
 * once when the watch failed and its thread ended.
 */
export interface NativeEventWatcher {
  /** Stops and joins the thread, closes its files. Idempotent; no callback runs after it. */
  close(): void;
  readonly eventNr: number;
  /** Times the thread woke from poll(): any device-mapper event in the system. */
  readonly wakeups: number;
  /** Wake-ups at which this device's event counter had moved (one callback each). */
  readonly deviceEvents: number;
  readonly active: boolean;
}

export type NativeEventCallback = (err: DevmapperError | null, eventNr: number | null) => void;

/** One step of {@link NativeAddon.runSteps}. */
/** The udev reaper's counts, for the process. */
export interface UdevReaperStats {
  /** Cookies udev has not finished yet. */
  pending: number;
  /** Finished by udev and destroyed. */
  reaped: number;
  /** Completed by force at their deadline (the udev wait bound). */
  timedOut: number;
}

export interface NativeStep {
  kind: 'task' | 'writeFile' | 'createFile' | 'syncDir' | 'unlink' | 'mount' | 'umount' | 'mkdir' | 'rmdir' | 'discard' | 'crash';
  /** kind 'task': the dm task. */
  task?: NativeTaskSpec;
  /** The file (writeFile, unlink), directory (syncDir, mkdir, rmdir), mount target or block device (discard). */
  path?: string;
  /** writeFile, createFile: the contents; mount: the data argument. */
  data?: string;
  source?: string;
  fstype?: string;
  /**
   * mount source / discard target given as a device-mapper name: /dev/mapper/NAME, or while
   * the reaper holds a cookie of it, /dev/dm-MINOR (devtmpfs has it before udev's link).
   */
  dmName?: string;
  /** mount / umount2 flags. */
  flags?: number;
  /** discard: the byte range. */
  offset?: number;
  length?: number;
  /** discard: a thin device's status task, run first; when it reports nothing mapped, the discard is skipped. */
  unlessUnmapped?: NativeTaskSpec;
  /** writeFile / createFile / mkdir mode (default 0600; createFile and mkdir set it exactly, whatever the umask). */
  mode?: number;
  /** errnos that count as done (the step's result keeps the errno). */
  okErrnos?: number[];
  /** Runs even after an earlier step failed (a resume after a suspend). */
  always?: boolean;
  /** What to call the step in an error message. */
  operation?: string;
}

/** What one step did. */
export interface NativeStepResult {
  ran: boolean;
  /** It ran and found nothing to do (a discard of a thin device with nothing mapped). */
  skipped?: boolean;
  /** A tolerated errno, 0 when the call succeeded. */
  errno: number;
  /** Its time in ns when the job was timed, else 0. */
  ns: number;
  task?: NativeTaskResult;
}

/** The outcome of {@link NativeAddon.runSteps}: resolves on failure too. */
export interface NativeStepsOutcome {
  results: NativeStepResult[];
  /** The first failed step's index, -1 when none failed. */
  failedStep: number;
  error: DevmapperError | null;
}

export interface NativeAddon {
  setErrorClass(cls: typeof DevmapperError): void;
  setLogLevel(level: number): void;
  getLogLevel(): number;
  runTask(spec: NativeTaskSpec): Promise<NativeTaskResult>;
  runTaskSync(spec: NativeTaskSpec): NativeTaskResult;
  /** runTaskSync when the libdm lock is free, else null (nothing ran). Cookie-less tasks only. */
  tryRunTaskSync(spec: NativeTaskSpec): NativeTaskResult | null;
  /** One libuv job for a sequence of steps (src-native/step_plan.h). */
  /** `timed`: measure each step (its `ns`); otherwise `ns` is 0. */
  runSteps(steps: NativeStep[], timed?: boolean): Promise<NativeStepsOutcome>;
  EventWatcher: new (name: string, callback: NativeEventCallback) => NativeEventWatcher;
  libraryVersion(): string;
  udevSyncSupported(): boolean;
  /** Resolves once no reaped udev cookie is pending, or at the timeout, with the reaper's counts. */
  udevSettle(timeoutMs: number): Promise<UdevReaperStats>;
  udevReaperStats(): UdevReaperStats;
  /** Resolves once no reaped cookie of this device-mapper name is pending. */
  udevWaitName(name: string): Promise<void>;
  sweepAbandonedUdevCookies(minAgeSeconds: number): number;
  /** The path to open a device-mapper device by now: /dev/mapper/NAME, or /dev/dm-MINOR while udev still makes the former. */
  usableDevicePath(name: string): Promise<string>;
  cookieSupported(): boolean;
  loopAttach(
    file: string,
    opts: { readOnly?: boolean; autoclear?: boolean; directIo?: boolean },
  ): Promise<{ path: string; number: number; major: number; minor: number; fd: number }>;
  loopDetach(loopPath: string): Promise<void>;
  loopSetCapacity(loopPath: string): Promise<void>;
  loopFind(file: string): Promise<NativeLoopEntry[]>;
  loopStatus(loopPath: string): Promise<NativeLoopEntry | null>;
  blockDeviceSize(path: string): Promise<number>;
  blockDiscard(path: string, offsetBytes: number, lengthBytes: number): Promise<void>;
  mount(source: string, target: string, fstype: string, flags: number, data: string): Promise<void>;
  umount(target: string, flags: number): Promise<void>;
  isMountPoint(path: string): boolean;
  readFiles(paths: string[]): Promise<(string | null)[]>;
  lockFile(path: string): number;
  unlockFile(fd: number): void;
  lgetxattr(path: string, name: string): Promise<Buffer | null>;
  lsetxattr(path: string, name: string, value: Buffer): Promise<void>;
  lremovexattr(path: string, name: string): Promise<void>;
  llistxattr(path: string): Promise<string[]>;
  mknod(path: string, mode: number, major: number, minor: number): Promise<void>;
  lutimesNs(path: string, atimeSec: number, atimeNsec: number, mtimeSec: number, mtimeNsec: number): Promise<void>;
  mountFlags: Record<
    | 'MS_RDONLY'
    | 'MS_NOSUID'
    | 'MS_NODEV'
    | 'MS_NOEXEC'
    | 'MS_SYNCHRONOUS'
    | 'MS_REMOUNT'
    | 'MS_NOATIME'
    | 'MS_NODIRATIME'
    | 'MS_BIND'
    | 'MS_REC'
    | 'MS_PRIVATE'
    | 'MS_SLAVE'
    | 'MS_SHARED'
    | 'MS_RELATIME'
    | 'MNT_FORCE'
    | 'MNT_DETACH'
    | 'MNT_EXPIRE'
    | 'UMOUNT_NOFOLLOW',
    number
  >;
  udevFlags: Record<
    | 'DISABLE_DM_RULES'
    | 'DISABLE_SUBSYSTEM_RULES'
    | 'DISABLE_DISK_RULES'
    | 'DISABLE_OTHER_RULES'
    | 'LOW_PRIORITY'
    | 'DISABLE_LIBRARY_FALLBACK'
    | 'PRIMARY_SOURCE',
    number
  >;
}

let addon: NativeAddon | undefined;

/**
 * The loaded addon. Loaded on first use, so that importing the package (for its types,
 * parsers or the sandbox runner) works on a machine where the addon is not built.
 */
export function native(): NativeAddon {
  if (addon) return addon;
  let loaded: NativeAddon;
  try {
    loaded = bindings('devmapper') as NativeAddon;
  } catch (err) {
    const why = err instanceof Error ? err.message.split('\n')[0] : String(err);
    throw new DevmapperError(
      `the devmapper native addon could not be loaded (${why}). ` +
        'Build it with `npm run build:native` (needs: apt-get install -y libdevmapper-dev pkg-config g++ make python3); ' +
        'libdevmapper.so.1.02 must be installed at run time (Debian package libdevmapper1.02.1).',
      { code: ErrorCodes.ADDON, cause: err },
    );
  }
  loaded.setErrorClass(DevmapperError);
  addon = loaded;
  return loaded;
}
