/** Devices as REST returns them (CONTRACT 5 `/devices`). */
import { Type, type Static } from '@sinclair/typebox';
import type { DeviceType } from '../catalogue.js';
import { Nullable } from './common.js';

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
