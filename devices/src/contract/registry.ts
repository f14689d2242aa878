/** Devices as REST returns them (CONTRACT 5 `/devices`). */
import { Type, type Static } from '@sinclair/typebox';
import { DEVICE_TYPES, type DeviceType } from '../catalogue.js';
import { Nullable, TimeQuery } from './common.js';
import { DEVICE_ID_PATTERN } from './values.js';

export const Device = Type.Object({
  id: Type.String(),
  type: Type.Unsafe<DeviceType>(Type.String({ description: 'a device type of the catalogue (`GET /device-types`)' })),
  name: Type.String(),
  enabled: Type.Boolean(),
  lat: Nullable(Type.Number()),
  lon: Nullable(Type.Number()),
  gridId: Nullable(Type.String()),
  meta: Type.Record(Type.String(), Type.Unknown()),
  createdAt: Type.Number(),
  lastSeen: Nullable(Type.Number()),
  online: Type.Boolean(),
  rejected: Type.Optional(Type.Record(Type.String(), Type.Number(), { description: 'dropped messages by reason since the hub started' })),
});
export type Device = Static<typeof Device>;

/** `POST /devices` answers the device with its secret, once. */
export const RegisteredDevice = Type.Intersect([Device, Type.Object({ secret: Type.String() })]);
export type RegisteredDevice = Static<typeof RegisteredDevice>;

/** `GET /devices/{id}/telemetry` points: a raw reading (with its metric), or avg (`value`), min, max and count `n` of a bucket. */
export const TelemetryPoint = Type.Object({
  ts: Type.Number(),
  value: Type.Union([Type.Number(), Type.Boolean(), Type.String(), Type.Null()]),
  metric: Type.Optional(Type.String()),
  min: Type.Optional(Type.Number()),
  max: Type.Optional(Type.Number()),
  n: Type.Optional(Type.Number()),
});
export type TelemetryPoint = Static<typeof TelemetryPoint>;

/** `GET /devices/{id}/telemetry`. */
export const Telemetry = Type.Object({
  deviceId: Type.String(),
  metric: Nullable(Type.String()),
  bucket: Nullable(Type.String()),
  points: Type.Array(TelemetryPoint),
});
export type Telemetry = Static<typeof Telemetry>;

/** `POST /devices/{id}/rotate-secret`: the new secret, returned once (the device is disconnected). */
export const DeviceSecret = Type.Object({ id: Type.String(), secret: Type.String() });
export type DeviceSecret = Static<typeof DeviceSecret>;

/** `/devices/{id}`. */
export const DeviceIdParams = Type.Object({ id: Type.String({ pattern: DEVICE_ID_PATTERN }) });
export type DeviceIdParams = Static<typeof DeviceIdParams>;

const Meta = Type.Record(Type.String({ maxLength: 64 }), Type.Unknown(), { maxProperties: 64 });

/** `POST /devices` (integrator): without `id` the hub picks one; the answer carries the secret once. */
export const RegisterDeviceBody = Type.Object({
  id: Type.Optional(Type.String({ pattern: DEVICE_ID_PATTERN })),
  type: Type.Union(DEVICE_TYPES.map((t) => Type.Literal(t))),
  name: Type.Optional(Type.String({ maxLength: 128 })),
  lat: Type.Optional(Type.Number({ minimum: -90, maximum: 90 })),
  lon: Type.Optional(Type.Number({ minimum: -180, maximum: 180 })),
  gridId: Type.Optional(Type.String({ maxLength: 64 })),
  meta: Type.Optional(Meta),
}, { additionalProperties: false });
export type RegisterDeviceBody = Static<typeof RegisterDeviceBody>;

/** `PATCH /devices/{id}` (integrator): null clears a position or grid. */
export const UpdateDeviceBody = Type.Object({
  name: Type.Optional(Type.String({ maxLength: 128 })),
  enabled: Type.Optional(Type.Boolean()),
  lat: Type.Optional(Nullable(Type.Number({ minimum: -90, maximum: 90 }))),
  lon: Type.Optional(Nullable(Type.Number({ minimum: -180, maximum: 180 }))),
  gridId: Type.Optional(Nullable(Type.String({ maxLength: 64 }))),
  meta: Type.Optional(Meta),
}, { additionalProperties: false });
export type UpdateDeviceBody = Static<typeof UpdateDeviceBody>;

/** `GET /devices` filters. */
export const DevicesQuery = Type.Object({ type: Type.Optional(Type.String()), online: Type.Optional(Type.Boolean()) });
export type DevicesQuery = Static<typeof DevicesQuery>;

/** `GET /devices/{id}/telemetry`: one metric or all, a window (default the last 24 h), raw or bucketed. */
export const TelemetryQuery = Type.Object({
  metric: Type.Optional(Type.String({ maxLength: 64 })),
  from: Type.Optional(TimeQuery),
  to: Type.Optional(TimeQuery),
  bucket: Type.Optional(Type.String({ description: '10s, 1m, 5m, 15m, 1h, 1d or seconds' })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100_000, default: 10_000 })),
});
export type TelemetryQuery = Static<typeof TelemetryQuery>;

/** `POST /devices/{id}/osmand-token`: a handheld's identifier for Traccar Client / OsmAnd (positions only; dies with a secret rotation). */
export const OsmandToken = Type.Object({ id: Type.String(), token: Type.String(), url: Type.String() });
export type OsmandToken = Static<typeof OsmandToken>;

/** `GET /dead-letters` items: a message the database refused for good, kept with the reason and its raw payload. */
export const DeadLetter = Type.Object({
  id: Type.String({ description: 'increasing; pass as `before` for the next page' }),
  ts: Type.Number({ description: 'epoch ms the hub received the message' }),
  deviceId: Type.String(),
  channel: Type.String(),
  reason: Type.String({ description: 'db_rejected: the database refused the rows for good' }),
  detail: Type.String({ description: 'SQLSTATE and the database message' }),
  payload: Type.String({ description: 'the raw payload as base64, at most 64 KiB' }),
  payloadBytes: Type.Number({ description: 'size of the whole payload' }),
  truncated: Type.Boolean(),
});
export type DeadLetter = Static<typeof DeadLetter>;

/** `GET /dead-letters`, newest first. */
export const DeadLettersQuery = Type.Object({
  deviceId: Type.Optional(Type.String({ pattern: DEVICE_ID_PATTERN })),
  before: Type.Optional(Type.String({ pattern: '^[0-9]{1,18}$' })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 100 })),
});
export type DeadLettersQuery = Static<typeof DeadLettersQuery>;
