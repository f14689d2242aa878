/**
 * npm run bench:ingest — acked QoS 1 rate and ack latency of
 * (a) bare aedes with no hooks (the ceiling), (b) the hub on PostgreSQL,
 * (c) the hub on PGlite. Broker and load generator run in separate processes.
 * Prints one JSON document.
 *
 * Env: BENCH_DEVICES (100), BENCH_WINDOW (in-flight per connection, 10),
 * BENCH_SECONDS (10), BENCH_CLIENT (the load generator's client: raw, the
 * default, or mqttjs; see loadgen.ts), BENCH_DATABASE_URL or TEST_DATABASE_URL for (b),
 * BENCH_SERVER_NODE_ARGS (node flags for the server process, e.g. --cpu-prof),
 * BENCH_PIN (CPUs per process, e.g. server:0,loadgen:1),
 * BENCH_RUN_RULE=1 (the rules module loaded, with a threshold rule every reading ≥ 30 is a pending step
 * of: the cost of evaluating and storing rule state).
 *
 * A hub run's `batches` also gives the hub's own view of a message: from the
 * PUBLISH read to the PUBACK written (`hubAckMsAvg`, and `hubAckP99MsAtMost`,
 * the upper bound of its histogram bucket), against the load generator's
 * send-to-PUBACK `p50Ms`/`p99Ms`, and the hub's event-loop delay p99
 * (`eventLoopDelayP99Ms`: how long a socket read can wait behind other work).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
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

/** Extra node flags for the server process only, e.g. BENCH_SERVER_NODE_ARGS="--cpu-prof --cpu-prof-dir=prof". */
const serverNodeArgs = (process.env.BENCH_SERVER_NODE_ARGS ?? '').split(' ').filter(Boolean);

/**
 * CPUs for each process (Linux `taskset`), e.g. BENCH_PIN=server:0,loadgen:1: the
 * load generator on a core of its own, so its queueing does not share the
 * broker's. PostgreSQL's processes are not the bench's to pin (`taskset -a -p`).
 */
const pins = new Map((process.env.BENCH_PIN ?? '').split(',').filter(Boolean).map((p) => p.split(':') as [string, string]));

function tsx(file: string, args: string[], env: Record<string, string> = {}): ChildProcess {
  // The hub runs with the flags it ships with; bare aedes with Node's defaults.
  const flags = file === 'server.ts' ? [...(args[0] === 'hub' ? HUB_NODE_FLAGS : []), ...serverNodeArgs] : [];
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

async function run(label: string, mode: 'bare' | 'hub', env: Record<string, string>) {
  const server = tsx('server.ts', [mode], { BENCH_DEVICES: String(devices), ...env });
  const next = lines(server);
  const ready = (await next()) as { mqtt: number; devices: Array<{ id: string; secret: string }> };
  const cpu0 = ((await (server.stdin!.write('cpu\n'), next())) as { cpuMs: number }).cpuMs;
  const gen = tsx('loadgen.ts', [JSON.stringify({ mqtt: ready.mqtt, devices: ready.devices, seconds, window, warmupS: 2, client })]);
  const result = await lines(gen)();
  const cpu1 = ((await (server.stdin!.write('cpu\n'), next())) as { cpuMs: number }).cpuMs;
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
  const out = { label, ...result, serverCpuPct: Math.round(((cpu1 - cpu0) / ((result.runS as number) * 1000)) * 100), rows, rowsEqualAcked: rows === null ? null : rows === totalAcked, batches };
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

async function main() {
  const bare = runs.has('bare') ? await run('bare-aedes', 'bare', {}) : { skipped: 'BENCH_RUNS', ackedPerSec: NaN };
  const results: Record<string, unknown> = { bare };
  if (!runs.has('postgres')) results.postgres = { skipped: 'BENCH_RUNS' };
  else if (pgUrl) {
    const db = await freshDb(pgUrl);
    try {
      results.postgres = await run('hub-postgres', 'hub', { DATABASE_URL: db.url });
    } finally {
      await db.drop();
    }
  } else results.postgres = { skipped: 'set BENCH_DATABASE_URL or TEST_DATABASE_URL' };
  results.pglite = runs.has('pglite') ? await run('hub-pglite', 'hub', { DATABASE_URL: 'memory://' }) : { skipped: 'BENCH_RUNS' };
  const bareRate = (bare as unknown as { ackedPerSec: number }).ackedPerSec;
  const ratio = (r: unknown) => (Number.isFinite(bareRate) && r && typeof r === 'object' && 'ackedPerSec' in r ? +((r as { ackedPerSec: number }).ackedPerSec / bareRate).toFixed(3) : null);
  process.stdout.write(
    `${JSON.stringify({
      bench: 'ingest',
      params: { client, devices, windowPerConnection: window, seconds, qos: 1, payload: 'telemetry, 1 metric' },
      results,
      ratioHubToBare: { postgres: ratio(results.postgres), pglite: ratio(results.pglite) },
    }, null, 2)}\n`,
  );
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack}\n`);
  process.exit(1);
});
