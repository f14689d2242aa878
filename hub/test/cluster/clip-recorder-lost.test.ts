/**
 * Clips whose bytes are on one node, on three nodes with a real RTSP camera:
 * a clip above GRIDLINK_VIDEO_CLIP_STORE_MAX_MB is served by every node from
 * its recorder (signed, range by range) while the recorder lives, and with a
 * coded 410 once it is gone; a clip being recorded when its recorder is
 * SIGKILLed is settled once by a survivor (the rest of its window recorded
 * there, or failed with the reason) instead of staying `recording`, and the
 * case's clips show it on every survivor.
 */
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { publishAlert, rtspCameraSupport, startRtspCamera, type RtspCamera } from '@gridlink/simulators/camera';
import { AT, districtGrids } from '../cases/fixtures.js';
import { REQUIRE_ALL, until } from '../helpers.js';
import { api, clusterEnv, createDatabase, HANG_GUARD_MS, login, RUN_CLUSTER, startNode, startRedis, type HubNode, type RedisServer, type TestDatabase } from './harness.js';

const support = rtspCameraSupport();
if (support.missing.length && REQUIRE_ALL) throw new Error(`GRIDLINK_REQUIRE_ALL=1 but missing: ${support.missing.join(', ')}`);

interface ClipView { id: string; status: string; error: string | null; note?: string | null; caseId: string | null; from: number | null; video: string; snapshot: string }

