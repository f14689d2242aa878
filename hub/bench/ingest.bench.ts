/**
 * npm run bench:ingest — acked QoS 1 rate and ack latency of
 * (a) bare aedes with no hooks (the ceiling), (b) the hub on PostgreSQL,
 * (c) the hub on PGlite. Broker and load generator run in separate processes.
 * Prints one JSON document.
 *
 * Env: BENCH_DEVICES (100), BENCH_WINDOW (in-flight per connection, 10),
 * BENCH_SECONDS (10), BENCH_ROUNDS (3, see main), BENCH_CLIENT (the load generator's client: raw, the
 * default, or mqttjs; see loadgen.ts), BENCH_DATABASE_URL or TEST_DATABASE_URL for (b),
 * BENCH_SERVER_NODE_ARGS (node flags for the server process, e.g. --cpu-prof), BENCH_LOADGEN_NODE_ARGS (the same for the load generator),
 * BENCH_PIN (CPUs per process, e.g. server:0,loadgen:1),
 * BENCH_RUN_RULE=1 (the rules module loaded, with a threshold rule every reading ≥ 30 is a pending step
 * of: the cost of evaluating and storing rule state).
 *
 * A hub run's `batches` also gives the hub's own view of a message: from the
 * PUBLISH read to the PUBACK written (`hubAckMsAvg`, and `hubAckP99MsAtMost`,
 * the upper bound of its histogram bucket), against the load generator's
 * send-to-PUBACK `p50Ms`/`p99Ms`, and the hub's event-loop delay p99
 * (`eventLoopDelayP99Ms`: how long a socket read can wait behind other work).
 *
 * Every run says where the machine's CPU went: `serverCpuPct`, `loadgenCpuPct`,
 * and on a local PostgreSQL `postgresCpuPct` (all its processes), and the same
 * as CPU time per acknowledged message (`cpuUsPerMessage`): with the load
 * generator on the same cores, their sum is what bounds the rate.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { readdirSync, readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import pg from 'pg';
import { HUB_NODE_FLAGS } from '../src/node-flags.js';

const here = import.meta.dirname;
const devices = Number(process.env.BENCH_DEVICES ?? 100);
const window = Number(process.env.BENCH_WINDOW ?? 10);
const seconds = Number(process.env.BENCH_SECONDS ?? 10);
/** The load generator's client: `raw` (a lean MQTT 3.1.1 socket client, the default) or `mqttjs` (one MQTT.js client a device). */
const client = process.env.BENCH_CLIENT === 'mqttjs' ? 'mqttjs' : 'raw';
const pgUrl = process.env.BENCH_DATABASE_URL ?? process.env.TEST_DATABASE_URL;
/** Which runs to do, e.g. BENCH_RUNS=bare,postgres (default all three). */
const runs = new Set((process.env.BENCH_RUNS ?? 'bare,postgres,pglite').split(','));

/** Extra node flags for the server process, e.g. BENCH_SERVER_NODE_ARGS="--cpu-prof --cpu-prof-dir=prof", and for the load generator (BENCH_LOADGEN_NODE_ARGS). */
const serverNodeArgs = (process.env.BENCH_SERVER_NODE_ARGS ?? '').split(' ').filter(Boolean);
const loadgenNodeArgs = (process.env.BENCH_LOADGEN_NODE_ARGS ?? '').split(' ').filter(Boolean);

/**
 * CPUs for each process (Linux `taskset`), e.g. BENCH_PIN=server:0,loadgen:1: the
 * load generator on a core of its own, so its queueing does not share the
 * broker's. PostgreSQL's processes are not the bench's to pin (`taskset -a -p`).
 */
const pins = new Map((process.env.BENCH_PIN ?? '').split(',').filter(Boolean).map((p) => p.split(':') as [string, string]));

function tsx(file: string, args: string[], env: Record<string, string> = {}): ChildProcess {
  // The hub runs with the flags it ships with; bare aedes with Node's defaults.
  const flags = file === 'server.ts' ? [...(args[0] === 'hub' ? HUB_NODE_FLAGS : []), ...serverNodeArgs] : loadgenNodeArgs;
  const argv = [...flags, '--import', 'tsx', path.join(here, file), ...args];
  const cpus = pins.get(file.replace(/\.ts$/, ''));
  const [cmd, cmdArgs] = cpus ? ['taskset', ['-c', cpus, process.execPath, ...argv]] : [process.execPath, argv];
  return spawn(cmd, cmdArgs, { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'inherit'] });
}

