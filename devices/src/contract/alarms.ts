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
