/**
 * npm run bench:city — does the embedded default carry a whole city on one node?
 *
 * One hub process as `npm start` runs it: every domain module, the embedded
 * PGlite on a data directory. Set up through the public REST API only
 * (grids, devices, workers, users), then a separate load-generator process
 * drives
 *   - BENCH_HANDHELDS (10,000) handhelds publishing `location` every
 *     BENCH_PERIOD_S (5) s, phases spread evenly,
 *   - BENCH_SENSORS (2,000) water-level sensors publishing `telemetry` at
 *     BENCH_SENSOR_RATE (3,000) msg/s in all, with normal readings (5-14 cm,
 *     below the 积水 rule: a city does not flood everywhere at once; alarm
 *     latency under load is bench:latency's subject),
 * all QoS 1, while BENCH_CONSOLES (50) Socket.IO consoles (a fifth unscoped,
 * the rest scoped to one of ten streets) receive `positions`.
 *
 * Prints one JSON document: published and acked msg/s, QoS 1 ack latency,
 * publish → console latency of positions, hub CPU and memory, and rows
 * stored = messages acknowledged (counted in the database after the run).
 *
 * Env: BENCH_SECONDS (30, measured window), DATABASE_URL (default: PGlite in a
 * fresh temporary data directory), BENCH_SERVER_NODE_ARGS (node flags for the
 * hub process, e.g. --cpu-prof).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import mqtt, { type MqttClient } from 'mqtt';
import { io, type Socket } from 'socket.io-client';
import { HUB_NODE_FLAGS } from '../src/node-flags.js';
import { connectDevice, gridOf, gridsGeoJson, LAT0, LON0, rng, SPAN, summary as stats } from './district.js';

const HANDHELDS = Number(process.env.BENCH_HANDHELDS ?? 10_000);
const SENSORS = Number(process.env.BENCH_SENSORS ?? 2_000);
const SENSOR_RATE = Number(process.env.BENCH_SENSOR_RATE ?? 3_000);
const CONSOLES = Number(process.env.BENCH_CONSOLES ?? 50);
const PERIOD_S = Number(process.env.BENCH_PERIOD_S ?? 5);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 30);
const ADMIN_PASSWORD = 'bench-admin-pass-1';
const summary = (v: number[]) => stats(v, 1);

function child(args: string[], env: Record<string, string> = {}): ChildProcess {
  // The hub runs with the flags it ships with (hub/src/node-flags.ts).
  const extra = args[0] === 'server' ? [...HUB_NODE_FLAGS, ...(process.env.BENCH_SERVER_NODE_ARGS ?? '').split(' ').filter(Boolean)] : [];
  return spawn(process.execPath, [...extra, '--import', 'tsx', import.meta.filename, ...args], { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'inherit'] });
}

function jsonLines(c: ChildProcess): () => Promise<Record<string, unknown>> {
  const rl = createInterface({ input: c.stdout! });
  const queue: Array<Record<string, unknown>> = [];
  const waiters: Array<(o: Record<string, unknown>) => void> = [];
  rl.on('line', (l) => {
    if (!l.startsWith('{')) return;
    const o = JSON.parse(l) as Record<string, unknown>;
    const w = waiters.shift();
    if (w) w(o);
    else queue.push(o);
  });
  return () => new Promise((resolve) => {
    const o = queue.shift();
    if (o) resolve(o);
    else waiters.push(resolve);
  });
}

// ---- the hub (its own process, as `npm start` runs it) ------------------------------------------

async function server() {
  const { loadConfig } = await import('../src/core/config.js');
  const { createHub } = await import('../src/hub.js');
  const config = loadConfig({
    ...process.env,
    GRIDLINK_HOST: '127.0.0.1',
    GRIDLINK_HTTP_PORT: '0',
    GRIDLINK_MQTT_PORT: '0',
    GRIDLINK_LOG_LEVEL: 'warn',
    GRIDLINK_ADMIN_PASSWORD: ADMIN_PASSWORD,
    // Every load-generator connection comes from 127.0.0.1; in a city they come from thousands of addresses.
    GRIDLINK_MAX_PENDING_PER_ADDRESS: '100000',
  });
  const hub = await createHub(config);
  const ports = await hub.start();
  const db = hub.ctx.db;
  const out = (o: unknown) => process.stdout.write(`${JSON.stringify(o)}\n`);
  const loop = monitorEventLoopDelay({ resolution: 10 });
  let cpu0 = process.cpuUsage();
  let t0 = performance.now();
  let rssMax = 0;
  const rssTimer = setInterval(() => (rssMax = Math.max(rssMax, process.memoryUsage().rss)), 1000);
  out({ ready: true, http: ports.http, mqtt: ports.mqtt, db: db.kind });
  for await (const line of createInterface({ input: process.stdin })) {
    if (line === 'mark') {
      cpu0 = process.cpuUsage();
      t0 = performance.now();
      rssMax = 0;
      loop.reset();
      loop.enable();
      out({ marked: true });
    } else if (line === 'measure') {
      const cpu = process.cpuUsage(cpu0);
      const wall = performance.now() - t0;
      loop.disable();
      out({
        hubCpuPct: +(((cpu.user + cpu.system) / 1000 / wall) * 100).toFixed(1),
        hubEventLoopDelayMs: { p50: +(loop.percentile(50) / 1e6).toFixed(1), p99: +(loop.percentile(99) / 1e6).toFixed(1), max: +(loop.max / 1e6).toFixed(1) },
        hubRssMaxMb: Math.round(rssMax / 1e6),
      });
    } else if (line === 'count') {
      const [p] = await db.query<{ n: number }>("select count(*)::int as n from positions where device_id like 'hh-%'");
      const [r] = await db.query<{ n: number }>("select count(*)::int as n from readings where device_id like 'sn-%'");
      out({ positions: p!.n, readings: r!.n });
    } else if (line === 'stop') {
      clearInterval(rssTimer);
      await hub.stop();
      out({ stopped: true });
      process.exit(0);
    }
  }
}

// ---- set-up through REST, then the run ----------------------------------------------------------

async function main() {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'gridlink-city-'));
  const hub = child(['server'], { GRIDLINK_DATA_DIR: dataDir });
  const fromHub = jsonLines(hub);
  const ready = (await fromHub()) as { http: number; mqtt: number; db: string };
  const base = `http://127.0.0.1:${ready.http}/api/v1`;
  const call = async <T>(method: string, url: string, body?: unknown, token?: string): Promise<T> => {
    const r = await fetch(`${base}${url}`, { method, headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) }, body: body === undefined ? undefined : JSON.stringify(body) });
    if (!r.ok) throw new Error(`${method} ${url}: ${r.status} ${await r.text()}`);
    return (await r.json()) as T;
  };
  const login = async (username: string, password: string) => (await call<{ token: string }>('POST', '/auth/login', { username, password })).token;
  const t0 = performance.now();
  const admin = await login('admin', ADMIN_PASSWORD);
  await call('PUT', '/grids', gridsGeoJson(), admin);

  const rand = rng(7);
  const handhelds: Array<{ id: string; secret: string; lat: number; lon: number }> = [];
  const sensors: Array<{ id: string; secret: string }> = [];
  const inParallel = async (n: number, fn: (i: number) => Promise<void>, width = 32) => {
    for (let i = 0; i < n; i += width) await Promise.all(Array.from({ length: Math.min(width, n - i) }, (_, k) => fn(i + k)));
  };
  await inParallel(HANDHELDS, async (i) => {
    const lat = LAT0 + rand() * SPAN;
    const lon = LON0 + rand() * SPAN;
    const d = await call<{ id: string; secret: string }>('POST', '/devices', { id: `hh-${i}`, type: 'handheld' }, admin);
    const g = gridOf(lat, lon);
    await call('POST', '/workers', { id: `w${i}`, name: `网格员${i}`, deviceId: d.id, gridIds: [g], onDuty: true }, admin);
    handhelds[i] = { id: d.id, secret: d.secret, lat, lon };
  });
  await inParallel(SENSORS, async (i) => {
    const d = await call<{ id: string; secret: string }>('POST', '/devices', { id: `sn-${i}`, type: 'sensor.water_level', lat: LAT0 + rand() * SPAN, lon: LON0 + rand() * SPAN }, admin);
    sensors[i] = { id: d.id, secret: d.secret };
  });
  const tokens: string[] = [];
  const unscoped = Math.ceil(CONSOLES / 5);
  const streetTokens = new Map<string, string>();
  await call('POST', '/users', { username: 'city-duty', password: 'city-duty-pass-1', role: 'dispatcher', regionId: null }, admin);
  const dutyToken = await login('city-duty', 'city-duty-pass-1');
  for (let i = 0; i < CONSOLES; i++) {
    if (i < unscoped) {
      tokens.push(dutyToken);
      continue;
    }
    const street = `S${i % 10}`;
    if (!streetTokens.has(street)) {
      await call('POST', '/users', { username: `city-${street}`, password: 'city-street-pass-1', role: 'dispatcher', regionId: street }, admin);
      streetTokens.set(street, await login(`city-${street}`, 'city-street-pass-1'));
    }
    tokens.push(streetTokens.get(street)!);
  }
  const setupS = +((performance.now() - t0) / 1000).toFixed(1);
  process.stderr.write(`city: set up ${HANDHELDS} handhelds + workers, ${SENSORS} sensors, ${CONSOLES} consoles in ${setupS} s\n`);

  const file = path.join(dataDir, 'loadgen.json');
  writeFileSync(file, JSON.stringify({ mqtt: ready.mqtt, http: ready.http, handhelds, sensors, tokens }));
  const gen = child(['loadgen', file]);
  const fromGen = jsonLines(gen);
  const connected = await fromGen();
  process.stderr.write(`city: ${JSON.stringify(connected)}\n`);
  await fromGen(); // steady
  hub.stdin!.write('mark\n');
  await fromHub();
  const load = await fromGen(); // done: measured window
  hub.stdin!.write('measure\n');
  const hubSide = await fromHub();
  const drained = await fromGen(); // every publish answered, totals
  hub.stdin!.write('count\n');
  const rows = (await fromHub()) as { positions: number; readings: number };
  hub.stdin!.write('stop\n');
  await fromHub().catch(() => undefined);
  gen.kill();
  // The hub exits by itself (and writes a --cpu-prof when asked); kill only a straggler.
  await new Promise((r) => {
    const t = setTimeout(r, 10_000);
    hub.once('exit', () => (clearTimeout(t), r(undefined)));
  });
  hub.kill();
  rmSync(dataDir, { recursive: true, force: true });
  const acked = drained as { handheldAcked: number; sensorAcked: number };
  process.stdout.write(`${JSON.stringify({
    bench: 'city',
    machine: { cpus: os.cpus().length, load1: +os.loadavg()[0]!.toFixed(2), node: process.version },
    params: { handhelds: HANDHELDS, periodS: PERIOD_S, sensors: SENSORS, sensorRate: SENSOR_RATE, consoles: CONSOLES, seconds: SECONDS, db: ready.db },
    setupS,
    connect: connected,
    load: { ...load, phase: undefined },
    hub: hubSide,
    rows: { ...rows, acked: acked.handheldAcked + acked.sensorAcked, rowsEqualAcked: rows.positions === acked.handheldAcked && rows.readings === acked.sensorAcked, ...drained, phase: undefined },
  }, null, 2)}\n`);
  process.exit(0);
}

// ---- load generator (its own process) -----------------------------------------------------------

async function loadgen(file: string) {
  const { readFileSync } = await import('node:fs');
  const input = JSON.parse(readFileSync(file, 'utf8')) as {
    mqtt: number; http: number; tokens: string[];
    handhelds: Array<{ id: string; secret: string; lat: number; lon: number }>;
    sensors: Array<{ id: string; secret: string }>;
  };
  const out = (o: unknown) => process.stdout.write(`${JSON.stringify(o)}\n`);
  let connectErrors = 0;
  const tc = performance.now();
  const connect = async (d: { id: string; secret: string }) => {
    const c = await connectDevice(`mqtt://127.0.0.1:${input.mqtt}`, d);
    if (!c) connectErrors++;
    return c;
  };
  const all = [...input.handhelds, ...input.sensors];
  const clients = new Map<string, MqttClient>();
  for (let i = 0; i < all.length; i += 200) {
    const wave = await Promise.all(all.slice(i, i + 200).map(connect));
    wave.forEach((c, k) => c && clients.set(all[i + k]!.id, c));
  }
  out({ phase: 'connected', mqttClients: clients.size, connectErrors, connectS: +((performance.now() - tc) / 1000).toFixed(1) });

  let measuring = false;
  const delays: number[] = [];
  const perConsole: number[] = [];
  const sockets: Socket[] = [];
  await Promise.all(input.tokens.map((token, i) => new Promise<void>((resolve, reject) => {
    const s = io(`http://127.0.0.1:${input.http}`, { path: '/socket.io', auth: { token }, transports: ['websocket'], reconnection: false, forceNew: true });
    sockets.push(s);
    perConsole[i] = 0;
    s.on('positions', (items: Array<{ ts: number }>) => {
      if (!measuring) return;
      const now = Date.now();
      perConsole[i]! += items.length;
      for (const it of items) delays.push(now - it.ts);
    });
    s.once('connect', () => resolve());
    s.once('connect_error', reject);
  })));

  const stats = { published: 0, handheldAcked: 0, sensorAcked: 0, errors: 0, outstanding: 0 };
  const handheldAck: number[] = [];
  const sensorAck: number[] = [];
  let windowPublished = 0;
  let windowAcked = 0;
  const timers: NodeJS.Timeout[] = [];
  let running = true;
  const send = (c: MqttClient, topic: string, body: string, ts: number, lat: number[], handheld: boolean) => {
    stats.published++;
    stats.outstanding++;
    if (measuring) windowPublished++;
    c.publish(topic, body, { qos: 1 }, (err) => {
      stats.outstanding--;
      if (err) return void stats.errors++;
      if (handheld) stats.handheldAcked++;
      else stats.sensorAcked++;
      if (measuring) {
        windowAcked++;
        lat.push(Date.now() - ts);
      }
    });
  };
  const period = PERIOD_S * 1000;
  input.handhelds.forEach((h, i) => {
    const c = clients.get(h.id);
    if (!c) return;
    const p = { lat: h.lat, lon: h.lon };
    const tick = () => {
      if (!running) return;
      p.lat += (Math.random() - 0.5) * 0.00012; // a slow walk, ~1.4 m/s
      p.lon += (Math.random() - 0.5) * 0.00012;
      const ts = Date.now();
      send(c, `gridlink/v1/${h.id}/location`, JSON.stringify({ ts, lat: p.lat, lon: p.lon, acc: 8, batt: 80 }), ts, handheldAck, true);
    };
    timers.push(setTimeout(() => {
      tick();
      timers.push(setInterval(tick, period));
    }, (i / input.handhelds.length) * period));
  });
  const sensorPeriod = (input.sensors.length / SENSOR_RATE) * 1000;
  input.sensors.forEach((s, i) => {
    const c = clients.get(s.id);
    if (!c) return;
    let seq = 0;
    const tick = () => {
      if (!running) return;
      const ts = Date.now();
      send(c, `gridlink/v1/${s.id}/telemetry`, JSON.stringify({ ts, seq: seq++, values: { water_level_cm: 5 + (seq % 10) } }), ts, sensorAck, false);
    };
    timers.push(setTimeout(() => {
      tick();
      timers.push(setInterval(tick, sensorPeriod));
    }, (i / input.sensors.length) * sensorPeriod));
  });
  await new Promise((r) => setTimeout(r, period + 3000)); // every device has reported once
  measuring = true;
  out({ phase: 'steady' });
  const tw = performance.now();
  await new Promise((r) => setTimeout(r, SECONDS * 1000));
  measuring = false;
  const wall = (performance.now() - tw) / 1000;
  const consoleItems = perConsole.reduce((a, b) => a + b, 0);
  out({
    phase: 'done',
    windowS: +wall.toFixed(1),
    publishedPerS: Math.round(windowPublished / wall),
    ackedPerS: Math.round(windowAcked / wall),
    qos1AckMs: { all: summary([...handheldAck, ...sensorAck]), handheld: summary(handheldAck), sensor: summary(sensorAck) },
    publishToConsoleMs: summary(delays),
    consoleItemsPerS: { total: Math.round(consoleItems / wall), unscopedConsole: Math.round((perConsole[0] ?? 0) / wall), streetConsole: Math.round((perConsole.at(-1) ?? 0) / wall) },
  });
  running = false;
  for (const t of timers) clearInterval(t);
  const td = performance.now();
  while (stats.outstanding > 0 && performance.now() - td < 120_000) await new Promise((r) => setTimeout(r, 100));
  out({ phase: 'drained', ...stats });
  for (const s of sockets) s.close();
  await Promise.all([...clients.values()].map((c) => c.endAsync(true).catch(() => undefined)));
  process.exit(0);
}

const role = process.argv[2];
(role === 'server' ? server() : role === 'loadgen' ? loadgen(process.argv[3]!) : main()).catch((err) => {
  process.stderr.write(`${(err as Error).stack}\n`);
  process.exit(1);
});
