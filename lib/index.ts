/**
 * devmapper: Linux device-mapper thin provisioning for Node.js.
 *
 * `dm` is the low-level layer (Docker's pkg/devicemapper operations); `sys` holds loop
 * devices, block device calls and mount(2). `CHANNELS` names the diagnostics channels the
 * library logs on.
 */
export * as dm from './dm';
export * as sys from './sys';
export * from './deviceset';
export * from './driver';
export * from './log';
export { DevmapperError, ErrorCodes, errnoName, type DevmapperErrorOptions, type LibdmLogLine } from './errors';
