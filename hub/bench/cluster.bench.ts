/**
 * npm run bench:cluster — acknowledged QoS 1 messages per second through one
 * hub process without Redis, and one, two and three cluster nodes, all
 * on this machine (so three nodes share its cores with the load generator,
 * Redis and PostgreSQL: the figure is what the machine gives, not what three
 * machines would). Per-node CPU is read from /proc.
 *
 * Needs redis-server and a PostgreSQL: TEST_DATABASE_URL (or
 * BENCH_DATABASE_URL); a database of its own is created per run and dropped.
 * BENCH_CLUSTER_S (default 15) seconds of load per configuration,
 * BENCH_CLUSTER_DEVICES (default 30) devices, 20 messages in flight each.
 *
 * During the load, alarm → console: every 250 ms a smoke sensor reports
 * `smoke_alarm` through HTTP ingest on the nodes in turn while an officer's
 * console (Socket.IO) sits on the last node, so with several nodes most
 * alarms cross nodes (ingest, the device's rule owner, the console's node);
 * the latency is from sending the event to the console's `alarm` (raised).
 */
import { readFileSync } from 'node:fs';
import mqtt, { type MqttClient } from 'mqtt';
import { io as ioc, type Socket } from 'socket.io-client';
import { api, clusterEnv, createDatabase, login, startNode, startRedis, type HubNode } from '../test/cluster/harness.js';

const seconds = Number(process.env.BENCH_CLUSTER_S ?? 15);
const deviceCount = Number(process.env.BENCH_CLUSTER_DEVICES ?? 30);
if (process.env.BENCH_DATABASE_URL) process.env.TEST_DATABASE_URL = process.env.BENCH_DATABASE_URL;

const ticks = (pid: number) => {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return Number(f[11]) + Number(f[12]);
};

async function run(label: string, nodeCount: number, cluster: boolean): Promise<Record<string, unknown>> {
  const redis = cluster ? await startRedis() : null;
  const db = await createDatabase();
  const env = clusterEnv(redis?.url ?? '', db.url, { GRIDLINK_DEVICE_RATE: '100000', GRIDLINK_DEVICE_BURST: '100000', GRIDLINK_LOG_LEVEL: 'error' });
  if (!cluster) delete (env as Record<string, string | undefined>).GRIDLINK_REDIS_URL;
  const nodes: HubNode[] = [];
  const clients: MqttClient[] = [];
  let socket: Socket | null = null;
  try {
    nodes.push(await startNode(`${label}-1`, env));
    for (let i = 1; i < nodeCount; i++) nodes.push(await startNode(`${label}-${i + 1}`, env));
    const token = await login(nodes[0]!.http);
    const devices = [];
    for (let i = 0; i < deviceCount; i++) {
      const id = `bench-${i}`;
      const r = await api<{ secret: string }>(nodes[0]!.http, 'POST', '/devices', { type: 'sensor.water_level', id }, token);
      devices.push({ id, secret: r.body.secret, node: nodes[i % nodes.length]! });
    }
    for (const d of devices) {
      const m = mqtt.connect(`mqtt://127.0.0.1:${d.node.mqttPort}`, { clientId: d.id, username: d.id, password: d.secret, reconnectPeriod: 0 });
      clients.push(m);
      await new Promise<void>((resolve, reject) => (m.once('connect', () => resolve()), m.once('error', reject)));
    }
    // Smoke sensors for the alarm → console probe, and the officer's console on the last node.
    const smokes: Array<{ id: string; auth: string; node: HubNode }> = [];
    for (let i = 0; i < Math.ceil(seconds * 4) + 8; i++) {
      const id = `smoke-${i}`;
      const r = await api<{ secret: string }>(nodes[0]!.http, 'POST', '/devices', { type: 'sensor.smoke', id, lat: 30.6, lon: 104.0 }, token);
      smokes.push({ id, auth: `Basic ${Buffer.from(`${id}:${r.body.secret}`).toString('base64')}`, node: nodes[i % nodes.length]! });
    }
    const raisedAt = new Map<string, number>();
    socket = ioc(nodes[nodes.length - 1]!.http, { path: '/socket.io', auth: { token }, transports: ['websocket'], reconnection: false });
    socket.on('alarm', (a: { deviceId: string; change?: string }) => {
      if (a.change === 'raised' && !raisedAt.has(a.deviceId)) raisedAt.set(a.deviceId, performance.now());
    });
    await new Promise<void>((resolve, reject) => (socket!.once('connect', () => resolve()), socket!.once('connect_error', reject)));
    const sentAt = new Map<string, number>();
    const cpu0 = nodes.map((n) => ticks(n.child.pid!));
    const t0 = performance.now();
    const until = t0 + seconds * 1000;
    let acked = 0;
    const base = Date.now() - 3_600_000;
    const probe = (async () => {
      for (const d of smokes) {
        if (performance.now() >= until) break;
        sentAt.set(d.id, performance.now());
        void fetch(`${d.node.http}/api/v1/ingest/${d.id}/event`, { method: 'POST', headers: { authorization: d.auth, 'content-type': 'application/json' }, body: JSON.stringify({ type: 'smoke_alarm' }) }).catch(() => undefined);
        await new Promise((r) => setTimeout(r, 250));
      }
    })();
    await Promise.all(clients.map(async (m, i) => {
      let seq = 0;
      const lane = async () => {
        while (performance.now() < until) {
          const s = ++seq;
          await m.publishAsync(`gridlink/v1/bench-${i}/telemetry`, JSON.stringify({ ts: base + s, seq: s, values: { water_level_cm: s % 20 } }), { qos: 1 });
          acked++;
        }
      };
      await Promise.all(Array.from({ length: 20 }, lane));
    }));
    const elapsed = (performance.now() - t0) / 1000;
    const hz = 100;
    const cpu = nodes.map((n, i) => Math.round(((ticks(n.child.pid!) - cpu0[i]!) / hz / elapsed) * 100));
    await probe;
    // The last alarms get up to 10 s to arrive; one that never does is counted as missing.
    const settle = performance.now() + 10_000;
    while (performance.now() < settle && [...sentAt.keys()].some((id) => !raisedAt.has(id))) await new Promise((r) => setTimeout(r, 50));
    const lat = [...sentAt].flatMap(([id, t]) => (raisedAt.has(id) ? [raisedAt.get(id)! - t] : [])).sort((a, b) => a - b);
    const q = (f: number) => (lat.length ? Number(lat[Math.min(lat.length - 1, Math.floor(f * lat.length))]!.toFixed(1)) : null);
    return {
      nodes: nodeCount, cluster, seconds: Number(elapsed.toFixed(1)), acked, ackedPerSecond: Math.round(acked / elapsed), cpuPercentPerNode: cpu,
      alarmToConsole: { sent: sentAt.size, received: lat.length, p50Ms: q(0.5), p95Ms: q(0.95), p99Ms: q(0.99), maxMs: lat.length ? Number(lat[lat.length - 1]!.toFixed(1)) : null },
    };
  } finally {
    socket?.disconnect();
    await Promise.all(clients.map((m) => m.endAsync(true).catch(() => undefined)));
    await Promise.all(nodes.map((n) => n.kill('SIGTERM')));
    await redis?.stop();
    await db.drop();
  }
}

const results = [await run('single', 1, false), await run('one', 1, true), await run('two', 2, true), await run('three', 3, true)];
process.stdout.write(`${JSON.stringify({ bench: 'cluster', devices: deviceCount, inFlightPerDevice: 20, results }, null, 2)}\n`);
process.exit(0);
