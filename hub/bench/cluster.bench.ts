/**
 * npm run bench:cluster — acknowledged QoS 1 messages per second through one
 * hub process without Redis, one cluster node, and three cluster nodes, all
 * on this machine (so three nodes share its cores with the load generator,
 * Redis and PostgreSQL: the figure is what the machine gives, not what three
 * machines would). Per-node CPU is read from /proc.
 *
 * Needs redis-server and a PostgreSQL: TEST_DATABASE_URL (or
 * BENCH_DATABASE_URL); a database of its own is created per run and dropped.
 * BENCH_CLUSTER_S (default 15) seconds of load per configuration,
 * BENCH_CLUSTER_DEVICES (default 30) devices, 20 messages in flight each.
 */
import { readFileSync } from 'node:fs';
import mqtt, { type MqttClient } from 'mqtt';
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
    const cpu0 = nodes.map((n) => ticks(n.child.pid!));
    const t0 = performance.now();
    const until = t0 + seconds * 1000;
    let acked = 0;
    const base = Date.now() - 3_600_000;
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
    return { nodes: nodeCount, cluster, seconds: Number(elapsed.toFixed(1)), acked, ackedPerSecond: Math.round(acked / elapsed), cpuPercentPerNode: cpu };
  } finally {
    await Promise.all(clients.map((m) => m.endAsync(true).catch(() => undefined)));
    await Promise.all(nodes.map((n) => n.kill('SIGTERM')));
    await redis?.stop();
    await db.drop();
  }
}

const results = [await run('single', 1, false), await run('one', 1, true), await run('three', 3, true)];
process.stdout.write(`${JSON.stringify({ bench: 'cluster', devices: deviceCount, inFlightPerDevice: 20, results }, null, 2)}\n`);
process.exit(0);
