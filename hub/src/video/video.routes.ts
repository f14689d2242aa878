/**
 * REST for cameras, streams, clips and linkage (under /api/v1), and the
 * stream endpoints at the root (/video/{cameraId}/...), which take a signed
 * short-lived token in the URL instead of a bearer header.
 */
import { createReadStream, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Type } from '@sinclair/typebox';
// Cameras, streams, clips and linkage as REST returns them are the contract's (CONTRACT 5).
import {
  CAMERA_ID_PATTERN, Camera as CameraSchema, CameraIdParams as IdParams, CamerasQuery, CameraSnapshot, CameraSnapshotBody, Clip as ClipSchema, ClipExport, ClipParams, ClipsQuery,
  CreateCameraBody, LinkageParams, LinkedCamera, RegisteredCamera, StreamUrls, UpdateCameraBody,
} from '@gridlink/devices/contract';
import type { Auth } from '../auth/index.js';
import { Errors } from '../core/errors.js';
import type { App } from '../http/app.js';
import { authenticate, mediaPath, principal, requireRole } from '../http/guards.js';
import { errors, Items } from '../http/schemas.js';
import type { DeviceRegistry } from '../registry/index.js';
import type { Camera, CameraRegistry } from './cameras.js';
import type { Clip, ClipRecorder } from './clips.js';
import type { StreamGateway } from './gateway.js';
import type { VideoKeys } from './keys.js';
import type { Linkage } from './linkage.js';
import type { CaseStore } from '../cases/index.js';
import { sendMedia } from '../cases/stored-media.js';
import type { HealthInfo } from './health.js';
import { frameArgs, run } from './ffmpeg.js';
import { fromNode, ownerOf, postToNode, proxyHttp, proxyLive, type CameraOwners } from './cluster.proxy.js';
import type { CaptureInput } from './clips.js';


export interface VideoRouteDeps {
  /** Cluster: which node pulls each camera; the others do not start it (cluster.proxy.ts). */
  owners?: CameraOwners;
  auth: Auth;
  registry: DeviceRegistry;
  cameras: CameraRegistry;
  /** Null until the module started (or when ffmpeg is missing). */
  parts: () => { gateway: StreamGateway; clips: ClipRecorder; linkage: Linkage } | null;
  keys: VideoKeys;
  tokenTtlS: number;
  now: () => number;
  health: (id: string) => HealthInfo | null;
  buffering: (id: string) => boolean;
  /** A camera was registered or changed: probe it now, reconsider the buffers. */
  changed: (id: string) => void;
  /** Probe now and answer with the fresh verdict. */
  probeNow: (id: string) => Promise<HealthInfo | null>;
  /** Snapshots and clip exports reach cases when the cases module is loaded. */
  cases?: Pick<CaseStore, 'get' | 'evidence'>;
}

