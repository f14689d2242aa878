/** Grid workers, their positions and dispatch candidates (CONTRACT 5 `/workers`, `/cases/{id}/candidates`). */
import { Type, type Static } from '@sinclair/typebox';
import { Nullable, OneOf, TimeQuery } from './common.js';
import { DEVICE_ID_PATTERN, TEAMS, WORKER_STATUSES } from './values.js';

export const WorkerStatusT = OneOf(WORKER_STATUSES);
export const TeamT = OneOf(TEAMS);

const NullableNumber = Nullable(Type.Number());

/** A worker's last fix as REST returns it. */
export const WorkerPosition = Type.Object({
  lat: Type.Number(),
  lon: Type.Number(),
  ts: Type.Number(),
  acc: Type.Optional(NullableNumber),
  batt: Type.Optional(NullableNumber),
  gridId: Type.Optional(Nullable(Type.String())),
});
export type WorkerPosition = Static<typeof WorkerPosition>;

/** `GET /workers`, `GET /workers/{id}`. */
export const Worker = Type.Object({
  id: Type.String(),
  name: Type.String(),
  deviceId: Type.String(),
  team: TeamT,
  teamName: Type.String({ description: '网格长 / 网格员 / 志愿者' }),
  phone: Nullable(Type.String()),
  gridIds: Type.Array(Type.String()),
  userId: Nullable(Type.String({ description: 'user account (role worker) acting as this worker' })),
  onDuty: Type.Boolean(),
  status: WorkerStatusT,
  caseId: Nullable(Type.String()),
  online: Type.Boolean(),
  position: Nullable(WorkerPosition),
  createdAt: Type.Number(),
});
export type Worker = Static<typeof Worker>;

/** The few fields of a worker other parts of the system read (dispatch's answer to "who is this worker"). */
export const WorkerInfo = Type.Object({
  id: Type.String(),
  name: Type.String(),
  deviceId: Type.String(),
  gridIds: Type.Array(Type.String()),
  status: WorkerStatusT,
  position: Nullable(Type.Object({ lat: Type.Number(), lon: Type.Number(), ts: Type.Number() })),
});
export type WorkerInfo = Static<typeof WorkerInfo>;

/** `GET /cases/{id}/candidates` items: nearest available workers, nearest first. */
export const Candidate = Type.Object({
  workerId: Type.String(),
  deviceId: Type.String(),
  name: Type.String(),
  team: Type.String(),
  teamName: Type.String(),
  distanceM: Type.Number({ description: 'haversine metres from the last fix' }),
  etaS: Type.Number(),
  etaSource: Type.Union([Type.Literal('haversine'), Type.Literal('amap')]),
  status: Type.String(),
  ownGrid: Type.Boolean(),
  lastFixAgeS: Type.Number(),
});
export type Candidate = Static<typeof Candidate>;

/** `GET /workers/{id}/track` points. */
export const TrackPoint = Type.Object({
  ts: Type.Number(),
  lat: Type.Number(),
  lon: Type.Number(),
  spd: Type.Optional(NullableNumber),
  acc: Type.Optional(NullableNumber),
  n: Type.Optional(Type.Number({ description: 'fixes averaged into this bucket' })),
});
export type TrackPoint = Static<typeof TrackPoint>;

/** A stop on a worker's track: stayed within a small radius this long. */
export const TrackStop = Type.Object({ lat: Type.Number(), lon: Type.Number(), from: Type.Number(), to: Type.Number(), durationS: Type.Number() });
export type TrackStop = Static<typeof TrackStop>;

/** `GET /workers/{id}/track`: positions over time (bucketed past maxPoints), distance and stops. */
export const WorkerTrack = Type.Object({
  workerId: Type.String(),
  deviceId: Type.String(),
  from: Type.Number(),
  to: Type.Number(),
  bucketS: NullableNumber,
  fixes: Type.Number(),
  flagged: Type.Number({ description: 'fixes flagged as jump / stale / future, kept but not in the path' }),
  distanceM: Type.Number(),
  points: Type.Array(TrackPoint),
  stops: Type.Array(TrackStop),
});
export type WorkerTrack = Static<typeof WorkerTrack>;

