/**
 * 督办 and escalation up the 四级网络 on a fake clock: 黄牌 at 75 % of the
 * limit, 红牌 at the deadline with an automatic 督办 notice to the owner (and
 * its department's leader) and escalation community → street, a further
 * limit later street → district; the escalated case shows in the escalation
 * list of that level's officers only. Manual 督办 with a note.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemActor, type CaseChanged, type CaseDetail } from '../../src/cases/index.js';
import type { CaseSummary } from '../../src/core/services.js';
import type { Db } from '../../src/store/index.js';
import { engines } from '../helpers.js';
import { AT, startCaseHub, type CaseHub } from './fixtures.js';

const MIN = 60_000;

for (const engine of engines()) {
  describe(`督办 and escalation (${engine.name})`, () => {
    let h: CaseHub;
    const tok: Record<string, string> = {};
    const seen: Array<[string, string, number]> = [];
    beforeAll(async () => {
      h = await startCaseHub({ databaseUrl: engine.url, rules: false });
      for (const [name, region] of [['officerCA', 'C-A'], ['officerD', 'D1']] as const) {
        const id = `u-${name}`;
        await h.hub.ctx.db.query('insert into users (id, username, password_hash, role, region_id, display_name) values ($1, $2, $3, $4, $5, $2)', [id, name, 'x', 'officer', region]);
        tok[name] = h.hub.ctx.auth.sign({ id, username: name, role: 'officer', regionId: region, displayName: name });
      }
      h.hub.ctx.bus.on('case.changed', 'test', (e: CaseChanged) => void seen.push([e.case.id, e.action, h.clock.t]));
    });
    afterAll(async () => h?.stop());

    const as = (who: string) => <T = any>(method: string, path: string, body?: unknown) => h.api<T>(method, path, body, tok[who] ?? h.tokens[who as keyof CaseHub['tokens']]);
    const escalatedFor = async (who: string) => (await as(who)<{ items: CaseSummary[] }>('GET', '/cases?escalatedTo=mine&limit=1000')).body.items.map((c) => c.id);

    it('should give 黄牌, then 红牌 with an automatic 督办 and escalation to the street, then to the district, each once at its instant', async () => {
      const t0 = h.clock.t;
      const sys = systemActor('test');
      // 火灾: 1 calendar hour.
      const { case: c } = await h.cases.create({ category: 'E0402', ...AT.A1, source: 'officer', actor: sys });
      await h.cases.act(c.id, 'register', sys);
      await h.cases.act(c.id, 'dispatch', sys, { workerId: 'w1' });
      const mine = () => seen.filter(([id, a]) => id === c.id && ['warn', 'overdue', 'escalate'].includes(a)).map(([, a, t]) => [a, t - t0]);

      h.clock.t = t0 + 45 * MIN - 1000;
      await h.cases.checkOverdue();
      expect(mine()).toEqual([]);
      h.clock.t = t0 + 45 * MIN;
      await h.cases.checkOverdue();
      await h.cases.checkOverdue();
      expect(mine()).toEqual([['warn', 45 * MIN]]);
      expect((await h.cases.get(c.id))).toMatchObject({ warned: true, overdue: false, escalatedTo: null });

      h.clock.t = t0 + 60 * MIN;
      await h.cases.checkOverdue();
      expect(mine()).toEqual([['warn', 45 * MIN]]); // the deadline itself is not overdue yet
      h.clock.t = t0 + 60 * MIN + 1000;
      expect((await h.cases.checkOverdue()).map((x) => x.id)).toEqual([c.id]);
      await h.cases.checkOverdue();
      expect(mine()).toEqual([['warn', 45 * MIN], ['overdue', 60 * MIN + 1000], ['escalate', 60 * MIN + 1000]]);
      expect(await h.cases.get(c.id)).toMatchObject({ overdue: true, escalatedTo: 'S-A' });

      // Visible to the street's officers as escalated to them, not to the community's, not to another street.
      expect(await escalatedFor('officerA')).toEqual([c.id]);
      expect(await escalatedFor('officerCA')).toEqual([]);
      expect(await escalatedFor('officerB')).toEqual([]);
      expect(await escalatedFor('officerD')).toEqual([]);
      expect((await as('officerB')('GET', '/cases?escalatedTo=S-A')).status).toBe(404);
      expect((await as('officerB')('GET', `/cases/${c.id}`)).status).toBe(404);
      expect((await as('officer')('GET', '/cases?escalatedTo=mine')).status).toBe(400);

      h.clock.t = t0 + 120 * MIN;
      await h.cases.checkOverdue();
      expect(mine()).toHaveLength(3);
      h.clock.t = t0 + 120 * MIN + 1000;
      await h.cases.checkOverdue();
      await h.cases.checkOverdue();
      expect(mine()).toEqual([['warn', 45 * MIN], ['overdue', 60 * MIN + 1000], ['escalate', 60 * MIN + 1000], ['escalate', 120 * MIN + 1000]]);
      expect(await escalatedFor('officerD')).toEqual([c.id]);
      expect(await escalatedFor('officerA')).toEqual([]);

      const d = (await as('officer')<CaseDetail>('GET', `/cases/${c.id}`)).body;
      // 火灾 must also be acknowledged within 10 minutes: that flag is calendar.test.ts's subject.
      expect(d.history.filter((x) => x.action !== 'ack_overdue').slice(3).map((x) => [x.action, (x.actor as { name: string }).name, x.note, x.data])).toEqual([
        ['warn', '督办', null, { deadline: t0 + 60 * MIN, owner: { workerId: 'w1' } }],
        ['overdue', '超期检测', null, { deadline: t0 + 60 * MIN }],
        ['supervise', '督办', '超期自动督办', { auto: true, owner: { workerId: 'w1' }, leader: null }],
        ['escalate', '督办', null, { level: 1, from: null, to: 'S-A', owner: { workerId: 'w1' } }],
        ['escalate', '督办', null, { level: 2, from: 'S-A', to: 'D1', owner: { workerId: 'w1' } }],
      ]);
      expect(d.counts).toMatchObject({ escalationLevel: 2 });
    });

    it('should name the department and its leader in the automatic 督办 of a routed case, and leave resolved cases alone', async () => {
      expect((await h.api('PATCH', '/departments/ranqi', { leaderUserId: 'u-officerD' })).status).toBe(200);
      const t0 = h.clock.t;
      const sys = systemActor('test');
      const { case: gas } = await h.cases.create({ category: 'E0405', ...AT.B1, source: 'officer', actor: sys });
      await h.cases.act(gas.id, 'register', sys);
      await h.cases.act(gas.id, 'route', sys, { departmentId: 'ranqi' });
      const { case: done } = await h.cases.create({ category: 'E0405', ...AT.B1, source: 'officer', actor: sys });
      for (const [a, w] of [['register'], ['dispatch', 'w2'], ['arrive'], ['resolve']] as const) await h.cases.act(done.id, a, sys, w ? { workerId: w } : {});
      h.clock.t = t0 + 61 * MIN;
      const over = await h.cases.checkOverdue();
      expect(over.map((x) => x.id)).toEqual([gas.id]);
      const d = (await as('officer')<CaseDetail>('GET', `/cases/${gas.id}`)).body;
      expect(d.history.find((x) => x.action === 'supervise')?.data).toEqual({ auto: true, owner: { departmentId: 'ranqi' }, leader: 'u-officerD' });
      expect(d.escalatedTo).toBe('S-B');
      const untouched = (await as('officer')<CaseDetail>('GET', `/cases/${done.id}`)).body;
      expect(untouched.history.map((x) => x.action)).not.toContain('escalate');
      expect(untouched).toMatchObject({ warned: false, overdue: false, escalatedTo: null });
    });

    it('should take a manual 督办 with a note from an officer or dispatcher, in the history, status unchanged', async () => {
      const sys = systemActor('test');
      const { case: c } = await h.cases.create({ category: 'E0101', ...AT.A2, source: 'officer', actor: sys });
      await h.cases.act(c.id, 'register', sys);
      const act = (who: string, body: Record<string, unknown>) => as(who)<CaseSummary & { code: string }>('POST', `/cases/${c.id}/actions`, body);
      expect((await act('dispatcher', { action: 'supervise' })).status).toBe(400);
      expect((await act('officerB', { action: 'supervise', note: '抓紧' })).status).toBe(404);
      expect((await act('w1', { action: 'supervise', note: '抓紧' })).status).toBe(403);
      expect((await act('integrator', { action: 'supervise', note: '抓紧' })).status).toBe(403);
      const r = await act('officerA', { action: 'supervise', note: '请今日办结' });
      expect(r.status).toBe(200);
      expect(r.body.status).toBe('registered');
      const d = (await as('officer')<CaseDetail>('GET', `/cases/${c.id}`)).body;
      expect(d.history.at(-1)).toMatchObject({ action: 'supervise', from: 'registered', to: 'registered', note: '请今日办结', data: { manual: true, owner: {} }, actor: { name: 'officerA' } });
      expect(d.counts).toMatchObject({ supervisions: 1 });
      await h.cases.act(c.id, 'cancel', sys);
      expect((await act('officerA', { action: 'supervise', note: '再催' })).status).toBe(409);
    });
  });
}

for (const engine of engines()) {
  describe(`a backlog falling due at once (${engine.name})`, () => {
    let h: CaseHub;
    /** Statements sent inside transactions (the supervision pass is one). */
    const counter = { on: false, n: 0 };
    const counting = (db: Db): Db => ({
      ...db,
      tx: (fn) => db.tx((q) => fn({ query: (sql, params, opts) => {
        if (counter.on) counter.n++;
        return q.query(sql, params, opts);
      } })),
    });
    beforeAll(async () => {
      h = await startCaseHub({ databaseUrl: engine.url, rules: false, wrapDb: counting });
    });
    afterAll(async () => h?.stop());

    it('should handle 300 cases falling due together in a few statements, each with its 红牌, 督办 and escalation once', async () => {
      const sys = systemActor('test');
      const t0 = h.clock.t;
      const ids: string[] = [];
      // 火灾: 1 calendar hour, so all 300 fall due at t0 + 60 min.
      for (let i = 0; i < 300; i++) ids.push((await h.cases.create({ category: 'E0402', ...AT.A1, source: 'officer', actor: sys })).case.id);
      h.clock.t = t0 + 61 * MIN;
      counter.on = true;
      const over = await h.cases.checkOverdue();
      counter.on = false;
      expect(over.map((c) => c.id).sort()).toEqual([...ids].sort());
      // warn, overdue, the second escalation, late 签收, the escalation update and the history insert: not one per case.
      expect(counter.n).toBeLessThanOrEqual(8);
      const rows = await h.hub.ctx.db.query<{ case_id: string; action: string; n: number }>(
        "select case_id, action, count(*)::int as n from case_history where case_id = any($1::text[]) and action in ('overdue', 'supervise', 'escalate') group by 1, 2",
        [ids],
      );
      expect(rows).toHaveLength(900);
      expect(rows.every((r) => r.n === 1)).toBe(true);
      const order = await h.hub.ctx.db.query<{ action: string }>("select action from case_history where case_id = $1 and action in ('overdue', 'supervise', 'escalate') order by id", [ids[123]]);
      expect(order.map((r) => r.action)).toEqual(['overdue', 'supervise', 'escalate']);
      expect(await h.cases.get(ids[299]!)).toMatchObject({ overdue: true, escalatedTo: 'S-A' });
      // A second pass finds nothing new.
      expect(await h.cases.checkOverdue()).toEqual([]);
    });
  });
}
