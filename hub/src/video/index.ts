/**
 * The video domain's door: camera registry, stream gateway (RTSP → HLS +
 * fMP4/WebSocket), evidence clips and 视频联动 linkage. Optional: if ffmpeg
 * is missing or anything here fails to start, the hub runs on without video.
 *
 * Listens on the bus for
 *   'message.stored'  camera `alert` → evidence clip (+ snapshot);
 *   'case.changed'    new case with a location → linkage + evidence;
 *                     a rule trigger joining a case (attach) → its camera joins the linkage;
 *   'alarm.changed'   an alarm raised → linkage;
 *   'device.changed'  camera device deleted → camera forgotten.
 * Emits 'camera.alarm' (the rules module stores it as the alarm 摄像头离线)
 * and 'video.linkage' on the bus and, through the realtime service when it
 * is loaded, Socket.IO `linkage`,
 * `camera.state` and `device`.
 *
 * Every camera is probed on a schedule (health.ts); a camera that is online
 * and set to `buffer` keeps its stream running with a rolling buffer of
 * segments on disk (at most `bufferMax` cameras), so an alert's clip holds
 * the seconds before it whether or not anyone was watching.
 *
 * Cluster (docs/cluster.md, "Video across nodes"): a camera is buffered by
 * its owner node only, and every clip of it is cut there: a node that takes
 * an alert, or opens a case, asks the owner for the clip with an id derived
 * from the alert or the case, so a retry or a second asker finds the same clip.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ServerEventName, ServerEventPayload } from '@gridlink/devices/contract';
import type { Auth } from '../auth/index.js';
import type { CaseStore } from '../cases/index.js';
import type { EventBus } from '../core/bus.js';
import { ConfigError, readFields, type Config, type Field } from '../core/config.js';
import type { Logger } from '../core/logger.js';
import type { HubModule } from '../core/module.js';
import type { CameraLinkageService, GridService, RealtimeService } from '../core/services.js';
import type { StoredMessage } from '../ingest/index.js';
import type { DeviceRegistry } from '../registry/index.js';
import type { Db } from '../store/index.js';
import { CameraRegistry, videoMigrations, type Camera } from './cameras.js';
import { ClipRecorder, type CaptureInput, type Clip } from './clips.js';
import { findFfmpeg, type FfmpegInfo } from './ffmpeg.js';
import { StreamGateway } from './gateway.js';
import { loadVideoKey, VideoKeys } from './keys.js';
import { Linkage, type LinkagePayload } from './linkage.js';
import { CameraHealth, defaultHealthSettings, type Health, type HealthChange, type HealthSettings } from './health.js';
import { defaultStreamSettings, type StreamSettings, type StreamState } from './stream.js';
import { NetAllowList } from './url.js';
import { videoApiRoutes, videoRootRoutes } from './video.routes.js';
import { postToNode, type CameraOwners, type NodeAuth } from './cluster.proxy.js';
import { syncCameras } from './cluster.sync.js';

export type { Camera } from './cameras.js';
export type { Clip } from './clips.js';
export type { LinkagePayload } from './linkage.js';
export type { StreamState } from './stream.js';
export type { Health, HealthChange } from './health.js';

/** A camera offline for the configured time (raised) or back (cleared): the rules module stores it as an alarm. */
export interface CameraAlarmEvent {
  cameraId: string;
  status: 'raised' | 'cleared';
  reason: string;
  ts: number;
  gridId: string | null;
  lat: number | null;
  lon: number | null;
}

declare module '../core/bus.js' {
  interface EventMap {
    'camera.alarm': CameraAlarmEvent;
    'video.linkage': LinkagePayload;
  }
}

export interface VideoOptions {
  stream: Partial<StreamSettings>;
  /** Lifetime of signed stream URLs. */
  tokenTtlS: number;
  /** Clip window around the alert. */
  preS: number;
  postS: number;
  /** Linkage search radius and list length. */
  linkRadiusM: number;
  linkLimit: number;
  /** Rolling buffer: seconds kept, cameras buffering at most, disk budget per camera. */
  bufferS: number;
  bufferMax: number;
  bufferMB: number;
  health: HealthSettings;
  /** Camera networks (CIDR list); empty = any. */
  allowNets: string;
  /** Days a clip is kept after its case closed (or after it was made, without a case). */
  clipRetentionDays: number;
  /** Cluster mode: a ready clip larger than this (MiB) is not copied into the database and stays on its recorder's disk. */
  clipStoreMaxMb?: number;
}