describe.runIf(RUN_CLUSTER && support.missing.length === 0)('clips on their recorder\'s disk, and a recorder killed mid-clip (three nodes, real RTSP camera)', () => {
  let redis: RedisServer;
  let db: TestDatabase;
  let cam: RtspCamera;
  const nodes: HubNode[] = [];
  let token = '';
  let officerB = '';
  let secret = '';
  const id = 'cam-clip-lost-1';
  const PRE_S = 3;
  const POST_S = 20;
  /** 10 KiB: every clip of this camera is above it, so none is copied into PostgreSQL. */
  const CAP_MB = 0.01;

  beforeAll(async () => {
    redis = await startRedis();
    db = await createDatabase();
    cam = await startRtspCamera({ id, width: 320, height: 180, fps: 10 });
    const env = clusterEnv(redis.url, db.url, {
      GRIDLINK_VIDEO_CLIP_PRE_S: String(PRE_S), GRIDLINK_VIDEO_CLIP_POST_S: String(POST_S), GRIDLINK_VIDEO_BUFFER_S: '8',
      GRIDLINK_VIDEO_CLIP_STORE_MAX_MB: String(CAP_MB),
    });
    for (const n of ['node-a', 'node-b', 'node-c']) nodes.push(await startNode(n, env));
    token = await login(nodes[0]!.http);
    expect((await api(nodes[0]!.http, 'PUT', '/grids', districtGrids(), token)).status).toBe(200);
    // An officer of the other street (region S-B): the camera stands in S-A.
    expect((await api(nodes[0]!.http, 'POST', '/users', { username: 'officer-sb', password: 'officer-pass-123', role: 'officer', regionId: 'S-B' }, token)).status).toBe(201);
    officerB = await login(nodes[0]!.http, 'officer-sb', 'officer-pass-123');
    const r = await api<{ secret: string }>(nodes[0]!.http, 'POST', '/cameras', { id, name: 'clip camera', rtspUrl: cam.url, ...AT.A1, buffer: true }, token);
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    secret = r.body.secret;
  }, 240_000);

  afterAll(async () => {
    if (process.env.GRIDLINK_CLUSTER_LOGS === '1') for (const n of nodes) process.stderr.write(`--- ${n.id}\n${n.output()}\n`);
    await Promise.all(nodes.map((n) => n.kill('SIGKILL')));
    await cam?.stop();
    await redis?.stop();
    await db?.drop();
  }, 60_000);

  const bearer = (t = token) => ({ authorization: `Bearer ${t}` });
  const get = (base: string, path: string, headers: Record<string, string> = {}) => fetch(`${base}${path}`, { headers, signal: AbortSignal.timeout(HANG_GUARD_MS) });
  const bytesOf = async (r: Response) => Buffer.from(await r.arrayBuffer());

  /** Publishes a camera AI alert through `node`'s MQTT; the alert's ts. */
  async function alert(node: HubNode, type: string): Promise<number> {
    const mq = await mqtt.connectAsync(`mqtt://127.0.0.1:${node.mqttPort}`, { clientId: id, username: id, password: secret, reconnectPeriod: 0 });
    const body = await publishAlert(mq, id, type, { confidence: 0.9 });
    await mq.endAsync();
    return body.ts as number;
  }

  it('serves a clip above the store cap from its recorder on every node, refuses what it must, answers 410 once the recorder is gone, and settles a clip its killed recorder left recording', async () => {
    // One node buffers the camera: it records every clip of it.
    const owner = await until(async () => {
      const rows = await db.query<{ node: string }>('select node from video_owners where camera_id = $1', [id]);
      const n = rows[0] && nodes.find((x) => x.id === rows[0]!.node);
      if (!n) return null;
      const c = await api<{ buffering: boolean }>(n.http, 'GET', `/cameras/${id}`, undefined, token);
      return c.body.buffering ? n : null;
    }, 180_000, 250);
    const [x, y] = nodes.filter((n) => n !== owner) as [HubNode, HubNode];
    // Its buffer holds the pre-alert seconds before the first alert.
    const s = await api<{ hls: string }>(owner.http, 'GET', `/cameras/${id}/stream`, undefined, token);
    await until(async () => {
      const r = await get(owner.http, s.body.hls);
      return r.status === 200 && ((await r.text()).match(/^seg_/gm)?.length ?? 0) >= PRE_S + 2 ? true : null;
    }, 120_000, 500);

    // 1. A clip above the cap: an alert taken by another node, recorded by the owner, ready; its MP4 is in no database row.
    const at1 = await alert(x, 'fight');
    const clip1 = await until(async () => {
      const rows = await db.query<{ id: string; node: string; status: string; bytes: number; case_id: string | null }>(
        'select id, node, status, bytes, case_id from video_clips where alert_key = $1', [`${id}:${at1}`]);
      return rows[0] && rows[0].status !== 'recording' && rows[0].case_id ? rows[0] : null;
    }, 180_000, 250);
    expect(clip1).toMatchObject({ node: owner.id, status: 'ready' });
    expect(clip1.bytes).toBeGreaterThan(CAP_MB * 1024 * 1024);
    expect(await db.query("select part from video_clip_parts where clip_id = $1 and name = 'mp4'", [clip1.id])).toEqual([]);
    // Added to the case's evidence by the recorder, the only node with the file.
    await until(async () => ((await db.query("select id from evidence where kind = 'clip' and id = $1", [clip1.id])).length ? true : null), 120_000, 250);
    const video = `/api/v1/clips/${clip1.id}/video.mp4`;
    const original = await get(owner.http, video, bearer());
    expect(original.status).toBe(200);
    const mp4 = await bytesOf(original);
    const n = mp4.length;
    expect(n).toBe(clip1.bytes);

    // Every other node serves it from the recorder: whole, by range, through its signed URL and as case evidence.
    for (const node of [x, y]) {
      const whole = await get(node.http, video, bearer());
      expect(whole.status, node.id).toBe(200);
      expect(whole.headers.get('content-type')).toBe('video/mp4');
      expect(whole.headers.get('content-length')).toBe(String(n));
      expect((await bytesOf(whole)).equals(mp4), node.id).toBe(true);
      for (const [range, from, to] of [['bytes=0-99', 0, 99], [`bytes=100-${n - 2}`, 100, n - 2], ['bytes=-50', n - 50, n - 1], [`bytes=${n - 10}-${n + 1000}`, n - 10, n - 1]] as const) {
        const part = await get(node.http, video, { ...bearer(), range });
        expect(part.status, `${node.id} ${range}`).toBe(206);
        expect(part.headers.get('content-range')).toBe(`bytes ${from}-${to}/${n}`);
        expect((await bytesOf(part)).equals(mp4.subarray(from, to + 1)), `${node.id} ${range}`).toBe(true);
      }
      // Bad ranges: past the end or backwards is 416 with the size; one the server does not take is the whole clip.
      for (const range of [`bytes=${n}-`, 'bytes=50-10', `bytes=${'9'.repeat(30)}-`]) {
        const r = await get(node.http, video, { ...bearer(), range });
        expect(r.status, `${node.id} ${range}`).toBe(416);
        expect(r.headers.get('content-range')).toBe(`bytes */${n}`);
        await r.arrayBuffer();
      }
      for (const range of ['bytes=abc', 'bytes=0-1,5-6', 'lines=0-5']) {
        const r = await get(node.http, video, { ...bearer(), range });
        expect(r.status, `${node.id} ${range}`).toBe(200);
        expect((await bytesOf(r)).equals(mp4)).toBe(true);
      }
      const signed = await api<ClipView>(node.http, 'GET', `/clips/${clip1.id}`, undefined, token);
      const viaToken = await get(node.http, signed.body.video);
      expect(viaToken.status).toBe(200);
      expect((await bytesOf(viaToken)).equals(mp4)).toBe(true);
      const evidence = await get(node.http, `/api/v1/evidence/${clip1.id}`, bearer());
      expect(evidence.status, node.id).toBe(200);
      expect((await bytesOf(evidence)).equals(mp4)).toBe(true);
      // Attacks: no credentials; an officer of another region; a client claiming to be a node.
      expect((await get(node.http, video)).status).toBe(401);
      const other = await get(node.http, video, bearer(officerB));
      expect(other.status).toBe(404);
      expect(((await other.json()) as { code: string }).code).toBe('NOT_FOUND');
      expect((await get(node.http, video, { 'x-gridlink-proxied': `${Math.floor(Date.now() / 1000) + 30}.${'A'.repeat(43)}` })).status).toBe(401);
    }
    // The recorder's node path serves nothing without the nodes' signature: bare, a client's own header, a forged one, a stream token.
    const nodePath = `/video/${id}/clips/${clip1.id}/video.mp4`;
    const streamToken = new URL(s.body.hls, owner.http).searchParams.get('token')!;
    for (const [path, headers] of [
      [nodePath, {}], [nodePath, { 'x-gridlink-proxied': '1' }], [nodePath, { 'x-gridlink-proxied': `${Math.floor(Date.now() / 1000) + 30}.${'A'.repeat(43)}` }],
      [`${nodePath}?token=${encodeURIComponent(streamToken)}`, {}], [`/video/${id}/clips/${clip1.id}/..%2F..%2Fvideo.key`, {}],
    ] as const) {
      const r = await get(owner.http, path, { ...headers, range: 'bytes=0-99' });
      expect(r.status, `${path} ${JSON.stringify(headers)}`).toBeGreaterThanOrEqual(400);
      expect(r.status).toBeLessThan(500);
      expect(r.headers.get('content-type') ?? '').not.toContain('video/mp4');
    }

    // 2. A clip being recorded when its recorder dies.
    const at2 = await alert(x, 'waterlogging');
    const key2 = `${id}:${at2}`;
    const recording = await until(async () => {
      const rows = await db.query<{ id: string; node: string; status: string }>('select id, node, status from video_clips where alert_key = $1', [key2]);
      return rows[0] ? rows[0] : null;
    }, 120_000, 100);
    expect(recording).toMatchObject({ node: owner.id, status: 'recording' });
    await owner.kill('SIGKILL');

    // A survivor settles it: not recording any more, taken from the dead recorder by exactly one survivor.
    const settled = await until(async () => {
      const rows = await db.query<{ id: string; node: string; status: string; error: string | null; note: string | null; taken_from: string | null; case_id: string | null; from_ms: number | null }>(
        'select id, node, status, error, note, taken_from, case_id, (extract(epoch from from_ts) * 1000)::float8 as from_ms from video_clips where id = $1', [recording.id]);
      return rows[0] && rows[0].status !== 'recording' && rows[0].case_id ? rows[0] : null;
    }, 180_000, 250);
    expect(settled.taken_from).toBe(owner.id);
    expect([x.id, y.id]).toContain(settled.node);
    if (settled.status === 'ready') {
      // The window was still open: the survivor recorded the rest from its own pull of the camera, and says so.
      expect(settled).toMatchObject({ note: 'RECORDER_LOST', error: null });
      expect(settled.from_ms!).toBeGreaterThan(at2 - PRE_S * 1000 - 2_000);
      await until(async () => ((await db.query("select id from evidence where kind = 'clip' and id = $1", [recording.id])).length ? true : null), 120_000, 250);
      expect(await db.query("select id, case_id from evidence where kind = 'clip' and case_id = $1 and id = $2", [settled.case_id, recording.id])).toEqual([{ id: recording.id, case_id: settled.case_id }]);
      // Served on both survivors (above the cap too: from the survivor that recorded it).
      for (const node of [x, y]) {
        const r = await get(node.http, `/api/v1/clips/${recording.id}/video.mp4`, bearer());
        expect(r.status, node.id).toBe(200);
        expect((await bytesOf(r)).length).toBeGreaterThan(0);
      }
    } else {
      // The window had passed when a survivor found it: failed, with the reason.
      expect(settled).toMatchObject({ status: 'failed', error: 'RECORDER_LOST' });
    }
    // The case's clips show it settled, with its reason, on both survivors.
    for (const node of [x, y]) {
      const list = await api<{ items: ClipView[] }>(node.http, 'GET', `/clips?caseId=${settled.case_id}`, undefined, token);
      const shown = list.body.items.find((c) => c.id === recording.id);
      expect(shown, node.id).toBeDefined();
      expect(shown!.status).toBe(settled.status);
      expect(settled.status === 'ready' ? shown!.note : shown!.error).toBe('RECORDER_LOST');
    }

    // 3. The clip above the cap, its recorder gone: a coded 410 on every survivor (a 503 only while its heartbeat still runs), never a hang or a 500.
    for (const node of [x, y]) {
      const gone = await until(async () => {
        const r = await get(node.http, video, bearer());
        const body = await r.json() as { code: string; message: string };
        expect([410, 503], `${node.id}: ${r.status} ${JSON.stringify(body)}`).toContain(r.status);
        return r.status === 410 ? body : null;
      }, 120_000, 250);
      expect(gone.code).toBe('CLIP_GONE');
      expect(gone.message).not.toMatch(/127\.0\.0\.1|http:|ECONN/);
      const asEvidence = await get(node.http, `/api/v1/evidence/${clip1.id}`, bearer());
      expect(asEvidence.status).toBe(410);
      expect(((await asEvidence.json()) as { code: string }).code).toBe('CLIP_GONE');
      // The clip's metadata still says what it was.
      expect((await api<ClipView>(node.http, 'GET', `/clips/${clip1.id}`, undefined, token)).body.status).toBe('ready');
    }
  }, 900_000);
});