function lines(child: ChildProcess): () => Promise<Record<string, unknown>> {
  const rl = createInterface({ input: child.stdout! });
  const queue: string[] = [];
  const waiters: Array<(l: string) => void> = [];
  rl.on('line', (l) => {
    if (!l.startsWith('{')) return;
    const w = waiters.shift();
    if (w) w(l);
    else queue.push(l);
  });
  return () => new Promise((resolve) => {
    const l = queue.shift();
    if (l) resolve(JSON.parse(l));
    else waiters.push((x) => resolve(JSON.parse(x)));
  });
}

type RunResult = Record<string, unknown> & { ackedPerSec: number; p99Ms?: number; rowsEqualAcked?: boolean | null };

/**
 * CPU time (ms) of every `postgres` process on this machine, by pid (Linux
 * /proc; null elsewhere or for a database on another host): the database's
 * share of the two cores, backends, WAL writer and checkpointer alike.
 */
function postgresCpuMs(url: string | undefined): Map<string, number> | null {
  if (!url?.startsWith('postgres') || !['127.0.0.1', 'localhost', '::1', '[::1]'].includes(new URL(url).hostname)) return null;
  const out = new Map<string, number>();
  try {
    for (const pid of readdirSync('/proc')) {
      if (!/^\d+$/.test(pid)) continue;
      try {
        const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
        const close = stat.lastIndexOf(')');
        if (stat.slice(stat.indexOf('(') + 1, close) !== 'postgres') continue;
        const f = stat.slice(close + 2).split(' ');
        // utime and stime are fields 14 and 15 of stat, in USER_HZ (100 a second on Linux).
        out.set(pid, (Number(f[11]) + Number(f[12])) * 10);
      } catch {
        // the process ended between readdir and read
      }
    }
  } catch {
    return null;
  }
  return out;
}

async function run(label: string, mode: 'bare' | 'hub', env: Record<string, string>): Promise<RunResult> {
  const server = tsx('server.ts', [mode], { BENCH_DEVICES: String(devices), ...env });
  const next = lines(server);
  const ready = (await next()) as { mqtt: number; devices: Array<{ id: string; secret: string }> };
  const cpu0 = ((await (server.stdin!.write('cpu\n'), next())) as { cpuMs: number }).cpuMs;
  const db0 = mode === 'hub' ? postgresCpuMs(env.DATABASE_URL) : null;
  const gen = tsx('loadgen.ts', [JSON.stringify({ mqtt: ready.mqtt, devices: ready.devices, seconds, window, warmupS: 2, client })]);
  const result = (await lines(gen)()) as RunResult;
  const cpu1 = ((await (server.stdin!.write('cpu\n'), next())) as { cpuMs: number }).cpuMs;
  const db1 = db0 && postgresCpuMs(env.DATABASE_URL);
  let rows: number | null = null;
  let batches: unknown = null;
  if (mode === 'hub') {
    await new Promise((r) => setTimeout(r, 500));
    server.stdin!.write('count\n');
    const c = (await next()) as { rows: number; batches: unknown };
    rows = c.rows;
    batches = c.batches;
  }
  server.stdin!.write('stop\n');
  await next().catch(() => undefined);
  // The server exits by itself (and writes its --cpu-prof); kill only a straggler.
  await new Promise((r) => {
    const t = setTimeout(r, 5_000);
    server.once('exit', () => (clearTimeout(t), r(undefined)));
  });
  server.kill();
  const totalAcked = result.totalAcked as number;
  const runMs = (result.runS as number) * 1000;
  let dbMs: number | null = null;
  if (db0 && db1) {
    dbMs = 0;
    for (const [pid, ms] of db1) dbMs += ms - (db0.get(pid) ?? 0);
  }
  // Where the two cores went, per acknowledged message: the server process, PostgreSQL's processes, the load generator.
  const us = (ms: number | null) => (ms === null || !totalAcked ? null : +((ms * 1000) / totalAcked).toFixed(1));
  const cpuUsPerMessage = {
    server: us(cpu1 - cpu0),
    postgres: us(dbMs),
    loadgen: +(((result.loadgenCpuPct as number) * 1e4) / (result.ackedPerSec as number)).toFixed(1),
  };
  const out = {
    label, ...result,
    serverCpuPct: Math.round(((cpu1 - cpu0) / runMs) * 100),
    postgresCpuPct: dbMs === null ? null : Math.round((dbMs / runMs) * 100),
    cpuUsPerMessage,
    rows, rowsEqualAcked: rows === null ? null : rows === totalAcked, batches,
  };
  process.stderr.write(`${label}: ${JSON.stringify(out)}\n`);
  return out;
}

