import { describe, expect, it } from 'vitest';
import { openDb, type Migration } from '../../src/store/index.js';
import { MIGRATION_LOCK, migrate } from '../../src/store/migrate.js';
import { engines, freshPostgresUrl } from '../helpers.js';

const pgEngine = engines().find((e) => e.name === 'postgres');

/**
 * Migrations take a session advisory lock so that hub nodes starting at once
 * apply each step once. The lock must be released on the session that took
 * it, whatever connections the steps themselves used.
 */
describe.skipIf(!pgEngine)('migrations on PostgreSQL', () => {
  const advisoryHeld = async (db: Awaited<ReturnType<typeof openDb>>) =>
    (await db.query<{ n: number }>("select count(*)::int as n from pg_locks where locktype = 'advisory' and objid = $1 and granted", [MIGRATION_LOCK]))[0]!.n;

  it('should release the lock on the session that took it when a step uses several connections', async () => {
    const url = await freshPostgresUrl(pgEngine!.url);
    const db = await openDb({ url, dataDir: '' });
    try {
      // The second query finishes last, so its connection is the pool's next idle one.
      const steps: Migration[] = [{
        id: '900-parallel',
        up: async (d) => {
          await Promise.all([d.query('select pg_sleep(0)'), d.query('select pg_sleep(0.2)')]);
          await d.query('create table m_probe (id int)');
        },
      }];
      expect(await migrate(db, steps)).toEqual(['900-parallel']);
      expect(await advisoryHeld(db)).toBe(0);
    } finally {
      await db.close();
    }
  });

  it('should apply each step once when two nodes migrate at the same time', async () => {
    const url = await freshPostgresUrl(pgEngine!.url);
    const [a, b] = await Promise.all([openDb({ url, dataDir: '' }), openDb({ url, dataDir: '' })]);
    let runs = 0;
    const steps: Migration[] = [{
      id: '901-once',
      up: async (d) => {
        runs++;
        await d.query('select pg_sleep(0.1)');
        // Fails on the second run: the table exists.
        await d.query('create table m_once (id int)');
      },
    }];
    try {
      const [ra, rb] = await Promise.all([migrate(a, steps), migrate(b, steps)]);
      expect(runs).toBe(1);
      expect([...ra, ...rb]).toEqual(['901-once']);
      expect(await advisoryHeld(a)).toBe(0);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });
});
