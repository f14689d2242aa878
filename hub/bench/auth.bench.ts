/**
 * Device authentication while a burst of wrong console logins arrives.
 * Password hashing (scrypt, 32 MiB) goes through the auth limiter (two at a
 * time), device secrets (scrypt N=1024) do not: this measures a fresh device
 * login's latency alone and under 24 parallel bad logins. Prints JSON.
 */
import { randomBytes } from 'node:crypto';
import { createAuth } from '../src/auth/index.js';
import { testConfig } from '../src/core/config.js';
import { createLogger } from '../src/core/logger.js';
import { DEVICE_COST, hashSecret, verifySecret } from '../src/core/secrets.js';
import { openDb } from '../src/store/index.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 20);
const STORM = 24;

const logger = createLogger('silent');
const config = testConfig();
const db = await openDb({ url: 'memory://', dataDir: config.dataDir, logger, pgliteTimescale: false });
await db.query(`create table if not exists users (id text primary key, username text not null unique, password_hash text not null, role text not null,
  region_id text, display_name text not null default '', enabled boolean not null default true, created_at timestamptz not null default now())`);
const auth = createAuth({ db, config, logger });
await auth.start();

const secret = randomBytes(32).toString('base64url');
const hash = await hashSecret(secret, DEVICE_COST);
async function deviceLogins(n: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await verifySecret(secret, hash);
    out.push(performance.now() - t0);
  }
  return out.sort((a, b) => a - b);
}
const pct = (xs: number[], p: number) => Math.round(xs[Math.min(xs.length - 1, Math.floor(xs.length * p))]! * 10) / 10;

const alone = await deviceLogins(ROUNDS);
let i = 0;
const storm = Array.from({ length: STORM }, () => auth.login(`nobody-${i++}`, 'wrong-password', `10.0.0.${i}`).catch(() => undefined));
const during = await deviceLogins(ROUNDS);
await Promise.all(storm);
// The same burst without the limiter (what the hub did before): every hash at once on libuv's pool.
const pwHash = await hashSecret('some-password');
const unbounded = Array.from({ length: STORM }, () => verifySecret('wrong-password', pwHash));
const duringUnbounded = await deviceLogins(ROUNDS);
await Promise.all(unbounded);

process.stdout.write(`${JSON.stringify({
  deviceLoginMs: { alone: { p50: pct(alone, 0.5), p95: pct(alone, 0.95) }, duringLoginStorm: { p50: pct(during, 0.5), p95: pct(during, 0.95) }, duringUnboundedHashing: { p50: pct(duringUnbounded, 0.5), p95: pct(duringUnbounded, 0.95) } },
  storm: STORM, passwordHashesAtOnceMax: auth.hashing.peak, rounds: ROUNDS,
})}\n`);
await db.close();