/** GRIDLINK_VIDEO_* settings (documented in docs/video.md), read like every other setting. */
export const videoConfigSchema = {
  segmentS: { env: 'GRIDLINK_VIDEO_SEGMENT_S', kind: 'number', default: defaultStreamSettings.segmentS, min: 0.1, description: 'HLS segment target, seconds' },
  graceS: { env: 'GRIDLINK_VIDEO_GRACE_S', kind: 'number', default: defaultStreamSettings.graceS, min: 0.1, description: 'ffmpeg keeps running this long after the last viewer' },
  stallS: { env: 'GRIDLINK_VIDEO_STALL_S', kind: 'number', default: defaultStreamSettings.stallS, min: 0.1, description: 'No new segment for this long: stalled, restart' },
  backoffMaxMs: { env: 'GRIDLINK_VIDEO_BACKOFF_MAX_MS', kind: 'int', default: defaultStreamSettings.backoffMaxMs, min: 1, description: 'Restart backoff cap' },
  tokenTtlS: { env: 'GRIDLINK_VIDEO_TOKEN_TTL_S', kind: 'int', default: 600, min: 1, description: 'Stream URL lifetime' },
  preS: { env: 'GRIDLINK_VIDEO_CLIP_PRE_S', kind: 'number', default: 10, min: 0.1, description: 'Clip seconds before the alert' },
  postS: { env: 'GRIDLINK_VIDEO_CLIP_POST_S', kind: 'number', default: 20, min: 0.1, description: 'Clip seconds after the alert' },
  linkRadiusM: { env: 'GRIDLINK_VIDEO_LINK_RADIUS_M', kind: 'number', default: 300, min: 1, description: 'Linkage search radius' },
  linkLimit: { env: 'GRIDLINK_VIDEO_LINK_LIMIT', kind: 'int', default: 4, min: 1, description: 'Cameras linked at most' },
  bufferS: { env: 'GRIDLINK_VIDEO_BUFFER_S', kind: 'number', default: 15, min: 1, description: 'Rolling buffer per camera (pre-roll for evidence), seconds' },
  bufferMax: { env: 'GRIDLINK_VIDEO_BUFFER_MAX', kind: 'int', default: 16, min: 0, description: 'Cameras keeping a rolling buffer at most (0 = none)' },
  bufferMB: { env: 'GRIDLINK_VIDEO_BUFFER_MB', kind: 'number', default: 32, min: 1, description: 'Disk budget of one camera\'s rolling buffer, MiB' },
  probeS: { env: 'GRIDLINK_VIDEO_PROBE_S', kind: 'number', default: defaultHealthSettings.intervalS, min: 1, description: 'Health probe interval of an online camera, seconds' },
  probeRetryS: { env: 'GRIDLINK_VIDEO_PROBE_RETRY_S', kind: 'number', default: defaultHealthSettings.retryMinS, min: 0.1, description: 'First retry of a failing camera, seconds (doubles each time)' },
  probeMaxS: { env: 'GRIDLINK_VIDEO_PROBE_MAX_S', kind: 'number', default: defaultHealthSettings.retryMaxS, min: 0.1, description: 'Longest probe backoff, seconds' },
  probeTimeoutS: { env: 'GRIDLINK_VIDEO_PROBE_TIMEOUT_S', kind: 'number', default: defaultHealthSettings.timeoutS, min: 0.1, description: 'RTSP probe timeout, seconds' },
  offlineAlarmS: { env: 'GRIDLINK_VIDEO_OFFLINE_ALARM_S', kind: 'number', default: defaultHealthSettings.alarmAfterS, min: 0, description: 'Offline this long → alarm 摄像头离线, seconds' },
  allowNets: { env: 'GRIDLINK_VIDEO_ALLOW_NETS', kind: 'string', default: '', description: 'Camera networks the hub may connect to (comma-separated CIDR); empty = any' },
  clipRetentionDays: { env: 'GRIDLINK_VIDEO_CLIP_RETENTION_DAYS', kind: 'number', default: 180, min: 0.001, description: 'Days clips are kept after their case closed' },
  clipStoreMaxMb: { env: 'GRIDLINK_VIDEO_CLIP_STORE_MAX_MB', kind: 'number', default: 256, min: 0.01, description: 'Cluster mode: largest clip (MP4) stored in PostgreSQL for every node to serve, MiB' },
} as const satisfies Record<string, Field>;

