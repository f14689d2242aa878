/**
 * Video on two nodes with a real RTSP camera (the simulators' encoder,
 * ffmpeg): one node pulls the camera (with the RTSP credentials another node
 * sealed), a viewer on the other node plays it through that node with a
 * token either node signed, and the camera moves when its node dies. A
 * camera set to `buffer` is buffered by its owner alone; alerts and alarms
 * taken by the other node get their clips from the owner's buffer, and a
 * clip is still served, whole and by range, after its recorder is SIGKILLed.
 */
import { readdirSync, readFileSync } from 'node:fs';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { publishAlert, rtspCameraSupport, startRtspCamera, type RtspCamera } from '@gridlink/simulators/camera';
import { rendezvousOwner } from '../../src/cluster/owners.js';
import { publishAck, REQUIRE_ALL, until } from '../helpers.js';
import { api, clusterEnv, createDatabase, login, RUN_CLUSTER, startNode, startRedis, type HubNode, type RedisServer, type TestDatabase } from './harness.js';

const support = rtspCameraSupport();
if (support.missing.length && REQUIRE_ALL) throw new Error(`GRIDLINK_REQUIRE_ALL=1 but missing: ${support.missing.join(', ')}`);

describe.runIf(RUN_CLUSTER && support.missing.length === 0)('video on two nodes (real RTSP camera)', () => {
  let redis: RedisServer;
  let db: TestDatabase;
  let cam: RtspCamera;
  const nodes: HubNode[] = [];
  let a: HubNode, b: HubNode;
  let token = '';
  const id = 'cam-cluster-1';

  beforeAll(async () => {
    redis = await startRedis();
    db = await createDatabase();
    cam = await startRtspCamera({ id, width: 320, height: 180, fps: 10 });
    const env = clusterEnv(redis.url, db.url);
    a = await startNode('node-a', env);
    nodes.push(a);
    token = await login(a.http);
    // Registered on node A before node B starts (cameras are read at start; docs/cluster.md).
    const r = await api<{ rtspUrl: string }>(a.http, 'POST', '/cameras', { id, name: 'cluster camera', rtspUrl: cam.url.replace('rtsp://', 'rtsp://admin:s3cr3t-pw@'), lat: 30.6, lon: 104.0, buffer: false }, token);
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    b = await startNode('node-b', env);
    nodes.push(b);
  }, 180_000);

  afterAll(async () => {
    if (process.env.GRIDLINK_CLUSTER_LOGS === '1') for (const n of nodes) process.stderr.write(`--- ${n.id}\n${n.output()}\n`);
    await Promise.all(nodes.map((n) => n.kill('SIGKILL')));
    await cam?.stop();
    await redis?.stop();
    await db?.drop();
  }, 60_000);

  /** The HLS playlist at `base` + `path`, once the stream there has its first segment. */
  async function playlist(base: string, path: string): Promise<string> {
    return until(async () => {
      const r = await fetch(`${base}${path}`);
      if (r.status === 401) throw new Error(`${base}${path}: 401 ${await r.text()}`);
      if (r.status !== 200) return null;
      const text = await r.text();
      return text.includes('seg_') ? text : null;
    }, 120_000, 500);
  }

  const streamState = async (node: HubNode) => (await api<{ stream: { state: string } }>(node.http, 'GET', `/cameras/${id}`, undefined, token)).body.stream.state;

  it('is pulled by one node, plays on the other with that node\'s token through it, and moves when its node dies', async () => {
    // The camera's RTSP credentials were sealed by node A; node B shows them redacted.
    const seen = await api<{ rtspUrl: string }>(b.http, 'GET', `/cameras/${id}`, undefined, token);
    expect(seen.status, JSON.stringify(seen.body)).toBe(200);
    expect(seen.body.rtspUrl).toBe(`rtsp://***:***@127.0.0.1:${cam.port}/${id}`);
    // The first viewer asks node B: node B becomes the camera's owner and pulls it with the URL node A sealed.
    const s = await api<{ hls: string; live: string }>(b.http, 'GET', `/cameras/${id}/stream`, undefined, token);
    expect(s.status, JSON.stringify(s.body)).toBe(200);
    expect(await playlist(b.http, s.body.hls)).toMatch(/#EXTM3U/);
    expect(await db.query('select node from video_owners where camera_id = $1', [id])).toEqual([{ node: 'node-b' }]);
    // A viewer on node A, with the token node B signed: node A serves it from node B and does not pull the camera itself.
    const onA = await playlist(a.http, s.body.hls);
    expect(onA).toMatch(/#EXTM3U/);
    const seg = onA.split('\n').find((l) => l.startsWith('seg_'))!;
    const segment = await fetch(`${a.http}/video/${id}/${seg}`);
    expect(segment.status).toBe(200);
    expect((await segment.arrayBuffer()).byteLength).toBeGreaterThan(0);
    // fMP4 over WebSocket through node A: the init message comes from node B's stream.
    const ws = new WebSocket(`${a.http.replace('http', 'ws')}${s.body.live}`);
    const first = await new Promise<string>((resolve, reject) => {
      ws.once('message', (m) => resolve(String(m)));
      ws.once('error', reject);
      ws.once('close', (code) => reject(new Error(`live socket closed ${code}`)));
    });
    expect(JSON.parse(first)).toMatchObject({ type: 'init' });
    ws.close();
    expect(await streamState(a)).toBe('idle');
    expect(await streamState(b)).not.toBe('idle');
    // Each node says how many cameras it pulls, at /healthz and in /metrics.
    const owned = async (n: HubNode) => ((await (await fetch(`${n.http}/healthz`)).json()) as { cluster: { cameras: number } }).cluster.cameras;
    expect([await owned(a), await owned(b)]).toEqual([0, 1]);
    expect(await (await fetch(`${b.http}/metrics`)).text()).toMatch(/gridlink_cluster_cameras_owned 1/);
    // A forged token is refused before anything is proxied.
    const forged = s.body.hls.replace(/token=[^&]+/, 'token=v1.AAAA.BBBB');
    expect((await fetch(`${a.http}${forged}`)).status).toBe(401);

    // A camera registered through node B after both started is watchable through node A.
    const second = await api(b.http, 'POST', '/cameras', { id: 'cam-cluster-2', name: 'second', rtspUrl: cam.url, lat: 30.6, lon: 104.0, buffer: false }, token);
    expect(second.status, JSON.stringify(second.body)).toBe(201);
    await until(async () => ((await api(a.http, 'GET', '/cameras/cam-cluster-2', undefined, token)).status === 200 ? true : null), 60_000, 200);
    expect((await api(a.http, 'GET', '/cameras/cam-cluster-2/stream', undefined, token)).status).toBe(200);

    // Node B dies: once its ownership has run out, the next viewer's node (A) takes the camera and plays it.
    await b.kill('SIGKILL');
    const again = await api<{ hls: string }>(a.http, 'GET', `/cameras/${id}/stream`, undefined, token);
    expect(again.status).toBe(200);
    expect(await playlist(a.http, again.body.hls)).toMatch(/#EXTM3U/);
    expect(await db.query('select node from video_owners where camera_id = $1', [id])).toEqual([{ node: 'node-a' }]);
    expect(await streamState(a)).not.toBe('idle');
  }, 300_000);
});

/** Processes below `pid` (the hub node) whose command line pulls RTSP from `port`: the node's RTSP clients of that camera. */
function pullers(pid: number, port: number): number {
  const children = new Map<number, number[]>();
  for (const p of readdirSync('/proc').filter((x) => /^\d+$/.test(x))) {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(p)]);
    } catch {
      /* gone */
    }
  }
  const below: number[] = [];
  const walk = (p: number) => {
    for (const c of children.get(p) ?? []) {
      below.push(c);
      walk(c);
    }
  };
  walk(pid);
  return below.filter((p) => {
    try {
      return readFileSync(`/proc/${p}/cmdline`, 'utf8').replace(/\0/g, ' ').includes(`127.0.0.1:${port}/`);
    } catch {
      return false;
    }
  }).length;
}

