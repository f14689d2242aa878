/**
 * Leases on PostgreSQL (two nodes in one process, one database) and the
 * cluster settings a node refuses to start with.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/core/config.js';
import { createLogger } from '../../src/core/logger.js';
import { checkClusterSettings, loadClusterConfig } from '../../src/cluster/config.js';
import { LEASES, PgLeases, soleLeases } from '../../src/cluster/leases.js';
import { openDb, type Db } from '../../src/store/index.js';
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

  it('gives the single process every lease', () => {
    const l = soleLeases('solo');
    for (const n of names) expect(l.holds(n as keyof typeof LEASES)).toBe(true);
    expect(l.shared).toBe(false);
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
});
