/**
 * npm run bench:dispatch — prints one JSON document:
 *  index:      kdbush/geokdbush vs flatbush vs a linear scan over 20,000 points (why dispatch uses kdbush);
 *  candidates: 20,000 workers with positions in a real hub, engine candidates p50/p99 and REST p99;
 *  live:       5,000 handhelds publishing `location` every 5 s over MQTT (QoS 1) while 50 Socket.IO
 *              consoles (10 unscoped, 40 scoped to a street) receive `positions`: hub CPU, event-loop
 *              delay, beat cost and the delay from publish to console.
 * The hub runs in this process; the load generator is this file re-run with `loadgen` (a separate process).
 *
 * Env: BENCH_WORKERS (20000), BENCH_HANDHELDS (5000), BENCH_CONSOLES (50), BENCH_PERIOD_S (5),
 *      BENCH_SECONDS (30, measured window), DATABASE_URL (default memory://).
 */
import { spawn } from 'node:child_process';
import { writeFileSync, unlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { haversineM } from '@gridlink/devices/geo';
import Flatbush from 'flatbush';
import KDBush from 'kdbush';
import { around } from 'geokdbush';
import mqtt, { type MqttClient } from 'mqtt';
import { io, type Socket } from 'socket.io-client';
import { connectDevice, gridsGeoJson, LAT0, LON0, pct, rng, SPAN, summary } from './district.js';

const WORKERS = Number(process.env.BENCH_WORKERS ?? 20_000);
const HANDHELDS = Number(process.env.BENCH_HANDHELDS ?? 5_000);
const CONSOLES = Number(process.env.BENCH_CONSOLES ?? 50);
const PERIOD_S = Number(process.env.BENCH_PERIOD_S ?? 5);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 30);
function time(fn: (i: number) => void, n: number, warmup = Math.min(200, n)): number[] {
  const out: number[] = [];
  for (let i = 0; i < warmup; i++) fn(i);
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    fn(i);
    out.push(performance.now() - t);
  }
  return out;
}

/**
 * CPU time of each call (process.cpuUsage, µs resolution): on a shared machine
 * wall-clock tails mostly measure other tenants preempting us; CPU time is the
 * service time the call itself costs (GC included).
 */
function cpuTime(fn: (i: number) => void, n: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const c = process.cpuUsage();
    fn(i);
    const d = process.cpuUsage(c);
    out.push((d.user + d.system) / 1000);
  }
  return out;
}

// ---- 1. index choice ----------------------------------------------------------------------------

function indexBench() {
  const rand = rng(7);
  const N = WORKERS;
  const lat = Float64Array.from({ length: N }, () => LAT0 + rand() * SPAN);
  const lon = Float64Array.from({ length: N }, () => LON0 + rand() * SPAN);
  const ok = Uint8Array.from({ length: N }, () => (rand() < 0.6 ? 1 : 0));
  const qs = Array.from({ length: 2000 }, () => [LAT0 + rand() * SPAN, LON0 + rand() * SPAN] as const);
  let kd!: KDBush;
  const kdBuild = time(() => {
    kd = new KDBush(N);
    for (let i = 0; i < N; i++) kd.add(lon[i]!, lat[i]!);
    kd.finish();
  }, 50);
  let fb!: Flatbush;
  const fbBuild = time(() => {
    fb = new Flatbush(N);
    for (let i = 0; i < N; i++) fb.add(lon[i]!, lat[i]!, lon[i]!, lat[i]!);
    fb.finish();
  }, 50);
  const kdQuery = time((i) => void around(kd, qs[i % 2000]![1], qs[i % 2000]![0], 10, Infinity, (id) => ok[id] === 1), 2000);
  const fbQuery = time((i) => void fb.neighbors(qs[i % 2000]![1], qs[i % 2000]![0], 10, Infinity, (id) => ok[id] === 1), 2000);
  const linear = time((i) => {
    const [a, o] = qs[i % 2000]!;
    const best: number[] = [];
    for (let j = 0; j < N; j++) {
      if (!ok[j]) continue;
      const d = haversineM(a, o, lat[j]!, lon[j]!);
      if (best.length < 10 || d < best[9]!) {
        best.push(d);
        best.sort((x, y) => x - y);
        if (best.length > 10) best.pop();
      }
    }
  }, 500);
  // flatbush ranks by planar degrees: how often is its nearest not the great-circle nearest?
  let wrong = 0;
  for (const [a, o] of qs) {
    const f = fb.neighbors(o, a, 1, Infinity, (id) => ok[id] === 1)[0];
    const k = around(kd, o, a, 1, Infinity, (id) => ok[id] === 1)[0];
    if (f !== k) wrong++;
  }
  return {
    points: N,
    kdbushBuildMs: summary(kdBuild),
    geokdbushNearest10Ms: summary(kdQuery),
    flatbushBuildMs: summary(fbBuild),
    flatbushNearest10Ms: summary(fbQuery),
    flatbushWrongNearestPct: +((wrong / qs.length) * 100).toFixed(1),
    linearScanNearest10Ms: summary(linear),
    choice: 'kdbush snapshot + geokdbush (great-circle order), rebuilt at most once per positions beat; moved workers checked exactly',
  };
}