export function videoApiRoutes(app: App, d: VideoRouteDeps): void {
  const guard = authenticate(d.auth);
  const parts = () => d.parts() ?? (() => {
    throw Errors.unavailable('video is not available on this hub (see the log: ffmpeg missing?)');
  })();
  const view = (c: Camera) => {
    const s = d.parts()?.gateway.existing(c.id);
    const h = d.health(c.id);
    return {
      ...c, online: d.registry.get(c.id)?.online ?? false, stream: { state: s?.state ?? 'idle', viewers: s?.viewers ?? 0 }, buffering: d.buffering(c.id),
      health: { state: h?.state ?? 'unknown', reason: h?.reason ?? 'not probed yet', since: h?.since ?? c.createdAt, lastProbeAt: h?.lastProbeAt ?? null },
    };
  };
  const visible = (req: Parameters<typeof principal>[0], c: Camera | undefined): Camera => {
    if (!c || !d.auth.canSee(principal(req), c.gridId)) throw Errors.notFound('camera not found');
    return c;
  };
  /** Clip media URLs carry a media token for this caller and this file only (an <img>/<video> cannot send a header). */
  const signed = (req: Parameters<typeof principal>[0], clip: Clip): Clip => {
    const p = principal(req);
    const sign = (url: string) => `${url}?media=${encodeURIComponent(d.auth.signMedia(p, mediaPath(url)).token)}`;
    return { ...clip, video: sign(clip.video), snapshot: sign(clip.snapshot) };
  };

  app.post('/cameras', {
    onRequest: [guard, requireRole('integrator')],
    schema: {
      tags: ['video'],
      summary: 'Register a camera (also a `camera` device: the MQTT secret is returned once)',
      body: CreateCameraBody,
      response: { 201: RegisteredCamera, ...errors(400, 401, 403, 409) },
    },
  }, async (req, reply) => {
    const b = req.body;
    d.auth.assertCanWrite(principal(req), null, { gridId: b.gridId ?? d.cameras.locate(b.lat, b.lon) }, undefined, 'the camera\'s grid');
    const { camera, secret } = await d.cameras.create(req.body);
    d.changed(camera.id);
    return reply.status(201).send({ ...view(camera), secret });
  });

  app.get('/cameras', {
    onRequest: [guard],
    schema: {
      tags: ['video'],
      summary: 'Cameras; with `near`, those within `radius` m ordered covering-first, then by distance',
      querystring: CamerasQuery,
      response: { 200: Items(CameraSchema), ...errors(400, 401) },
    },
  }, async (req) => {
    const p = principal(req);
    const canSee = (c: Camera) => d.auth.canSee(p, c.gridId);
    if (req.query.near) {
      const [lat, lon] = req.query.near.split(',').map(Number) as [number, number];
      if (Math.abs(lat) > 90 || Math.abs(lon) > 180) throw Errors.validation('near is not a WGS-84 point');
      const near = d.cameras.near(lat, lon, { radiusM: req.query.radius ?? 500, limit: req.query.limit ?? 100, filter: canSee });
      return { items: near.map((n) => ({ ...view(n.camera), distanceM: n.distanceM, covers: n.covers })) };
    }
    return { items: d.cameras.list().filter(canSee).slice(0, req.query.limit ?? 100).map(view) };
  });

  app.get('/cameras/:id', {
    onRequest: [guard],
    schema: { tags: ['video'], params: IdParams, response: { 200: CameraSchema, ...errors(401, 404) } },
  }, async (req) => view(visible(req, d.cameras.get(req.params.id))));

  app.patch('/cameras/:id', {
    onRequest: [guard, requireRole('integrator')],
    schema: {
      tags: ['video'],
      summary: 'Change view or the transcode setting (a running stream restarts with it)',
      params: IdParams,
      body: UpdateCameraBody,
      response: { 200: CameraSchema, ...errors(400, 401, 403, 404) },
    },
  }, async (req) => {
    const found = d.cameras.get(req.params.id);
    const notFound = () => Errors.notFound('camera not found');
    if (!found) throw notFound();
    d.auth.assertCanWrite(principal(req), { gridId: found.gridId }, { gridId: found.gridId }, notFound);
    const before = found;
    const c = await d.cameras.update(before.id, req.body);
    if (c.transcode !== before.transcode) d.parts()?.gateway.existing(c.id)?.restart();
    d.changed(c.id);
    return view(c);
  });

  app.get('/cameras/:id/stream', {
    onRequest: [guard],
    schema: {
      tags: ['video'],
      summary: 'Starts the stream if needed; signed short-lived URLs for HLS (hls.js) and fMP4 over WebSocket (MSE)',
      params: IdParams,
      response: {
        200: StreamUrls,
        ...errors(401, 404, 503),
      },
    },
  }, async (req) => {
    const c = visible(req, d.cameras.get(req.params.id));
    const s = parts().gateway.stream(c.id);
    if (!s) throw Errors.notFound('camera not found');
    const t = d.keys.sign(c.id, d.tokenTtlS, d.now());
    // Another node pulls this camera: the URLs are the same, and this node proxies them there.
    const remote = await ownerOf(d.owners, { keys: d.keys, now: d.now }, c.id, req);
    if (remote) {
      const q = `token=${encodeURIComponent(t.token)}`;
      return { cameraId: c.id, hls: `/video/${c.id}/index.m3u8?${q}`, live: `/video/${c.id}/live?${q}`, expiresAt: t.expiresAt, state: 'starting' as const };
    }
    let h = d.health(c.id);
    // Someone wants to watch a camera the schedule found down: ask it again now rather than at its next
    // backoff slot. Still offline: it is not started (no ffmpeg restart loop for a dead camera) and the
    // player shows why; asking again after it returns plays it.
    if (h?.state === 'offline' && !s.live) h = await d.probeNow(c.id);
    if (h?.state !== 'offline' || s.live) s.touchLease(t.nonce);
    const q = `token=${encodeURIComponent(t.token)}`;
    return {
      cameraId: c.id, hls: `/video/${c.id}/index.m3u8?${q}`, live: `/video/${c.id}/live?${q}`, expiresAt: t.expiresAt, state: s.state,
      ...(h ? { health: { state: h.state, reason: h.reason } } : {}),
    };
  });

  const clipVisible = async (req: Parameters<typeof principal>[0], id: string): Promise<Clip> => {
    const clip = await parts().clips.get(id);
    if (!clip || !d.auth.canSee(principal(req), clip.gridId)) throw Errors.notFound('clip not found');
    return clip;
  };

  app.get('/clips', {
    onRequest: [guard],
    schema: {
      tags: ['video'],
      summary: 'Evidence clips by case, camera or alert (`alertKey` = deviceId:ts)',
      querystring: ClipsQuery,
      response: { 200: Items(ClipSchema), ...errors(401) },
    },
  }, async (req) => {
    const p = principal(req);
    const items = await parts().clips.list({ ...req.query });
    return { items: items.filter((c) => d.auth.canSee(p, c.gridId)).map((c) => signed(req, c)) };
  });

  app.get('/clips/:id', {
    onRequest: [guard],
    schema: { tags: ['video'], params: ClipParams, response: { 200: ClipSchema, ...errors(401, 404) } },
  }, async (req) => signed(req, await clipVisible(req, req.params.id)));

  app.get('/clips/:id/video.mp4', {
    onRequest: [guard],
    config: { media: true },
    schema: { tags: ['video'], summary: 'The clip (MP4, faststart); the `video` URL of a clip carries a media token for <video src>', params: ClipParams },
  }, async (req, reply) => {
    const clip = await clipVisible(req, req.params.id);
    if (clip.status !== 'ready') throw Errors.notFound(`clip is ${clip.status}`);
    // This node's file, the database (cluster), or the recorder's file fetched through it (a clip above the store cap).
    const media = await parts().clips.media(clip.id, 'mp4');
    if (!media) throw Errors.notFound('clip file not found');
    return sendMedia(reply, req.headers.range, media, 'video/mp4');
  });

  app.get('/clips/:id/snapshot.jpg', {
    onRequest: [guard],
    config: { media: true },
    schema: { tags: ['video'], params: ClipParams },
  }, async (req, reply) => {
    const clip = await clipVisible(req, req.params.id);
    // A ready clip's snapshot is in the database too (cluster); one still recording is on its recorder.
    const media = await parts().clips.media(clip.id, 'jpg');
    if (!media) throw Errors.notFound('no snapshot');
    return sendMedia(reply.header('cache-control', 'private, max-age=86400'), undefined, media, 'image/jpeg');
  });

  app.get('/clips/:id/export.json', {
    onRequest: [guard],
    schema: {
      tags: ['video'],
      summary: 'Sidecar JSON for handing a clip over as evidence: SHA-256 of the MP4, camera, time range, case',
      params: ClipParams,
      response: {
        200: ClipExport,
        ...errors(401, 404),
      },
    },
  }, async (req, reply) => {
    const clip = await clipVisible(req, req.params.id);
    if (clip.status !== 'ready' || !clip.sha256 || clip.bytes === null) throw Errors.notFound(`clip is ${clip.status}`);
    const cam = d.cameras.get(clip.cameraId);
    const c = clip.caseId ? await d.cases?.get(clip.caseId).catch(() => null) : null;
    const iso = (t: number | null) => (t === null ? null : new Date(t).toISOString());
    reply.header('content-disposition', `attachment; filename="${clip.id}.json"`);
    return {
      clipId: clip.id, file: `${clip.id}.mp4`, sha256: clip.sha256, bytes: clip.bytes, mime: 'video/mp4',
      camera: { id: clip.cameraId, name: cam?.name ?? null, lat: cam?.lat ?? null, lon: cam?.lon ?? null, gb28181Id: cam?.gb28181Id ?? null },
      from: clip.from, to: clip.to, at: clip.at, fromIso: iso(clip.from), toIso: iso(clip.to),
      case: clip.caseId ? { id: clip.caseId, code: c?.code ?? null } : null,
      trigger: clip.trigger, alertType: clip.alertType, exportedAt: d.now(), exportedBy: principal(req).username,
    };
  });

  /** The camera's current picture, grabbed by the node that pulls it (cluster) or here. */
  const frameOf = async (cameraId: string): Promise<Uint8Array> => {
    const o = d.owners?.shared ? await d.owners.owner(cameraId) : null;
    if (!o || o.mine || !o.url) return grabFrame(parts().gateway, cameraId);
    const r = await postToNode<{ jpeg?: string }>(o.url, `/video/${encodeURIComponent(cameraId)}/frame`, {}, { keys: d.keys, now: d.now }, 60_000)
      .catch(() => {
        throw Errors.unavailable('the hub node that pulls this camera is not reachable');
      });
    if (r.status !== 200 || !r.body?.jpeg) throw Errors.unavailable(`the hub node that pulls this camera answered ${r.status}`);
    return new Uint8Array(Buffer.from(r.body.jpeg, 'base64'));
  };

  app.post('/cameras/:id/snapshot', {
    onRequest: [guard, requireRole('officer', 'dispatcher')],
    schema: {
      tags: ['video'],
      summary: 'One click: the camera\'s current picture becomes evidence (kind snapshot) of a case',
      params: IdParams,
      body: CameraSnapshotBody,
      response: { 201: CameraSnapshot, ...errors(400, 401, 403, 404, 503) },
    },
  }, async (req, reply) => {
    const p = principal(req);
    const cam = visible(req, d.cameras.get(req.params.id));
    const cases = d.cases;
    const c = cases ? await cases.get(req.body.caseId) : null;
    // A case the caller may not see does not exist for them.
    if (!cases || !c || !d.auth.canSee(p, c.gridId)) throw Errors.notFound('case not found');
    const jpeg = await frameOf(cam.id);
    const e = await cases.evidence.save({
      bytes: jpeg, kind: 'snapshot', caseId: c.id, deviceId: cam.id, gridId: c.gridId, at: d.now(),
      actor: { kind: 'user', id: p.sub, name: p.username, role: p.role, regionId: p.regionId ?? null },
    });
    return reply.status(201).send({ id: e.id, caseId: c.id, kind: e.kind, url: e.url, sha256: e.sha256 });
  });

  app.get('/linkage/:caseId', {
    onRequest: [guard],
    schema: {
      tags: ['video'],
      summary: 'Cameras linked to a case (stored when the case opened), best first',
      params: LinkageParams,
      response: { 200: Items(LinkedCamera), ...errors(401) },
    },
  }, async (req) => {
    const p = principal(req);
    const items = await parts().linkage.forCase(req.params.caseId);
    return { items: items.filter((c) => d.auth.canSee(p, d.cameras.get(c.id)?.gridId ?? null)) };
  });
}

