/**
 * The low-level device-mapper API: the operations of Docker's pkg/devicemapper, typed.
 * Every pool or device argument takes a name or a /dev/mapper path.
 */
export { createPool, reloadPool, poolTable, deviceSizeSectors, POOL_DEFAULTS, type PoolOptions, type ReloadPoolOptions } from './pool';
export { createDevice, createSnapDevice, deleteDevice, setTransactionId, sendMessage } from './messages';
export {
  activateDevice,
  suspendDevice,
  resumeDevice,
  removeDevice,
  cancelDeferredRemove,
  updateNodes,
  REMOVE_DEFAULTS,
  type ActivateOptions,
  type SuspendOptions,
  type RemoveOptions,
} from './device';
export {
  getInfo,
  getStatus,
  getTable,
  getPoolStatus,
  getThinStatus,
  getDeps,
  listDevices,
  getDriverVersion,
  getTargetVersions,
  getLibraryVersion,
  udevSyncSupported,
  type DeviceInfo,
} from './query';
export { udevSettle, udevReaperStats, udevWaitName, sweepAbandonedUdevCookies, usableDevicePath, type UdevReaperStats } from './udev-reaper';
export {
  setTaskDefaults,
  getTaskDefaults,
  setLogLevel,
  getLogLevel,
  withTaskSettings,
  type TaskDefaults,
  type TaskSettings,
} from './task';
export { watchDeviceEvents, type DeviceEventWatch, type WatchDeviceEventsOptions } from './events';
export * from './parse';
export * from './types';
export {
  resolveDeviceName,
  checkDeviceName,
  DM_NAME_MAX_BYTES,
  THIN_POOL_FEATURES,
  SECTOR_BYTES,
  type ThinPoolFeature,
} from './validate';

// For the library's own layers (the DeviceSet, the Driver), not for users: step jobs and the
// kernel sequences they are built from. Tagged @internal, so left out of the API docs.
export { runSteps, runStepsOrThrow, madeIn, type StepsOutcome, type StepResult } from './run-steps';
export {
  inPhase,
  taskStep,
  writeFileStep,
  createFileStep,
  mkdirStep,
  syncDirStep,
  unlinkStep,
  mountStep,
  umountStep,
  rmdirStep,
  discardStep,
  crashStep,
  type Step,
  type StepOptions,
  type Phase,
  type ErrnoName,
} from './steps';
export {
  createThinSteps,
  snapshotSteps,
  withOriginLock,
  activationSteps,
  removalSteps,
  removeWithRetries,
  setTransactionIdSteps,
  deletionSteps,
  discardSteps,
  mountSteps,
  unmountSteps,
  type RemovalOptions,
  type RetryOptions,
} from './sequences';
