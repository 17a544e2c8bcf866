/** The DeviceSet layer: Docker-compatible thin-pool storage with crash-safe metadata. */
export { DeviceSet, type DeviceSetOpenOptions, type AddDeviceOptions, type DeleteDeviceOptions } from './deviceset';
export type { DeviceSetStatus, DeviceStatus, SpaceUsage } from './status';
export type { DeviceMetadata, DeviceSetMetadata, TransactionMetadata } from './metadata-store';
export { resolveOptions, type DeviceSetOptions, type ResolvedOptions } from './options';
export { parseSize, humanSize } from './units';
export { CRASH_POINTS, type CrashPoint } from './crash-points';