// ---- 2 + 3. the hub ------------------------------------------------------------------------------

async function hubBench() {
  const { loadConfig } = await import('../src/core/config.js');
  const { createHub, realtimeModule, casesModule, dispatchModule } = await import('../src/hub.js');
  const config = loadConfig({
    ...process.env,
    DATABASE_URL: process.env.DATABASE_URL ?? 'memory://',
    GRIDLINK_HOST: '127.0.0.1',
    GRIDLINK_HTTP_PORT: '0',
    GRIDLINK_MQTT_PORT: '0',
    GRIDLINK_LOG_LEVEL: 'warn',
    GRIDLINK_ADMIN_PASSWORD: 'bench-admin-pass',
  });
  const hub = await createHub(config, {
    modules: [realtimeModule(), casesModule({ overdueEveryMs: 0 }), dispatchModule({ config: { positionsIntervalMs: 1000 } })],
  });
  const mod = hub.ctx.domains.dispatch!;
  const ports = await hub.start();
  const { ctx } = hub;
  const admin = ctx.auth.sign({ id: 'bench-admin', username: 'bench-admin', role: 'admin', regionId: null, displayName: 'bench' });
  const put = await ctx.app.inject({ method: 'PUT', url: '/api/v1/grids', headers: { authorization: `Bearer ${admin}` }, payload: gridsGeoJson() });
  if (put.statusCode !== 200) throw new Error(`grids: ${put.statusCode} ${put.body}`);

  // Handhelds the load generator will drive: real devices (secret hashed like any registration).
  const creds: Array<{ id: string; secret: string }> = [];
  for (let i = 0; i < HANDHELDS; i += 16) {
    const batch = await Promise.all(Array.from({ length: Math.min(16, HANDHELDS - i) }, (_, k) => ctx.registry.register({ id: `hh-${i + k}`, type: 'handheld' })));
    for (const r of batch) creds.push({ id: r.device.id, secret: r.secret });
  }
  // 20,000 workers on duty with a fresh fix; the first HANDHELDS are bound to the real devices.
  const rand = rng(11);
  const now = Date.now();
  const startPos: Array<{ lat: number; lon: number }> = [];
  for (let i = 0; i < WORKERS; i += 1000) {
    const ids: string[] = [], names: string[] = [], devs: string[] = [], grids: string[] = [];
    const pts: Array<[string, number, number]> = [];
    for (let k = i; k < Math.min(WORKERS, i + 1000); k++) {
      const lat = LAT0 + rand() * SPAN;
      const lon = LON0 + rand() * SPAN;
      startPos.push({ lat, lon });
      const gi = Math.min(9, Math.floor(((lon - LON0) / SPAN) * 10));
      const gj = Math.min(9, Math.floor(((lat - LAT0) / SPAN) * 10));
      ids.push(`w${k}`);
      names.push(`网格员${k}`);
      devs.push(k < HANDHELDS ? `hh-${k}` : `ghost-${k}`);
      grids.push(`G${gi}-${gj}`);
      pts.push([devs.at(-1)!, lat, lon]);
    }
    await ctx.db.query(
      `insert into workers (id, name, device_id, grid_ids, on_duty)
       select id, name, dev, array[g], true from unnest($1::text[], $2::text[], $3::text[], $4::text[]) as t(id, name, dev, g)`,
      [ids, names, devs, grids],
    );
    await ctx.db.query(
      `insert into positions (ts, device_id, lat, lon) select to_timestamp($1 / 1000.0), d, la, lo from unnest($2::text[], $3::float8[], $4::float8[]) as t(d, la, lo)`,
      [now - 10_000, pts.map((p) => p[0]), pts.map((p) => p[1]), pts.map((p) => p[2])],
    );
  }
  await mod.workers.load();
  for (const w of mod.workers.all()) mod.flagger.seed(w.deviceId, w.lat, w.lon, w.ts);

  // ---- candidates
  mod.workers.index.rebuild(Date.now());
  const rebuild = time(() => mod.workers.index.rebuild(Date.now()), 20);
  const qr = rng(3);
  const qs = Array.from({ length: 5000 }, () => ({ lat: LAT0 + qr() * SPAN, lon: LON0 + qr() * SPAN, gridId: `G${Math.floor(qr() * 10)}-${Math.floor(qr() * 10)}` }));
  const engineMs = time((i) => void mod.engine.candidates(qs[i % qs.length]!, 10), 5000, 1000);
  const engineCpuMs = cpuTime((i) => void mod.engine.candidates(qs[i % qs.length]!, 10), 5000);
  // Realistic: a few hundred workers moved since the last snapshot (checked exactly on every query).
  const moved = Array.from(mod.workers.all()).slice(HANDHELDS, HANDHELDS + 500);
  for (const w of moved) mod.workers.setFix(w, w.lat + 0.0001, w.lon, Date.now(), null, null);
  const engineMovedMs = time((i) => void mod.engine.candidates(qs[i % qs.length]!, 10), 5000);
  const engineMovedCpuMs = cpuTime((i) => void mod.engine.candidates(qs[i % qs.length]!, 10), 5000);
  mod.workers.index.rebuild(Date.now());
  const cases = ctx.domains.cases!.store;
  const caseIds: string[] = [];
  for (let i = 0; i < 20; i++) {
    const q = qs[i]!;
    const c = await cases.create({ category: 'E0101', lat: q.lat, lon: q.lon, source: 'officer', actor: { kind: 'system', id: 'bench', name: 'bench' }, gridId: ctx.services.grids?.locate(q.lat, q.lon) ?? null });
    caseIds.push(c.case.id);
  }
  const restMs: number[] = [];
  for (let i = 0; i < 400; i++) {
    const t = performance.now();
    const r = await ctx.app.inject({ method: 'GET', url: `/api/v1/cases/${caseIds[i % caseIds.length]}/candidates?limit=10`, headers: { authorization: `Bearer ${admin}` } });
    if (i >= 20) restMs.push(performance.now() - t);
    if (r.statusCode !== 200) throw new Error(`candidates: ${r.statusCode} ${r.body}`);
  }
  const candidates = {
    workers: WORKERS,
    indexRebuildMs: summary(rebuild),
    engineMs: summary(engineMs),
    engineCpuMs: summary(engineCpuMs),
    engineWith500MovedMs: summary(engineMovedMs),
    engineWith500MovedCpuMs: summary(engineMovedCpuMs),
    restInjectMs: summary(restMs),
    p99Under2ms: { wall: pct(engineMs, 99) < 2 && pct(engineMovedMs, 99) < 2, cpu: pct(engineCpuMs, 99) < 2 && pct(engineMovedCpuMs, 99) < 2 },
  };
  process.stderr.write(`candidates: ${JSON.stringify(candidates)}\n`);

  // ---- live positions
  const beatMs: number[] = [];
  const beat = mod.flush.bind(mod);
  (mod as { flush: () => void }).flush = () => {
    const t = performance.now();
    beat();
    beatMs.push(performance.now() - t);
  };
  const tokens: string[] = [];
  for (let i = 0; i < CONSOLES; i++) {
    const region = i < Math.ceil(CONSOLES / 5) ? null : `S${i % 10}`;
    tokens.push(ctx.auth.sign({ id: `c${i}`, username: `console${i}`, role: 'dispatcher', regionId: region, displayName: `console${i}` }));
  }
  const file = path.join(os.tmpdir(), `gridlink-dispatch-bench-${process.pid}.json`);
  writeFileSync(file, JSON.stringify({ mqtt: ports.mqtt, http: ports.http, devices: creds, start: startPos.slice(0, HANDHELDS), tokens, periodS: PERIOD_S, seconds: SECONDS }));
  const gen = spawn(process.execPath, ['--import', 'tsx', import.meta.filename, 'loadgen', file], { stdio: ['ignore', 'pipe', 'inherit'] });
  const rl = createInterface({ input: gen.stdout! });
  const loop = monitorEventLoopDelay({ resolution: 10 });
  let cpu0 = process.cpuUsage();
  let t0 = performance.now();
  // Counted on the bus, not in the database: a backlogged database must not stall the measurement.
  let stored = 0;
  ctx.bus.on('message.stored', 'bench', (m) => {
    if (m.msg.channel === 'location') stored++;
  });
  let rows0 = 0;
  let result: Record<string, unknown> = {};
  for await (const line of rl) {
    if (!line.startsWith('{')) continue;
    const msg = JSON.parse(line) as { phase: string } & Record<string, unknown>;
    process.stderr.write(`loadgen: ${line.slice(0, 300)}\n`);
    if (msg.phase === 'steady') {
      cpu0 = process.cpuUsage();
      t0 = performance.now();
      beatMs.length = 0;
      loop.reset();
      loop.enable();
      rows0 = stored;
    } else if (msg.phase === 'done') {
      const cpu = process.cpuUsage(cpu0);
      const wall = performance.now() - t0;
      loop.disable();
      const rows1 = stored;
      result = {
        handhelds: HANDHELDS,
        consoles: CONSOLES,
        periodS: PERIOD_S,
        windowS: +(wall / 1000).toFixed(1),
        hubCpuPct: +(((cpu.user + cpu.system) / 1000 / wall) * 100).toFixed(1),
        hubEventLoopDelayMs: { p50: +(loop.percentile(50) / 1e6).toFixed(2), p99: +(loop.percentile(99) / 1e6).toFixed(2), max: +(loop.max / 1e6).toFixed(2) },
        positionsStoredPerS: +((rows1 - rows0) / (wall / 1000)).toFixed(1),
        db: ctx.db.kind,
        beatMs: summary(beatMs),
        hubRssMb: Math.round(process.memoryUsage().rss / 1e6),
        ...msg,
      };
      delete result.phase;
    }
  }
  unlinkSync(file);
  await hub.stop();
  return { candidates, live: result };
}

