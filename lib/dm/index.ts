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
  DM_NAME_MAX_BYTES,
  THIN_POOL_FEATURES,
  SECTOR_BYTES,
  type ThinPoolFeature,
} from './validate';
