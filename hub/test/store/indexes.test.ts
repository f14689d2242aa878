import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { openDb, storeMigrations } from '../../src/store/index.js';
import { migrate } from '../../src/store/migrate.js';
import { engines, freshPostgresUrl } from '../helpers.js';

const TIME_SERIES = ['alerts', 'events', 'positions', 'readings'];

/**
 * Time-series tables are read per device (their primary key) and by time only
 * for retention and backtests: BRIN indexes on `ts` and `received_at` serve
 * those, and no b-tree on time is paid for on every insert.
 */
describe.each(engines())('time indexes on $name', ({ name, url }) => {
  it('should index ts and received_at with BRIN and keep no b-tree on time alone', async () => {
    const dbUrl = name === 'postgres' ? await freshPostgresUrl(url) : url;
    const db = await openDb({ url: dbUrl, dataDir: '' });
    try {
      await migrate(db, storeMigrations);
      const rows = await db.query<{ tablename: string; indexname: string; indexdef: string }>(
        `select tablename, indexname, indexdef from pg_indexes where schemaname = current_schema() and tablename = any($1::text[]) order by 1, 2`,
        [TIME_SERIES],
      );
      for (const t of TIME_SERIES) {
        const defs = rows.filter((r) => r.tablename === t).map((r) => r.indexdef.replace(/ ON \S+/, ' ON t'));
        expect(defs).toEqual(expect.arrayContaining([
          expect.stringMatching(/USING brin \(ts\)$/),
          expect.stringMatching(/USING brin \(received_at\)$/),
          expect.stringMatching(/UNIQUE INDEX .* USING btree \(device_id, .*ts\)$/),
        ]));
        expect(defs.filter((d) => /USING btree \(ts( desc)?\)$/i.test(d))).toEqual([]);
      }

      // With 40 days of rows from 20 sensors (in time order, as they arrive), the planner answers
      // retention's `ts <` and a backtest's `received_at` window from them.
      await db.exec(`
        insert into readings (ts, device_id, metric, value, received_at)
        select now() - make_interval(mins => 40 * 1440 - i), 'wl-' || (i % 20), 'water_level_cm', i % 100, now() - make_interval(mins => 40 * 1440 - i)
        from generate_series(1, 40 * 1440) as i;
        analyze readings;
      `);
      const plan = async (sql: string): Promise<string> => {
        if (name === 'postgres') {
          const c = new pg.Client({ connectionString: dbUrl });
          await c.connect();
          try {
            await c.query('set enable_seqscan = off');
            return (await c.query<{ 'QUERY PLAN': string }>(`explain ${sql}`)).rows.map((r) => r['QUERY PLAN']).join('\n');
          } finally {
            await c.end();
          }
        }
        await db.exec('set enable_seqscan = off');
        try {
          return (await db.query<{ 'QUERY PLAN': string }>(`explain ${sql}`)).map((r) => r['QUERY PLAN']).join('\n');
        } finally {
          await db.exec('reset enable_seqscan');
        }
      };
      expect(await plan(`delete from readings where ts < now() - interval '30 days'`)).toContain('readings_ts_brin');
      expect(await plan(`select * from readings where received_at >= now() - interval '1 day' and received_at < now()`)).toContain('readings_received_brin');
    } finally {
      await db.close();
    }
  });
});

/** A TimescaleDB store from before the BRIN step, with compressed chunks, as one running for a week has. */
describe('time indexes on an existing TimescaleDB store', () => {
  it('should move to BRIN with compressed chunks in place and lose no row', async () => {
    const db = await openDb({ url: 'memory://', dataDir: '', pgliteTimescale: true });
    try {
      await migrate(db, storeMigrations.filter((m) => m.id < '004'));
      await db.exec(`insert into readings (ts, device_id, metric, value) select now() - make_interval(hours => i), 'wl-' || (i % 3), 'water_level_cm', i from generate_series(1, 20 * 24) i`);
      const compressed = await db.query(`select compress_chunk(c) from show_chunks('readings', older_than => interval '8 days') c`);
      expect(compressed.length).toBeGreaterThan(0);

      expect(await migrate(db, storeMigrations)).toEqual(['004_brin_time']);
      const idx = await db.query<{ indexdef: string }>("select indexdef from pg_indexes where tablename = 'readings' order by 1");
      expect(idx.map((i) => i.indexdef.replace(/ ON \S+/, ' ON t'))).toEqual([
        'CREATE INDEX readings_received_brin ON t USING brin (received_at)',
        'CREATE INDEX readings_ts_brin ON t USING brin (ts)',
        'CREATE UNIQUE INDEX readings_pkey ON t USING btree (device_id, metric, ts)',
      ]);
      const [n] = await db.query<{ all: number; old: number }>(`select count(*)::int as all, count(*) filter (where ts < now() - interval '8 days 30 minutes')::int as old from readings`);
      expect(n).toEqual({ all: 480, old: 288 });
    } finally {
      await db.close();
    }
  }, 120_000);
});
