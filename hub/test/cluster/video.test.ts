/**
 * Video on two nodes with a real RTSP camera (the simulators' encoder,
 * ffmpeg): one node pulls the camera (with the RTSP credentials another node
 * sealed), a viewer on the other node plays it through that node with a
 * token either node signed, and the camera moves when its node dies.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { rtspCameraSupport, startRtspCamera, type RtspCamera } from '@gridlink/simulators/camera';
import { REQUIRE_ALL, until } from '../helpers.js';
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
