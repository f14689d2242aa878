/**
 * npm run bench:latency — prints one JSON document: the delay from a smoke
 * detector publishing `smoke_alarm` over MQTT to an officer's Socket.IO
 * client receiving the `alarm` and the `case` event, p50/p99, while a
 * separate load-generator process keeps 5,000 telemetry msg/s (QoS 1) going
 * into the same hub. A second client scoped to another street must receive
 * nothing. Target (issue 3): p99 < 100 ms.
 *
 * The hub runs in this process with the realtime, cases and rules modules;
 * the load generator is this file re-run with `loadgen` (its own process, as
 * real devices would be).
 *
 * Env: BENCH_RATE (5000 msg/s background), BENCH_LOAD_DEVICES (50), BENCH_PROBES (200),
 *      BENCH_PROBE_HZ (10), BENCH_SMOKE (detectors; default one per probe, so every probe is a new
 *      incident: a new alarm and a new case), DATABASE_URL (default memory://).
 */
import { spawn } from 'node:child_process';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import mqtt, { type MqttClient } from 'mqtt';
import { io, type Socket } from 'socket.io-client';

const RATE = Number(process.env.BENCH_RATE ?? 5_000);
const LOAD_DEVICES = Number(process.env.BENCH_LOAD_DEVICES ?? 50);
const PROBES = Number(process.env.BENCH_PROBES ?? 200);
const PROBE_HZ = Number(process.env.BENCH_PROBE_HZ ?? 10);
const SMOKE = Number(process.env.BENCH_SMOKE ?? PROBES);

function pct(values: number[], p: number): number {
  if (values.length === 0) return 0;
  const s = [...values].sort((a, b) => a - b);
  return +s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!.toFixed(2);
}
const progress = (msg: string) => process.stderr.write(`[latency] ${msg}\n`);
const summary = (v: number[]) => ({ n: v.length, p50: pct(v, 50), p90: pct(v, 90), p99: pct(v, 99), max: pct(v, 100) });

const connect = (port: number, id: string, secret: string) =>
  new Promise<MqttClient>((resolve, reject) => {
    const c = mqtt.connect(`mqtt://127.0.0.1:${port}`, { clientId: id, username: id, password: secret, reconnectPeriod: 0, keepalive: 60 });
    c.once('connect', () => resolve(c));
    c.once('error', reject);
  });

/** Child process: paced QoS 1 telemetry at RATE msg/s until stdin closes; prints what it achieved. */
async function loadgen(input: { mqtt: number; devices: Array<{ id: string; secret: string }>; rate: number }): Promise<void> {
  const clients = await Promise.all(input.devices.map((d) => connect(input.mqtt, d.id, d.secret)));
  let sent = 0, acked = 0, errors = 0, seq = 0;
  const t0 = Date.now() - 3_600_000;
  const started = performance.now();
  process.stdout.write('{"ready":true}\n');
  const perTick = input.rate / 100; // every 10 ms
  let debt = 0;
  const timer = setInterval(() => {
    // Catch up when the event loop was late so the average rate holds.
    const due = ((performance.now() - started) / 1000) * input.rate;
    debt = Math.min(due - sent, perTick * 20);
    for (let i = 0; i < debt; i++) {
      const k = seq % clients.length;
      const n = seq++;
      sent++;
      clients[k]!.publish(`gridlink/v1/${input.devices[k]!.id}/telemetry`, `{"ts":${t0 + n},"values":{"pm25_ugm3":${n % 300},"aqi":${n % 200}}}`, { qos: 1 }, (err) => {
        if (err) errors++;
        else acked++;
      });
    }
  }, 10);
  process.stdin.resume();
  await new Promise((r) => process.stdin.once('end', r));
  clearInterval(timer);
  const s = (performance.now() - started) / 1000;
  process.stdout.write(`${JSON.stringify({ seconds: +s.toFixed(1), sentPerSec: Math.round(sent / s), ackedPerSec: Math.round(acked / s), errors })}\n`);
  await Promise.all(clients.map((c) => c.endAsync(true)));
  process.exit(0);
}


interface ProbeInput {
  http: number;
  mqtt: number;
  officer: string;
  outsider: string;
  smoke: Array<{ id: string; secret: string }>;
  probes: number;
  hz: number;
}

/**
 * Child process: the smoke detectors and both consoles. Publish time and
 * receipt time are read from one clock in one process, and the hub's event
 * loop is not shared with the clients (as with real consoles).
 */
