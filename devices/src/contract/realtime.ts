/**
 * Socket.IO (CONTRACT section 6): the events the hub emits, with their
 * payloads. The hub's `send` is typed by ServerToClientEvents, so an emit
 * that does not match this file does not compile; the console's socket is
 * typed by the same map.
 */
import { Type, type Static } from '@sinclair/typebox';
import type { Command } from './channels.js';
import { CaseSummary } from './cases.js';
import { Nullable, OneOf } from './common.js';
import { ALARM_STATUSES, CAMERA_HEALTH, CASE_STATUSES, SEVERITIES, STREAM_STATES, WORKER_STATUSES } from './values.js';
import { LinkedCamera } from './video.js';

/** `alarm`: raised, repeated, acknowledged, escalated or cleared (REST `/alarms` items carry more). */
export const AlarmEvent = Type.Object({
  id: Type.String(),
  rule: Type.String({ description: 'rule id' }),
  ruleName: Type.Optional(Type.String()),
  deviceId: Type.String(),
  severity: OneOf(SEVERITIES),
  status: OneOf(ALARM_STATUSES),
  acknowledged: Type.Boolean(),
  ackBy: Type.Optional(Nullable(Type.String())),
  ackAt: Type.Optional(Nullable(Type.Number())),
  escalated: Type.Boolean(),
  count: Type.Integer({ description: 'triggers folded into this alarm (1 on raise)' }),
  type: Type.String({ description: 'signal type: event/alert type, metric, `offline`, `correlation`' }),
  message: Type.String(),
  ts: Type.Number({ description: 'time of the first trigger' }),
  lastTs: Type.Number(),
  lat: Nullable(Type.Number()),
  lon: Nullable(Type.Number()),
  gridId: Nullable(Type.String()),
  caseId: Type.Optional(Nullable(Type.String())),
  change: Type.Optional(Type.String({ description: 'raised, repeated, acked, cleared, escalated, commented, case_linked' })),
});
export type AlarmEvent = Static<typeof AlarmEvent>;

/** `case`: the case summary on creation and on every transition. */
export const CaseEvent = Type.Intersect([CaseSummary, Type.Object({ change: Type.Optional(Type.String()) })]);
export type CaseEvent = Static<typeof CaseEvent>;

/** `positions` items, batched at most once a second. */
export const PositionEvent = Type.Object({
  workerId: Type.String(),
  deviceId: Type.String(),
  lat: Type.Number(),
  lon: Type.Number(),
  ts: Type.Number(),
  status: OneOf(WORKER_STATUSES),
  gridId: Type.Optional(Nullable(Type.String())),
});
export type PositionEvent = Static<typeof PositionEvent>;

/** `device`: online/offline transitions (cameras add their stream state). */
export const DeviceEvent = Type.Object({
  deviceId: Type.String(),
  online: Type.Boolean(),
  lastSeen: Nullable(Type.Number()),
  stream: Type.Optional(OneOf(STREAM_STATES, { description: 'camera stream state' })),
});
export type DeviceEvent = Static<typeof DeviceEvent>;

/** `linkage`: the cameras to show for a case (视频联动). */
export const LinkageEvent = Type.Object({
  caseId: Type.String(),
  alarmId: Type.Optional(Type.String()),
  lat: Type.Optional(Type.Number()),
  lon: Type.Optional(Type.Number()),
  cameras: Type.Array(LinkedCamera),
});
export type LinkageEvent = Static<typeof LinkageEvent>;

/** `camera.state`: a camera's health (with its reason) and its stream. */
export const CameraStateEvent = Type.Object({
  cameraId: Type.String(),
  state: OneOf(CAMERA_HEALTH),
  reason: Type.String(),
  since: Type.Number(),
  stream: OneOf(STREAM_STATES),
  buffering: Type.Boolean({ description: 'a rolling pre-roll buffer is being kept' }),
});
export type CameraStateEvent = Static<typeof CameraStateEvent>;

/** Server → console events. */
export interface ServerToClientEvents {
  alarm: (payload: AlarmEvent) => void;
  case: (payload: CaseEvent) => void;
  positions: (payload: PositionEvent[]) => void;
  device: (payload: DeviceEvent) => void;
  linkage: (payload: LinkageEvent) => void;
  'camera.state': (payload: CameraStateEvent) => void;
}

/** `task`: something changed on a case the handheld's worker holds or reported (the app re-reads its lists). */
export const TaskEvent = Type.Object({
  caseId: Type.String(),
  status: OneOf(CASE_STATUSES),
  change: Type.String(),
  workerId: Nullable(Type.String()),
});
export type TaskEvent = Static<typeof TaskEvent>;

/** Server → worker app (handheld session sockets sit only in their device's room). */
export interface HandheldServerToClientEvents {
  task: (payload: TaskEvent) => void;
  /** The same downlink command the handheld gets on its MQTT `cmd` topic (CONTRACT 3). */
  command: (payload: Command) => void;
}

/** Every event the hub emits, on any socket. */
export type AllServerToClientEvents = ServerToClientEvents & HandheldServerToClientEvents;

/**
 * Clients send nothing: the server puts each socket in the rooms its user may
 * see, and clients never choose rooms (CONTRACT 6).
 */
export type ClientToServerEvents = Record<string, never>;

export type ServerEventName = keyof ServerToClientEvents;
export type ServerEventPayload<E extends ServerEventName> = Parameters<ServerToClientEvents[E]>[0];
export type AnyServerEventName = keyof AllServerToClientEvents;
export type AnyServerEventPayload<E extends AnyServerEventName> = Parameters<AllServerToClientEvents[E]>[0];
