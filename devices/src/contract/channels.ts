/**
 * Device channel payloads (CONTRACT section 3) as TypeBox schemas with their
 * static types: one schema per payload, uplink and downlink.
 *
 * Definitions only: nothing here compiles a schema (the TypeBox compiler uses
 * `new Function`, which a browser page under a strict CSP refuses). The hub
 * and the simulators validate through `@gridlink/devices`, which compiles
 * these once at load.
 *
 * Objects allow extra properties on purpose: the contract only grows additively, so a
 * newer device sending a field this hub does not know yet must still be accepted.
 * Numeric ranges live in the schemas (they feed the hub's OpenAPI document); the decoder
 * reports a range failure as `out_of_range` rather than `schema`.
 */
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import type { Channel } from '../topics.js';
import { SEVERITIES } from './values.js';

export { SEVERITIES, type Severity } from './values.js';

/** Known camera alert types (天网 AI). Alert `type` stays an open string; this list is for UIs and rules. */
export const ALERT_TYPES = [
  'fire',
  'smoke',
  'crowd',
  'intrusion',
  'illegal_parking',
  'street_vending',
  'garbage_overflow',
  'fall',
  'fight',
  'loitering',
  'road_obstruction',
  'waterlogging',
] as const;
export type KnownAlertType = (typeof ALERT_TYPES)[number];

/** Workflow actions a handheld may send on its `case` channel (a subset of the workflow's CASE_ACTIONS). */
export const HANDHELD_CASE_ACTIONS = ['accept', 'decline', 'arrive', 'resolve'] as const;
export type HandheldCaseAction = (typeof HANDHELD_CASE_ACTIONS)[number];

/** String limits. Images are bounded by the 1 MiB MQTT payload limit; base64 inflates by 4/3. */
export const LIMITS = Object.freeze({
  id: 64,
  type: 64,
  category: 64,
  text: 2000,
  url: 2048,
  metricString: 256,
  isoTs: 40,
  base64Image: 1_400_000,
  photos: 9,
  objects: 256,
});

const Ts = Type.Optional(
  Type.Union([Type.Number(), Type.String({ minLength: 1, maxLength: LIMITS.isoTs })], {
    description: 'epoch milliseconds or ISO-8601 with a zone; absent means now',
  }),
);
// Stored as bigint; above 2^53 a JSON number has already lost its integer value anyway.
const Seq = Type.Optional(Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER, description: 'increasing per device' }));
const Id = Type.String({ minLength: 1, maxLength: LIMITS.id });
const Lat = Type.Number({ minimum: -90, maximum: 90, description: 'WGS-84 degrees' });
const Lon = Type.Number({ minimum: -180, maximum: 180, description: 'WGS-84 degrees' });
const Base64Image = Type.String({ minLength: 1, maxLength: LIMITS.base64Image, description: 'base64 JPEG or PNG' });
const Photos = Type.Optional(Type.Array(Base64Image, { maxItems: LIMITS.photos }));

export const MetricValue = Type.Union([Type.Number(), Type.Boolean(), Type.String({ maxLength: LIMITS.metricString })]);

export const TelemetryItem = Type.Object({
  ts: Ts,
  seq: Seq,
  values: Type.Record(Type.String({ maxLength: LIMITS.id }), MetricValue),
});
export type TelemetryItem = Static<typeof TelemetryItem>;

export const EventBody = Type.Object({
  ts: Ts,
  seq: Seq,
  type: Type.String({ minLength: 1, maxLength: LIMITS.type }),
  severity: Type.Optional(Type.Union(SEVERITIES.map((s) => Type.Literal(s)))),
  data: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
});
export type EventBody = Static<typeof EventBody>;

export const AlertBody = Type.Object({
  ts: Ts,
  seq: Seq,
  type: Type.String({ minLength: 1, maxLength: LIMITS.type }),
  confidence: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
  snapshot: Type.Optional(Base64Image),
  // http(s) only: the console renders it as an <img src>, so no javascript: or file: URLs.
  snapshotUrl: Type.Optional(Type.String({ maxLength: LIMITS.url, pattern: '^https?://' })),
  objects: Type.Optional(Type.Array(Type.Unknown(), { maxItems: LIMITS.objects })),
});
export type AlertBody = Static<typeof AlertBody>;

