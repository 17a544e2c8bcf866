/** The diagnostics channels the library publishes on (see ./channels.ts). */
export {
  CHANNELS,
  type LibdmLogRecord,
  type DmOperationRecord,
  type DeviceSetRecord,
  type DeviceSetStep,
} from './channels';
// For the library's layers (tagged @internal: not in the API docs).
export { libdmChannel, dmChannel, deviceSetChannel, publish } from './channels';
