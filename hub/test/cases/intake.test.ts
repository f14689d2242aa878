/**
 * Citizen intake over real HTTP: Open311 GeoReport v2 round trip (services,
 * create with a photo, status by token, rating after 结案) checked against
 * the GeoReport v2 field names, and the 12345 work order, idempotent by its
 * order number.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemActor, type CaseDetail } from '../../src/cases/index.js';
import { engines } from '../helpers.js';
import { AT, JPEG_B64, startCaseHub, type CaseHub } from './fixtures.js';

/** GeoReport v2 fields of a service and of a service request (open311.org/GeoReport_v2). */
const SERVICE_FIELDS = ['service_code', 'service_name', 'description', 'metadata', 'type', 'keywords', 'group'];
const REQUEST_FIELDS = ['service_request_id', 'status', 'status_notes', 'service_name', 'service_code', 'description', 'agency_responsible', 'service_notice',
  'requested_datetime', 'updated_datetime', 'expected_datetime', 'address', 'lat', 'long', 'media_url'];

for (const engine of engines()) {
  describe(`citizen intake: Open311 and 12345 (${engine.name})`, () => {
    let h: CaseHub;
    beforeAll(async () => {
      h = await startCaseHub({ databaseUrl: engine.url, rules: false });
    });
    afterAll(async () => h?.stop());

    const http = (method: string, path: string, body?: unknown, token?: string) =>
      fetch(`${h.http}/api/v1${path}`, { method, headers: { ...(body ? { 'content-type': 'application/json' } : {}), ...(token ? { authorization: `Bearer ${token}` } : {}) }, body: body ? JSON.stringify(body) : undefined });

    it('should run the GeoReport v2 round trip: services, create with a photo, status by token, rate once closed', async () => {
      const services = await http('GET', '/open311/v2/services.json');
      expect(services.status).toBe(200);
      const list = (await services.json()) as Array<Record<string, unknown>>;
      expect(Object.keys(list[0]!).sort()).toEqual([...SERVICE_FIELDS].sort());
      expect(list.find((s) => s.service_code === 'E0101')).toMatchObject({ service_name: '暴露垃圾', group: '市容环境', type: 'realtime', metadata: false });

      const created = await http('POST', '/open311/v2/requests.json', { service_code: 'E0101', lat: AT.A2.lat, long: AT.A2.lon, address_string: '幸福路 3 号', description: '门口垃圾堆了三天', first_name: '伟', last_name: '张', phone: '13800000000', media: JPEG_B64 }, h.tokens.integrator);
      expect(created.status).toBe(201);
      const [r] = (await created.json()) as Array<{ service_request_id: string; token: string }>;
      expect(r!.service_request_id).toMatch(/^GL-\d{8}-\d{6}$/);
      expect(r!.token.length).toBeGreaterThanOrEqual(24);

      const status = await http('GET', `/open311/v2/requests/${r!.service_request_id}.json?token=${r!.token}`);
      expect(status.status).toBe(200);
      const [s] = (await status.json()) as Array<Record<string, unknown>>;
      for (const f of REQUEST_FIELDS) expect(s).toHaveProperty(f);
      expect(s).toMatchObject({ service_request_id: r!.service_request_id, status: 'open', service_code: 'E0101', service_name: '暴露垃圾', description: '门口垃圾堆了三天', address: '幸福路 3 号', lat: AT.A2.lat, long: AT.A2.lon, gridlink_status: 'reported' });

      // The case the officers see: a citizen case in the right grid, with the photo as evidence.
      const c = (await h.cases.get(r!.service_request_id))!;
      expect(c).toMatchObject({ source: 'citizen', gridId: 'G-A2' });
      const d = (await h.as('officer')<CaseDetail>('GET', `/cases/${c.id}`)).body;
      expect(d.evidence).toHaveLength(1);
      expect(d.reporter).toMatchObject({ kind: 'citizen', name: '张伟' });

      // A wrong token is the same as a wrong id.
      expect((await http('GET', `/open311/v2/requests/${r!.service_request_id}.json?token=${'x'.repeat(32)}`)).status).toBe(404);
      expect((await http('GET', `/open311/v2/requests/GL-20000101-000000.json?token=${r!.token}`)).status).toBe(404);
      expect((await http('POST', `/open311/v2/requests/${r!.service_request_id}/rating.json`, { token: r!.token, rating: 5 })).status).toBe(409);

      const sys = systemActor('test');
      for (const [a, w] of [['register'], ['dispatch', 'w1'], ['arrive'], ['resolve'], ['verify']] as const) await h.cases.act(c.id, a, sys, w ? { workerId: w } : {});
      const closed = ((await (await http('GET', `/open311/v2/requests/${r!.service_request_id}.json?token=${r!.token}`)).json()) as Array<Record<string, unknown>>)[0]!;
      expect(closed).toMatchObject({ status: 'closed', gridlink_can_rate: true, expected_datetime: null });
      // Officers may not rate a citizen case; the citizen may, once.
      expect((await h.as('officer')('POST', `/cases/${c.id}/actions`, { action: 'rate', rating: 5 })).status).toBe(403);
      expect((await http('POST', `/open311/v2/requests/${r!.service_request_id}/rating.json`, { token: 'y'.repeat(32), rating: 1 })).status).toBe(404);
      const rated = await http('POST', `/open311/v2/requests/${r!.service_request_id}/rating.json`, { token: r!.token, rating: 4, comment: '处理得很快' });
      expect(rated.status).toBe(200);
      expect(((await rated.json()) as Array<Record<string, unknown>>)[0]).toMatchObject({ gridlink_rating: 4, gridlink_can_rate: false });
      expect((await http('POST', `/open311/v2/requests/${r!.service_request_id}/rating.json`, { token: r!.token, rating: 1 })).status).toBe(409);
      expect((await h.as('officer')<CaseDetail>('GET', `/cases/${c.id}`)).body.evaluation).toMatchObject({ rating: 4, comment: '处理得很快', by: { kind: 'citizen' } });
    });

    it('should refuse Open311 creation without an integrator, with an unknown service, a bad photo or an extra field', async () => {
      const body = { service_code: 'E0101', lat: AT.A1.lat, long: AT.A1.lon };
      expect((await http('POST', '/open311/v2/requests.json', body)).status).toBe(401);
      expect((await http('POST', '/open311/v2/requests.json', body, h.tokens.officer)).status).toBe(403);
      expect((await http('POST', '/open311/v2/requests.json', { ...body, service_code: 'E9999' }, h.tokens.integrator)).status).toBe(400);
      expect((await http('POST', '/open311/v2/requests.json', { ...body, media: 'bm90IGFuIGltYWdlIGF0IGFsbA==' }, h.tokens.integrator)).status).toBe(400);
      expect((await http('POST', '/open311/v2/requests.json', { ...body, status: 'closed' }, h.tokens.integrator)).status).toBe(400);
      expect((await http('POST', '/open311/v2/requests.json', { ...body, lat: 91 }, h.tokens.integrator)).status).toBe(400);
    });

    it('should turn a 12345 work order into one citizen case however often it is sent', async () => {
      const order = { orderNo: 'RX2026112600042', category: '占道经营', content: '早市摊贩占用人行道', lat: AT.B1.lat, lon: AT.B1.lon, address: '东街菜场口', caller: { name: '李女士', phone: '13900000000' }, photos: [JPEG_B64] };
      const first = await http('POST', '/intake/12345', order, h.tokens.integrator);
      expect(first.status).toBe(200);
      const a = (await first.json()) as { caseId: string; code: string; created: boolean; token: string | null };
      expect(a).toMatchObject({ created: true });
      expect(a.token).toBeTruthy();
      const again = (await (await http('POST', '/intake/12345', order, h.tokens.integrator)).json()) as typeof a;
      expect(again).toEqual({ caseId: a.caseId, code: a.code, created: false, token: null });
      const [x, y] = await Promise.all([1, 2].map(async () => (await (await http('POST', '/intake/12345', { ...order, orderNo: 'RX2026112600043' }, h.tokens.integrator)).json()) as typeof a));
      expect(x!.caseId).toBe(y!.caseId);
      expect([x!.created, y!.created].sort()).toEqual([false, true]);
      const rows = await h.hub.ctx.db.query<{ n: number }>("select count(*)::int as n from cases where report_key like '12345:%'");
      expect(rows[0]!.n).toBe(2);
      const c = (await h.as('officer')<CaseDetail>('GET', `/cases/${a.caseId}`)).body;
      expect(c).toMatchObject({ source: 'citizen', gridId: 'G-B1', category: { code: 'E0501' }, description: '早市摊贩占用人行道', reporter: { kind: 'citizen', id: '12345:RX2026112600042', name: '李女士' } });
      expect(c.history[0]!.data).toMatchObject({ channel: '12345', orderNo: 'RX2026112600042' });
      // The hotline reads the outcome with the token, like any citizen request.
      expect((await http('GET', `/open311/v2/requests/${a.code}.json?token=${a.token}`)).status).toBe(200);
    });

    it('should refuse a 12345 order with a bad order number, an unknown category, from a non-integrator or outside its region', async () => {
      const order = { orderNo: 'RX1', category: 'E0501', content: '占道', lat: AT.B1.lat, lon: AT.B1.lon };
      expect((await http('POST', '/intake/12345', { ...order, orderNo: '../../etc' }, h.tokens.integrator)).status).toBe(400);
      expect((await http('POST', '/intake/12345', { ...order, category: '不存在' }, h.tokens.integrator)).status).toBe(400);
      expect((await http('POST', '/intake/12345', { ...order, source: 'rule' }, h.tokens.integrator)).status).toBe(400);
      expect((await http('POST', '/intake/12345', order, h.tokens.dispatcher)).status).toBe(403);
      await h.hub.ctx.db.query("insert into users (id, username, password_hash, role, region_id, display_name) values ('u-hotA', 'hotA', 'x', 'integrator', 'S-A', 'hotA')");
      const hotA = h.hub.ctx.auth.sign({ id: 'u-hotA', username: 'hotA', role: 'integrator', regionId: 'S-A', displayName: 'hotA' });
      const out = await http('POST', '/intake/12345', order, hotA);
      expect(out.status).toBe(403);
      expect(((await out.json()) as { code: string }).code).toBe('OUTSIDE_REGION');
    });
  });
}
