import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemActor, WORKFLOW, type CaseDetail } from '../../src/cases/index.js';
import type { CaseAction, CaseStatus, CaseSummary } from '../../src/core/services.js';
import { engines } from '../helpers.js';
import { AT, JPEG_B64, startCaseHub, type CaseHub } from './fixtures.js';

/** Actions (taken by the hub itself) that bring a new case to each status. */
const PATH: Record<CaseStatus, Array<[CaseAction, string?]>> = {
  reported: [],
  registered: [['register']],
  dispatched: [['register'], ['dispatch', 'w1']],
  accepted: [['register'], ['dispatch', 'w1'], ['accept']],
  on_scene: [['register'], ['dispatch', 'w1'], ['accept'], ['arrive']],
  resolved: [['register'], ['dispatch', 'w1'], ['accept'], ['arrive'], ['resolve']],
  closed: [['register'], ['dispatch', 'w1'], ['accept'], ['arrive'], ['resolve'], ['verify']],
  rejected: [['reject']],
};
const STATUSES = Object.keys(PATH) as CaseStatus[];
// Department, 评价 and 督办 actions have their own tests (departments, evaluation, supervision).
const ACTIONS = (Object.keys(WORKFLOW) as CaseAction[]).filter((a) => WORKFLOW[a].to !== null && !WORKFLOW[a].department && !WORKFLOW[a].needsDepartment);