/** Defaults, overridable by GRIDLINK_VIDEO_*; a bad value fails with ConfigError naming it (not silently ignored). */
export function videoOptionsFromEnv(env: Record<string, string | undefined> = process.env): VideoOptions {
  const problems: string[] = [];
  const v = readFields(videoConfigSchema, env, {}, problems) as Record<Exclude<keyof typeof videoConfigSchema, 'allowNets'>, number> & { allowNets: string };
  try {
    NetAllowList.parse(v.allowNets);
  } catch (err) {
    problems.push(`GRIDLINK_VIDEO_ALLOW_NETS: ${(err as Error).message}`);
  }
  if (problems.length) throw new ConfigError(problems);
  return {
    bufferS: v.bufferS,
    bufferMax: v.bufferMax,
    bufferMB: v.bufferMB,
    health: { ...defaultHealthSettings, intervalS: v.probeS, retryMinS: v.probeRetryS, retryMaxS: v.probeMaxS, timeoutS: v.probeTimeoutS, alarmAfterS: v.offlineAlarmS },
    allowNets: v.allowNets,
    clipRetentionDays: v.clipRetentionDays,
    clipStoreMaxMb: v.clipStoreMaxMb,
    stream: { segmentS: v.segmentS, graceS: v.graceS, stallS: v.stallS, backoffMaxMs: v.backoffMaxMs },
    tokenTtlS: v.tokenTtlS,
    preS: v.preS,
    postS: v.postS,
    linkRadiusM: v.linkRadiusM,
    linkLimit: v.linkLimit,
  };
}

/** The parts, exposed for tests and the benchmark (`hub.ctx.domains.video`). */
export interface VideoModule extends HubModule {
  /** Nearest cameras to a point (answers even before video streams work). */
  readonly nearestCameras: CameraLinkageService;
  readonly ff: FfmpegInfo | null;
  readonly root: string;
  readonly cameras: CameraRegistry;
  readonly keys: VideoKeys;
  readonly gateway: StreamGateway | null;
  readonly clips: ClipRecorder | null;
  readonly linkage: Linkage | null;
  readonly health: CameraHealth | null;
  /** Cameras whose rolling buffer is running. */
  buffering(): string[];
  /** Runs retention now (also hourly). */
  pruneClips(): Promise<string[]>;
}

export interface VideoDeps {
  db: Db;
  bus: EventBus;
  logger: Logger;
  config: Config;
  auth: Auth;
  registry: DeviceRegistry;
  now: () => number;
  /** Linkage and clips become case evidence when the cases module is loaded. */
  cases?: CaseStore;
  grids?: Pick<GridService, 'locate'>;
  realtime?: RealtimeService;
  /** Cluster: which node pulls each camera; the others proxy their viewers there (cluster.proxy.ts). */
  owners?: CameraOwners;
}

