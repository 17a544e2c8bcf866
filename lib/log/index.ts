/** The diagnostics channels the library publishes on (see ./channels.ts). */
export {
  CHANNELS,
  type LibdmLogRecord,
  type DmOperationRecord,
  type DeviceSetRecord,
  type DeviceSetStep,
} from './channels';
