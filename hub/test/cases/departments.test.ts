/**
 * 分流 to departments: the category suggests the owner, the dispatcher routes
 * in one action, the department's users 签收 within the limit, reply, or
 * 退回 with a reason; the centre routes again. Department users see only
 * their department's cases.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemActor, type CaseDetail, type Department as Dept } from '../../src/cases/index.js';

type Department = Dept & { suggested?: boolean };
import type { CaseSummary } from '../../src/core/services.js';
import { engines, until } from '../helpers.js';
import { AT, startCaseHub, T0, type CaseHub } from './fixtures.js';

for (const engine of engines()) {
  describe(`departments and 分流 (${engine.name})`, () => {
    let h: CaseHub;
    const tok: Record<string, string> = {};
    beforeAll(async () => {
      h = await startCaseHub({ databaseUrl: engine.url, rules: false });
      for (const [name, role] of [['cg1', 'officer'], ['cgboss', 'officer'], ['sw1', 'officer']] as const) {
        const id = `u-${name}`;
        await h.hub.ctx.db.query('insert into users (id, username, password_hash, role, region_id, display_name) values ($1, $2, $3, $4, null, $2)', [id, name, 'x', role]);
        tok[name] = h.hub.ctx.auth.sign({ id, username: name, role, regionId: null, displayName: name });
      }
      expect((await h.api('PATCH', '/departments/chengguan', { userIds: ['u-cg1', 'u-cgboss'], leaderUserId: 'u-cgboss' })).status).toBe(200);
      expect((await h.api('PATCH', '/departments/shuiwu', { userIds: ['u-sw1'] })).status).toBe(200);
    });
    afterAll(async () => h?.stop());

    const as = (who: string) => <T = any>(method: string, path: string, body?: unknown) => h.api<T>(method, path, body, tok[who] ?? h.tokens[who as keyof CaseHub['tokens']]);
    async function registered(category = 'E0101', at: { lat: number; lon: number } = AT.A1): Promise<CaseSummary> {
      const { case: c } = await h.cases.create({ category, ...at, source: 'officer', actor: systemActor('test') });
      return h.cases.act(c.id, 'register', systemActor('test'));
    }
    const act = (who: string, id: string, body: Record<string, unknown>) => as(who)<CaseSummary & { code: string }>('POST', `/cases/${id}/actions`, body);

    it('should suggest the department owning the category first, and list the seeded departments', async () => {
      const c = await registered('E0101');
      const r = await as('dispatcher')<{ items: Department[] }>('GET', `/departments?caseId=${c.id}`);
      expect(r.status).toBe(200);
      expect(r.body.items[0]).toMatchObject({ id: 'chengguan', name: '城管局', suggested: true });
      expect(r.body.items.filter((x) => x.suggested).map((x) => x.id)).toEqual(['chengguan']);
      expect(r.body.items.map((x) => x.id).sort()).toEqual(['chengguan', 'gongdian', 'jiaojing', 'ranqi', 'shizheng', 'shuiwu', 'yuanlin']);
      expect(r.body.items[0]!.userIds).toBeUndefined(); // members only for admins
      const water = await registered('E0401');
      expect((await as('dispatcher')<{ items: Department[] }>('GET', `/departments?caseId=${water.id}`)).body.items[0]!.id).toBe('shuiwu');
      expect((await as('officerB')('GET', `/departments?caseId=${c.id}`)).status).toBe(404);
    });

    it('should route, 签收, reply and verify, with a 签收 deadline and every step in the history', async () => {
      const c = await registered('E0101');
      const routed = await act('dispatcher', c.id, { action: 'route', departmentId: 'chengguan', note: '请城管处理' });
      expect(routed.status, JSON.stringify(routed.body)).toBe(200);
      expect(routed.body).toMatchObject({ status: 'dispatched', departmentId: 'chengguan', workerId: null });
      // 暴露垃圾: 签收 within 60 working minutes; Thursday 09:00 → 10:00.
      expect(routed.body.ackDeadline).toBe(T0 + 3600_000);

      // Another department and a grid worker cannot act on it.
      expect((await act('sw1', c.id, { action: 'sign' })).status).toBe(404);
      expect((await act('w1', c.id, { action: 'sign' })).status).toBe(403);
      const off = await act('officer', c.id, { action: 'sign' });
      expect(off.status).toBe(403);
      expect(off.body.code).toBe('CASE_NOT_ASSIGNED');
      // A department user may only sign, reply, return.
      const cancel = await act('cg1', c.id, { action: 'cancel' });
      expect(cancel.status).toBe(403);
      expect(cancel.body.code).toBe('FORBIDDEN');

      h.clock.advance(10 * 60_000);
      const signed = await act('cg1', c.id, { action: 'sign' });
      expect(signed.body).toMatchObject({ status: 'accepted', ackDeadline: null });
      h.clock.advance(60 * 60_000);
      expect((await act('cg1', c.id, { action: 'reply', note: '已清运' })).body.status).toBe('resolved');
      expect((await act('officer', c.id, { action: 'verify' })).body.status).toBe('closed');
      const d = (await as('officer')<CaseDetail>('GET', `/cases/${c.id}`)).body;
      expect(d.history.map((x) => [x.action, x.to, (x.actor as { name: string }).name])).toEqual([
        ['create', 'reported', 'test'], ['register', 'registered', 'test'], ['route', 'dispatched', 'dispatcher'],
        ['sign', 'accepted', 'cg1'], ['reply', 'resolved', 'cg1'], ['verify', 'closed', 'officer'],
      ]);
      expect(d.history[2]!.data).toMatchObject({ departmentId: 'chengguan' });
      expect(d.counts).toMatchObject({ routes: 1, returns: 0, dispatches: 0 });
    });

    it('should let a department 退回 with a reason only, then the centre re-routes it', async () => {
      const c = await registered('E0101', AT.A2);
      await act('dispatcher', c.id, { action: 'route', departmentId: 'chengguan' });
      await act('cg1', c.id, { action: 'sign' });
      const noReason = await act('cg1', c.id, { action: 'return' });
      expect(noReason.status).toBe(400);
      const ret = await act('cg1', c.id, { action: 'return', note: '属于市政管辖' });
      expect(ret.body).toMatchObject({ status: 'registered', departmentId: null });
      // Gone from the department's view.
      expect((await as('cg1')('GET', `/cases/${c.id}`)).status).toBe(404);
      const re = await act('dispatcher', c.id, { action: 'route', departmentId: 'shizheng' });
      expect(re.body).toMatchObject({ status: 'dispatched', departmentId: 'shizheng' });
      const d = (await as('officer')<CaseDetail>('GET', `/cases/${c.id}`)).body;
      expect(d.history.slice(2).map((x) => [x.action, x.note, (x.data as { departmentId?: string } | null)?.departmentId ?? null])).toEqual([
        ['route', null, 'chengguan'], ['sign', null, null], ['return', '属于市政管辖', 'chengguan'], ['route', null, 'shizheng'],
      ]);
      expect(d.counts).toMatchObject({ routes: 2, returns: 1 });
    });

    it('should show department users only their department\'s cases', async () => {
      const mine = await registered('E0101', AT.B1);
      await act('dispatcher', mine.id, { action: 'route', departmentId: 'chengguan' });
      const other = await registered('E0401', AT.A1);
      await act('dispatcher', other.id, { action: 'route', departmentId: 'shuiwu' });
      const unrouted = await registered('E0101', AT.A1);
      const list = (await as('cg1')<{ items: CaseSummary[] }>('GET', '/cases?limit=1000')).body.items;
      expect(list.length).toBeGreaterThan(0);
      expect(list.every((x) => x.departmentId === 'chengguan')).toBe(true);
      expect(list.some((x) => x.id === mine.id)).toBe(true);
      expect((await as('cg1')('GET', `/cases/${other.id}`)).status).toBe(404);
      expect((await as('cg1')('GET', `/cases/${unrouted.id}`)).status).toBe(404);
      expect((await as('cg1')('GET', `/cases?departmentId=shuiwu`)).status).toBe(404);
      expect((await as('sw1')<{ items: CaseSummary[] }>('GET', '/cases')).body.items.map((x) => x.id)).toContain(other.id);
      expect((await as('cg1')<{ items: Department[] }>('GET', '/departments/mine')).body.items.map((x) => x.id)).toEqual(['chengguan']);
      expect((await as('officer')<{ items: Department[] }>('GET', '/departments/mine')).body.items).toEqual([]);
      // The centre filters by department.
      const byDept = (await as('officer')<{ items: CaseSummary[] }>('GET', '/cases?departmentId=shuiwu&limit=1000')).body.items;
      expect(byDept.map((x) => x.id)).toEqual([other.id]);
    });

    it('should push a department\'s cases to its members\' sockets, and nothing of other departments or of their region', async () => {
      const { io } = await import('socket.io-client');
      const seen: Array<{ id: string; departmentId?: string | null; change?: string }> = [];
      const s = io(h.http, { path: '/socket.io', auth: { token: tok.cg1 }, transports: ['websocket'], reconnection: false, forceNew: true });
      s.on('case', (c: { id: string; departmentId?: string | null; change?: string }) => seen.push(c));
      try {
        await new Promise<void>((resolve, reject) => {
          s.once('connect', () => resolve());
          s.once('connect_error', reject);
        });
        const mine = await registered('E0101', AT.B1);
        const other = await registered('E0401', AT.A1);
        await act('dispatcher', other.id, { action: 'route', departmentId: 'shuiwu' });
        await act('dispatcher', mine.id, { action: 'route', departmentId: 'chengguan' });
        await act('cg1', mine.id, { action: 'sign' });
        await act('cg1', mine.id, { action: 'return', note: '不属于本部门' });
        // The return is the last event of the department's case: once it is here, everything before it is too.
        await until(() => seen.find((c) => c.id === mine.id && c.change === 'return'));
        expect(seen.every((c) => c.id === mine.id)).toBe(true);
        expect(seen.map((c) => c.change)).toEqual(['route', 'sign', 'return']);
      } finally {
        s.close();
      }
    });

    it('should refuse routing to an unknown or disabled department, from another region, or without departmentId', async () => {
      const c = await registered('E0101', AT.A1);
      const unknown = await act('dispatcher', c.id, { action: 'route', departmentId: 'nope' });
      expect(unknown.status).toBe(404);
      expect(unknown.body.code).toBe('DEPARTMENT_NOT_FOUND');
      expect((await act('dispatcher', c.id, { action: 'route' })).status).toBe(400);
      expect((await act('officerB', c.id, { action: 'route', departmentId: 'chengguan' })).status).toBe(404);
      await h.api('PATCH', '/departments/gongdian', { enabled: false });
      const disabled = await act('dispatcher', c.id, { action: 'route', departmentId: 'gongdian' });
      expect(disabled.status).toBe(409);
      expect(disabled.body.code).toBe('DEPARTMENT_DISABLED');
      expect((await h.cases.get(c.id))!.status).toBe('registered');
    });

    it('should let only an admin configure departments, with known regions, categories and users', async () => {
      expect((await as('officer')('POST', '/departments', { id: 'zhujian', name: '住建局' })).status).toBe(403);
      expect((await h.api('POST', '/departments', { id: 'zhujian', name: '住建局', categories: ['E9999'] })).status).toBe(400);
      expect((await h.api('POST', '/departments', { id: 'zhujian', name: '住建局', userIds: ['u-ghost'] })).status).toBe(400);
      expect((await h.api('POST', '/departments', { id: 'zhujian', name: '住建局', regionId: 'S-Z' })).status).toBe(400);
      expect((await h.api('POST', '/departments', { id: 'zhujian', name: '住建局', secret: 1 })).status).toBe(400);
      expect((await h.api('POST', '/departments', { id: 'Bad Id', name: '住建局' })).status).toBe(400);
      const ok = await h.api<Department>('POST', '/departments', { id: 'zhujian', name: '住建局', nameEn: 'Housing', regionId: 'S-A', categories: ['E0301'] });
      expect(ok.status).toBe(201);
      expect((await h.api('POST', '/departments', { id: 'zhujian', name: '住建局' })).status).toBe(409);
      // A street-level owner beats the city-wide one for a case in that street, not elsewhere.
      const inA = await registered('E0301', AT.A1);
      const inB = await registered('E0301', AT.B1);
      expect((await as('dispatcher')<{ items: Department[] }>('GET', `/departments?caseId=${inA.id}`)).body.items.filter((x) => x.suggested).map((x) => x.id)).toEqual(['zhujian', 'chengguan']);
      expect((await as('dispatcher')<{ items: Department[] }>('GET', `/departments?caseId=${inB.id}`)).body.items.filter((x) => x.suggested).map((x) => x.id)).toEqual(['chengguan']);
      expect((await h.api('PATCH', '/departments/nope', { name: 'x' })).status).toBe(404);
      expect((await h.api('PATCH', '/departments/zhujian', {})).status).toBe(400);
    });
  });
}