async function probe(input: ProbeInput): Promise<void> {
  const sio = (token: string) =>
    new Promise<Socket>((resolve, reject) => {
      const s = io(`http://127.0.0.1:${input.http}`, { path: '/socket.io', auth: { token }, transports: ['websocket'], reconnection: false });
      s.once('connect', () => resolve(s));
      s.once('connect_error', reject);
    });
  const officer = await sio(input.officer);
  const outsider = await sio(input.outsider);
  let leaked = 0;
  outsider.on('alarm', () => leaked++);
  outsider.on('case', () => leaked++);
  const sentAt = new Map<string, number>();
  const alarmMs: number[] = [];
  const caseMs: number[] = [];
  /** PUBACK = committed to the database (CONTRACT 3): the ingest share of the delay. */
  const pubackMs: number[] = [];
  // Alarm steps run one at a time in the hub, so case events come in probe order.
  const waitingCase: string[] = [];
  officer.on('alarm', (a: { deviceId: string; rule: string; change?: string }) => {
    if (a.rule !== 'smoke-alarm' || a.change !== 'raised') return;
    const t = sentAt.get(a.deviceId);
    if (t !== undefined) alarmMs.push(performance.now() - t);
  });
  officer.on('case', (c: { change?: string }) => {
    if (c.change !== 'create' && c.change !== 'attach') return;
    const id = waitingCase.shift();
    if (id !== undefined) caseMs.push(performance.now() - sentAt.get(id)!);
  });
  const clients = await Promise.all(input.smoke.map((d) => connect(input.mqtt, d.id, d.secret)));
  process.stdout.write('{"ready":true}\n');
  await new Promise((r) => process.stdin.once('data', r));
  const n = input.smoke.length;
  for (let i = 0; i < input.probes; i++) {
    const k = i % n;
    const d = input.smoke[k]!;
    const c = clients[k]!;
    // A detector used again is cleared first so each probe raises a new alarm.
    if (i >= n) c.publish(`gridlink/v1/${d.id}/event`, JSON.stringify({ type: 'smoke_alarm_clear', ts: Date.now() - 1 }), { qos: 1 });
    await new Promise((r) => setTimeout(r, 1000 / input.hz));
    const sent = performance.now();
    sentAt.set(d.id, sent);
    waitingCase.push(d.id);
    c.publish(`gridlink/v1/${d.id}/event`, JSON.stringify({ type: 'smoke_alarm', ts: Date.now() }), { qos: 1 }, (err) => {
      if (!err) pubackMs.push(performance.now() - sent);
    });
  }
  await new Promise((r) => setTimeout(r, 3_000));
  process.stdout.write(`${JSON.stringify({ alarmMs: summary(alarmMs), caseMs: summary(caseMs), pubackMs: summary(pubackMs), otherRegionReceived: leaked })}\n`);
  officer.close();
  outsider.close();
  await Promise.all(clients.map((c) => c.endAsync(true)));
  process.exit(0);
}

/** Runs this file as a child in `mode`; resolves its stdout lines as they come. */
function child(mode: string, input: unknown): { proc: ReturnType<typeof spawn>; next(): Promise<string> } {
  const here = fileURLToPath(import.meta.url);
  const proc = spawn(process.execPath, ['--import', 'tsx', here, mode, JSON.stringify(input)], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines: string[] = [];
  const waiters: Array<(l: string) => void> = [];
  let buf = '';
  proc.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      const w = waiters.shift();
      if (w) w(line);
      else lines.push(line);
    }
  });
  return { proc, next: () => (lines.length ? Promise.resolve(lines.shift()!) : new Promise((r) => waiters.push(r))) };
}

