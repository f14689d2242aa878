/**
 * The dispatcher's board at volume: exact counts with 10,000 open cases,
 * paging that returns every open case exactly once (what a reconnect
 * restores), and cases per local (Asia/Shanghai) day without a cap.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemActor } from '../../src/cases/index.js';
import type { CaseSummary } from '../../src/core/services.js';
import { engines } from '../helpers.js';
import { AT, startCaseHub, T0, type CaseHub } from './fixtures.js';

const N = 10_000;

for (const engine of engines()) {
  describe(`the case board at volume (${engine.name})`, () => {
    let h: CaseHub;
    beforeAll(async () => {
      h = await startCaseHub({ databaseUrl: engine.url, rules: false });
      // 10,000 open cases in one statement (the creation path is tested elsewhere): every 5th registered, every 7th dispatched,
      // G-A1 / G-B1 alternating, one per minute before T0.
      await h.hub.ctx.db.query(
        `insert into cases (id, code, title, status, category_code, severity, lat, lon, grid_id, source, deadline, overdue, created_at, updated_at)
         select 'bulk-' || i, 'GL-BULK-' || lpad(i::text, 6, '0'), '暴露垃圾',
                case when i % 7 = 0 then 'dispatched' when i % 5 = 0 then 'registered' else 'reported' end,
                'E0101', 'minor', 30.61, case when i % 2 = 0 then 104.005 else 104.025 end, case when i % 2 = 0 then 'G-A1' else 'G-B1' end, 'rule',
                to_timestamp(($1::bigint - i * 60000 + 4 * 3600000) / 1000.0), i % 3 = 0,
                to_timestamp(($1::bigint - i * 60000) / 1000.0), to_timestamp(($1::bigint - i * 60000) / 1000.0)
           from generate_series(1, $2::int) as i`,
        [T0, N],
      );
    });
    afterAll(async () => h?.stop());

    // Hand-counted: multiples of 7 dispatched (1428), other multiples of 5 registered (2000 − 285 = 1715), the rest reported (6857).
    it('should count 10,000 open cases exactly, by status and region', async () => {
      const all = await h.as('dispatcher')<{ total: number; byStatus: Record<string, number>; overdue: number }>('GET', '/cases/counts?status=reported,registered,dispatched,accepted,on_scene,resolved');
      expect(all.status, JSON.stringify(all.body)).toBe(200);
      expect(all.body.total).toBe(N);
      expect(all.body.byStatus).toMatchObject({ reported: 6857, registered: 1715, dispatched: 1428, accepted: 0, closed: 0 });
      expect(all.body.overdue).toBe(3333);
      const a = (await h.as('dispatcherA')<{ total: number }>('GET', '/cases/counts')).body;
      expect(a.total).toBe(N / 2);
      expect((await h.as('dispatcherA')('GET', '/cases/counts?gridId=S-B')).status).toBe(404);
      expect((await h.as('dispatcher')('GET', '/cases/counts?status=lost')).status).toBe(400);
    });

    it('should page through every open case exactly once, as a reconnect does', async () => {
      const seen = new Set<string>();
      let cursor: string | undefined;
      let pages = 0;
      do {
        const r = await h.as('dispatcher')<{ items: CaseSummary[]; nextCursor?: string }>('GET', `/cases?status=reported,registered,dispatched&limit=1000${cursor ? `&cursor=${cursor}` : ''}`);
        for (const c of r.body.items) seen.add(c.id);
        cursor = r.body.nextCursor;
        pages++;
      } while (cursor && pages < 20);
      expect(pages).toBe(10); // the list reads one row ahead, so page 10 knows it is the last
      expect(seen.size).toBe(N);
    });

    it('should count cases per Asia/Shanghai day without a cap', async () => {
      // 23:30 and 00:30 CST fall on two local days though both are 26 November in UTC.
      const sys = systemActor('test');
      const late = Date.UTC(2026, 11, 26, 15, 30);
      const early = Date.UTC(2026, 11, 26, 16, 30);
      for (const t of [late, early, early + 60_000]) {
        h.clock.t = t;
        await h.cases.create({ category: 'E0101', ...AT.A2, source: 'officer', actor: sys });
      }
      const r = await h.as('officer')<{ items: Array<{ date: string; count: number }> }>('GET', `/stats/cases-per-day?from=${Date.UTC(2026, 11, 25, 16)}&to=${Date.UTC(2026, 11, 27, 16)}`);
      expect(r.body.items).toEqual([{ date: '2026-12-26', count: 1 }, { date: '2026-12-27', count: 2 }]);
      // The bulk: one case a minute for 10,000 minutes before T0 (2026-11-26 09:00 CST) — 1,440 a day, none capped.
      const bulk = await h.as('officer')<{ items: Array<{ date: string; count: number }> }>('GET', `/stats/cases-per-day?from=${T0 - 8 * 86_400_000}&to=${T0}`);
      const total = bulk.body.items.reduce((s, x) => s + x.count, 0);
      expect(total).toBe(N);
      expect(bulk.body.items.find((x) => x.date === '2026-11-25')?.count).toBe(1440);
      expect(bulk.body.items.at(-1)).toEqual({ date: '2026-11-26', count: 540 }); // 00:00–09:00 CST
      expect((await h.as('officer')('GET', '/stats/cases-per-day?from=10&to=5')).status).toBe(400);
    });
  });
}