describe.runIf(RUN_CLUSTER && support.missing.length === 0)('buffered camera on two nodes: one puller, clips from its buffer (real RTSP camera)', () => {
  let redis: RedisServer;
  let db: TestDatabase;
  let cam: RtspCamera;
  const nodes: HubNode[] = [];
  let a: HubNode, b: HubNode;
  let token = '';
  let secret = '';
  const id = 'cam-buffered-1';
  const PRE_S = 3;
  let owner: HubNode, other: HubNode;
  /** The alert's clip, recorded by the owner: its id and MP4 as the owner served it. */
  const recorded = { id: '', mp4: Buffer.alloc(0) };

  beforeAll(async () => {
    redis = await startRedis();
    db = await createDatabase();
    cam = await startRtspCamera({ id, width: 320, height: 180, fps: 10 });
    const env = clusterEnv(redis.url, db.url, { GRIDLINK_VIDEO_CLIP_PRE_S: String(PRE_S), GRIDLINK_VIDEO_CLIP_POST_S: '3', GRIDLINK_VIDEO_BUFFER_S: '8' });
    a = await startNode('node-a', env);
    nodes.push(a);
    b = await startNode('node-b', env);
    nodes.push(b);
    token = await login(a.http);
    // Both nodes run when the buffered camera appears: each of them wants to buffer it.
    const r = await api<{ secret: string }>(a.http, 'POST', '/cameras', { id, name: 'buffered camera', rtspUrl: cam.url, lat: 30.6, lon: 104.0, buffer: true }, token);
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    secret = r.body.secret;
  }, 180_000);

  afterAll(async () => {
    if (process.env.GRIDLINK_CLUSTER_LOGS === '1') for (const n of nodes) process.stderr.write(`--- ${n.id}\n${n.output()}\n`);
    await Promise.all(nodes.map((n) => n.kill('SIGKILL')));
    await cam?.stop();
    await redis?.stop();
    await db?.drop();
  }, 60_000);

  const cameraOn = async (n: HubNode) => (await api<{ buffering: boolean; health: { state: string }; stream: { state: string } }>(n.http, 'GET', `/cameras/${id}`, undefined, token)).body;
  const pulling = () => [pullers(a.child.pid!, cam.port), pullers(b.child.pid!, cam.port)];

  it('is buffered by its owner alone; an alert and a sensor alarm taken by the other node get one clip each, cut from the owner\'s buffer and attached once', async () => {
    // One node takes the camera and buffers it; the other sees it online too (it reconsiders its buffers then) and does not.
    await until(async () => ((await cameraOn(a)).buffering || (await cameraOn(b)).buffering ? true : null), 120_000, 250);
    await until(async () => ((await cameraOn(a)).health.state === 'online' && (await cameraOn(b)).health.state === 'online' ? true : null), 120_000, 250);
    const buffering = [(await cameraOn(a)).buffering, (await cameraOn(b)).buffering];
    expect(buffering.filter(Boolean), `buffering on [node-a, node-b]: ${buffering}`).toHaveLength(1);
    owner = buffering[0] ? a : b;
    other = owner === a ? b : a;
    expect(await db.query('select node from video_owners where camera_id = $1', [id])).toEqual([{ node: owner.id }]);

    // The owner's buffer holds more than the pre-alert seconds: its playlist (six one-second segments) is full.
    const s = await api<{ hls: string }>(owner.http, 'GET', `/cameras/${id}/stream`, undefined, token);
    await until(async () => {
      const r = await fetch(`${owner.http}${s.body.hls}`);
      return r.status === 200 && ((await r.text()).match(/^seg_/gm)?.length ?? 0) >= 6 ? true : null;
    }, 120_000, 500);
    expect(pulling()).toEqual(owner === a ? [1, 0] : [0, 1]);

    // A client that says it is a node (x-gridlink-proxied) gets the stream through the owner, and the other node still pulls nothing.
    const spoofed = await fetch(`${other.http}${s.body.hls}`, { headers: { 'x-gridlink-proxied': '1' } });
    expect(spoofed.status).toBe(200);
    expect(await spoofed.text()).toMatch(/#EXTM3U/);
    expect(pullers(other.child.pid!, cam.port)).toBe(0);
    expect((await cameraOn(other)).stream.state).toBe('idle');
    // Nor can a client ask a node for a clip: the node-to-node clip request needs the nodes' signature.
    const clipBody = { id: '5d6c9b1e-0000-5000-8000-000000000001', at: Date.now(), trigger: 'manual', gridId: null };
    for (const headers of [{} as Record<string, string>, { 'x-gridlink-proxied': '1' }, { 'x-gridlink-proxied': `${Math.floor(Date.now() / 1000) + 30}.${'A'.repeat(43)}` }]) {
      const r = await fetch(`${other.http}/video/${id}/clips?token=${encodeURIComponent(new URL(s.body.hls, other.http).searchParams.get('token')!)}`, {
        method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(clipBody),
      });
      expect(r.status).toBe(401);
    }
    expect(await db.query('select id from video_clips')).toEqual([]);

    // A camera AI alert reaches the node that does not own the camera.
    const mq = await mqtt.connectAsync(`mqtt://127.0.0.1:${other.mqttPort}`, { clientId: id, username: id, password: secret, reconnectPeriod: 0 });
    const body = await publishAlert(mq, id, 'fight', { confidence: 0.93 });
    await mq.endAsync();
    const at = body.ts as number;
    const ready = await until(async () => {
      const rows = await db.query<{ id: string; status: string; case_id: string | null }>('select id, status, case_id from video_clips where camera_id = $1', [id]);
      return rows.length && rows.every((r) => r.status !== 'recording') && rows.some((r) => r.case_id) ? rows : null;
    }, 120_000, 250);
    // One clip, recorded by the owner (from its buffer), in the case the alert opened, with the pre-alert seconds.
    expect(ready).toHaveLength(1);
    const [clip] = await db.query<{ id: string; node: string; status: string; case_id: string; from_ms: number; alert_key: string }>(
      'select id, node, status, case_id, (extract(epoch from from_ts) * 1000)::float8 as from_ms, alert_key from video_clips where camera_id = $1', [id]);
    expect(clip).toMatchObject({ node: owner.id, status: 'ready', alert_key: `${id}:${at}` });
    expect(clip!.from_ms).toBeLessThanOrEqual(at - PRE_S * 1000);
    // Attached once: one evidence row of kind clip in the case, the clip itself.
    const evidence = await until(async () => {
      const rows = await db.query<{ id: string; case_id: string }>("select id, case_id from evidence where kind = 'clip'");
      return rows.length ? rows : null;
    }, 120_000, 250);
    expect(evidence).toEqual([{ id: clip!.id, case_id: clip!.case_id }]);
    const mp4 = await fetch(`${owner.http}/api/v1/clips/${clip!.id}/video.mp4`, { headers: { authorization: `Bearer ${token}` } });
    expect(mp4.status).toBe(200);
    const bytes = Buffer.from(await mp4.arrayBuffer());
    expect(bytes.byteLength).toBeGreaterThan(1000);
    recorded.id = clip!.id;
    recorded.mp4 = bytes;
    // The owner stored it in PostgreSQL when it was ready; the other node serves it from there (bearer, a range, the media token of its signed URL).
    const viaOther = await fetch(`${other.http}/api/v1/clips/${clip!.id}/video.mp4`, { headers: { authorization: `Bearer ${token}` } });
    expect(viaOther.status).toBe(200);
    expect(viaOther.headers.get('content-type')).toBe('video/mp4');
    expect(Buffer.from(await viaOther.arrayBuffer()).equals(bytes)).toBe(true);
    const part = await fetch(`${other.http}/api/v1/clips/${clip!.id}/video.mp4`, { headers: { authorization: `Bearer ${token}`, range: 'bytes=0-99' } });
    expect(part.status).toBe(206);
    expect(Buffer.from(await part.arrayBuffer()).equals(bytes.subarray(0, 100))).toBe(true);
    const signedUrls = await api<{ snapshot: string; video: string }>(other.http, 'GET', `/clips/${clip!.id}`, undefined, token);
    const jpg = await fetch(`${other.http}${signedUrls.body.snapshot}`);
    expect(jpg.status).toBe(200);
    expect(Buffer.from(await jpg.arrayBuffer()).subarray(0, 3)).toEqual(Buffer.from([0xff, 0xd8, 0xff]));
    // Without the caller's credentials the owner refuses it through the other node too.
    expect((await fetch(`${other.http}/api/v1/clips/${clip!.id}/video.mp4`)).status).toBe(401);
    // A one-click snapshot asked of the other node: the owner grabs the frame, the other node pulls nothing.
    const snap = await api<{ id: string; sha256: string }>(other.http, 'POST', `/cameras/${id}/snapshot`, { caseId: clip!.case_id }, token);
    expect(snap.status, JSON.stringify(snap.body)).toBe(201);
    expect(await db.query("select case_id from evidence where id = $1 and kind = 'snapshot'", [snap.body.id])).toEqual([{ case_id: clip!.case_id }]);
    expect(pullers(other.child.pid!, cam.port)).toBe(0);
    expect((await cameraOn(other)).stream.state).toBe('idle');
    // The node frame endpoint is the nodes' alone.
    expect((await fetch(`${other.http}/video/${id}/frame`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-gridlink-proxied': '1' }, body: '{}' })).status).toBe(401);
    // Still one RTSP client, on the owner.
    expect(pulling()).toEqual(owner === a ? [1, 0] : [0, 1]);

    // A smoke alarm next to the camera, ingested by and evaluated on the node that does not own the camera: its case's clip is cut by the owner.
    const sensor = ['smoke-1', 'smoke-2', 'smoke-3', 'smoke-4', 'smoke-5', 'smoke-6', 'smoke-7', 'smoke-8'].find((d) => rendezvousOwner(d, ['node-a', 'node-b']) === other.id)!;
    const dev = await api<{ secret: string }>(other.http, 'POST', '/devices', { id: sensor, type: 'sensor.smoke', lat: 30.6002, lon: 104.0 }, token);
    expect(dev.status, JSON.stringify(dev.body)).toBe(201);
    const sm = await mqtt.connectAsync(`mqtt://127.0.0.1:${other.mqttPort}`, { clientId: sensor, username: sensor, password: dev.body.secret, reconnectPeriod: 0 });
    await publishAck(sm, `gridlink/v1/${sensor}/event`, { type: 'smoke_alarm', severity: 'critical' });
    await sm.endAsync();
    const caseClip = await until(async () => {
      const rows = await db.query<{ id: string; node: string; status: string; case_id: string; from_ms: number; created_ms: number }>(
        `select v.id, v.node, v.status, v.case_id, (extract(epoch from v.from_ts) * 1000)::float8 as from_ms, (extract(epoch from c.created_at) * 1000)::float8 as created_ms
         from video_clips v join cases c on c.id = v.case_id where v.trigger = 'case'`);
      return rows.length && rows.every((r) => r.status !== 'recording') ? rows : null;
    }, 120_000, 250);
    expect(caseClip).toHaveLength(1);
    expect(caseClip[0]).toMatchObject({ node: owner.id, status: 'ready' });
    expect(caseClip[0]!.from_ms).toBeLessThanOrEqual(caseClip[0]!.created_ms - PRE_S * 1000);
    await until(async () => ((await db.query("select id from evidence where kind = 'clip'")).length === 2 ? true : null), 120_000, 250);
    expect(await db.query("select id, case_id from evidence where kind = 'clip' and id = $1", [caseClip[0]!.id])).toEqual([{ id: caseClip[0]!.id, case_id: caseClip[0]!.case_id }]);
    expect(pulling()).toEqual(owner === a ? [1, 0] : [0, 1]);
  }, 400_000);

  it('is buffered by the other node once its owner is SIGKILLed, and an alert taken meanwhile gets one clip', async () => {
    expect((await cameraOn(other)).buffering).toBe(false);
    expect(pullers(other.child.pid!, cam.port)).toBe(0);
    await owner.kill('SIGKILL');
    // An alert right after the kill, while the dead owner's row still stands: the node that took it asks the dead node, asks
    // again until the camera has moved (to itself), and gets one clip, attached once to the case the alert opened.
    const mq = await mqtt.connectAsync(`mqtt://127.0.0.1:${other.mqttPort}`, { clientId: id, username: id, password: secret, reconnectPeriod: 0 });
    const body = await publishAlert(mq, id, 'waterlogging', { confidence: 0.9 });
    await mq.endAsync();
    const alertKey = `${id}:${body.ts as number}`;
    await until(async () => ((await cameraOn(other)).buffering ? true : null), 120_000, 250);
    expect(await db.query('select node from video_owners where camera_id = $1', [id])).toEqual([{ node: other.id }]);
    await until(() => (pullers(other.child.pid!, cam.port) === 1 ? true : null), 120_000, 250);
    const rows = await until(async () => {
      const r = await db.query<{ id: string; node: string; status: string; case_id: string | null }>('select id, node, status, case_id from video_clips where alert_key = $1', [alertKey]);
      return r.length && r.every((x) => x.status !== 'recording' && x.case_id) ? r : null;
    }, 120_000, 250);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ node: other.id, status: 'ready' });
    await until(async () => ((await db.query("select id from evidence where kind = 'clip' and id = $1", [rows[0]!.id])).length ? true : null), 120_000, 250);
    expect(await db.query("select id, case_id from evidence where kind = 'clip' and case_id = $1", [rows[0]!.case_id])).toEqual([{ id: rows[0]!.id, case_id: rows[0]!.case_id }]);
    // No other clip was cut for that case (a case clip of its own) while the alert's clip was being asked for.
    expect(await db.query('select id from video_clips where case_id = $1', [rows[0]!.case_id])).toEqual([{ id: rows[0]!.id }]);

    // The clip the dead owner recorded is still evidence: whole, by range, its snapshot, and through the case's evidence list.
    expect(recorded.id).not.toBe('');
    const bearer = { authorization: `Bearer ${token}` };
    const whole = await fetch(`${other.http}/api/v1/clips/${recorded.id}/video.mp4`, { headers: bearer });
    expect(whole.status).toBe(200);
    expect(whole.headers.get('content-type')).toBe('video/mp4');
    expect(Buffer.from(await whole.arrayBuffer()).equals(recorded.mp4)).toBe(true);
    const n = recorded.mp4.length;
    for (const [range, from, to] of [['bytes=0-99', 0, 99], [`bytes=100-${n - 2}`, 100, n - 2], ['bytes=-50', n - 50, n - 1]] as const) {
      const part = await fetch(`${other.http}/api/v1/clips/${recorded.id}/video.mp4`, { headers: { ...bearer, range } });
      expect(part.status, range).toBe(206);
      expect(part.headers.get('content-range')).toBe(`bytes ${from}-${to}/${n}`);
      expect(Buffer.from(await part.arrayBuffer()).equals(recorded.mp4.subarray(from, to + 1)), range).toBe(true);
    }
    expect((await fetch(`${other.http}/api/v1/clips/${recorded.id}/video.mp4`, { headers: { ...bearer, range: `bytes=${n}-` } })).status).toBe(416);
    const signedUrls = await api<{ snapshot: string; video: string }>(other.http, 'GET', `/clips/${recorded.id}`, undefined, token);
    const viaMediaToken = await fetch(`${other.http}${signedUrls.body.video}`);
    expect(viaMediaToken.status).toBe(200);
    expect(Buffer.from(await viaMediaToken.arrayBuffer()).equals(recorded.mp4)).toBe(true);
    const jpg = await fetch(`${other.http}${signedUrls.body.snapshot}`);
    expect(jpg.status).toBe(200);
    expect(Buffer.from(await jpg.arrayBuffer()).subarray(0, 3)).toEqual(Buffer.from([0xff, 0xd8, 0xff]));
    const asEvidence = await fetch(`${other.http}/api/v1/evidence/${recorded.id}`, { headers: bearer });
    expect(asEvidence.status).toBe(200);
    expect(Buffer.from(await asEvidence.arrayBuffer()).equals(recorded.mp4)).toBe(true);
    expect((await fetch(`${other.http}/api/v1/clips/${recorded.id}/video.mp4`)).status).toBe(401);
    // From PostgreSQL, where the recorder wrote the MP4 and the snapshot when the clip was ready.
    expect(await db.query("select name, sum(octet_length(data))::int as n from video_clip_parts where clip_id = $1 group by name order by name", [recorded.id]))
      .toEqual([{ name: 'jpg', n: expect.any(Number) }, { name: 'mp4', n: recorded.mp4.length }]);
  }, 300_000);
});
