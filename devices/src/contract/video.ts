/**
 * Cameras, streams, evidence clips and linkage as REST takes and returns them
 * (CONTRACT 5 `/cameras`, `/clips`, `/linkage`). Camera health and stream
 * states are the ones the Socket.IO `camera.state` event carries.
 */
import { Type, type Static } from '@sinclair/typebox';
import { Nullable, OneOf } from './common.js';
import { CAMERA_HEALTH, STREAM_STATES } from './values.js';

/** A camera id (also its device id): path-safe, at most 64 characters. */
export const CAMERA_ID_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$';

export const CameraCodecT = Type.Union([Type.Literal('h264'), Type.Literal('h265')]);
export const StreamStateT = OneOf(STREAM_STATES);
export const CameraHealthT = OneOf(CAMERA_HEALTH);

/** `GET /cameras`, `GET /cameras/{id}`, `PATCH /cameras/{id}`. */
export const Camera = Type.Object({
  id: Type.String(),
  name: Type.String(),
  rtspUrl: Type.String({ description: 'redacted: credentials are stored encrypted and never returned' }),
  lat: Type.Number(),
  lon: Type.Number(),
  heading: Nullable(Type.Number()),
  fov: Nullable(Type.Number()),
  rangeM: Nullable(Type.Number()),
  gridId: Nullable(Type.String()),
  gb28181Id: Nullable(Type.String()),
  vendor: Nullable(Type.String()),
  codec: CameraCodecT,
  transcode: Type.Boolean(),
  createdAt: Type.Number(),
  online: Type.Boolean({ description: 'the camera device is connected over MQTT' }),
  stream: Type.Object({ state: StreamStateT, viewers: Type.Integer() }),
  buffer: Type.Boolean({ description: 'keeps a rolling buffer (evidence pre-roll) while online' }),
  buffering: Type.Boolean({ description: 'the rolling buffer is running now' }),
  health: Type.Object({
    state: CameraHealthT,
    reason: Type.String(),
    since: Type.Number(),
    lastProbeAt: Nullable(Type.Number()),
  }, { description: 'RTSP health probes (OPTIONS + DESCRIBE on a schedule)' }),
  distanceM: Type.Optional(Type.Number()),
  covers: Type.Optional(Nullable(Type.Boolean())),
});
export type Camera = Static<typeof Camera>;

/** `POST /cameras` answers the camera with the MQTT secret of its `camera` device, once. */
export const RegisteredCamera = Type.Intersect([Camera, Type.Object({ secret: Type.String() })]);
export type RegisteredCamera = Static<typeof RegisteredCamera>;

/** `POST /cameras`. */
export const CreateCameraBody = Type.Object({
  id: Type.Optional(Type.String({ pattern: CAMERA_ID_PATTERN })),
  name: Type.Optional(Type.String({ maxLength: 128 })),
  rtspUrl: Type.String({ maxLength: 2048, description: 'rtsp://user:pass@host/path; credentials are encrypted at rest' }),
  lat: Type.Number({ minimum: -90, maximum: 90 }),
  lon: Type.Number({ minimum: -180, maximum: 180 }),
  heading: Type.Optional(Type.Number({ minimum: 0, maximum: 360, description: 'degrees clockwise from north' })),
  fov: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 360, description: 'horizontal field of view, degrees' })),
  rangeM: Type.Optional(Type.Number({ exclusiveMinimum: 0, description: 'how far the camera usefully sees' })),
  gridId: Type.Optional(Type.String({ maxLength: 64 })),
  gb28181Id: Type.Optional(Type.String({ pattern: '^\\d{20}$', description: 'GB/T 28181 device id (20 digits)' })),
  vendor: Type.Optional(Type.String({ maxLength: 64 })),
  codec: Type.Optional(CameraCodecT),
  transcode: Type.Optional(Type.Boolean({ description: 'transcode to H.264 for browsers (default: true for h265)' })),
  buffer: Type.Optional(Type.Boolean({ description: 'keep a rolling buffer for evidence pre-roll while online (default true)' })),
}, { additionalProperties: false });
export type CreateCameraBody = Static<typeof CreateCameraBody>;

/** `PATCH /cameras/{id}`: view and transcode settings (a running stream restarts with them). */
export const UpdateCameraBody = Type.Object({
  name: Type.Optional(Type.String({ maxLength: 128 })),
  transcode: Type.Optional(Type.Boolean()),
  heading: Type.Optional(Nullable(Type.Number({ minimum: 0, maximum: 360 }))),
  fov: Type.Optional(Nullable(Type.Number({ exclusiveMinimum: 0, maximum: 360 }))),
  rangeM: Type.Optional(Nullable(Type.Number({ exclusiveMinimum: 0 }))),
  buffer: Type.Optional(Type.Boolean()),
}, { additionalProperties: false });
export type UpdateCameraBody = Static<typeof UpdateCameraBody>;

/** `GET /cameras/{id}/stream`: signed short-lived URLs; request again before `expiresAt` to renew. */
export const StreamUrls = Type.Object({
  cameraId: Type.String(),
  hls: Type.String({ description: 'HLS playlist, short segments, EXT-X-PROGRAM-DATE-TIME' }),
  live: Type.String({ description: 'WebSocket: JSON {type:"init",mime} then binary init segment and fMP4 fragments' }),
  expiresAt: Type.Number({ description: 'epoch ms; request again to renew' }),
  state: StreamStateT,
  health: Type.Optional(Type.Object({ state: CameraHealthT, reason: Type.String() }, { description: 'the camera as the RTSP probes see it; an offline camera is not started' })),
});
export type StreamUrls = Static<typeof StreamUrls>;

