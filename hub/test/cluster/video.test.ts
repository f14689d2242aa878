/**
 * Video on two nodes with a real RTSP camera (the simulators' encoder,
 * ffmpeg): a camera registered on one node is pulled by the other with the
 * RTSP credentials sealed by the first, and a stream token one node signs
 * plays on the other.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rtspCameraSupport, startRtspCamera, type RtspCamera } from '../../../simulators/src/camera/index.js';
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

  it('plays on node A with a stream token node B signed, and node B pulls the camera node A registered', async () => {
    // The camera's RTSP credentials were sealed by node A; node B opens them.
    const seen = await api<{ rtspUrl: string }>(b.http, 'GET', `/cameras/${id}`, undefined, token);
    expect(seen.status, JSON.stringify(seen.body)).toBe(200);
    expect(seen.body.rtspUrl).toBe(`rtsp://***:***@127.0.0.1:${cam.port}/${id}`);
    const s = await api<{ hls: string; live: string }>(b.http, 'GET', `/cameras/${id}/stream`, undefined, token);
    expect(s.status, JSON.stringify(s.body)).toBe(200);
    // A token signed by node B, spent on node A.
    const onA = await playlist(a.http, s.body.hls);
    expect(onA).toMatch(/#EXTM3U/);
    const seg = onA.split('\n').find((l) => l.startsWith('seg_'))!;
    const segment = await fetch(`${a.http}/video/${id}/${seg}`);
    expect(segment.status).toBe(200);
    expect((await segment.arrayBuffer()).byteLength).toBeGreaterThan(0);
    // Node B pulls it too, with the URL node A sealed.
    expect(await playlist(b.http, s.body.hls)).toMatch(/#EXTM3U/);
    // A token for another camera, or a forged one, is refused on either node.
    const forged = s.body.hls.replace(/token=[^&]+/, 'token=v1.AAAA.BBBB');
    expect((await fetch(`${a.http}${forged}`)).status).toBe(401);
  }, 300_000);
});
