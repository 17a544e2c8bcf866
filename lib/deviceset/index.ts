/** The DeviceSet layer: Docker-compatible thin-pool storage with crash-safe metadata. */
export {
  DeviceSet,
  type DeviceSetOpenOptions,
  type AddDeviceOptions,
  type DeleteDeviceOptions,
  type DeviceSetEvents,
  type PoolEventsOptions,
  type ShutdownResult,
  type BusyDevice,
} from './deviceset';
export type { PoolEvent, PoolEventType } from './pool-transitions';
export type { PoolEventStats } from './pool-events';
export type { DeviceSetStatus, DeviceStatus, SpaceUsage } from './status';
export type { DeviceMetadata, DeviceSetMetadata, TransactionMetadata } from './metadata-store';
export { resolveOptions, type DeviceSetOptions, type ResolvedOptions } from './options';
export { parseSize, humanSize } from '../util';
export type { MountDeviceOptions, LayoutEntry } from './mounts';
export { ReadOnlyDeviceSet } from './read-only';
export { checkDeviceHash, metadataFileName, type CheckDeviceHashOptions } from './hash';
// For the Driver and the command line (tagged @internal: not in the API docs).
export { unknownDevice } from './devices';
