/**
 * devmapper: Linux device-mapper thin provisioning for Node.js.
 *
 * `dm` is the low-level layer (Docker's pkg/devicemapper operations); `sys` holds loop
 * devices, block device calls and mount(2); `layers` applies, compares and exports image
 * layers on plain directory trees. {@link DeviceSet} and {@link Driver} are
 * Docker's devicemapper DeviceSet and graph driver. Every failure is a {@link DevmapperError}.
 * Privileges, udev, threads and troubleshooting: docs/guide.md. `CHANNELS` names the
 * diagnostics channels the library logs on.
 *
 * @packageDocumentation
 */

/**
 * The low-level device-mapper API: Docker's pkg/devicemapper operations, typed (thin pools,
 * create_thin, create_snap, activate, suspend, resume, remove, status, table parsers). Each
 * call runs one libdevmapper task off the JS thread.
 */
export * as dm from './dm';
/** The kernel calls besides device-mapper: loop devices, block device size and discard, mount(2). */
export * as sys from './sys';
/** Image layer tars on plain directory trees: apply (whiteouts, refusal with undo), changes between two trees, export. */
export * as layers from './layers';
/** Images into thin snapshots: import docker-save and OCI layouts (digests checked while streaming), root disks for microVMs and containers. */
export * as images from './images';
export * from './deviceset';
export * from './driver';
/** containerd's snapshot model (active, view, committed snapshots as thin devices) and its gRPC proxy service. */
export * from './snapshotter';
export * from './log';
export { DevmapperError, ErrorCodes, errnoName, type DevmapperErrorOptions, type LibdmLogLine } from './errors';