/** Cluster: clips asked of this node by the other nodes (video/index.ts). */
export interface NodeClips {
  /** Records (or finds) the clip; null when the camera is unknown here. */
  capture(input: CaptureInput & { id: string }): Promise<string | null>;
  /** Adds a ready clip this node recorded to its case's evidence; false when it is not this camera's clip. */
  publish(cameraId: string, clipId: string): Promise<boolean>;
  /** This node's file of a clip of this camera (its MP4 or snapshot); null when it has none. */
  file(cameraId: string, clipId: string, name: 'mp4' | 'jpg'): Promise<string | null>;
}

export function videoRootRoutes(app: App, d: { gateway: () => StreamGateway | null; keys: VideoKeys; now: () => number; cameras: CameraRegistry; owners?: CameraOwners; nodeClips?: NodeClips }): void {
  const auth = { keys: d.keys, now: d.now };
  const gateway = (): StreamGateway => d.gateway() ?? (() => {
    throw Errors.unavailable('video is not available');
  })();
  if (d.nodeClips) videoNodeRoutes(app, { keys: d.keys, now: d.now, nodeClips: d.nodeClips, gateway: d.gateway });
  const Params = Type.Object({ id: Type.String({ pattern: CAMERA_ID_PATTERN }) });
  const Query = Type.Object({ token: Type.Optional(Type.String({ maxLength: 128 })) });
  /** The nonce of a valid token for this camera; 401 otherwise. */
  const check = (id: string, token: string | undefined): string => {
    const nonce = d.keys.verify(id, token, d.now());
    if (!nonce || !d.cameras.get(id)) throw Errors.tokenInvalid('stream token is invalid or expired');
    return nonce;
  };

  app.get('/video/:id/index.m3u8', {
    schema: { hide: true, params: Params, querystring: Query },
  }, async (req, reply) => {
    const nonce = check(req.params.id, req.query.token);
    const remote = await ownerOf(d.owners, auth, req.params.id, req);
    if (remote) return proxyHttp(remote, auth, req, reply);
    const s = gateway().stream(req.params.id)!;
    s.touchLease(nonce);
    // The first request of a cold stream waits for the first segment instead of 404ing.
    if (!existsSync(s.playlistPath())) await s.waitLive(10_000);
    let text: string;
    try {
      text = readFileSync(s.playlistPath(), 'utf8');
    } catch {
      throw Errors.unavailable(`stream is ${s.state}`);
    }
    // Segment URIs carry the token: hls.js does not add the playlist's query to them.
    const q = `?token=${encodeURIComponent(req.query.token!)}`;
    const body = text.split('\n').map((l) => (l && !l.startsWith('#') ? `${l.trim()}${q}` : l)).join('\n');
    return reply.type('application/vnd.apple.mpegurl').header('cache-control', 'no-cache, no-store').header('access-control-allow-origin', '*').send(body);
  });

  app.get('/video/:id/:file', {
    schema: { hide: true, params: Type.Object({ id: Type.String({ pattern: CAMERA_ID_PATTERN }), file: Type.String({ pattern: '^seg_\\d{1,20}\\.ts$' }) }), querystring: Query },
  }, async (req, reply) => {
    const nonce = check(req.params.id, req.query.token);
    const remote = await ownerOf(d.owners, auth, req.params.id, req);
    if (remote) return proxyHttp(remote, auth, req, reply);
    const s = gateway().stream(req.params.id)!;
    s.touchLease(nonce);
    let data: Buffer;
    try {
      data = readFileSync(s.segmentPath(req.params.file));
    } catch {
      throw Errors.notFound('segment not found');
    }
    return reply.type('video/mp2t').header('cache-control', 'private, max-age=60').header('access-control-allow-origin', '*').send(data);
  });

  app.get('/video/:id/live', {
    websocket: true,
    schema: { hide: true, params: Params, querystring: Query },
    // Runs before the upgrade: a bad token gets a plain HTTP 401, no socket.
    preValidation: async (req) => {
      const { id } = req.params as { id: string };
      check(id, (req.query as { token?: string }).token);
    },
  }, async (socket, req) => {
    const { id } = req.params as { id: string };
    const remote = await ownerOf(d.owners, auth, id, req).catch(() => null);
    // The viewer may have gone while the owner was looked up.
    if (socket.readyState !== socket.OPEN) return;
    if (remote) return proxyLive(remote, auth, req, socket);
    const s = d.gateway()?.stream(id);
    if (!s) return socket.close(1008, 'unknown camera');
    const remove = s.addClient({
      send: (data) => socket.send(data),
      get bufferedAmount() {
        return socket.bufferedAmount;
      },
    });
    socket.on('close', remove);
    socket.on('error', remove);
    // Viewers send nothing; anything they do send is ignored.
    socket.on('message', () => undefined);
  });
}

