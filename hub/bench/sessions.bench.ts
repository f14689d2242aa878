/**
 * npm run bench:sessions — what holding handheld revokes without Redis costs a
 * cluster node (docs/cluster.md, "Handheld sessions"): a request's session
 * check from memory against a `fresh` one (the session's row read by primary
 * key, as every write request and app socket connect does in a cluster), and
 * one periodic re-read of every held session (every 5 s). On PostgreSQL
 * (BENCH_DATABASE_URL or TEST_DATABASE_URL, in a database of its own) with
 * BENCH_SESSIONS held sessions (5,000: one per worker of DOMAIN.md's city),
 * PGlite otherwise. Prints JSON.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { SessionStore } from '../src/mobile/sessions.js';
import { mobileMigrations } from '../src/mobile/schema.js';
import { openDb, type Db } from '../src/store/index.js';

const N = Number(process.env.BENCH_SESSIONS ?? 5_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 2_000);
const base = process.env.BENCH_DATABASE_URL ?? process.env.TEST_DATABASE_URL;

let db: Db;
let drop = async () => {};
if (base) {
  const name = `gridlink_bench_sessions_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: base });
  await admin.connect();
  await admin.query(`create database ${name}`);
  const url = new URL(base);
  url.pathname = `/${name}`;
  db = await openDb({ url: url.toString(), dataDir: '' });
  drop = async () => {
    await admin.query(`drop database if exists ${name} with (force)`);
    await admin.end();
  };
} else {
  db = await openDb({ url: 'memory://', dataDir: '' });
}
for (const m of mobileMigrations) await m.up(db);

const store = new SessionStore(db, Date.now, { shared: true });
const tokens: string[] = [];
for (let i = 0; i < N; i++) tokens.push((await store.create({ userId: `u-${i}`, workerId: `w-${i}`, deviceId: `hh-${i}`, ttlS: 3600 })).token);

const pct = (xs: number[], p: number) => Math.round(xs[Math.min(xs.length - 1, Math.floor(xs.length * p))]! * 1000) / 1000;
async function checks(fresh: boolean): Promise<{ p50: number; p99: number; meanMs: number }> {
  const out: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    const t0 = performance.now();
    if (!(await store.check(tokens[(i * 7919) % N]!, { fresh }))) throw new Error('session refused');
    out.push(performance.now() - t0);
  }
  const mean = out.reduce((a, b) => a + b, 0) / out.length;
  out.sort((a, b) => a - b);
  return { p50: pct(out, 0.5), p99: pct(out, 0.99), meanMs: Math.round(mean * 1000) / 1000 };
}

// Warm the pool and the plans, then measure in turns.
await checks(true);
const memory1 = await checks(false);
const fresh1 = await checks(true);
const memory2 = await checks(false);
const fresh2 = await checks(true);
const resync: number[] = [];
for (let i = 0; i < 5; i++) {
  const t0 = performance.now();
  const dropped = await store.resync();
  if (dropped) throw new Error(`re-read dropped ${dropped} active sessions`);
  resync.push(Math.round((performance.now() - t0) * 10) / 10);
}
await db.close();
await drop();
process.stdout.write(`${JSON.stringify({ engine: base ? 'postgres' : 'pglite', sessions: N, rounds: ROUNDS, checkMs: { memory: [memory1, memory2], fresh: [fresh1, fresh2] }, resyncAllMs: resync }, null, 2)}\n`);
