/**
 * 评价: after 结案 the verifying officer (internal cases) or the citizen who
 * reported (citizen cases) rates 1–5 with a comment; the KPIs carry 满意率 and
 * the mean rating; a poor rating lets an officer rework the closed case.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemActor, type CaseDetail, type KpiResult } from '../../src/cases/index.js';
import type { CaseSummary } from '../../src/core/services.js';
import { engines } from '../helpers.js';
import { AT, startCaseHub, T0, type CaseHub } from './fixtures.js';

for (const engine of engines()) {
  describe(`case evaluation (评价) (${engine.name})`, () => {
    let h: CaseHub;
    beforeAll(async () => {
      h = await startCaseHub({ databaseUrl: engine.url, rules: false });
    });
    afterAll(async () => h?.stop());

    /** A case closed over REST, verified by `verifier`. */
    async function closed(verifier: 'officer' | 'officerA', at: { lat: number; lon: number } = AT.A1): Promise<CaseSummary> {
      const sys = systemActor('test');
      let { case: c } = await h.cases.create({ category: 'E0101', ...at, source: 'officer', actor: sys });
      for (const [a, w] of [['register'], ['dispatch', 'w1'], ['accept'], ['arrive'], ['resolve']] as const) c = await h.cases.act(c.id, a, sys, w ? { workerId: w } : {});
      const r = await h.as(verifier)<CaseSummary>('POST', `/cases/${c.id}/actions`, { action: 'verify' });
      expect(r.status).toBe(200);
      return r.body;
    }
    const act = (user: keyof CaseHub['tokens'], id: string, body: Record<string, unknown>) => h.as(user)<CaseSummary & { code: string }>('POST', `/cases/${id}/actions`, body);

    it('should let the verifying officer rate a closed case once, with the comment in the history and the detail', async () => {
      const c = await closed('officerA');
      h.clock.advance(60_000);
      const r = await act('officerA', c.id, { action: 'rate', rating: 5, note: '处置及时' });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      expect(r.body).toMatchObject({ status: 'closed', rating: 5 });
      const d = (await h.as('officer')<CaseDetail>('GET', `/cases/${c.id}`)).body;
      expect(d.evaluation).toMatchObject({ rating: 5, comment: '处置及时', at: h.clock.t, by: { kind: 'user', name: 'officerA' } });
      expect(d.history.at(-1)).toMatchObject({ action: 'rate', from: 'closed', to: 'closed', note: '处置及时', data: { rating: 5 } });
      const again = await act('officerA', c.id, { action: 'rate', rating: 4 });
      expect(again.status).toBe(409);
      expect(again.body.code).toBe('CASE_ALREADY_RATED');
    });

    it('should refuse a rating from an officer who did not verify, another region, a worker, or out of range', async () => {
      const c = await closed('officerA');
      const other = await act('officer', c.id, { action: 'rate', rating: 3 });
      expect(other.status).toBe(403);
      expect(other.body.code).toBe('FORBIDDEN');
      expect((await act('officerB', c.id, { action: 'rate', rating: 3 })).status).toBe(404);
      expect((await act('w1', c.id, { action: 'rate', rating: 3 })).status).toBe(403);
      expect((await act('dispatcher', c.id, { action: 'rate', rating: 3 })).status).toBe(403);
      for (const bad of [0, 6, 2.5, 'five']) expect((await act('officerA', c.id, { action: 'rate', rating: bad })).status).toBe(400);
      expect((await act('officerA', c.id, { action: 'rate' })).status).toBe(400);
      expect((await act('officerA', c.id, { action: 'rate', rating: 3, evil: true })).status).toBe(400);
      expect((await h.as('officer')<CaseDetail>('GET', `/cases/${c.id}`)).body.evaluation).toBeNull();
    });

    it('should refuse to rate a case that is not closed (409)', async () => {
      const { case: c } = await h.cases.create({ category: 'E0101', ...AT.A1, source: 'officer', actor: systemActor('test') });
      const r = await act('admin', c.id, { action: 'rate', rating: 4 });
      expect(r.status).toBe(409);
      expect(r.body.code).toBe('CASE_TRANSITION_INVALID');
    });

    it('should rework a closed case only after a poor rating, and allow a new rating after the next closure', async () => {
      const good = await closed('officer');
      await act('officer', good.id, { action: 'rate', rating: 3 });
      const refused = await act('officer', good.id, { action: 'rework' });
      expect(refused.status).toBe(409);
      expect(refused.body.code).toBe('CASE_TRANSITION_INVALID');

      const poor = await closed('officer');
      expect((await act('officer', poor.id, { action: 'rework' })).status).toBe(409); // not rated yet
      await act('officer', poor.id, { action: 'rate', rating: 2, note: '垃圾仍未清走' });
      const re = await act('officer', poor.id, { action: 'rework', note: '差评返工' });
      expect(re.status).toBe(200);
      expect(re.body).toMatchObject({ status: 'dispatched', workerId: 'w1' });
      let d = (await h.as('officer')<CaseDetail>('GET', `/cases/${poor.id}`)).body;
      expect(d.times.closedAt).toBeNull();
      expect(d.counts.reworks).toBe(1);
      const sys = systemActor('test');
      for (const a of ['accept', 'arrive', 'resolve'] as const) await h.cases.act(poor.id, a, sys);
      h.clock.advance(1000);
      await act('officer', poor.id, { action: 'verify' });
      expect((await act('officer', poor.id, { action: 'rate', rating: 4 })).status).toBe(200);
      d = (await h.as('officer')<CaseDetail>('GET', `/cases/${poor.id}`)).body;
      expect(d.evaluation?.rating).toBe(4);
      expect(d.history.filter((x) => x.action === 'rate').map((x) => x.data)).toEqual([{ rating: 2 }, { rating: 4 }]);
    });

    it('should let only the reporting citizen rate a citizen case', async () => {
      const citizen = { kind: 'citizen' as const, id: 'req-1', name: '市民' };
      const sys = systemActor('test');
      let { case: c } = await h.cases.create({ category: 'E0101', ...AT.A1, source: 'citizen', actor: citizen });
      for (const [a, w] of [['register'], ['dispatch', 'w1'], ['accept'], ['arrive'], ['resolve'], ['verify']] as const) c = await h.cases.act(c.id, a, sys, w ? { workerId: w } : {});
      expect((await act('officer', c.id, { action: 'rate', rating: 5 })).status).toBe(403);
      await expect(h.cases.act(c.id, 'rate', { kind: 'citizen', id: 'req-2', name: '别人' }, { rating: 1 })).rejects.toMatchObject({ code: 'FORBIDDEN' });
      expect((await h.cases.act(c.id, 'rate', citizen, { rating: 5, note: '满意' })).rating).toBe(5);
    });

    it('should report 满意率 and the mean rating in the KPIs, computed from hand-counted ratings', async () => {
      // A fresh window: three cases rated 5, 4 and 1, one closed but unrated.
      h.clock.t = T0 + 30 * 24 * 3600_000;
      const from = h.clock.t;
      const ids: string[] = [];
      for (let i = 0; i < 4; i++) ids.push((await closed('officer', AT.B1)).id);
      for (const [i, score] of [[0, 5], [1, 4], [2, 1]] as const) expect((await act('officer', ids[i]!, { action: 'rate', rating: score })).status).toBe(200);
      h.clock.advance(1000);
      const k = (await h.as('officer')<KpiResult>('GET', `/stats/kpi?from=${from}&to=${h.clock.t}`)).body;
      expect(k.total).toBe(4);
      expect(k.counts).toMatchObject({ rated: 3, satisfied: 2 });
      expect(k.rates.satisfaction).toBeCloseTo(2 / 3, 10);
      expect(k.avgRating).toBeCloseTo(10 / 3, 10);
      const scoped = (await h.as('officerA')<KpiResult>('GET', `/stats/kpi?from=${from}&to=${h.clock.t}`)).body;
      expect(scoped.counts.rated).toBe(0);
      expect(scoped.rates.satisfaction).toBeNull();
    });
  });
}
