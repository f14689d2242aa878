/**
 * The worker app's API (网格通, `/api/v1/m`, handheld session token): what
 * the app sends and what it reads back. Every write carries an id the app
 * made (`opId`, `reportId`), so a replay from its offline outbox is applied
 * once.
 */
import { Type, type Static } from '@sinclair/typebox';
import { HANDHELD_CASE_ACTIONS } from './channels.js';
import { CaseStatusT, SeverityT } from './cases.js';
import { Nullable, OneOf } from './common.js';
import { TeamT, WorkerStatusT } from './workers.js';

export const OpId = Type.String({ pattern: '^[A-Za-z0-9_-]{8,64}$', description: 'made by the app; a replay with the same id is applied once' });

/** A handheld session (网格通 login bound to the worker's handheld). */
export const HandheldSession = Type.Object({
  id: Type.String(), userId: Type.String(), workerId: Type.String(), deviceId: Type.String(), userAgent: Nullable(Type.String()),
  createdAt: Type.Number(), expiresAt: Type.Number(), lastSeenAt: Nullable(Type.Number()), revokedAt: Nullable(Type.Number()),
  revokedBy: Nullable(Type.String()), revokeReason: Nullable(Type.String()),
}, { additionalProperties: false });
export type HandheldSession = Static<typeof HandheldSession>;

const Position = Type.Object({ lat: Type.Number(), lon: Type.Number(), ts: Type.Number(), acc: Type.Optional(Nullable(Type.Number())), batt: Type.Optional(Nullable(Type.Number())), gridId: Type.Optional(Nullable(Type.String())) });
/** `GET /m/me`: the worker, their grids, live status and the app settings. */
export const MobileMe = Type.Object({
  worker: Type.Object({
    id: Type.String(), name: Type.String(), team: TeamT, teamName: Type.String(), deviceId: Type.String(), gridIds: Type.Array(Type.String()),
    onDuty: Type.Boolean(), status: WorkerStatusT, caseId: Nullable(Type.String()), online: Type.Boolean(), position: Nullable(Position),
  }),
  grids: Type.Array(Type.Object({ id: Type.String(), name: Type.String(), level: Type.String(), geometry: Type.Unsafe<{ type: string; coordinates: unknown }>(Type.Unknown({ description: 'GeoJSON Polygon or MultiPolygon' })) })),
  settings: Type.Object({ positionIntervalS: Type.Number(), minMoveM: Type.Number(), minGapS: Type.Number(), staleAfterS: Type.Number(), maxPhotos: Type.Number() }),
  session: HandheldSession,
  serverTime: Type.Number(),
});
export type MobileMe = Static<typeof MobileMe>;

/** `GET /m/tasks` items: a case as the worker app shows it. */
export const MobileTask = Type.Object({
  id: Type.String(), code: Type.String(), title: Type.String(), description: Nullable(Type.String()), status: CaseStatusT,
  category: Type.Object({ code: Type.String(), name: Type.String(), nameEn: Type.Optional(Type.String()) }), severity: SeverityT,
  lat: Type.Number(), lon: Type.Number(), address: Nullable(Type.String()), gridId: Nullable(Type.String()),
  deadline: Type.Number(), overdue: Type.Boolean(), createdAt: Type.Number(), updatedAt: Type.Number(),
  mine: Type.Boolean({ description: 'the case is dispatched to this worker now' }),
  history: Type.Array(Type.Object({ ts: Type.Number(), action: Type.String(), from: Nullable(Type.String()), to: Nullable(Type.String()), by: Type.String(), note: Nullable(Type.String()) })),
  photos: Type.Array(Type.Object({ id: Type.String(), kind: Type.String(), url: Type.String(), createdAt: Type.Number() })),
});
export type MobileTask = Static<typeof MobileTask>;

/** `GET /m/reports` items: a patrol report (巡查上报) and what became of it. */
export const MobileReport = Type.Object({
  reportId: Nullable(Type.String()), caseId: Type.String(), code: Type.String(), status: CaseStatusT, category: Type.Object({ code: Type.String(), name: Type.String() }),
  createdAt: Type.Number(), updatedAt: Type.Number(), lat: Type.Number(), lon: Type.Number(), description: Nullable(Type.String()),
  outcome: Nullable(Type.String({ description: 'the last note of the officer who registered, dispatched, closed or rejected it (作废 reason)' })),
  created: Type.Optional(Type.Boolean()),
});
export type MobileReport = Static<typeof MobileReport>;

/** `GET /m/categories` items. */
export const MobileCategory = Type.Object({ code: Type.String(), kind: Type.Union([Type.Literal('event'), Type.Literal('component')]), majorCode: Type.String(), majorName: Type.String(), name: Type.String(), nameEn: Type.String() });
export type MobileCategory = Static<typeof MobileCategory>;

