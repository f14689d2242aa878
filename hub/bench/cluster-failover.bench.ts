/**
 * npm run bench:cluster-failover — how long a two-node cluster on this
 * machine takes to get over three failures (docs/cluster.md, Measured):
 *
 * - redis: Redis stopped for BENCH_REDIS_DOWN_S (default 5) seconds while one
 *   device publishes QoS 1 back to back; the longest wait for a PUBACK, and
 *   the time from Redis back to both nodes reporting `ok` again;
 * - dispatch: a dispatch made on node B, which is SIGKILLed at once; the time
 *   from the kill to the decline node A records, against the accept timeout
 *   (4 s) and the lease time (3 s);
 * - camera: the owner of a watched camera is SIGKILLed; the time until the
 *   other node serves its playlist (skipped without ffmpeg).
 *
 * Needs redis-server and PostgreSQL (TEST_DATABASE_URL or BENCH_DATABASE_URL).
 */
import mqtt from 'mqtt';
import { rtspCameraSupport, startRtspCamera } from '../../simulators/src/camera/index.js';
import { api, clusterEnv, createDatabase, login, startNode, startRedis, type HubNode } from '../test/cluster/harness.js';

if (process.env.BENCH_DATABASE_URL) process.env.TEST_DATABASE_URL = process.env.BENCH_DATABASE_URL;
const downS = Number(process.env.BENCH_REDIS_DOWN_S ?? 5);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor<T>(f: () => Promise<T | null>, limitMs = 180_000): Promise<T> {
  const end = performance.now() + limitMs;
  while (performance.now() < end) {
    const v = await f().catch(() => null);
    if (v !== null) return v;
    await sleep(50);
  }
  throw new Error('gave up waiting');
}

const healthOk = async (n: HubNode) => {
  const h = (await (await fetch(`${n.http}/healthz`)).json()) as { status: string; cluster: { peers: unknown[] } };
  return h.status === 'ok' && h.cluster.peers.length === 2;
};

async function main(): Promise<void> {
  const out: Record<string, unknown> = { nodes: 2, leaseTtlMs: 3000 };
  const redis = await startRedis({ appendonly: true });
  const db = await createDatabase();
  const cam = rtspCameraSupport().ok ? await startRtspCamera({ id: 'bench-cam', width: 320, height: 180, fps: 10 }) : null;
  const env = clusterEnv(redis.url, db.url, { GRIDLINK_LOG_LEVEL: 'error', GRIDLINK_DISPATCH_ACCEPT_TIMEOUT_S: '4', GRIDLINK_DISPATCH_MAX_ATTEMPTS: '1' });
  const nodes: HubNode[] = [];
  try {
    const a = await startNode('fo-a', env);
    nodes.push(a);
    const token = await login(a.http);
    const r = await api<{ secret: string }>(a.http, 'POST', '/devices', { type: 'sensor.water_level', id: 'fo-dev' }, token);
    for (const id of ['w1']) {
      await api(a.http, 'POST', '/devices', { type: 'handheld', id: `hh-${id}` }, token);
      await api(a.http, 'POST', '/workers', { id, name: id, deviceId: `hh-${id}`, gridIds: [] }, token);
      await api(a.http, 'POST', `/workers/${id}/duty`, { onDuty: true }, token);
    }
    if (cam) await api(a.http, 'POST', '/cameras', { id: 'bench-cam', name: 'bench', rtspUrl: cam.url, lat: 30.6, lon: 104.0, buffer: false }, token);
    const b = await startNode('fo-b', env);
    nodes.push(b);
    await waitFor(async () => ((await healthOk(a)) && (await healthOk(b)) ? true : null));

    // Redis away under QoS 1.
    const m = mqtt.connect(`mqtt://127.0.0.1:${a.mqttPort}`, { clientId: 'fo-dev', username: 'fo-dev', password: r.body.secret, reconnectPeriod: 200 });
    await new Promise<void>((resolve, reject) => (m.once('connect', () => resolve()), m.once('error', reject)));
    let stop = false;
    let maxGap = 0;
    let acked = 0;
    const base = Date.now() - 3_600_000;
    const pub = (async () => {
      let last = performance.now();
      let seq = 0;
      while (!stop) {
        const s = ++seq;
        const ok = await m.publishAsync('gridlink/v1/fo-dev/telemetry', JSON.stringify({ ts: base + s, values: { water_level_cm: s % 20 } }), { qos: 1 }).then(() => true, () => false);
        if (!ok) {
          await sleep(50);
          continue;
        }
        acked++;
        const t = performance.now();
        maxGap = Math.max(maxGap, t - last);
        last = t;
      }
    })();
    await sleep(1_000);
    await redis.halt();
    await sleep(downS * 1000);
    await redis.start();
    const back = performance.now();
    await waitFor(async () => ((await healthOk(a)) && (await healthOk(b)) ? true : null));
    const healthyAfterMs = performance.now() - back;
    await sleep(1_000);
    stop = true;
    await pub;
    m.end(true);
    out.redis = { downS, healthyAfterRedisBackMs: Math.round(healthyAfterMs), longestPubackWaitMs: Math.round(maxGap), acked };

    // Camera: B owns it (first asked), then dies.
    if (cam) {
      const s = await api<{ hls: string }>(b.http, 'GET', '/cameras/bench-cam/stream', undefined, token);
      await waitFor(async () => ((await (await fetch(`${a.http}${s.body.hls}`)).text()).includes('seg_') ? true : null));
    }
    // Dispatch on B, B dies before the timeout.
    const c = await api<{ id: string }>(b.http, 'POST', '/cases', { category: 'E0101', lat: 30.6, lon: 104.0, description: 'failover bench' }, token);
    await api(b.http, 'POST', `/cases/${c.body.id}/actions`, { action: 'register' }, token);
    await api(b.http, 'POST', `/cases/${c.body.id}/actions`, { action: 'dispatch', workerId: 'w1' }, token);
    await waitFor(async () => ((await db.query('select 1 from case_dispatches where case_id = $1', [c.body.id])).length ? true : null));
    const killed = performance.now();
    await b.kill('SIGKILL');
    const camP = cam
      ? (async () => {
          const s = await api<{ hls: string }>(a.http, 'GET', '/cameras/bench-cam/stream', undefined, token);
          await waitFor(async () => ((await (await fetch(`${a.http}${s.body.hls}`)).text()).includes('seg_') ? true : null));
          return Math.round(performance.now() - killed);
        })()
      : Promise.resolve(null);
    const [dispatchMs, cameraMs] = await Promise.all([
      waitFor(async () => ((await db.query("select 1 from case_history where case_id = $1 and action = 'decline'", [c.body.id])).length ? Math.round(performance.now() - killed) : null)),
      camP,
    ]);
    const [d] = await db.query<{ late_ms: number }>(
      "select (extract(epoch from (h.ts - cd.dispatched_at)) * 1000)::int as late_ms from case_dispatches cd join case_history h on h.case_id = cd.case_id and h.action = 'decline' where cd.case_id = $1",
      [c.body.id],
    );
    out.dispatch = { acceptTimeoutS: 4, killToDeclineMs: dispatchMs, dispatchToDeclineMs: d?.late_ms ?? null };
    out.camera = cameraMs === null ? { skipped: 'no ffmpeg' } : { killToPlaylistOnSurvivorMs: cameraMs };
    process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
  } finally {
    await Promise.all(nodes.map((n) => n.kill('SIGKILL')));
    await cam?.stop();
    await redis.stop();
    await db.drop();
  }
}

await main();
