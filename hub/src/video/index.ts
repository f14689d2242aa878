/**
 * The video domain's door: camera registry, stream gateway (RTSP → HLS +
 * fMP4/WebSocket), evidence clips and 视频联动 linkage. Optional: if ffmpeg
 * is missing or anything here fails to start, the hub runs on without video.
 *
 * Listens on the bus for
 *   'message.stored'  camera `alert` → evidence clip (+ snapshot);
 *   'case.changed'    new case with a location → linkage + evidence;
 *   'alarm.raised'    new alarm without a case → linkage;
 *   'device.changed'  camera device deleted → camera forgotten.
 * Emits 'camera.state', 'video.linkage', 'clip.ready' and, through
 * ctx.services.realtime when present, Socket.IO `linkage` and `device`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { HubContext, HubModule, ModuleFactory } from '../hub.js';
import { ConfigError, readFields, type Field } from '../core/config.js';
import type { CaseSummary } from '../core/services.js';
import type { StoredMessage } from '../ingest/index.js';
import { CameraRegistry, videoMigrations, type Camera } from './cameras.js';
import { ClipRecorder, type Clip } from './clips.js';
import { findFfmpeg, type FfmpegInfo } from './ffmpeg.js';
import { StreamGateway } from './gateway.js';
import { loadVideoKey, VideoKeys } from './keys.js';
import { Linkage, type AlarmLike, type LinkagePayload } from './linkage.js';
import { defaultStreamSettings, type StreamSettings, type StreamState } from './stream.js';
import { videoApiRoutes, videoRootRoutes } from './video.routes.js';

export type { Camera } from './cameras.js';
export type { Clip } from './clips.js';
export type { LinkagePayload } from './linkage.js';
export type { StreamState } from './stream.js';

export interface CameraStateEvent {
  cameraId: string;
  state: StreamState;
  from: StreamState;
  ts: number;
}

declare module '../core/bus.js' {
  interface EventMap {
    'camera.state': CameraStateEvent;
    'video.linkage': LinkagePayload;
    'clip.ready': Clip;
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
} as const satisfies Record<string, Field>;

/** Defaults, overridable by GRIDLINK_VIDEO_*; a bad value fails with ConfigError naming it (not silently ignored). */
export function videoOptionsFromEnv(env: Record<string, string | undefined> = process.env): VideoOptions {
  const problems: string[] = [];
  const v = readFields(videoConfigSchema, env, {}, problems) as Record<keyof typeof videoConfigSchema, number>;
  if (problems.length) throw new ConfigError(problems);
  return {
    stream: { segmentS: v.segmentS, graceS: v.graceS, stallS: v.stallS, backoffMaxMs: v.backoffMaxMs },
    tokenTtlS: v.tokenTtlS,
    preS: v.preS,
    postS: v.postS,
    linkRadiusM: v.linkRadiusM,
    linkLimit: v.linkLimit,
  };
}

/** The parts, exposed for tests and the benchmark (`ctx.modules.get('video')`). */
export interface VideoModule extends HubModule {
  readonly ff: FfmpegInfo | null;
  readonly root: string;
  readonly cameras: CameraRegistry;
  readonly keys: VideoKeys;
  readonly gateway: StreamGateway | null;
  readonly clips: ClipRecorder | null;
  readonly linkage: Linkage | null;
}

/** Loosely typed subscription to events owned by other modules (their payload types live with them). */
type LooseBus = { on(event: string, owner: string, fn: (payload: unknown) => unknown): void };

export function createVideo(options: Partial<VideoOptions> = {}): ModuleFactory {
  return (ctx: HubContext) => {
    const env = videoOptionsFromEnv();
    return buildVideo(ctx, { ...env, ...options, stream: { ...env.stream, ...options.stream } });
  };
}