// ---- load generator (separate process) -------------------------------------------------------

async function loadgen(file: string) {
  const { readFileSync } = await import('node:fs');
  const input = JSON.parse(readFileSync(file, 'utf8')) as { mqtt: number; http: number; devices: Array<{ id: string; secret: string }>; start: Array<{ lat: number; lon: number }>; tokens: string[]; periodS: number; seconds: number };
  const out = (o: unknown) => process.stdout.write(`${JSON.stringify(o)}\n`);
  const clients: MqttClient[] = [];
  let connectErrors = 0;
  const tc = performance.now();
  // Ramp connections in waves: each first CONNECT costs the hub one scrypt verification.
  for (let i = 0; i < input.devices.length; i += 100) {
    const wave = input.devices.slice(i, i + 100).map(async (d) => {
      const c = await connectDevice(`mqtt://127.0.0.1:${input.mqtt}`, d, { connectTimeout: 60_000 });
      if (c) clients.push(c);
      else connectErrors++;
    });
    await Promise.all(wave);
  }
  out({ phase: 'connected', mqttClients: clients.length, connectErrors, connectS: +((performance.now() - tc) / 1000).toFixed(1) });

  const delays: number[] = [];
  const perConsole: number[] = [];
  const eventsPerConsole: number[] = [];
  let measuring = false;
  const sockets: Socket[] = [];
  await Promise.all(
    input.tokens.map(
      (token, i) =>
        new Promise<void>((resolve, reject) => {
          const s = io(`http://127.0.0.1:${input.http}`, { path: '/socket.io', auth: { token }, transports: ['websocket'], reconnection: false, forceNew: true });
          sockets.push(s);
          perConsole[i] = 0;
          eventsPerConsole[i] = 0;
          s.on('positions', (items: Array<{ ts: number }>) => {
            if (!measuring) return;
            const now = Date.now();
            eventsPerConsole[i]!++;
            perConsole[i]! += items.length;
            for (const it of items) delays.push(now - it.ts);
          });
          s.once('connect', () => resolve());
          s.once('connect_error', reject);
        }),
    ),
  );
  // Each handheld reports every periodS, phases spread evenly; a slow walk (~1.4 m/s).
  const pos = input.start.map((p) => ({ ...p }));
  let published = 0;
  let acked = 0;
  const ackMs: number[] = [];
  const timers: NodeJS.Timeout[] = [];
  const period = input.periodS * 1000;
  clients.forEach((c, i) => {
    const id = (c.options.clientId as string);
    const k = Number(id.slice(3));
    const send = () => {
      const p = pos[k]!;
      p.lat += (Math.random() - 0.5) * 0.00012;
      p.lon += (Math.random() - 0.5) * 0.00012;
      const ts = Date.now();
      published++;
      c.publish(`gridlink/v1/${id}/location`, JSON.stringify({ ts, lat: p.lat, lon: p.lon, acc: 8, batt: 80 }), { qos: 1 }, (err) => {
        if (!err && measuring) {
          acked++;
          ackMs.push(Date.now() - ts);
        }
      });
    };
    timers.push(setTimeout(() => {
      send();
      timers.push(setInterval(send, period));
    }, (i / clients.length) * period));
  });
  await new Promise((r) => setTimeout(r, period + 3000)); // every handheld has reported once
  measuring = true;
  published = 0;
  out({ phase: 'steady' });
  await new Promise((r) => setTimeout(r, input.seconds * 1000));
  measuring = false;
  const total = perConsole.reduce((a, b) => a + b, 0);
  out({
    phase: 'done',
    publishedPerS: +(published / input.seconds).toFixed(1),
    qos1AckMs: summary(ackMs),
    publishToConsoleMs: summary(delays),
    consoleItemsPerS: { total: +(total / input.seconds).toFixed(0), unscopedConsole: +((perConsole[0] ?? 0) / input.seconds).toFixed(0), streetConsole: +((perConsole.at(-1) ?? 0) / input.seconds).toFixed(0) },
    positionsEventsPerConsolePerS: +(eventsPerConsole.reduce((a, b) => a + b, 0) / eventsPerConsole.length / input.seconds).toFixed(2),
    loadgenRssMb: Math.round(process.memoryUsage().rss / 1e6),
  });
  for (const t of timers) clearInterval(t);
  for (const s of sockets) s.close();
  await Promise.all(clients.map((c) => c.endAsync(true).catch(() => undefined)));
  process.exit(0);
}

async function main() {
  if (process.argv[2] === 'loadgen') return loadgen(process.argv[3]!);
  const index = indexBench();
  process.stderr.write(`index: ${JSON.stringify(index)}\n`);
  const { candidates, live } = await hubBench();
  process.stdout.write(`${JSON.stringify({ bench: 'dispatch', machine: { cpus: os.cpus().length, load1: os.loadavg()[0], node: process.version }, index, candidates, live }, null, 2)}\n`);
  process.exit(0);
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack}\n`);
  process.exit(1);
});