/** A clip id (UUID form) derived from what the clip is about: the same alert or case gives the same clip on every node. */
export function clipIdFor(subject: string): string {
  const h = createHash('sha256').update(`gridlink/clip/${subject}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-${((parseInt(h[16]!, 16) & 3) | 8).toString(16)}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/** How long a node keeps asking for a clip whose camera's node does not answer (it dies: the camera moves within the lease time). */
const CLIP_ASK_ATTEMPTS = 40;
const CLIP_ASK_PAUSE_MS = 1_000;

/** Builds the video module; settings not given come from GRIDLINK_VIDEO_* (read here, before start). */
export function createVideo(deps: VideoDeps, options: Partial<VideoOptions> = {}): VideoModule {
  const env = videoOptionsFromEnv();
  return buildVideo(deps, { ...env, ...options, stream: { ...env.stream, ...options.stream }, health: { ...env.health, ...options.health } });
}

function buildVideo(ctx: VideoDeps, opts: VideoOptions): VideoModule {
  const { config, logger: rootLogger, bus, db } = ctx;
  const logger = rootLogger.child({ module: 'video' });
  const persistent = !config.databaseUrl?.startsWith('memory://');
  const keys = new VideoKeys(loadVideoKey({ dataDir: config.dataDir, persistent }));
  const cameras = new CameraRegistry(db, ctx.registry, keys, (lat, lon) => ctx.grids?.locate(lat, lon) ?? null, NetAllowList.parse(opts.allowNets));
  const settings: StreamSettings = {
    ...defaultStreamSettings,
    // The rolling buffer holds the configured seconds, and at least the clip pre-roll plus a segment.
    ringS: Math.max(opts.bufferS, opts.preS + 2 * (opts.stream.segmentS ?? defaultStreamSettings.segmentS)),
    ringBytesMax: Math.round(opts.bufferMB * 1024 * 1024),
    ...opts.stream,
  };
  let health: CameraHealth | null = null;
  const buffers = new Map<string, () => void>();
  let bufferTimer: NodeJS.Timeout | null = null;
  let pruneTimer: NodeJS.Timeout | null = null;
  let sweepTimer: NodeJS.Timeout | null = null;
  let stopSync: (() => void) | null = null;
  let ff: FfmpegInfo | null = null;
  let root = '';
  let gateway: StreamGateway | null = null;
  let clips: ClipRecorder | null = null;
  let linkage: Linkage | null = null;
  let tempRoot = false;

  // A camera as the nearest-camera service (other modules may ask even before video streams work).
  const nearestCameras: CameraLinkageService = {
    async nearest(lat, lon, o = {}) {
      return cameras
        .near(lat, lon, { radiusM: o.radiusM ?? opts.linkRadiusM, limit: o.limit ?? opts.linkLimit, ...(o.preferCameraId ? { preferCameraId: o.preferCameraId } : {}) })
        .map((n) => ({ id: n.camera.id, name: n.camera.name, distanceM: n.distanceM }));
    },
  };

  const realtimeSend = <E extends ServerEventName>(event: E, gridId: string | null | undefined, payload: ServerEventPayload<E>) => {
    try {
      ctx.realtime?.send(event, gridId, payload);
    } catch (err) {
      logger.warn({ err, event }, 'realtime send failed');
    }
  };

  const healthOf = (id: string): Health => health?.get(id).state ?? 'unknown';

  /** `camera.state` to consoles: the camera's health with its reason, and its stream. */
  const pushCameraState = (cameraId: string) => {
    const cam = cameras.get(cameraId);
    if (!cam || !health) return;
    const h = health.get(cameraId);
    const s = gateway?.existing(cameraId);
    realtimeSend('camera.state', cam.gridId, { cameraId, state: h.state, reason: h.reason, since: h.since, stream: s?.state ?? 'idle', buffering: buffers.has(cameraId) });
  };

  const onState = (cameraId: string, state: StreamState) => {
    const dev = ctx.registry.get(cameraId);
    // CONTRACT 6 `device`, extended with the stream state.
    realtimeSend('device', dev?.gridId ?? null, { deviceId: cameraId, online: dev?.online ?? false, lastSeen: dev?.lastSeen ?? null, stream: state });
    pushCameraState(cameraId);
    // A stream that stops producing is the first sign of a camera going away: probe it now.
    if (state === 'stalled' || state === 'offline') health?.probeSoon(cameraId);
  };

  /**
   * The rolling buffers: cameras set to buffer that are online keep their
   * stream held (first `bufferMax` by id); a camera that goes offline lets
   * go, so a dead camera costs probes, not ffmpeg restarts.
   */
  const applyBuffers = (want: Set<string>) => {
    if (!gateway) return;
    for (const [id, release] of buffers) {
      if (want.has(id)) continue;
      release();
      buffers.delete(id);
    }
    for (const id of want) {
      if (buffers.has(id)) continue;
      const s = gateway.stream(id);
      if (s) buffers.set(id, s.acquire());
    }
  };
  const wanted = () => cameras.list().filter((c) => c.buffer && healthOf(c.id) === 'online').map((c) => c.id);
  let reconciling = false;
  let reconcileAgain = false;
  /**
   * Cluster: a node buffers only the cameras it owns. It takes free (or
   * expired) ones in order until it holds `bufferMax`, so the buffered cameras
   * spread over the nodes and a dead owner's cameras are taken over at the next
   * round after its ownership expired.
   */
  const reconcileOwned = async () => {
    const owners = ctx.owners!;
    const mine = new Set<string>();
    if (owners.ready) {
      for (const id of wanted()) {
        if (mine.size >= opts.bufferMax) break;
        const o = await owners.owner(id).catch((err: Error) => {
          logger.warn({ cameraId: id, err: err.message }, 'camera owner not known; buffer left as it is');
          return buffers.has(id) ? { mine: true } : null;
        });
        if (o?.mine) mine.add(id);
      }
    }
    applyBuffers(mine);
  };
  const reconcileBuffers = () => {
    if (!gateway) return;
    if (!ctx.owners?.shared) return applyBuffers(new Set(wanted().slice(0, opts.bufferMax)));
    if (reconciling) {
      reconcileAgain = true;
      return;
    }
    reconciling = true;
    void (async () => {
      do {
        reconcileAgain = false;
        await reconcileOwned().catch((err: Error) => logger.warn({ err: err.message }, 'rolling buffers not reconciled'));
      } while (reconcileAgain);
      reconciling = false;
    })();
  };

  const onHealth = (c: HealthChange) => {
    reconcileBuffers();
    pushCameraState(c.cameraId);
  };

  const onCameraAlarm = (cameraId: string, raised: boolean, reason: string, ts: number) => {
    const cam = cameras.get(cameraId);
    bus.emit('camera.alarm', { cameraId, status: raised ? 'raised' : 'cleared', reason, ts, gridId: cam?.gridId ?? null, lat: cam?.lat ?? null, lon: cam?.lon ?? null });
  };

  const pruneClips = async (): Promise<string[]> => {
    if (!clips) return [];
    const gone = await clips.prune(opts.clipRetentionDays, ctx.now());
    const dir = ctx.cases?.evidence.dir;
    if (gone.length) {
      // The case evidence rows and their hard links go with the clips.
      await db.query("delete from evidence where kind = 'clip' and id = any($1::text[])", [gone]).catch(() => undefined);
      if (dir) for (const id of gone) rmSync(path.join(dir, `${id}.mp4`), { force: true });
      logger.info({ clips: gone.length, retentionDays: opts.clipRetentionDays }, 'pruned evidence clips past retention');
    }
    // Every node runs this: the rows went with whichever node ran first, each node's files go here.
    await clips.pruneFiles();
    if (dir) await pruneEvidenceLinks(dir);
    return gone;
  };

  /** This node's hard links of clips in the evidence directory whose evidence row is gone (retention ran on another node). */
  const pruneEvidenceLinks = async (dir: string): Promise<void> => {
    const names = existsSync(dir) ? readdirSync(dir).filter((n) => /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.mp4$/.test(n)) : [];
    if (!names.length) return;
    const ids = names.map((n) => n.slice(0, 36));
    const kept = new Set((await db.query<{ id: string }>("select id from evidence where kind = 'clip' and id = any($1::text[])", [ids])).map((r) => r.id));
    for (const id of ids) if (!kept.has(id)) rmSync(path.join(dir, `${id}.mp4`), { force: true });
  };

  /** Cluster: clips left `recording` by a node that is gone, or by this one before a crash, are settled (clips.ts, sweep). */
  let sweeping = false;
  const sweepClips = async (): Promise<void> => {
    const owners = ctx.owners;
    if (!clips || !owners?.shared || !owners.ready || sweeping) return;
    sweeping = true;
    try {
      // A camera no longer registered is nobody's to pull: its clips fail once their window has passed.
      await clips.sweep(async (cameraId) => !!cameras.get(cameraId) && (await owners.owner(cameraId)).mine);
    } catch (err) {
      logger.warn({ err: (err as Error).message }, 'clips left recording not swept');
    } finally {
      sweeping = false;
    }
  };

  async function onAlert(m: StoredMessage): Promise<void> {
    if (m.msg.channel !== 'alert' || !clips || !linkage) return;
    const cam = cameras.get(m.deviceId);
    if (!cam) return;
    const at = m.msg.ts;
    if (ctx.owners?.shared) {
      // Cluster: the clip is cut on the camera's node, from its rolling buffer (it decides about bursts).
      const alertKey = `${cam.id}:${at}`;
      const asked = requestClip({
        id: clipIdFor(`alert:${alertKey}`), cameraId: cam.id, at, trigger: 'alert', gridId: cam.gridId, alertKey, alertType: m.msg.type,
        ...(m.msg.snapshot ? { snapshot: m.msg.snapshot } : {}),
      });
      linkage.noteAlert(cam.id, at, asked.then(() => undefined, () => undefined));
      await asked;
      return;
    }
    if (clips.recordingCovering(cam.id, at)) {
      linkage.noteAlert(cam.id, at, Promise.resolve());
      return;
    }
    const capture = clips.capture({
      cameraId: cam.id, at, trigger: 'alert', gridId: cam.gridId, alertKey: `${cam.id}:${at}`, alertType: m.msg.type,
      ...(m.msg.snapshot ? { snapshot: m.msg.snapshot } : {}),
    });
    // Noted before the row exists: the case this alert opens waits for it.
    linkage.noteAlert(cam.id, at, capture.then(() => undefined, () => undefined));
    await capture;
  }

  const nodeAuth: NodeAuth = { keys, now: ctx.now };

  /** Records a clip on this node: the clip of an alert inside one recording already is that one (noisy AI cameras alert in bursts). */
  const captureHere = async (input: CaptureInput): Promise<string> => {
    if (!clips) throw new Error('video is not running');
    if (input.trigger === 'alert') {
      const covering = clips.recordingCovering(input.cameraId, input.at);
      if (covering) return covering;
    }
    return clips.capture(input);
  };

  /**
   * Cluster: a clip of a camera is cut by the camera's owner. Asked again
   * while the owner does not answer: when it died, its cameras move once
   * their ownership expires (possibly to this node, which then records the
   * clip itself); the clip's id makes a repeated ask find the same clip.
   */
  async function requestClip(input: CaptureInput & { id: string }): Promise<string | null> {
    const owners = ctx.owners!;
    for (let attempt = 1; ; attempt++) {
      // Asked again: the camera's node did not answer and the camera may have moved; the moment has passed (clips.ts).
      if (attempt > 1) input = { ...input, postFrom: Date.now() };
      const o = await owners.owner(input.cameraId).catch(() => null);
      if (o && (o.mine || !o.url)) return captureHere(input);
      if (o) {
        const { cameraId: _camera, snapshot, ...rest } = input;
        const body = { ...rest, ...(snapshot?.length ? { snapshot: Buffer.from(snapshot).toString('base64') } : {}) };
        const r = await postToNode<{ id: string }>(o.url, `/video/${encodeURIComponent(input.cameraId)}/clips`, body, nodeAuth).catch((err: Error) => {
          logger.debug({ cameraId: input.cameraId, node: o.node, err: err.message }, 'camera node did not answer a clip request');
          return null;
        });
        if (r && r.status < 300 && r.body?.id) return r.body.id;
        if (r && r.status < 500) {
          logger.warn({ cameraId: input.cameraId, node: o.node, status: r.status }, 'camera node refused a clip request');
          return null;
        }
      }
      if (attempt >= CLIP_ASK_ATTEMPTS) {
        logger.warn({ cameraId: input.cameraId, clipId: input.id }, 'no clip: the camera\'s node did not answer');
        return null;
      }
      await new Promise((r) => setTimeout(r, CLIP_ASK_PAUSE_MS).unref());
    }
  }

  /** Cluster: a clip asked of this node by another (video.routes.ts checks the node signature). */
  const clipForNode = async (input: CaptureInput & { id: string }): Promise<string | null> => {
    if (!cameras.get(input.cameraId) || !clips) return null;
    return captureHere(input);
  };

  /** Cluster: the clip's file is on the node that recorded it; that node adds it to the case evidence. */
  const publishRemote = async (clip: Clip): Promise<void> => {
    const at = await clips?.recorder(clip.id);
    const me = ctx.owners?.self().node;
    if (!at || at.node === me) {
      logger.warn({ clipId: clip.id }, 'clip file not on this node and no other node recorded it');
      return;
    }
    const r = await postToNode(at.url, `/video/${encodeURIComponent(clip.cameraId)}/clips/${clip.id}/evidence`, {}, nodeAuth);
    if (r.status >= 300) throw new Error(`node ${at.node} answered ${r.status} to publishing clip ${clip.id}`);
  };

  /** Cluster: this node's file of a clip, for another node serving it. */
  const fileForNode = async (cameraId: string, clipId: string, name: 'mp4' | 'jpg'): Promise<string | null> => {
    const clip = await clips?.get(clipId);
    if (!clip || clip.cameraId !== cameraId || !clips) return null;
    return name === 'mp4' ? clips.clipFile(clipId) : clips.snapshotFile(clipId);
  };

  /** Cluster: another node attached a ready clip of this node to a case. */
  const publishForNode = async (cameraId: string, clipId: string): Promise<boolean> => {
    const clip = await clips?.get(clipId);
    if (!clip || clip.cameraId !== cameraId || !linkage || !clips) return false;
    if (clip.status === 'ready' && clip.caseId) await linkage.publish(clip, clips.clipFile(clip.id));
    return true;
  };

  const mod: VideoModule = {
    name: 'video',
    optional: true,
    migrations: videoMigrations,
    nearestCameras,
    get ff() {
      return ff;
    },
    get root() {
      return root;
    },
    cameras,
    keys,
    get gateway() {
      return gateway;
    },
    get clips() {
      return clips;
    },
    get linkage() {
      return linkage;
    },
    get health() {
      return health;
    },
    buffering: () => [...buffers.keys()],
    pruneClips,

    routes(api) {
      // Routes are registered before start(); they reach the parts once it ran.
      videoApiRoutes(api, {
        auth: ctx.auth, registry: ctx.registry, cameras, keys, tokenTtlS: opts.tokenTtlS, now: ctx.now,
        ...(ctx.owners ? { owners: ctx.owners } : {}),
        parts: () => (gateway && clips && linkage ? { gateway, clips, linkage } : null),
        health: (id) => health?.get(id) ?? null,
        buffering: (id) => buffers.has(id),
        changed: (id) => {
          health?.probeSoon(id);
          reconcileBuffers();
        },
        ...(ctx.cases ? { cases: ctx.cases } : {}),
        probeNow: async (id) => {
          if (!health) return null;
          const h = await health.probeNow(id);
          reconcileBuffers();
          return h;
        },
      });
    },

    rootRoutes(app) {
      videoRootRoutes(app, {
        gateway: () => gateway, keys, now: ctx.now, cameras,
        ...(ctx.owners ? { owners: ctx.owners } : {}),
        ...(ctx.owners?.shared ? { nodeClips: { capture: clipForNode, publish: publishForNode, file: fileForNode } } : {}),
      });
    },

    async start() {
      await cameras.load();
      ff = findFfmpeg(config.ffmpegPath);
      if (!ff) throw new Error('ffmpeg not found (install ffmpeg or @ffmpeg-installer/ffmpeg, or set GRIDLINK_FFMPEG)');
      if (persistent) root = path.resolve(config.dataDir, 'video');
      else {
        root = mkdtempSync(path.join(os.tmpdir(), 'gridlink-video-'));
        tempRoot = true;
      }
      gateway = new StreamGateway({
        ff, root, settings, logger,
        camera: (id) => {
          const c: Camera | undefined = cameras.get(id);
          return c ? { id, transcode: c.transcode, target: async () => {
            const t = await cameras.target(id);
            return { url: t.ffmpeg, secrets: t.secrets };
          } } : undefined;
        },
        onState,
      });
      gateway.start();
      clips = new ClipRecorder({
        db, gateway, dir: path.join(root, 'clips'), ffmpeg: ff.path, preS: opts.preS, postS: opts.postS,
        startAllowanceS: settings.startTimeoutS + 5, logger,
        // Cluster: the recorder copies a ready clip into PostgreSQL, so every node serves it after this one is gone.
        // A clip above the cap stays on the recorder's disk; the other nodes fetch it from there, signed (cluster.proxy.ts).
        ...(ctx.owners?.shared ? {
          node: () => ctx.owners!.self(), storeMaxBytes: Math.round((opts.clipStoreMaxMb ?? 256) * 1024 * 1024), nodeAuth, leaseMs: ctx.owners.leaseMs,
        } : {}),
        onReady: (clip) => {
          void linkage?.publish(clip, clips!.clipFile(clip.id)).catch((err) => logger.warn({ err, clipId: clip.id }, 'clip not added to the case evidence'));
        },
      });
      await clips.start();
      // A clip in a case's evidence list is served by the cases module from where the clip's bytes are.
      if (ctx.owners?.shared) ctx.cases?.evidence.setSource('clip', (id) => clips!.media(id, 'mp4'));
      linkage = new Linkage({
        db, cameras, clips, ...(ctx.cases ? { cases: ctx.cases } : {}), logger, radiusM: opts.linkRadiusM, limit: opts.linkLimit, now: ctx.now,
        playable: (id) => !['offline', 'degraded'].includes(healthOf(id)),
        ...(ctx.owners?.shared ? {
          // Cluster: a case's clip is cut on its camera's node, once per case whichever node asks.
          capture: (input: CaptureInput) => requestClip({ ...input, id: clipIdFor(`case:${input.caseId ?? `${input.cameraId}:${input.at}`}`) }),
          alertClipWaitMs: 5_000,
          publishRemote,
        } : {}),
        emit: (payload, gridId) => {
          bus.emit('video.linkage', payload);
          // Consoles key linkage by case (CONTRACT 6); an alarm without a case stays on the bus and in camera_links.
          const { caseId } = payload;
          if (caseId) realtimeSend('linkage', gridId, { ...payload, caseId });
        },
      });
      bus.on('message.stored', 'video', (m) => {
        if (m.deviceType === 'camera' && m.msg.channel === 'alert') return onAlert(m);
      });
      bus.on('device.changed', 'video', async (e) => {
        if (e.change === 'deleted' && cameras.get(e.deviceId)) {
          buffers.get(e.deviceId)?.();
          buffers.delete(e.deviceId);
          await gateway?.existing(e.deviceId)?.close();
          await cameras.forget(e.deviceId);
          health?.forget(e.deviceId);
        }
      });
      health = new CameraHealth({
        settings: opts.health, logger,
        target: async (id) => {
          const t = await cameras.target(id);
          return { url: t.url, address: t.address };
        },
        live: (id) => gateway?.existing(id)?.state === 'live',
        ids: () => cameras.list().map((c) => c.id),
        onChange: onHealth,
        onAlarm: onCameraAlarm,
      });
      health.start();
      bufferTimer = setInterval(reconcileBuffers, 5_000);
      // Cluster: cameras registered or edited on another node (cluster.sync.ts).
      if (ctx.owners?.shared) stopSync = syncCameras(db, async () => { await cameras.load(); reconcileBuffers(); }, logger);
      bufferTimer.unref();
      pruneTimer = setInterval(() => void pruneClips().catch((err) => logger.warn({ err: (err as Error).message }, 'clip retention failed')), 3600_000);
      pruneTimer.unref();
      // Clip files of clips gone while this node was away.
      void clips.pruneFiles().catch((err) => logger.warn({ err: (err as Error).message }, 'clip files not pruned'));
      if (ctx.owners?.shared) {
        // A third of the lease time: a dead recorder's clip is settled about one lease time after it died.
        sweepTimer = setInterval(() => void sweepClips(), Math.max(500, Math.floor(ctx.owners.leaseMs / 3)));
        sweepTimer.unref();
      }
      bus.on('case.changed', 'video', async (e) => {
        const c = e.case;
        if (typeof c.lat !== 'number') return;
        if (e.action === 'attach') {
          const joined = e.data?.deviceId;
          return linkage!.onCaseJoined(c, typeof joined === 'string' ? joined : null);
        }
        if (e.action !== 'create') return;
        // The device that opened the case (a camera alert links its own camera first).
        const deviceId = (await ctx.cases?.detail(c.id).catch(() => null))?.deviceId ?? null;
        await linkage!.onCase(c, { deviceId });
      });
      bus.on('alarm.changed', 'video', ({ alarm, change }) => {
        // Alarms are linked when raised (stored, bus only); an alarm that opens a case says so with its
        // explicit `case_linked` change, and the case's own linkage (case.changed create) goes to consoles.
        if (change !== 'raised') return;
        void linkage?.onAlarm(alarm).catch((err) => logger.warn({ err }, 'alarm linkage failed'));
      });
      logger.info({ ffmpeg: ff.path, version: ff.version, root, cameras: cameras.list().length }, 'video ready');
    },

    async stop() {
      bus.removeOwner('video');
      health?.stop();
      if (bufferTimer) clearInterval(bufferTimer);
      if (pruneTimer) clearInterval(pruneTimer);
      if (sweepTimer) clearInterval(sweepTimer);
      stopSync?.();
      for (const release of buffers.values()) release();
      buffers.clear();
      await clips?.stop();
      await gateway?.stop();
      if (tempRoot && root) rmSync(root, { recursive: true, force: true });
    },
  };
  return mod;
}
