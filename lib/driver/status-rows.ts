/**
 * Docker's graph-driver Status() rows and GetMetadata() map, as pure functions of the
 * DeviceSet's typed values (moby v24 daemon/graphdriver/devmapper/driver.go).
 */
import type { DeviceMetadata, DeviceSetStatus } from '../deviceset';
import { humanSize } from '../util';

/** One row of Driver.status(): [key, value], both strings, as Docker's [2]string. */
export type StatusRow = [key: string, value: string];

/** Driver.getMetadata(): Docker's map[string]string, every value a string. */
export interface DriverMetadata {
  /** The thin device id, in decimal. */
  DeviceId: string;
  /** The device's size in bytes, in decimal. */
  DeviceSize: string;
  /** The device-mapper name, `docker-MAJ:MIN-INO-<id>`. */
  DeviceName: string;
}

/**
 * Docker's rows in Docker's order: Pool Name, Pool Blocksize, Base Device Size, Backing
 * Filesystem, Udev Sync Supported, then Data file / Metadata file (the devices: loop devices
 * for loopback) and Data loop file / Metadata loop file, each only when known, then space
 * used/total/available for data and metadata, Thin Pool Minimum Free Space, the deferred
 * removal/deletion flags and count, and Library Version when there is one. Sizes are
 * go-units' HumanSize (decimal: 65536 gives "65.54kB"), booleans "true"/"false".
 */
export function statusRows(s: DeviceSetStatus): StatusRow[] {
  const rows: StatusRow[] = [
    ['Pool Name', s.poolName],
    ['Pool Blocksize', humanSize(s.poolBlockSizeBytes)],
    ['Base Device Size', humanSize(s.baseDeviceSizeBytes)],
    ['Backing Filesystem', s.backingFilesystem],
    ['Udev Sync Supported', String(s.udevSyncSupported)],
  ];
  if (s.dataDevice) rows.push(['Data file', s.dataDevice]);
  if (s.metadataDevice) rows.push(['Metadata file', s.metadataDevice]);
  if (s.dataLoopFile) rows.push(['Data loop file', s.dataLoopFile]);
  if (s.metadataLoopFile) rows.push(['Metadata loop file', s.metadataLoopFile]);
  rows.push(
    ['Data Space Used', humanSize(s.data.usedBytes)],
    ['Data Space Total', humanSize(s.data.totalBytes)],
    ['Data Space Available', humanSize(s.data.availableBytes)],
    ['Metadata Space Used', humanSize(s.metadata.usedBytes)],
    ['Metadata Space Total', humanSize(s.metadata.totalBytes)],
    ['Metadata Space Available', humanSize(s.metadata.availableBytes)],
    ['Thin Pool Minimum Free Space', humanSize(s.minFreeSpaceBytes)],
    ['Deferred Removal Enabled', String(s.deferredRemovalEnabled)],
    ['Deferred Deletion Enabled', String(s.deferredDeletionEnabled)],
    ['Deferred Deleted Device Count', String(s.deferredDeletedDeviceCount)],
  );
  if (s.libraryVersion) rows.push(['Library Version', s.libraryVersion]);
  return rows;
}

/** Docker's GetMetadata: the device id, size in bytes and device-mapper name, as strings. */
export function driverMetadata(meta: Pick<DeviceMetadata, 'deviceId' | 'size'>, deviceName: string): DriverMetadata {
  return { DeviceId: String(meta.deviceId), DeviceSize: String(meta.size), DeviceName: deviceName };
}