/** A clip asked of the camera's node by another node (never by a client: the body is signed with the nodes' key). */
const NodeClipBody = Type.Object({
  id: Type.String({ format: 'uuid' }),
  at: Type.Number({ minimum: 0, maximum: 8.64e15 }),
  trigger: Type.Union([Type.Literal('alert'), Type.Literal('case'), Type.Literal('alarm'), Type.Literal('manual')]),
  gridId: Type.Union([Type.String({ maxLength: 128 }), Type.Null()]),
  caseId: Type.Optional(Type.Union([Type.String({ maxLength: 128 }), Type.Null()])),
  alarmId: Type.Optional(Type.Union([Type.String({ maxLength: 128 }), Type.Null()])),
  alertKey: Type.Optional(Type.Union([Type.String({ maxLength: 300 }), Type.Null()])),
  alertType: Type.Optional(Type.Union([Type.String({ maxLength: 128 }), Type.Null()])),
  postFrom: Type.Optional(Type.Number({ minimum: 0, maximum: 8.64e15 })),
  /** The alert's snapshot, base64. */
  snapshot: Type.Optional(Type.String({ maxLength: 12 * 1024 * 1024 })),
}, { additionalProperties: false });

/**
 * Cluster: the node-to-node clip endpoints. Only a request signed by a node
 * (`x-gridlink-proxied`, over method, path and body) is served: a client, even
 * with a valid stream token, gets 401 and starts nothing.
 */