for (const engine of engines()) {
  describe(`case workflow (${engine.name})`, () => {
    let h: CaseHub;
    beforeAll(async () => {
      h = await startCaseHub({ databaseUrl: engine.url });
    });
    afterAll(async () => h?.stop());

    async function caseIn(status: CaseStatus, at: { lat: number; lon: number } = AT.A1): Promise<CaseSummary> {
      let { case: c } = await h.cases.create({ category: 'E0101', ...at, source: 'officer', actor: systemActor('test') });
      for (const [action, workerId] of PATH[status]) c = await h.cases.act(c.id, action, systemActor('test'), workerId ? { workerId } : {});
      expect(c.status).toBe(status);
      return c;
    }

    /** The user who may take the action on a case dispatched to w1. */
    const allowedUser = (a: CaseAction) => (WORKFLOW[a].roles.includes('officer') ? 'officer' : WORKFLOW[a].roles.includes('dispatcher') ? 'dispatcher' : 'w1');

    it('should create a case with code, grid, deadline from the category and a history entry', async () => {
      const r = await h.as('officer')<CaseSummary>('POST', '/cases', { category: '暴露垃圾', ...AT.A2, description: 'bags by the gate', photos: [JPEG_B64] });
      expect(r.status).toBe(201);
      expect(r.body.code).toMatch(/^GL-20261126-\d{6}$/);
      expect(r.body).toMatchObject({ status: 'reported', gridId: 'G-A2', source: 'officer', category: { code: 'E0101', name: '暴露垃圾' }, severity: 'minor' });
      // 4 working hours from Thursday 09:00 CST (default calendar 09:00–12:00, 13:30–18:00): 14:30.
      expect(r.body.deadline - r.body.createdAt).toBe(5.5 * 3600_000);
      const d = await h.as('officer')<CaseDetail>('GET', `/cases/${r.body.id}`);
      expect(d.body.history).toHaveLength(1);
      expect(d.body.history[0]).toMatchObject({ action: 'create', from: null, to: 'reported', actor: { kind: 'user', name: 'officer' } });
      expect(d.body.evidence).toHaveLength(1);
      const img = await fetch(`${h.http}${d.body.evidence[0]!.url}`, { headers: { authorization: `Bearer ${h.tokens.officerA}` } });
      expect(img.status).toBe(200);
      expect(img.headers.get('content-type')).toBe('image/jpeg');
      const other = await fetch(`${h.http}${d.body.evidence[0]!.url}`, { headers: { authorization: `Bearer ${h.tokens.officerB}` } });
      expect(other.status).toBe(404);
    });

    // Every allowed (action, from) pair, taken over REST by a role the table allows.
    for (const action of ACTIONS) {
      for (const from of WORKFLOW[action].from) {
        it(`should ${action} a ${from} case → ${WORKFLOW[action].to}`, async () => {
          const c = await caseIn(from);
          // A closed case is reworked only after a poor rating.
          if (action === 'rework' && from === 'closed') await h.cases.act(c.id, 'rate', systemActor('test'), { rating: 1 });
          const body: Record<string, unknown> = { action, note: `${action} test` };
          if (action === 'dispatch') body.workerId = 'w2';
          if (action === 'resolve') body.photos = [JPEG_B64];
          const r = await h.as(allowedUser(action))<CaseSummary>('POST', `/cases/${c.id}/actions`, body);
          expect(r.status, JSON.stringify(r.body)).toBe(200);
          expect(r.body.status).toBe(WORKFLOW[action].to);
          const d = await h.as('admin')<CaseDetail>('GET', `/cases/${c.id}`);
          const last = d.body.history.at(-1)!;
          expect(last).toMatchObject({ action, from, to: WORKFLOW[action].to, note: `${action} test` });
          if (action === 'resolve') expect(d.body.evidence).toHaveLength(1);
          if (action === 'decline') expect(d.body.workerId).toBeNull();
        });
      }
    }

    // A refusal for every forbidden (action, status) pair.
    for (const action of ACTIONS) {
      for (const status of STATUSES.filter((s) => !WORKFLOW[action].from.includes(s))) {
        it(`should refuse to ${action} a ${status} case (409)`, async () => {
          const c = await caseIn(status);
          const r = await h.as('admin')<{ code: string }>('POST', `/cases/${c.id}/actions`, { action, workerId: 'w1' });
          expect(r.status).toBe(409);
          expect(r.body.code).toBe('CASE_TRANSITION_INVALID');
        });
      }
    }

    // A refusal for a wrong role on every action.
    for (const action of ACTIONS) {
      it(`should refuse ${action} to a role the table does not allow (403)`, async () => {
        const c = await caseIn(WORKFLOW[action].from[0]!);
        const r = await h.as('integrator')<{ code: string }>('POST', `/cases/${c.id}/actions`, { action, workerId: 'w1' });
        expect(r.status).toBe(403);
        expect(r.body.code).toBe('FORBIDDEN');
        if (!WORKFLOW[action].worker) {
          const w = await h.as('w1')<{ code: string }>('POST', `/cases/${c.id}/actions`, { action, workerId: 'w1' });
          expect(w.status).toBe(403);
        }
      });
    }

    it('should let a worker act only on cases dispatched to them', async () => {
      const c = await caseIn('dispatched');
      const r = await h.as('w2')<{ code: string }>('POST', `/cases/${c.id}/actions`, { action: 'accept' });
      expect(r.status).toBe(403);
      expect(r.body.code).toBe('CASE_NOT_ASSIGNED');
      expect((await h.as('w1')<CaseSummary>('POST', `/cases/${c.id}/actions`, { action: 'accept' })).body.status).toBe('accepted');
    });

    it('should hide a case in another region: 404 on read and act, absent from lists', async () => {
      const b = await caseIn('reported', AT.B1);
      const a = await caseIn('reported', AT.A1);
      expect((await h.as('officerA')('GET', `/cases/${b.id}`)).status).toBe(404);
      const act = await h.as('officerA')<{ code: string }>('POST', `/cases/${b.id}/actions`, { action: 'register' });
      expect(act.status).toBe(404);
      expect(act.body.code).toBe('CASE_NOT_FOUND');
      const list = await h.as('officerA')<{ items: CaseSummary[] }>('GET', '/cases?limit=1000');
      expect(list.body.items.some((c) => c.id === a.id)).toBe(true);
      expect(list.body.items.every((c) => c.gridId?.startsWith('G-A'))).toBe(true);
      expect((await h.as('officerA')('GET', '/cases?gridId=S-B')).status).toBe(404);
      expect((await h.as('officerA')<CaseSummary>('POST', `/cases/${a.id}/actions`, { action: 'register' })).body.status).toBe('registered');
      expect((await h.as('officerA')('POST', '/cases', { category: 'fire', ...AT.B1 })).status).toBe(403);
    });

    it('should page lists with a cursor', async () => {
      const seen = new Set<string>();
      let cursor: string | undefined;
      let pages = 0;
      do {
        const r = await h.as('officer')<{ items: CaseSummary[]; nextCursor?: string }>('GET', `/cases?limit=7${cursor ? `&cursor=${cursor}` : ''}`);
        for (const c of r.body.items) seen.add(c.id);
        cursor = r.body.nextCursor;
        pages++;
      } while (cursor && pages < 100);
      const all = await h.as('officer')<{ items: CaseSummary[] }>('GET', '/cases?limit=1000');
      expect(seen.size).toBe(all.body.items.length);
      expect(pages).toBeGreaterThan(1);
    });

    it('should mark an open case overdue once, with an event', async () => {
      const c = await caseIn('registered');
      const events: string[] = [];
      h.hub.ctx.bus.on('case.overdue', 'test', (e) => void events.push(e.case.id));
      h.clock.advance(6 * 3600_000);
      await h.casesModule.tick();
      await h.casesModule.tick();
      expect(events.filter((id) => id === c.id)).toHaveLength(1);
      expect((await h.cases.get(c.id))!.overdue).toBe(true);
      h.hub.ctx.bus.removeOwner('test');
    });

    it('should list and extend the category catalogue', async () => {
      const list = await h.as('officer')<{ items: Array<{ code: string; name: string }> }>('GET', '/categories');
      const names = list.body.items.map((c) => c.name);
      for (const n of ['火灾', '积水', '暴露垃圾', '占道经营', '乱停车', '人员聚集', '井盖', '设备离线']) expect(names).toContain(n);
      const add = await h.as('admin')('POST', '/categories', { kind: 'event', majorCode: '01', minorCode: '09', name: '绿化带垃圾', nameEn: 'Litter in green belt', timeLimitMin: 240, defaultSeverity: 'minor', key: 'green_litter' });
      expect(add.status).toBe(201);
      expect((await h.as('admin')('POST', '/categories', { kind: 'event', majorCode: '01', minorCode: '09', name: 'x', nameEn: 'x', timeLimitMin: 1, defaultSeverity: 'minor' })).status).toBe(409);
      expect((await h.as('officer')('POST', '/categories', { kind: 'event', majorCode: '01', minorCode: '10', name: 'x', nameEn: 'x', timeLimitMin: 1, defaultSeverity: 'minor' })).status).toBe(403);
      const c = await h.as('officer')<CaseSummary>('POST', '/cases', { category: 'green_litter', ...AT.A1 });
      expect(c.body.category.code).toBe('E0109');
    });
  });
}