async function main(): Promise<void> {
  const { createHub, realtimeModule, casesModule, rulesModule } = await import('../src/hub.js');
  const { loadConfig } = await import('../src/core/config.js');
  // On PostgreSQL every run gets its own schema, dropped afterwards.
  let databaseUrl = process.env.DATABASE_URL ?? 'memory://';
  let dropSchema: (() => Promise<void>) | null = null;
  if (databaseUrl.startsWith('postgres')) {
    const pg = (await import('pg')).default;
    const schema = `bench_${Date.now().toString(36)}`;
    const admin = new pg.Client({ connectionString: databaseUrl });
    await admin.connect();
    await admin.query(`create schema ${schema}`);
    await admin.end();
    const u = new URL(databaseUrl);
    u.searchParams.set('options', `-c search_path=${schema},public`);
    const base = databaseUrl;
    databaseUrl = u.toString();
    dropSchema = async () => {
      const c = new pg.Client({ connectionString: base });
      await c.connect();
      await c.query(`drop schema ${schema} cascade`);
      await c.end();
    };
  }
  const config = loadConfig(process.env, {
    host: '127.0.0.1', httpPort: 0, mqttPort: 0, databaseUrl, logLevel: 'silent',
    adminPassword: 'bench-admin-password', jwtSecret: 'bench-secret-bench-secret-bench-secret', deviceRate: 10_000, deviceBurst: 20_000,
  });
  const hub = await createHub(config, { modules: [realtimeModule(), casesModule(), rulesModule()] });
  const ports = await hub.start();
  const base = `http://127.0.0.1:${ports.http}/api/v1`;
  const admin = hub.ctx.auth.sign({ id: 'bench', username: 'bench', role: 'admin', regionId: null, displayName: 'bench' });
  const api = async (method: string, p: string, body?: unknown) => {
    const r = await fetch(`${base}${p}`, { method, headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
    if (r.status >= 300) throw new Error(`${method} ${p}: ${r.status} ${await r.text()}`);
    return r.json() as Promise<any>;
  };
  const sq = (x: number, w: number) => [[[x, 30.6], [x + w, 30.6], [x + w, 30.62], [x, 30.62], [x, 30.6]]];
  await api('PUT', '/grids', {
    type: 'FeatureCollection',
    features: [
      { type: 'Feature', properties: { id: 'D', name: 'D', level: 'district', parentId: null }, geometry: { type: 'Polygon', coordinates: sq(104, 0.04) } },
      { type: 'Feature', properties: { id: 'SA', name: 'SA', level: 'street', parentId: 'D' }, geometry: { type: 'Polygon', coordinates: sq(104, 0.02) } },
      { type: 'Feature', properties: { id: 'SB', name: 'SB', level: 'street', parentId: 'D' }, geometry: { type: 'Polygon', coordinates: sq(104.02, 0.02) } },
    ],
  });
  progress(`hub up (http ${ports.http}, mqtt ${ports.mqtt}); registering devices`);
  const load: Array<{ id: string; secret: string }> = [];
  for (let i = 0; i < LOAD_DEVICES; i++) load.push(await api('POST', '/devices', { id: `aq-${i}`, type: 'sensor.air_quality', lat: 30.61, lon: 104.03 }));
  const smoke: Array<{ id: string; secret: string }> = [];
  for (let i = 0; i < SMOKE; i++) smoke.push(await api('POST', '/devices', { id: `smoke-${i}`, type: 'sensor.smoke', lat: 30.605 + i * 0.0005, lon: 104.005 }));
  const sign = (regionId: string | null) => hub.ctx.auth.sign({ id: `o-${regionId}`, username: `officer-${regionId}`, role: 'officer', regionId, displayName: 'o' });

  progress('devices registered; starting the load generator and the probe process');
  // Consoles and detectors connect before the load starts, as they would be in a running district.
  const prb = child('probe', { http: ports.http, mqtt: ports.mqtt, officer: sign(null), outsider: sign('SB'), smoke, probes: PROBES, hz: PROBE_HZ } satisfies ProbeInput);
  await prb.next();
  const gen = child('loadgen', { mqtt: ports.mqtt, devices: load, rate: RATE });
  await gen.next();
  progress(`load running; warm-up, then ${PROBES} probes at ${PROBE_HZ}/s`);
  await new Promise((r) => setTimeout(r, 3_000));
  const storedBefore = await metricValue(hub, 'gridlink_messages_stored_total');
  const ts0 = performance.now();
  const cpu0 = process.cpuUsage();
  const loop = monitorEventLoopDelay({ resolution: 5 });
  loop.enable();
  prb.proc.stdin!.write('go\n');
  const result = JSON.parse(await prb.next());
  loop.disable();
  const seconds = (performance.now() - ts0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const storedAfter = await metricValue(hub, 'gridlink_messages_stored_total');
  progress('probes done; stopping the load');
  gen.proc.stdin!.end();
  const generator = JSON.parse(await gen.next());
  const alarmMs = result.alarmMs;
  const caseMs = result.caseMs;
  const leaked = result.otherRegionReceived;
  const out = {
    bench: 'latency',
    target: 'p99 < 100 ms from MQTT publish to Socket.IO receipt',
    db: hub.ctx.db.kind,
    backgroundLoad: { targetPerSec: RATE, generator, hubStoredPerSecDuringProbes: Math.round((storedAfter - storedBefore) / seconds) },
    probes: PROBES,
    alarmMs,
    caseMs,
    smokePubackMs: result.pubackMs,
    otherRegionReceived: leaked,
    eventLoopDelayMs: { p50: +(loop.percentile(50) / 1e6).toFixed(2), p99: +(loop.percentile(99) / 1e6).toFixed(2), max: +(loop.max / 1e6).toFixed(2) },
    seconds: +seconds.toFixed(1),
    hubCpuPct: Math.round(((cpu.user + cpu.system) / 1e6 / seconds) * 100),
    cpus: (await import('node:os')).cpus().length,
    machineLoadAvg1m: +(await import('node:os')).loadavg()[0]!.toFixed(2),
  };
  process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
  await hub.stop();
  await dropSchema?.();
  process.exit(0);
}

async function metricValue(hub: { ctx: { metrics: { registry: { getSingleMetric(n: string): unknown } } } }, name: string): Promise<number> {
  const m = hub.ctx.metrics.registry.getSingleMetric(name) as { get(): Promise<{ values: Array<{ value: number }> }> } | undefined;
  if (!m) return 0;
  return (await m.get()).values.reduce((s, v) => s + v.value, 0);
}

if (process.argv[2] === 'loadgen') void loadgen(JSON.parse(process.argv[3]!));
else if (process.argv[2] === 'probe') void probe(JSON.parse(process.argv[3]!));
else main().catch((err) => {
  console.error(err);
  process.exit(1);
});
