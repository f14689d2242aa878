/** Alarms as REST returns them (CONTRACT 5 `/alarms`; the Socket.IO `alarm` event is AlarmEvent). */
import { Type, type Static } from '@sinclair/typebox';
import { Nullable, OneOf } from './common.js';
import { ALARM_STATUSES, SEVERITIES } from './values.js';

const SeverityT = OneOf(SEVERITIES);

export const Alarm = Type.Object({
  id: Type.String(), rule: Type.String(), ruleName: Type.Optional(Type.String()), deviceId: Type.String(), type: Type.String(),
  severity: SeverityT, originalSeverity: SeverityT, status: OneOf(ALARM_STATUSES),
  acknowledged: Type.Boolean(), ackBy: Nullable(Type.String()), ackAt: Nullable(Type.Number()),
  escalated: Type.Boolean(), escalations: Type.Integer(), escalatedAt: Nullable(Type.Number()),
  count: Type.Integer(), message: Type.String(), value: Type.Unknown(), ts: Type.Number(), lastTs: Type.Number(),
  createdAt: Type.Number(), updatedAt: Type.Number(), clearedAt: Nullable(Type.Number()), clearedBy: Nullable(Type.String()),
  lat: Nullable(Type.Number()), lon: Nullable(Type.Number()), gridId: Nullable(Type.String()),
  caseId: Nullable(Type.String()), related: Nullable(Type.Array(Type.String())),
});
export type Alarm = Static<typeof Alarm>;

export const AlarmComment = Type.Object({ id: Type.Number(), ts: Type.Number(), author: Type.String(), text: Type.String() });
export type AlarmComment = Static<typeof AlarmComment>;

/** `GET /alarms/{id}`: the alarm with its comments. */
export const AlarmDetail = Type.Intersect([Alarm, Type.Object({ comments: Type.Array(AlarmComment) })]);
export type AlarmDetail = Static<typeof AlarmDetail>;

/** `GET /alarms` filters, newest first. */
export const AlarmsQuery = Type.Object({
  status: Type.Optional(OneOf(ALARM_STATUSES)),
  severity: Type.Optional(Type.String({ description: 'one or several severities separated by commas' })),
  gridId: Type.Optional(Type.String({ maxLength: 64 })),
  rule: Type.Optional(Type.String({ maxLength: 64 })),
  deviceId: Type.Optional(Type.String({ maxLength: 64 })),
  acknowledged: Type.Optional(Type.Boolean()),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 5000, default: 500 })),
});
export type AlarmsQuery = Static<typeof AlarmsQuery>;

/** `POST /alarms/{id}/ack`: an optional comment; the body may be absent (null). Who and when are recorded; escalation stops. */
export const AlarmAckBody = Type.Union([Type.Object({ comment: Type.Optional(Type.String({ maxLength: 2000 })) }, { additionalProperties: false }), Type.Null()], { description: 'optional' });
export type AlarmAckBody = Static<typeof AlarmAckBody>;

/** `POST /alarms/{id}/comments`. */
export const AlarmCommentBody = Type.Object({ text: Type.String({ minLength: 1, maxLength: 2000 }) }, { additionalProperties: false });
export type AlarmCommentBody = Static<typeof AlarmCommentBody>;