/** `GET /cases/{id}/dispatches` items: each dispatch of the case to a worker, with the path walked while it was open. */
export const DispatchRecord = Type.Object({
  workerId: Type.String(),
  deviceId: Type.String(),
  attempt: Type.Number(),
  actor: Type.String(),
  dispatchedAt: Type.Number(),
  acceptedAt: NullableNumber,
  arrivedAt: NullableNumber,
  arrivedBy: Nullable(Type.String()),
  resolvedAt: NullableNumber,
  endedAt: NullableNumber,
  outcome: Nullable(Type.String()),
  path: Type.Optional(Type.Object({ points: Type.Array(TrackPoint), distanceM: Type.Number(), bucketS: NullableNumber })),
});
export type DispatchRecord = Static<typeof DispatchRecord>;

/** `/workers/{id}` (worker ids follow the device id rule). */
export const WorkerIdParams = Type.Object({ id: Type.String({ pattern: DEVICE_ID_PATTERN }) });
export type WorkerIdParams = Static<typeof WorkerIdParams>;

const GridIds = Type.Array(Type.String({ minLength: 1, maxLength: 64 }), { maxItems: 64 });

/** `POST /workers` (officer, dispatcher): a grid worker bound to one handheld; starts off duty unless `onDuty`. */
export const CreateWorkerBody = Type.Object({
  id: Type.Optional(Type.String({ pattern: DEVICE_ID_PATTERN })),
  name: Type.String({ minLength: 1, maxLength: 64 }),
  deviceId: Type.String({ pattern: DEVICE_ID_PATTERN }),
  gridIds: Type.Optional(GridIds),
  team: Type.Optional(OneOf(TEAMS, { description: 'grid_leader 网格长, grid_worker 网格员 (default), volunteer 志愿者' })),
  phone: Type.Optional(Type.String({ maxLength: 32 })),
  userId: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'id of the user (role worker) who acts as this worker' })),
  onDuty: Type.Optional(Type.Boolean()),
}, { additionalProperties: false });
export type CreateWorkerBody = Static<typeof CreateWorkerBody>;

/** `PATCH /workers/{id}`: null clears the phone. */
export const UpdateWorkerBody = Type.Object({
  name: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
  gridIds: Type.Optional(GridIds),
  team: Type.Optional(TeamT),
  phone: Type.Optional(Nullable(Type.String({ maxLength: 32 }))),
}, { additionalProperties: false });
export type UpdateWorkerBody = Static<typeof UpdateWorkerBody>;

/** `POST /workers/{id}/duty`: 上班 / 下班 (a busy worker going off duty finishes the case first). */
export const DutyBody = Type.Object({ onDuty: Type.Boolean() }, { additionalProperties: false });
export type DutyBody = Static<typeof DutyBody>;

/** `GET /workers` filters. */
export const WorkersQuery = Type.Object({
  status: Type.Optional(WorkerStatusT),
  gridId: Type.Optional(Type.String({ maxLength: 64 })),
  team: Type.Optional(TeamT),
  onDuty: Type.Optional(Type.Boolean()),
});
export type WorkersQuery = Static<typeof WorkersQuery>;

/** `GET /workers/{id}/track`: a window, downsampled into buckets past `maxPoints`. */
export const TrackQuery = Type.Object({
  from: Type.Optional(TimeQuery),
  to: Type.Optional(TimeQuery),
  maxPoints: Type.Optional(Type.Integer({ minimum: 10, maximum: 100_000 })),
});
export type TrackQuery = Static<typeof TrackQuery>;

/** `GET /cases/{id}/candidates`: how many, nearest first. */
export const CandidatesQuery = Type.Object({ limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 10 })) });
export type CandidatesQuery = Static<typeof CandidatesQuery>;

/** `GET /cases/{id}/dispatches`: `path=false` leaves out the path travelled to the scene. */
export const DispatchesQuery = Type.Object({ path: Type.Optional(Type.Boolean({ default: true })) });
export type DispatchesQuery = Static<typeof DispatchesQuery>;
