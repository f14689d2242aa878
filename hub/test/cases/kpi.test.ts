import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemActor, type KpiResult } from '../../src/cases/index.js';
import type { CaseAction } from '../../src/core/services.js';
import { engines } from '../helpers.js';
import { AT, startCaseHub, T0, type CaseHub } from './fixtures.js';

const MIN = 60_000;

for (const engine of engines()) {
  describe(`KPIs on a known set of cases (${engine.name})`, () => {
    let h: CaseHub;
    beforeAll(async () => {
      h = await startCaseHub({ databaseUrl: engine.url, rules: false });
      // The figures below were counted by hand in calendar hours (working time: calendar.test.ts).
      expect((await h.api('PATCH', '/categories/E0101', { limitUnit: 'calendar' })).status).toBe(200);
      const sys = systemActor('kpi-test');
      /** Creates a case, then takes each action after advancing the clock by its minutes. */
      const run = async (at: { lat: number; lon: number }, steps: Array<[number, CaseAction, string?]>) => {
        const { case: c } = await h.cases.create({ category: 'E0101', ...at, source: 'officer', actor: sys });
        for (const [min, action, workerId] of steps) {
          h.clock.advance(min * MIN);
          await h.cases.act(c.id, action, sys, workerId ? { workerId } : {});
        }
      };
      // c1: closed on time (2 h of a 4 h limit)
      await run(AT.A1, [[10, 'register'], [10, 'dispatch', 'w1'], [5, 'accept'], [25, 'arrive'], [60, 'resolve'], [10, 'verify']]);
      // c2: declined once, reworked once, closed late (335 min)
      await run(AT.A2, [[20, 'register'], [20, 'dispatch', 'w1'], [5, 'decline'], [5, 'dispatch', 'w2'], [5, 'accept'], [20, 'arrive'], [30, 'resolve'], [10, 'rework'], [5, 'arrive'], [15, 'resolve'], [200, 'verify']]);
      // c3: not a case
      await run(AT.A1, [[5, 'reject']]);
      // c4: registered, never dispatched
      await run(AT.A1, [[15, 'register']]);
      // c5 (street B): resolved, waiting for the check
      await run(AT.B1, [[10, 'register'], [10, 'dispatch', 'w2'], [10, 'arrive'], [10, 'resolve']]);
      h.clock.advance(5 * 60 * MIN); // every deadline has passed
    });
    afterAll(async () => h?.stop());

    it('should compute every rate, stage time and status count by the stated formulas', async () => {
      const r = await h.as('officer')<KpiResult>('GET', `/stats/kpi?from=${T0}&to=${h.clock.t}`);
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      const k = r.body;
      expect(k.total).toBe(5);
      expect(k.byStatus).toEqual({ reported: 0, registered: 1, dispatched: 0, accepted: 0, on_scene: 0, resolved: 1, closed: 2, rejected: 1 });
      expect(k.counts).toMatchObject({ due: 4, closedOnTime: 1, registered: 4, closed: 2, dispatched: 3, resolved: 3, reworked: 1, dispatches: 5, declines: 1 });
      expect(k.rates.onTimeClose).toBeCloseTo(0.25);
      expect(k.rates.close).toBeCloseTo(0.5);
      expect(k.rates.handle).toBeCloseTo(1);
      expect(k.rates.rework).toBeCloseTo(1 / 3);
      expect(k.rates.accurateDispatch).toBeCloseTo(0.8);
      expect(k.avgSeconds.reportToRegister).toBeCloseTo(825);
      expect(k.avgSeconds.registerToDispatch).toBeCloseTo(800);
      expect(k.avgSeconds.dispatchToArrive).toBeCloseTo(1500);
      expect(k.avgSeconds.arriveToResolve).toBeCloseTo(2600);
      expect(k.avgSeconds.reportToClose).toBeCloseTo(13650);
    });

    it('should group by grid, worker and category and scope to the caller region', async () => {
      const byGrid = (await h.as('officer')<KpiResult>('GET', `/stats/kpi?from=${T0}&to=${h.clock.t}&groupBy=grid`)).body;
      expect(byGrid.groups!.map((g) => [g.key, g.total])).toEqual([['G-A1', 3], ['G-A2', 1], ['G-B1', 1]]);
      const byWorker = (await h.as('officer')<KpiResult>('GET', `/stats/kpi?from=${T0}&to=${h.clock.t}&groupBy=worker`)).body;
      expect(byWorker.groups!.map((g) => [g.key, g.total])).toEqual([['w1', 1], ['w2', 2], [null, 2]]);
      const byCat = (await h.as('officer')<KpiResult>('GET', `/stats/kpi?from=${T0}&to=${h.clock.t}&groupBy=category`)).body;
      expect(byCat.groups).toHaveLength(1);
      const b = (await h.as('officerB')<KpiResult>('GET', `/stats/kpi?from=${T0}&to=${h.clock.t}`)).body;
      expect(b.total).toBe(1);
      expect(b.rates.handle).toBe(1);
      expect(b.rates.close).toBe(0);
      const street = (await h.as('officer')<KpiResult>('GET', `/stats/kpi?from=${T0}&to=${h.clock.t}&gridId=S-A`)).body;
      expect(street.total).toBe(4);
      expect((await h.as('officerB')('GET', `/stats/kpi?gridId=S-A`)).status).toBe(404);
      expect((await h.as('w1')('GET', '/stats/kpi')).status).toBe(403);
    });
  });
}