export const LocationItem = Type.Object({
  ts: Ts,
  seq: Seq,
  lat: Lat,
  lon: Lon,
  // real column: bounded well inside its range (3.4e38) by the size of the Earth.
  acc: Type.Optional(Type.Number({ minimum: 0, maximum: 20_000_000, description: 'metres' })),
  alt: Type.Optional(Type.Number({ minimum: -1000, maximum: 20000, description: 'metres' })),
  spd: Type.Optional(Type.Number({ minimum: 0, maximum: 1000, description: 'm/s' })),
  hdg: Type.Optional(Type.Number({ minimum: 0, maximum: 360, description: 'degrees' })),
  batt: Type.Optional(Type.Number({ minimum: 0, maximum: 100, description: 'percent' })),
  duty: Type.Optional(Type.Boolean({ description: 'worker is on duty' })),
});
export type LocationItem = Static<typeof LocationItem>;

export const ReportBody = Type.Object({
  reportId: Id,
  ts: Ts,
  category: Type.String({ minLength: 1, maxLength: LIMITS.category }),
  description: Type.Optional(Type.String({ maxLength: LIMITS.text })),
  lat: Lat,
  lon: Lon,
  photos: Photos,
});
export type ReportBody = Static<typeof ReportBody>;

export const CaseProgressBody = Type.Object({
  caseId: Id,
  action: Type.Union(HANDHELD_CASE_ACTIONS.map((a) => Type.Literal(a))),
  ts: Ts,
  note: Type.Optional(Type.String({ maxLength: LIMITS.text })),
  photos: Photos,
});
export type CaseProgressBody = Static<typeof CaseProgressBody>;

export const StatusBody = Type.Object({
  online: Type.Boolean(),
  ts: Ts,
  duty: Type.Optional(Type.Boolean()),
});
export type StatusBody = Static<typeof StatusBody>;

/** The body each uplink channel takes (an array is allowed where the contract says so). */
export const ChannelBodies = {
  telemetry: Type.Union([TelemetryItem, Type.Array(TelemetryItem)]),
  event: EventBody,
  alert: AlertBody,
  location: Type.Union([LocationItem, Type.Array(LocationItem)]),
  report: ReportBody,
  case: CaseProgressBody,
  status: StatusBody,
} satisfies Record<Channel, TSchema>;

export interface ChannelPayloads {
  telemetry: TelemetryItem | TelemetryItem[];
  event: EventBody;
  alert: AlertBody;
  location: LocationItem | LocationItem[];
  report: ReportBody;
  case: CaseProgressBody;
  status: StatusBody;
}

// ---- downlink -----------------------------------------------------------------------------

export const DispatchCommand = Type.Object({
  cmdId: Id,
  type: Type.Literal('dispatch'),
  ts: Type.Number(),
  case: Type.Object({
    id: Id,
    code: Type.String({ minLength: 1, maxLength: LIMITS.id }),
    title: Type.String({ minLength: 1, maxLength: 200 }),
    category: Type.String({ minLength: 1, maxLength: LIMITS.category }),
    lat: Lat,
    lon: Lon,
    address: Type.Optional(Type.String({ maxLength: 500 })),
    deadline: Type.Number({ description: 'epoch ms' }),
  }),
});
export const CancelCommand = Type.Object({
  cmdId: Id,
  type: Type.Literal('cancel'),
  ts: Type.Number(),
  caseId: Id,
  reason: Type.Optional(Type.String({ maxLength: LIMITS.text })),
});
export const Command = Type.Union([DispatchCommand, CancelCommand]);
export type DispatchCommand = Static<typeof DispatchCommand>;
export type CancelCommand = Static<typeof CancelCommand>;
export type Command = Static<typeof Command>;
