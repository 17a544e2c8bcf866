/**
 * The one internal entry outside the public API, for the project's benchmarks and tests: the
 * raw addon (to measure one native call against the library's wrapping of it) and the
 * DeviceSet's on-disk helpers (to fill a root with thousands of devices without creating
 * each through the library). Not part of the package's contract: it may change in any release.
 */
export { native, type NativeTaskSpec } from './native';
export { devicePrefixFromStat } from './deviceset/hash';
export { encodeDevice, encodeDeviceSet, decodeDeviceSet, decodeTransaction, DEVICE_SET_FILE, TRANSACTION_FILE } from './deviceset/metadata-store';
export { makeFilesystem } from './deviceset/filesystem';