function buildVideo(ctx: HubContext, opts: VideoOptions): VideoModule {
  const { config, logger: rootLogger, bus, db } = ctx;
  const logger = rootLogger.child({ module: 'video' });
  const persistent = !config.databaseUrl?.startsWith('memory://');
  const keys = new VideoKeys(loadVideoKey({ dataDir: config.dataDir, persistent }));
  const cameras = new CameraRegistry(db, ctx.registry, keys, (lat, lon) => ctx.services.grids?.locate(lat, lon) ?? null);
  const settings: StreamSettings = { ...defaultStreamSettings, ...opts.stream };
  let ff: FfmpegInfo | null = null;
  let root = '';
  let gateway: StreamGateway | null = null;
  let clips: ClipRecorder | null = null;
  let linkage: Linkage | null = null;
  let tempRoot = false;

  // A camera as the nearest-camera service (other modules may ask even before video streams work).
  ctx.services.cameras = {
    async nearest(lat, lon, o = {}) {
      return cameras
        .near(lat, lon, { radiusM: o.radiusM ?? opts.linkRadiusM, limit: o.limit ?? opts.linkLimit, ...(o.preferCameraId ? { preferCameraId: o.preferCameraId } : {}) })
        .map((n) => ({ id: n.camera.id, name: n.camera.name, distanceM: n.distanceM }));
    },
  };

  const realtimeSend = (event: string, gridId: string | null | undefined, payload: unknown) => {
    try {
      ctx.services.realtime?.send(event, gridId, payload);
    } catch (err) {
      logger.warn({ err, event }, 'realtime send failed');
    }
  };

  const onState = (cameraId: string, state: StreamState, from: StreamState) => {
    const ts = Date.now();
    bus.emit('camera.state', { cameraId, state, from, ts });
    const dev = ctx.registry.get(cameraId);
    // CONTRACT 6 `device`, extended with the stream state.
    realtimeSend('device', dev?.gridId ?? null, { deviceId: cameraId, online: dev?.online ?? false, lastSeen: dev?.lastSeen ?? null, stream: state });
  };

  async function onAlert(m: StoredMessage): Promise<void> {
    if (m.msg.channel !== 'alert' || !clips || !linkage) return;
    const cam = cameras.get(m.deviceId);
    if (!cam) return;
    const at = m.msg.ts;
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

  const mod: VideoModule = {
    name: 'video',
    optional: true,
    migrations: videoMigrations,
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

    routes(api) {
      // Routes are registered before start(); they reach the parts once it ran.
      videoApiRoutes(api, {
        auth: ctx.auth, registry: ctx.registry, cameras, keys, tokenTtlS: opts.tokenTtlS, now: ctx.now,
        parts: () => (gateway && clips && linkage ? { gateway, clips, linkage } : null),
      });
    },

    rootRoutes(app) {
      videoRootRoutes(app, { gateway: () => gateway, keys, now: ctx.now, cameras });
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
          return c ? { id, transcode: c.transcode, rtspUrl: () => cameras.rtspUrl(id) } : undefined;
        },
        onState,
      });
      gateway.start();
      clips = new ClipRecorder({
        db, gateway, dir: path.join(root, 'clips'), ffmpeg: ff.path, preS: opts.preS, postS: opts.postS,
        startAllowanceS: settings.startTimeoutS + 5, logger,
        onReady: (clip) => {
          bus.emit('clip.ready', clip);
          void linkage?.publish(clip).catch((err) => logger.warn({ err, clipId: clip.id }, 'cases module refused the evidence'));
        },
      });
      await clips.start();
      linkage = new Linkage({
        db, cameras, clips, services: ctx.services, logger, radiusM: opts.linkRadiusM, limit: opts.linkLimit, now: ctx.now,
        emit: (payload, gridId) => {
          bus.emit('video.linkage', payload);
          // Consoles key linkage by case (CONTRACT 6); an alarm without a case stays on the bus and in camera_links.
          if (payload.caseId) realtimeSend('linkage', gridId, payload);
        },
      });
      bus.on('message.stored', 'video', (m) => {
        if (m.deviceType === 'camera' && m.msg.channel === 'alert') return onAlert(m);
      });
      bus.on('device.changed', 'video', async (e) => {
        if (e.change === 'deleted' && cameras.get(e.deviceId)) {
          await gateway?.existing(e.deviceId)?.close();
          await cameras.forget(e.deviceId);
        }
      });
      const loose = bus as unknown as LooseBus;
      loose.on('case.changed', 'video', async (p) => {
        // cases emits {case, action, ...}; a bare CaseSummary is accepted too.
        const ev = p as { case?: CaseSummary; action?: string };
        const c = (ev.case ?? p) as CaseSummary & { deviceId?: string | null };
        if (!c?.id || typeof c.lat !== 'number') return;
        if (ev.action === 'attach') {
          const data = (p as { data?: { deviceId?: string } }).data;
          return linkage!.onCaseJoined(c, data?.deviceId ?? null);
        }
        if (ev.action !== undefined && ev.action !== 'create') return;
        // The device that opened the case (a camera alert links its own camera first).
        const detail = ctx.services.cases as unknown as { detail?: (id: string) => Promise<{ deviceId?: string | null } | null> } | undefined;
        const deviceId = c.deviceId ?? (typeof detail?.detail === 'function' ? (await detail.detail(c.id).catch(() => null))?.deviceId : null) ?? null;
        await linkage!.onCase(c, { deviceId });
      });
      loose.on('alarm.changed', 'video', (p) => {
        const { alarm, change } = p as { alarm?: AlarmLike; change?: string };
        if (!alarm?.id || change !== 'raised') return;
        // A rule with a case spec links the alarm to a case right after raising it; the case carries the linkage then.
        const t = setTimeout(() => void linkage?.onAlarm(alarm).catch((err) => logger.warn({ err }, 'alarm linkage failed')), 1_500);
        t.unref();
      });
      logger.info({ ffmpeg: ff.path, version: ff.version, root, cameras: cameras.list().length }, 'video ready');
    },

    async stop() {
      bus.removeOwner('video');
      await clips?.stop();
      await gateway?.stop();
      if (tempRoot && root) rmSync(root, { recursive: true, force: true });
      if (ctx.services.cameras) delete ctx.services.cameras;
    },
  };
  return mod;
}

/** The product's video module with defaults from the environment. */
export const videoModule: ModuleFactory = createVideo();