export function videoNodeRoutes(app: App, d: { keys: VideoKeys; now: () => number; nodeClips: NodeClips; gateway: () => StreamGateway | null }): void {
  const auth = { keys: d.keys, now: d.now };
  const signed = async (req: import('fastify').FastifyRequest) => {
    if (!fromNode(auth, req, req.body === undefined ? '' : JSON.stringify(req.body))) throw Errors.tokenInvalid('not a request from a hub node');
  };
  app.post('/video/:id/clips', {
    bodyLimit: 16 * 1024 * 1024,
    schema: { hide: true, params: Type.Object({ id: Type.String({ pattern: CAMERA_ID_PATTERN }) }), body: NodeClipBody },
    preValidation: signed,
  }, async (req, reply) => {
    const { snapshot, ...rest } = req.body;
    const input: CaptureInput & { id: string } = { ...rest, cameraId: req.params.id, ...(snapshot ? { snapshot: new Uint8Array(Buffer.from(snapshot, 'base64')) } : {}) };
    const id = await d.nodeClips.capture(input);
    if (!id) throw Errors.notFound('camera not found');
    return reply.status(201).send({ id });
  });
  app.post('/video/:id/frame', {
    schema: { hide: true, params: Type.Object({ id: Type.String({ pattern: CAMERA_ID_PATTERN }) }) },
    preValidation: signed,
  }, async (req) => {
    const gateway = d.gateway();
    if (!gateway) throw Errors.unavailable('video is not available');
    return { jpeg: Buffer.from(await grabFrame(gateway, req.params.id)).toString('base64') };
  });
  /**
   * A clip file this node holds (a clip above the store cap, or the snapshot
   * of one still recording), for another node serving it to a viewer it
   * authenticated: one `bytes=` range or all of it.
   */
  app.get('/video/:id/clips/:clipId/:name', {
    schema: {
      hide: true,
      params: Type.Object({ id: Type.String({ pattern: CAMERA_ID_PATTERN }), clipId: Type.String({ format: 'uuid' }), name: Type.Union([Type.Literal('video.mp4'), Type.Literal('snapshot.jpg')]) }),
    },
    preValidation: signed,
  }, async (req, reply) => {
    const mp4 = req.params.name === 'video.mp4';
    const file = await d.nodeClips.file(req.params.id, req.params.clipId, mp4 ? 'mp4' : 'jpg');
    const st = file ? await stat(file).catch(() => null) : null;
    if (!file || !st?.isFile()) throw Errors.notFound('clip file not on this node');
    return sendMedia(reply, req.headers.range, { size: st.size, stream: (start, end) => createReadStream(file, { start, end }) }, mp4 ? 'video/mp4' : 'image/jpeg');
  });
  app.post('/video/:id/clips/:clipId/evidence', {
    schema: { hide: true, params: Type.Object({ id: Type.String({ pattern: CAMERA_ID_PATTERN }), clipId: Type.String({ format: 'uuid' }) }) },
    preValidation: signed,
  }, async (req) => {
    if (!(await d.nodeClips.publish(req.params.id, req.params.clipId))) throw Errors.notFound('clip not found');
    return { ok: true };
  });
}

/** The camera's current picture as JPEG: the newest segment of its stream (started and held for it when idle). */
async function grabFrame(gateway: StreamGateway, cameraId: string): Promise<Uint8Array> {
  const s = gateway.stream(cameraId);
  if (!s) throw Errors.notFound('camera not found');
  const release = s.acquire();
  try {
    if (!(await s.waitLive(15_000)) || !s.ring.length) {
      // Live but no finished segment yet: wait for the next one.
      if (s.live) await new Promise<void>((resolve) => { const t = setTimeout(resolve, 5_000); s.once('segment', () => { clearTimeout(t); resolve(); }); });
    }
    const seg = s.ring.at(-1);
    if (!seg) throw Errors.unavailable(`camera stream is ${s.state}`);
    const dir = mkdtempSync(path.join(os.tmpdir(), 'gridlink-snap-'));
    try {
      const out = path.join(dir, 'frame.jpg');
      // The keyframe that opens the newest segment: at most one segment old, and decodable on its own.
      await run(gateway.ffmpegPath, frameArgs(seg.path, 0, out), 20_000);
      return new Uint8Array(readFileSync(out));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  } finally {
    release();
  }
}
