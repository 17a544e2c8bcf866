/**
 * devmapper: Linux device-mapper thin provisioning for Node.js.
 *
 * `dm` is the low-level layer (Docker's pkg/devicemapper operations); `sys` holds loop
 * devices, block device calls and mount(2); `layers` applies, compares and exports image
 * layers on plain directory trees.
 */
export * as dm from './dm';
export * as sys from './sys';
export * as layers from './layers';
export * from './deviceset';
export * from './driver';
export { DevmapperError, ErrorCodes, errnoName, type DevmapperErrorOptions, type LibdmLogLine } from './errors';
