/** The graph Driver: Docker's devicemapper graphdriver over a DeviceSet. */
export { Driver, type CreateOptions } from './driver';
export { statusRows, driverMetadata, type StatusRow, type DriverMetadata } from './status-rows';
export { parseStorageOpt, type StorageOpt, type ParsedStorageOpt } from './storage-opt';