/** `POST /cameras/{id}/snapshot`: the case the current picture becomes evidence of. */
export const CameraSnapshotBody = Type.Object({ caseId: Type.String({ minLength: 1, maxLength: 128 }) }, { additionalProperties: false });
export type CameraSnapshotBody = Static<typeof CameraSnapshotBody>;

/** `POST /cameras/{id}/snapshot` 201: the evidence item now on the case (kind `snapshot`). */
export const CameraSnapshot = Type.Object({ id: Type.String(), caseId: Type.String(), kind: Type.String(), url: Type.String(), sha256: Type.String() });
export type CameraSnapshot = Static<typeof CameraSnapshot>;

/** `GET /clips`, `GET /clips/{id}`: an evidence clip; `video` and `snapshot` carry a media token for the caller. */
export const Clip = Type.Object({
  id: Type.String(),
  cameraId: Type.String(),
  caseId: Nullable(Type.String()),
  alarmId: Nullable(Type.String()),
  alertKey: Nullable(Type.String()),
  alertType: Nullable(Type.String()),
  trigger: Type.String(),
  gridId: Nullable(Type.String()),
  at: Type.Number(),
  from: Nullable(Type.Number()),
  to: Nullable(Type.Number()),
  status: Type.Union([Type.Literal('recording'), Type.Literal('ready'), Type.Literal('failed')]),
  hasSnapshot: Type.Boolean(),
  bytes: Nullable(Type.Number()),
  durationMs: Nullable(Type.Number()),
  sha256: Nullable(Type.String({ description: 'SHA-256 of the MP4, hex' })),
  error: Nullable(Type.String({ description: 'why a failed clip failed: a code (CAMERA_UNAVAILABLE, NO_VIDEO, CUT_FAILED, INTERRUPTED, RECORDER_LOST) or, on clips from before the codes, a sentence' })),
  /** Extension: a ready clip whose recording was cut short says what it may lack (INTERRUPTED, RECORDER_LOST). */
  note: Type.Optional(Nullable(Type.String({ description: 'a ready clip cut short: INTERRUPTED (the hub restarted while recording) or RECORDER_LOST (its recorder died; it holds what the node that took over recorded)' }))),
  createdAt: Type.Number(),
  video: Type.String(),
  snapshot: Type.String(),
});
export type Clip = Static<typeof Clip>;

/** `GET /clips/{id}/export.json`: the sidecar that hands a clip over as evidence. */
export const ClipExport = Type.Object({
  clipId: Type.String(), file: Type.String(), sha256: Type.String(), bytes: Type.Number(), mime: Type.String(),
  camera: Type.Object({ id: Type.String(), name: Nullable(Type.String()), lat: Nullable(Type.Number()), lon: Nullable(Type.Number()), gb28181Id: Nullable(Type.String()) }),
  from: Nullable(Type.Number()), to: Nullable(Type.Number()), at: Type.Number(), fromIso: Nullable(Type.String()), toIso: Nullable(Type.String()),
  case: Nullable(Type.Object({ id: Type.String(), code: Nullable(Type.String()) })),
  trigger: Type.String(), alertType: Nullable(Type.String()), exportedAt: Type.Number(), exportedBy: Type.String(),
});
export type ClipExport = Static<typeof ClipExport>;

/** A camera linked to a case (视频联动): `GET /linkage/{caseId}` items and the Socket.IO `linkage` event's cameras. */
export const LinkedCamera = Type.Object({
  id: Type.String(),
  name: Type.String(),
  distanceM: Type.Number(),
  covers: Nullable(Type.Boolean({ description: 'true: in view; false: looks elsewhere; null: view unknown' })),
  stream: Type.String({ description: 'REST path that answers signed stream URLs (tokens are short-lived, so none are broadcast)' }),
});
export type LinkedCamera = Static<typeof LinkedCamera>;

/** `/cameras/{id}`. */
export const CameraIdParams = Type.Object({ id: Type.String({ pattern: CAMERA_ID_PATTERN }) });
export type CameraIdParams = Static<typeof CameraIdParams>;

/** `GET /cameras`: with `near` (lat,lon), those within `radius` m, covering-first, then by distance. */
export const CamerasQuery = Type.Object({
  near: Type.Optional(Type.String({ pattern: '^-?\\d+(\\.\\d+)?,-?\\d+(\\.\\d+)?$', description: 'lat,lon' })),
  radius: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 50_000, default: 500 })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
});
export type CamerasQuery = Static<typeof CamerasQuery>;

/** `GET /clips`: by case, camera or alert (`alertKey` = deviceId:ts). */
export const ClipsQuery = Type.Object({ caseId: Type.Optional(Type.String()), cameraId: Type.Optional(Type.String()), alertKey: Type.Optional(Type.String()), limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500 })) });
export type ClipsQuery = Static<typeof ClipsQuery>;

/** `/clips/{id}`. */
export const ClipParams = Type.Object({ id: Type.String({ format: 'uuid' }) });
export type ClipParams = Static<typeof ClipParams>;

/** `GET /linkage/{caseId}`. */
export const LinkageParams = Type.Object({ caseId: Type.String({ maxLength: 128 }) });
export type LinkageParams = Static<typeof LinkageParams>;
