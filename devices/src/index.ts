/** @gridlink/devices: the device contract as code (CONTRACT sections 2-3). */
export {
  TOPIC_PREFIX,
  CHANNELS,
  DEVICE_ID_RE,
  isDeviceId,
  isChannel,
  uplinkTopic,
  commandTopic,
  parseTopic,
  type Channel,
  type ParsedTopic,
} from './topics.js';

export {
  SEVERITIES,
  ALERT_TYPES,
  CASE_ACTIONS,
  LIMITS,
  MetricValue,
  TelemetryItem,
  EventBody,
  AlertBody,
  LocationItem,
  ReportBody,
  CaseProgressBody,
  StatusBody,
  ChannelBodies,
  DispatchCommand,
  CancelCommand,
  Command,
  decodeCommand,
  type Severity,
  type KnownAlertType,
  type CaseAction,
  type ChannelPayloads,
} from './schemas.js';

export {
  decodeUplink,
  decodeValue,
  parseTs,
  DEFAULT_MAX_FUTURE_MS,
  MIN_TS,
  type Normalised,
  type NormalisedOf,
  type RejectReason,
  type DecodeResult,
  type DecodeFailure,
  type DecodeContext,
} from './decode.js';

export {
  DEVICE_TYPES,
  catalogue,
  isDeviceType,
  m,
  validateDeviceTypeDef,
  type DeviceType,
  type DeviceTypeDef,
  type MetricDef,
  type Label,
} from './catalogue.js';

export * from './codecs/index.js';
