/** Grid workers, their positions and dispatch candidates (CONTRACT 5 `/workers`, `/cases/{id}/candidates`). */
import { Type, type Static } from '@sinclair/typebox';
import { Nullable, OneOf } from './common.js';
import { TEAMS, WORKER_STATUSES } from './values.js';

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