async function admin(url: string, sql: string): Promise<void> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}

/** A database of the run's own, dropped afterwards (a run leaves none behind). */
async function freshDb(url: string): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `gridlink_bench_${Date.now()}`;
  await admin(url, `create database ${name}`);
  const u = new URL(url);
  u.pathname = `/${name}`;
  return { url: u.toString(), drop: () => admin(url, `drop database if exists ${name} with (force)`) };
}

/** One run of each mode asked for: bare aedes, then the hub on PostgreSQL, then on PGlite. */
async function round(): Promise<Record<'bare' | 'postgres' | 'pglite', RunResult | { skipped: string }>> {
  const bare = runs.has('bare') ? await run('bare-aedes', 'bare', {}) : { skipped: 'BENCH_RUNS' };
  let postgres: RunResult | { skipped: string };
  if (!runs.has('postgres')) postgres = { skipped: 'BENCH_RUNS' };
  else if (pgUrl) {
    const db = await freshDb(pgUrl);
    try {
      postgres = await run('hub-postgres', 'hub', { DATABASE_URL: db.url });
    } finally {
      await db.drop();
    }
  } else postgres = { skipped: 'set BENCH_DATABASE_URL or TEST_DATABASE_URL' };
  const pglite = runs.has('pglite') ? await run('hub-pglite', 'hub', { DATABASE_URL: 'memory://' }) : { skipped: 'BENCH_RUNS' };
  return { bare, postgres, pglite } as Record<'bare' | 'postgres' | 'pglite', RunResult | { skipped: string }>;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

/**
 * BENCH_ROUNDS (default 3) rounds of bare → PostgreSQL → PGlite, each hub run
 * set against the bare run of its own round, a minute apart at most: a shared
 * machine's speed drifts by tens of percent within minutes, and a ratio of
 * runs taken far apart measures the drift. Each mode reports its median run
 * (by rate) and every round; the ratio is the median of the rounds' ratios.
 */
async function main() {
  const rounds = Math.max(1, Number(process.env.BENCH_ROUNDS ?? 3));
  const done: Array<Awaited<ReturnType<typeof round>>> = [];
  for (let i = 0; i < rounds; i++) done.push(await round());
  const measured = (r: unknown): r is RunResult => !!r && typeof r === 'object' && 'ackedPerSec' in r;
  const results: Record<string, unknown> = {};
  const ratios: Record<string, number[]> = { postgres: [], pglite: [] };
  for (const mode of ['bare', 'postgres', 'pglite'] as const) {
    const all = done.map((d) => d[mode]).filter(measured);
    if (!all.length) {
      results[mode] = done[0]![mode];
      continue;
    }
    const byRate = [...all].sort((a, b) => a.ackedPerSec - b.ackedPerSec);
    results[mode] = {
      ...byRate[(byRate.length - 1) >> 1],
      rowsEqualAcked: mode === 'bare' ? null : all.every((r) => r.rowsEqualAcked === true),
      rounds: all.map((r) => ({ ackedPerSec: r.ackedPerSec, p50Ms: r.p50Ms, p99Ms: r.p99Ms, serverCpuPct: r.serverCpuPct, postgresCpuPct: r.postgresCpuPct, loadgenCpuPct: r.loadgenCpuPct, cpuUsPerMessage: r.cpuUsPerMessage })),
    };
    if (mode !== 'bare') {
      for (const d of done) if (measured(d.bare) && measured(d[mode])) ratios[mode]!.push(+(d[mode].ackedPerSec / d.bare.ackedPerSec).toFixed(3));
    }
  }
  const ratio = (mode: string) => (ratios[mode]!.length ? +median(ratios[mode]!).toFixed(3) : null);
  process.stdout.write(
    `${JSON.stringify({
      bench: 'ingest',
      params: { client, devices, windowPerConnection: window, seconds, rounds, qos: 1, payload: 'telemetry, 1 metric' },
      results,
      ratioHubToBare: { postgres: ratio('postgres'), pglite: ratio('pglite') },
      ratioHubToBareByRound: ratios,
    }, null, 2)}\n`,
  );
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack}\n`);
  process.exit(1);
});
