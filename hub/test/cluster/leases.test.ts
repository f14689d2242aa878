/**
 * Leases on PostgreSQL (two nodes in one process, one database), their
 * fences, and the cluster settings a node refuses to start with.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/core/config.js';
import { createLogger } from '../../src/core/logger.js';
import { checkClusterSettings, loadClusterConfig } from '../../src/cluster/config.js';
import { LEASES, LeaseLostError, PgLeases, soleLeases } from '../../src/cluster/leases.js';
import { openDb, storeMigrations, type Db } from '../../src/store/index.js';
import { migrate } from '../../src/store/migrate.js';
import { applyRetention } from '../../src/store/schema.js';
import { freshPostgresUrl, PG_URL, REQUIRE_ALL, until } from '../helpers.js';

const logger = createLogger('silent');
const names = Object.keys(LEASES);

describe('cluster settings', () => {
  it('refuses a node id, a Redis URL or a cluster without a shared secret and PostgreSQL, naming each', () => {
    expect(() => loadClusterConfig({ GRIDLINK_NODE_ID: '../etc' })).toThrow(/GRIDLINK_NODE_ID/);
    expect(() => loadClusterConfig({ GRIDLINK_NODE_ID: 'x'.repeat(65) })).toThrow(/GRIDLINK_NODE_ID/);
    expect(() => loadClusterConfig({ GRIDLINK_REDIS_URL: 'http://127.0.0.1:6379' })).toThrow(/GRIDLINK_REDIS_URL/);
    expect(() => loadClusterConfig({ GRIDLINK_LEASE_TTL_MS: '10' })).toThrow(/GRIDLINK_LEASE_TTL_MS/);
    try {
      checkClusterSettings({ GRIDLINK_REDIS_URL: 'redis://127.0.0.1:6379', DATABASE_URL: 'memory://' });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).problems.join('\n')).toMatch(/GRIDLINK_JWT_SECRET[\s\S]*DATABASE_URL/);
    }
    // Without Redis nothing more is asked of the single process.
    expect(checkClusterSettings({}).redisUrl).toBeUndefined();
    expect(loadClusterConfig({}).nodeId).toMatch(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/);
  });

  it('gives the single process every lease, and fences that run the work as before: token 0, no transaction, no check', async () => {
    const l = soleLeases('solo');
    for (const n of names) expect(l.holds(n as keyof typeof LEASES)).toBe(true);
    expect(l.shared).toBe(false);
    const db = await openDb({ url: 'memory://', dataDir: '.' });
    try {
      const f = l.fence('rules.timers');
      expect(f.token).toBe(0);
      // The work gets the database itself (not a transaction of it) and its answer back.
      let got: unknown = null;
      expect(await f.run(db, async (q) => ((got = q), 7))).toBe(7);
      expect(got).toBe(db);
      await f.check(db);
      // A failure of the work is the work's, never a refusal.
      await expect(f.run(db, async () => { throw new LeaseLostError('rules.timers', 0); })).rejects.toThrow(LeaseLostError);
      expect(f.refused(new LeaseLostError('rules.timers', 0))).toBe(false);
      expect(Object.values(l.refusals()).every((n) => n === 0)).toBe(true);
    } finally {
      await db.close();
    }
  });
});

describe.runIf(PG_URL || REQUIRE_ALL)('leases on PostgreSQL', () => {
  const dbs: Db[] = [];
  const all: PgLeases[] = [];
  afterAll(async () => {
    for (const l of all) await l.stop().catch(() => undefined);
    for (const d of dbs) await d.close().catch(() => undefined);
  });
  async function node(id: string, url: string, clock?: () => number): Promise<PgLeases> {
    const db = await openDb({ url, dataDir: '.' });
    dbs.push(db);
    const l = new PgLeases(db, id, 1_000, logger, clock);
    all.push(l);
    return l;
  }

  it('has one holder per lease, hands over at once on a clean stop and after the lease time when the holder goes silent', async () => {
    const url = await freshPostgresUrl(PG_URL!);
    const a = await node('a', url);
    await a.start();
    const b = await node('b', url);
    await b.start();
    for (const n of names) {
      expect(a.holds(n as keyof typeof LEASES), n).toBe(true);
      expect(b.holds(n as keyof typeof LEASES), n).toBe(false);
      expect(b.roles()[n as keyof typeof LEASES].holder).toBe('a');
    }
    const tokenA = a.roles().retention.token;
    // A clean stop gives everything back: b takes it on its next round, with a higher token.
    await a.stop();
    expect(a.holds('retention')).toBe(false);
    await b.beat();
    expect(b.holds('retention')).toBe(true);
    expect(b.roles().retention.token).toBe(tokenA + 1);

    // c's own clock stands still past its deadline: it must stop believing without being told.
    let frozen = 0;
    const c = await node('c', url, () => frozen);
    await c.start();
    expect(c.holds('rules.timers')).toBe(false);
    // b goes silent (its database is gone, as for a node cut off or SIGKILLed): it stops believing on its own
    // clock, and c takes over once the lease time has passed on the database clock.
    await dbs[1]!.close();
    await until(() => !b.holds('rules.timers'), 20_000, 50);
    await until(async () => (await c.beat(), c.holds('rules.timers')), 20_000, 100);
    expect(c.roles()['rules.timers'].holder).toBe('c');
    frozen += 10_000;
    expect(c.holds('rules.timers')).toBe(false);
  });

  /**
   * Two nodes on a database with the store's tables, renewing only when the
   * test says so (no timers: nothing renews or takes a lease behind the
   * test's back); `a` holds every lease.
   */
  async function pair(ttlA = 30_000): Promise<{ a: PgLeases; b: PgLeases; dbA: Db; dbB: Db; admin: Db }> {
    const url = await freshPostgresUrl(PG_URL!);
    const open = async () => {
      const db = await openDb({ url, dataDir: '.' });
      dbs.push(db);
      return db;
    };
    const admin = await open();
    await migrate(admin, storeMigrations);
    // The lease tables, made the way a node makes them; it gives its leases back at once.
    const setup = new PgLeases(admin, 'setup', 1_000, logger);
    await setup.start();
    await setup.stop();
    const dbA = await open();
    const dbB = await open();
    const a = new PgLeases(dbA, 'a', ttlA, logger);
    const b = new PgLeases(dbB, 'b', 30_000, logger);
    all.push(a, b);
    await a.beat();
    await b.beat();
    expect(a.holds('retention')).toBe(true);
    expect(b.holds('retention')).toBe(false);
    return { a, b, dbA, dbB, admin };
  }
  const oldLetters = (db: Db, n: number) =>
    db.query(`insert into dead_letters (ts, device_id, channel, reason, payload_bytes) select now() - interval '40 days', 'd-' || i, 'event', 'test', 0 from generate_series(1, $1::int) i`, [n]);
  const letters = async (db: Db) => (await db.query<{ n: number }>('select count(*)::int as n from dead_letters'))[0]!.n;

  it('refuses the writes of a holder whose token is stale, and lets the new holder write', async () => {
    const { a, b, dbA, dbB, admin } = await pair();
    await oldLetters(admin, 3);
    // a took its fence while it held the lease; then it stalled, the lease expired and b took it.
    const stale = a.fence('retention');
    await admin.query("update cluster_leases set expires_at = now() - interval '1 second' where name = 'retention'");
    await b.beat();
    expect(b.holds('retention')).toBe(true);
    expect(b.roles().retention.token).toBe(stale.token + 1);
    // a still believes (its own clock) but the database refuses: nothing deleted, the refusal counted.
    expect(a.holds('retention')).toBe(true);
    const err = await stale.run(dbA, (q) => applyRetention(dbA, 30, q)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LeaseLostError);
    expect(stale.refused(err)).toBe(true);
    expect(a.refusals().retention).toBe(1);
    expect(await letters(admin)).toBe(3);
    // The same node taking the lease back later gets a new token: a run begun under the old one stays refused.
    const fresh = b.fence('retention');
    expect((await fresh.run(dbB, (q) => applyRetention(dbB, 30, q))).deleted).toBe(3);
    expect(b.refusals().retention).toBe(0);
    // Other leases a still holds are not touched by the refusal.
    await a.fence('rules.timers').run(dbA, async (q) => q.query('select 1'));
    expect(a.refusals()['rules.timers']).toBe(0);
  });

  it('keeps a takeover waiting while the holder\'s fenced transaction is open; the holder\'s own renewals do not wait', async () => {
    const { a, b, dbA, admin } = await pair();
    await oldLetters(admin, 2);
    const before = a.roles().retention.token;
    const deleted = await a.fence('retention').run(dbA, async (q) => {
      // The holder renews inside its own fenced transaction (a renewal that waited for it would never return).
      await a.beat();
      expect(a.holds('retention')).toBe(true);
      // The lease runs out on the database clock meanwhile: b's round skips the row this transaction keeps.
      await admin.query("update cluster_leases set expires_at = now() - interval '1 second' where name = 'retention'");
      await b.beat();
      expect(b.holds('retention')).toBe(false);
      return (await applyRetention(dbA, 30, q)).deleted;
    });
    expect(deleted).toBe(2);
    // Committed: now b takes it over, one token up.
    await b.beat();
    expect(b.holds('retention')).toBe(true);
    expect(b.roles().retention.token).toBe(before + 1);
  });

  it('ends the fenced transaction of a holder frozen inside it, so the lease passes and the frozen writes are refused', async () => {
    // The server ends a fenced transaction idle for the lease time: 1.5 s here.
    const { a, b, dbA, admin } = await pair(1_500);
    await oldLetters(admin, 2);
    const fence = a.fence('retention');
    const err = await fence.run(dbA, async (q) => {
      // Frozen after the check: the lease expires, and the server ends this idle transaction after the lease time.
      await admin.query("update cluster_leases set expires_at = now() - interval '1 second' where name = 'retention'");
      await until(async () => (await b.beat(), b.holds('retention')), 20_000, 100);
      await applyRetention(dbA, 30, q);
    }).catch((e: unknown) => e);
    expect((err as { code?: string }).code).toBe('25P03');
    expect(fence.refused(err)).toBe(true);
    expect(a.refusals().retention).toBe(1);
    expect(await letters(admin)).toBe(2);
    // a's pool lost that connection only: its next statement runs.
    expect(await dbA.query('select 1 as x')).toEqual([{ x: 1 }]);
  });
});