/** `POST /m/tasks/{id}/actions` (multipart or JSON; numbers in multipart arrive as strings and are coerced). */
export const MobileTaskActionBody = Type.Object({
  action: OneOf(HANDHELD_CASE_ACTIONS),
  opId: OpId,
  note: Type.Optional(Type.String({ maxLength: 2000 })),
  ts: Type.Optional(Type.Number({ minimum: 0, maximum: 1e13 })),
  photos: Type.Optional(Type.Unknown({ description: 'multipart file parts: JPEG or PNG' })),
}, { additionalProperties: false });
export type MobileTaskActionBody = Static<typeof MobileTaskActionBody>;

/** `POST /m/reports` (multipart or JSON). */
export const MobileReportBody = Type.Object({
  reportId: OpId,
  category: Type.String({ minLength: 1, maxLength: 64 }),
  description: Type.Optional(Type.String({ maxLength: 2000 })),
  lat: Type.Number({ minimum: -90, maximum: 90 }),
  lon: Type.Number({ minimum: -180, maximum: 180 }),
  ts: Type.Optional(Type.Number({ minimum: 0, maximum: 1e13 })),
  photos: Type.Optional(Type.Unknown({ description: 'multipart file parts: JPEG or PNG' })),
}, { additionalProperties: false });
export type MobileReportBody = Static<typeof MobileReportBody>;

/** `POST /m/positions` items. */
export const MobileFix = Type.Object({
  ts: Type.Number({ minimum: 0, maximum: 1e13 }),
  lat: Type.Number({ minimum: -90, maximum: 90 }),
  lon: Type.Number({ minimum: -180, maximum: 180 }),
  acc: Type.Optional(Type.Number({ minimum: 0, maximum: 1e6 })),
  alt: Type.Optional(Type.Number({ minimum: -1e5, maximum: 1e5 })),
  spd: Type.Optional(Type.Number({ minimum: 0, maximum: 1e4 })),
  hdg: Type.Optional(Type.Number({ minimum: 0, maximum: 360 })),
  batt: Type.Optional(Type.Number({ minimum: 0, maximum: 100 })),
}, { additionalProperties: false });
export type MobileFix = Static<typeof MobileFix>;

/** `POST /m/session` 201: the handheld session's bearer token and the worker it acts as. */
export const MobileSignedIn = Type.Object({ token: Type.String(), me: MobileMe });
export type MobileSignedIn = Static<typeof MobileSignedIn>;

/** `/m/tasks/{id}`, `/m/evidence/{id}`, `/m/sessions/{id}/revoke`. */
export const MobileIdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) }, { additionalProperties: false });
export type MobileIdParams = Static<typeof MobileIdParams>;

/** `POST /m/session`: the worker's own user (never the device secret); throttled like the console login. */
export const MobileSignInBody = Type.Object({ username: Type.String({ minLength: 1, maxLength: 64 }), password: Type.String({ minLength: 1, maxLength: 256 }) }, { additionalProperties: false });
export type MobileSignInBody = Static<typeof MobileSignInBody>;

/** `POST /m/duty`: 上班 / 下班. */
export const MobileDutyBody = Type.Object({ onDuty: Type.Boolean() }, { additionalProperties: false });
export type MobileDutyBody = Static<typeof MobileDutyBody>;

/** `POST /m/positions`: fixes in time order (the `location` channel's array); stored durably, idempotent by ts. */
export const MobilePositionsBody = Type.Object({ items: Type.Array(MobileFix, { minItems: 1, maxItems: 500 }) }, { additionalProperties: false });
export type MobilePositionsBody = Static<typeof MobilePositionsBody>;

/** `GET /m/tasks`, `GET /m/reports`: how many, newest first. */
export const MobileListQuery = Type.Object({ limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100 })) }, { additionalProperties: false });
export type MobileListQuery = Static<typeof MobileListQuery>;

/** `POST /m/tasks/{id}/actions` 200: the task as it is now; `replayed` when this `opId` was applied before. */
export const MobileTaskActionResult = Type.Object({ task: MobileTask, replayed: Type.Boolean() });
export type MobileTaskActionResult = Static<typeof MobileTaskActionResult>;

/** `GET /m/sessions` (officer, dispatcher): a worker's handheld sessions, newest first. */
export const HandheldSessionsQuery = Type.Object({ workerId: Type.String({ minLength: 1, maxLength: 64 }), active: Type.Optional(Type.Boolean()) }, { additionalProperties: false });
export type HandheldSessionsQuery = Static<typeof HandheldSessionsQuery>;

/** `POST /m/sessions/{id}/revoke` (lost phone); the body may be absent. */
export const RevokeSessionBody = Type.Object({ reason: Type.Optional(Type.String({ maxLength: 200 })) }, { additionalProperties: false });
export type RevokeSessionBody = Static<typeof RevokeSessionBody>;
