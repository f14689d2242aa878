/**
 * Benchmark server process: a bare aedes broker (the ceiling) or a full hub on
 * PostgreSQL / PGlite. Registers the load generator's devices, prints one JSON
 * line {ready, mqtt, devices}, then answers "count" on stdin with the rows
 * stored and "cpu" with its CPU time.
 */
import net, { type AddressInfo } from 'node:net';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { Aedes } from 'aedes';
import { loadConfig } from '../src/core/config.js';
import { createHub, rulesModule } from '../src/hub.js';

const mode = process.argv[2] as 'bare' | 'hub';
const devices = Number(process.env.BENCH_DEVICES ?? 100);
const out = (o: unknown) => process.stdout.write(`${JSON.stringify(o)}\n`);

/** The upper bound of the histogram bucket that holds the 99th percentile (the hub's own view of its ack latency). */
function p99Bucket(values: Array<{ metricName?: string; labels: Record<string, unknown>; value: number }>): number | null {
  const buckets = values.filter((v) => v.metricName?.endsWith('_bucket'));
  const total = buckets.find((b) => b.labels.le === '+Inf')?.value ?? 0;
  if (!total) return null;
  const hit = buckets.find((b) => b.value >= total * 0.99);
  return hit && hit.labels.le !== '+Inf' ? Number(hit.labels.le) : null;
}

async function main() {
  let count: () => Promise<number> = async () => 0;
  let batches: () => Promise<unknown> = async () => null;
  let stop: () => Promise<void>;
  let creds: Array<{ id: string; secret: string }> = [];
  let mqttPort: number;
  if (mode === 'bare') {
    const aedes = new Aedes();
    await aedes.listen();
    const server = net.createServer(aedes.handle);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    mqttPort = (server.address() as AddressInfo).port;
    creds = Array.from({ length: devices }, (_, i) => ({ id: `bench-${i}`, secret: 'x' }));
    stop = async () => {
      server.close();
      await new Promise<void>((r) => aedes.close(() => r()));
    };
  } else {
    const config = loadConfig({
      ...process.env,
      GRIDLINK_HOST: '127.0.0.1',
      GRIDLINK_HTTP_PORT: '0',
      GRIDLINK_MQTT_PORT: '0',
      GRIDLINK_LOG_LEVEL: 'warn',
      GRIDLINK_ADMIN_PASSWORD: 'bench-admin-pass',
      GRIDLINK_DEVICE_RATE: '1000000',
      GRIDLINK_DEVICE_BURST: '1000000',
      // Every load-generator connection comes from 127.0.0.1 at once.
      GRIDLINK_MAX_PENDING_PER_ADDRESS: '100000',
    });
    // The rules module only with BENCH_RUN_RULE=1: the plain run measures ingest alone.
    const hub = await createHub(config, { modules: process.env.BENCH_RUN_RULE === '1' ? [rulesModule()] : [] });
    const ports = await hub.start();
    const loop = monitorEventLoopDelay({ resolution: 1 });
    loop.enable();
    mqttPort = ports.mqtt;
    if (process.env.BENCH_RUN_RULE === '1') {
      // Every reading ≥ 30 (70 % of the load generator's) is a step of a run that never completes: the most rule state there is
      // (the shipped water-level rule raises at the first and only repeats after).
      const base = `http://127.0.0.1:${ports.http}/api/v1`;
      const login = await fetch(`${base}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'admin', password: 'bench-admin-pass' }) });
      const { token } = (await login.json()) as { token: string };
      const rule = { id: 'bench-run', name: 'bench run', enabled: true, kind: 'threshold', metric: 'water_level_cm', op: '>=', value: 30, forS: 3600, severity: 'minor', scope: { deviceTypes: ['sensor.water_level'] } };
      const r = await fetch(`${base}/rules`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: JSON.stringify(rule) });
      if (r.status !== 201) throw new Error(`bench rule refused: ${r.status} ${await r.text()}`);
    }
    for (let i = 0; i < devices; i++) {
      const r = await hub.ctx.registry.register({ id: `bench-${i}`, type: 'sensor.water_level' });
      creds.push({ id: r.device.id, secret: r.secret });
    }
    count = async () => (await hub.ctx.db.query<{ n: number }>("select count(*)::int as n from readings where device_id like 'bench-%'"))[0]!.n;
    batches = async () => {
      const size = (await hub.ctx.metrics.batchSize.get()).values;
      const commit = (await hub.ctx.metrics.commitLatency.get()).values;
      const ack = (await hub.ctx.metrics.ackLatency.get()).values;
      const val = (vs: typeof size, name: string) => vs.find((v) => v.metricName === name)?.value ?? 0;
      const n = val(size, 'gridlink_batch_messages_count');
      return { commits: n, messagesPerCommit: n ? +(val(size, 'gridlink_batch_messages_sum') / n).toFixed(1) : 0, commitMsAvg: n ? +(val(commit, 'gridlink_commit_ms_sum') / n).toFixed(2) : 0, hubAckMsAvg: +(val(ack, 'gridlink_ack_ms_sum') / Math.max(1, val(ack, 'gridlink_ack_ms_count'))).toFixed(2), hubAckP99MsAtMost: p99Bucket(ack), eventLoopDelayP99Ms: +(loop.percentile(99) / 1e6).toFixed(1), eventLoopDelayMeanMs: +(loop.mean / 1e6).toFixed(2) };
    };
    stop = () => hub.stop();
  }
  out({ ready: true, mqtt: mqttPort, devices: creds });
  const rl = createInterface({ input: process.stdin });
  for await (const line of rl) {
    if (line === 'count') out({ rows: await count(), batches: await batches() });
    else if (line === 'cpu') {
      const u = process.cpuUsage();
      out({ cpuMs: (u.user + u.system) / 1000 });
    } else if (line === 'stop') {
      await stop();
      out({ stopped: true });
      process.exit(0);
    }
  }
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack}\n`);
  process.exit(1);
});
