/**
 * The write rule, route by route: every mutating route in the hub's route
 * table is attacked by a caller whose region (street S-A) does not hold the
 * object as it is or as it would be after the write. The list comes from
 * the running server (`app.routeTable`, filled by fastify's onRoute), so a
 * new route without an attack here fails the first test.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { until } from '../helpers.js';
import { AT, startWorld, type World } from './fixtures.js';

type Attack = (w: World) => Promise<void>;

const expectCode = (r: { status: number; body: any }, status: number, code: string) => {
  expect({ status: r.status, code: r.body?.code }).toEqual({ status, code });
};

/** A threshold rule scoped to grids. */
const rule = (id: string, gridIds?: string[]) => ({
  id, name: id, kind: 'threshold', metric: 'water_level_cm', op: '>=', value: 99, severity: 'minor',
  ...(gridIds ? { scope: { gridIds } } : {}),
});

/** Routes under /api/v1 (or the root) that change state but are not for a console user, and why. */
const NOT_USER_WRITES: Record<string, string> = {
  'POST /api/v1/auth/login': 'public: anyone may try to log in (throttled, see accounts.test.ts)',
  'POST /api/v1/ingest/:deviceId/:channel': 'a device writes its own data with HTTP Basic; the id in the path must be the authenticated device',
  'POST /osmand': 'a device writes its own positions (Basic auth or its OsmAnd token)',
  'POST /api/v1/m/session': 'public: the worker app logs in with the worker user (same throttling as /auth/login)',
  'DELETE /api/v1/m/session': 'a handheld session ends only itself',
  'POST /api/v1/m/duty': 'a handheld session changes only its own worker',
  'POST /api/v1/m/positions': 'a handheld session reports only its own positions',
  'POST /api/v1/m/tasks/:id/actions': 'a handheld session acts only on cases dispatched to its worker (CASE_NOT_ASSIGNED otherwise; tested in hub/test/mobile)',
  'POST /api/v1/m/reports': 'a handheld session reports as its own worker',
  'POST /api/v1/open311/v2/requests/:id/rating.json': 'public: the citizen rates only the request its token names',
};

const attacks: Record<string, Attack> = {
  'POST /api/v1/auth/logout': async (w) => {
    // Logout ends only the caller's own sessions: another user's token keeps working.
    expect((await w.as('officerA')('POST', '/auth/logout')).status).toBe(204);
    expect((await w.as('officerB')('GET', '/auth/me')).status).toBe(200);
    expectCode(await w.as('officerA')('GET', '/auth/me'), 401, 'TOKEN_REVOKED');
    w.token.officerA = w.t.hub.ctx.auth.sign({ id: w.userId.officerA, username: 'u-officerA', role: 'officer', regionId: 'S-A', displayName: 'officerA' });
  },
  'POST /api/v1/users': async (w) => {
    expectCode(await w.as('adminA')('POST', '/users', { username: 'evil', password: 'a-long-passphrase', role: 'admin' }), 403, 'CITY_SCOPE_REQUIRED');
  },
  'PATCH /api/v1/users/:id': async (w) => {
    expectCode(await w.as('adminA')('PATCH', `/users/${w.userId.officerB}`, { regionId: 'S-A' }), 403, 'CITY_SCOPE_REQUIRED');
    expectCode(await w.as('adminA')('PATCH', `/users/${w.userId.adminA}`, { regionId: null }), 403, 'CITY_SCOPE_REQUIRED');
  },
  'POST /api/v1/users/:id/password': async (w) => {
    expectCode(await w.as('adminA')('POST', `/users/${w.userId.officerB}/password`, { password: 'a-long-passphrase' }), 403, 'CITY_SCOPE_REQUIRED');
  },
  'DELETE /api/v1/users/:id': async (w) => {
    expectCode(await w.as('adminA')('DELETE', `/users/${w.userId.officerB}`), 403, 'CITY_SCOPE_REQUIRED');
    expect((await w.as('officerB')('GET', '/auth/me')).status).toBe(200);
  },
  'POST /api/v1/devices': async (w) => {
    expectCode(await w.as('integratorA')('POST', '/devices', { type: 'sensor.gas', id: 'gas-into-b', gridId: 'G-B1' }), 403, 'OUTSIDE_REGION');
    expectCode(await w.as('integratorA')('POST', '/devices', { type: 'sensor.gas', id: 'gas-nowhere' }), 403, 'OUTSIDE_REGION');
    expect(w.t.hub.ctx.registry.get('gas-into-b')).toBeUndefined();
  },
  'PATCH /api/v1/devices/:id': async (w) => {
    expectCode(await w.as('integratorA')('PATCH', `/devices/${w.dev.B.id}`, { name: 'mine' }), 404, 'DEVICE_NOT_FOUND');
    expectCode(await w.as('integratorA')('PATCH', `/devices/${w.dev.A.id}`, { gridId: 'G-B1' }), 403, 'OUTSIDE_REGION');
    expect(w.t.hub.ctx.registry.get(w.dev.A.id)?.gridId).toBe('G-A1');
  },
  'POST /api/v1/devices/:id/disable': async (w) => {
    expectCode(await w.as('integratorA')('POST', `/devices/${w.dev.B.id}/disable`), 404, 'DEVICE_NOT_FOUND');
    expect(w.t.hub.ctx.registry.get(w.dev.B.id)?.enabled).toBe(true);
  },
  'POST /api/v1/devices/:id/enable': async (w) => {
    expectCode(await w.as('integratorA')('POST', `/devices/${w.dev.B.id}/enable`), 404, 'DEVICE_NOT_FOUND');
  },
  'POST /api/v1/devices/:id/rotate-secret': async (w) => {
    expectCode(await w.as('integratorA')('POST', `/devices/${w.dev.B.id}/rotate-secret`), 404, 'DEVICE_NOT_FOUND');
    expect(await w.t.hub.ctx.registry.authenticate(w.dev.B.id, w.dev.B.secret)).toBeTruthy();
  },
  'POST /api/v1/devices/:id/osmand-token': async (w) => {
    expectCode(await w.as('integratorA')('POST', `/devices/${w.handheld.B}/osmand-token`), 404, 'DEVICE_NOT_FOUND');
  },
  'DELETE /api/v1/devices/:id': async (w) => {
    expectCode(await w.as('integratorA')('DELETE', `/devices/${w.dev.B.id}`), 404, 'DEVICE_NOT_FOUND');
    expect(w.t.hub.ctx.registry.get(w.dev.B.id)).toBeDefined();
  },
  'POST /api/v1/cases': async (w) => {
    expectCode(await w.as('officerA')('POST', '/cases', { category: 'E0402', ...AT.B1 }), 403, 'OUTSIDE_REGION');
  },
  'POST /api/v1/cases/:id/actions': async (w) => {
    expectCode(await w.as('officerA')('POST', `/cases/${w.caseId.B}/actions`, { action: 'register' }), 404, 'CASE_NOT_FOUND');
    // A region-A case sent to a region-B worker: the worker does not exist for this caller.
    expect((await w.as('officerA')('POST', `/cases/${w.caseId.A}/actions`, { action: 'register' })).status).toBe(200);
    expectCode(await w.as('dispatcherA')('POST', `/cases/${w.caseId.A}/actions`, { action: 'dispatch', workerId: w.worker.B }), 404, 'WORKER_NOT_FOUND');
    expectCode(await w.as('dispatcherA')('POST', `/cases/${w.caseId.A}/actions`, { action: 'dispatch', workerId: 'w-ghost' }), 404, 'WORKER_NOT_FOUND');
  },
  'POST /api/v1/open311/v2/requests.json': async (w) => {
    expectCode(await w.as('integratorA')('POST', '/open311/v2/requests.json', { service_code: 'E0101', lat: AT.B1.lat, long: AT.B1.lon }), 403, 'OUTSIDE_REGION');
  },
  'POST /api/v1/intake/12345': async (w) => {
    expectCode(await w.as('integratorA')('POST', '/intake/12345', { orderNo: 'o-into-b', category: 'E0101', content: 'x', ...AT.B1 }), 403, 'OUTSIDE_REGION');
  },
  'POST /api/v1/categories': async (w) => {
    expectCode(await w.as('adminA')('POST', '/categories', { kind: 'event', majorCode: '09', minorCode: '77', majorName: 'x', name: '测试', nameEn: 'Test', timeLimitMin: 60, defaultSeverity: 'minor' }), 403, 'CITY_SCOPE_REQUIRED');
  },
  'PATCH /api/v1/categories/:code': async (w) => {
    expectCode(await w.as('adminA')('PATCH', '/categories/E0402', { timeLimitMin: 1 }), 403, 'CITY_SCOPE_REQUIRED');
  },
  'PUT /api/v1/calendar': async (w) => {
    const cal = (await w.t.api('GET', '/calendar')).body;
    expectCode(await w.as('adminA')('PUT', '/calendar', cal), 403, 'CITY_SCOPE_REQUIRED');
  },
  'POST /api/v1/departments': async (w) => {
    expectCode(await w.as('adminA')('POST', '/departments', { id: 'roads-b', name: '道路 B', regionId: 'S-B' }), 403, 'OUTSIDE_REGION');
    expectCode(await w.as('adminA')('POST', '/departments', { id: 'roads-city', name: '道路', regionId: null }), 403, 'OUTSIDE_REGION');
  },
  'PATCH /api/v1/departments/:id': async (w) => {
    expect((await w.t.api('POST', '/departments', { id: 'water-b', name: '水务 B', regionId: 'S-B' })).status).toBe(201);
    expectCode(await w.as('adminA')('PATCH', '/departments/water-b', { name: 'mine' }), 404, 'DEPARTMENT_NOT_FOUND');
    expect((await w.t.api('POST', '/departments', { id: 'water-a', name: '水务 A', regionId: 'S-A' })).status).toBe(201);
    expectCode(await w.as('adminA')('PATCH', '/departments/water-a', { regionId: 'S-B' }), 403, 'OUTSIDE_REGION');
  },
  'PUT /api/v1/grids': async (w) => {
    expectCode(await w.as('adminA')('PUT', '/grids', { type: 'FeatureCollection', features: [] }), 403, 'CITY_SCOPE_REQUIRED');
    expectCode(await w.as('officer')('PUT', '/grids', { type: 'FeatureCollection', features: [] }), 403, 'FORBIDDEN');
  },
  'POST /api/v1/rules': async (w) => {
    expectCode(await w.as('officerA')('POST', '/rules', rule('city-wide-by-a')), 403, 'CITY_SCOPE_REQUIRED');
    expectCode(await w.as('officerA')('POST', '/rules', rule('b-by-a', ['G-B1'])), 403, 'OUTSIDE_REGION');
    expectCode(await w.as('officerA')('POST', '/rules', rule('ab-by-a', ['G-A1', 'G-B1'])), 403, 'OUTSIDE_REGION');
    expect((await w.as('officerA')('POST', '/rules', rule('a-by-a', ['G-A1']))).status).toBe(201);
  },
  'PUT /api/v1/rules/:id': async (w) => {
    expectCode(await w.as('officerA')('PUT', '/rules/water-level', { ...rule('water-level'), value: 1 }), 403, 'CITY_SCOPE_REQUIRED');
    await w.t.api('POST', '/rules', rule('b-only', ['S-B']));
    expectCode(await w.as('officerA')('PUT', '/rules/b-only', rule('b-only', ['S-A'])), 404, 'RULE_NOT_FOUND');
    await w.t.api('POST', '/rules', rule('a-only', ['S-A']));
    expectCode(await w.as('officerA')('PUT', '/rules/a-only', rule('a-only', ['S-B'])), 403, 'OUTSIDE_REGION');
  },
  'POST /api/v1/rules/:id/enable': async (w) => {
    expectCode(await w.as('officerA')('POST', '/rules/smoke-alarm/enable'), 403, 'CITY_SCOPE_REQUIRED');
  },
  'POST /api/v1/rules/:id/disable': async (w) => {
    expectCode(await w.as('officerA')('POST', '/rules/smoke-alarm/disable'), 403, 'CITY_SCOPE_REQUIRED');
    expect((await w.t.api<any>('GET', '/rules/smoke-alarm')).body.enabled).toBe(true);
  },
  'DELETE /api/v1/rules/:id': async (w) => {
    expectCode(await w.as('officerA')('DELETE', '/rules/smoke-alarm'), 403, 'CITY_SCOPE_REQUIRED');
  },
  'POST /api/v1/rules/:id/backtest': async (w) => {
    // Messages are replayed by arrival time, which is the wall clock.
    const from = Date.now() - 3600_000;
    const to = Date.now() + 60_000;
    const r = await w.as('officerA')<any>('POST', '/rules/smoke-alarm/backtest', { from, to });
    expect(r.status).toBe(200);
    expect(r.body.alarms.map((a: { deviceId: string }) => a.deviceId)).not.toContain(w.dev.B.id);
    const all = await w.t.api<any>('POST', '/rules/smoke-alarm/backtest', { from, to });
    expect(all.body.alarms.map((a: { deviceId: string }) => a.deviceId)).toContain(w.dev.B.id);
    expectCode(await w.as('officerA')('POST', '/rules/b-only/backtest', { from }), 404, 'RULE_NOT_FOUND');
    expectCode(await w.t.api('POST', '/rules/smoke-alarm/backtest', { from: 0, to }), 400, 'WINDOW_TOO_LARGE');
  },
  'POST /api/v1/rules/backtest': async (w) => {
    const from = Date.now() - 3600_000;
    const def = { id: 'tune', name: 'tune', kind: 'match', channel: 'event', types: ['smoke_alarm'], severity: 'critical' };
    const r = await w.as('officerA')<any>('POST', '/rules/backtest', { rule: def, from, to: Date.now() + 60_000 });
    expect(r.status).toBe(200);
    expect(r.body.messages).toBe(r.body.alarms.length);
    expect(r.body.alarms.map((a: { deviceId: string }) => a.deviceId)).toEqual([w.dev.A.id]);
    expectCode(await w.as('officerA')('POST', '/rules/backtest', { rule: def, from: 0 }), 400, 'WINDOW_TOO_LARGE');
  },
  'POST /api/v1/alarms/:id/ack': async (w) => {
    expectCode(await w.as('officerA')('POST', `/alarms/${await alarmOf(w, w.dev.B.id)}/ack`, {}), 404, 'ALARM_NOT_FOUND');
  },
  'POST /api/v1/alarms/:id/clear': async (w) => {
    expectCode(await w.as('officerA')('POST', `/alarms/${await alarmOf(w, w.dev.B.id)}/clear`), 404, 'ALARM_NOT_FOUND');
  },
  'POST /api/v1/alarms/:id/comments': async (w) => {
    expectCode(await w.as('officerA')('POST', `/alarms/${await alarmOf(w, w.dev.B.id)}/comments`, { text: 'x' }), 404, 'ALARM_NOT_FOUND');
  },
  'POST /api/v1/workers': async (w) => {
    expectCode(await w.as('dispatcherA')('POST', '/workers', { name: 'x', deviceId: w.handheld.freeB, gridIds: ['G-B2'] }), 403, 'OUTSIDE_REGION');
    expectCode(await w.as('dispatcherA')('POST', '/workers', { name: 'x', deviceId: w.handheld.freeA, gridIds: ['G-A2', 'G-B2'] }), 403, 'OUTSIDE_REGION');
    // Another region's handheld answers exactly like one that does not exist.
    const other = await w.as('dispatcherA')<any>('POST', '/workers', { name: 'x', deviceId: w.handheld.freeB, gridIds: ['G-A2'] });
    const ghost = await w.as('dispatcherA')<any>('POST', '/workers', { name: 'x', deviceId: 'hh-ghost', gridIds: ['G-A2'] });
    expectCode(other, 404, 'DEVICE_NOT_FOUND');
    expect(other.body.message.replace(w.handheld.freeB, 'ID')).toBe(ghost.body.message.replace('hh-ghost', 'ID'));
    // Bound elsewhere: the same answer as free or missing (no existence oracle for region B's handhelds).
    const bound = await w.as('dispatcherA')<any>('POST', '/workers', { name: 'x', deviceId: w.handheld.B, gridIds: ['G-A2'] });
    expectCode(bound, 404, 'DEVICE_NOT_FOUND');
    expectCode(await w.as('dispatcherA')('POST', '/workers', { name: 'x', deviceId: w.handheld.freeA, gridIds: ['G-A2'], userId: w.userId.workerB }), 404, 'USER_NOT_FOUND');
  },
  'PATCH /api/v1/workers/:id': async (w) => {
    expectCode(await w.as('dispatcherA')('PATCH', `/workers/${w.worker.B}`, { name: 'x' }), 404, 'WORKER_NOT_FOUND');
    expectCode(await w.as('dispatcherA')('PATCH', `/workers/${w.worker.A}`, { gridIds: ['G-B1'] }), 403, 'OUTSIDE_REGION');
    expect((await w.t.api<any>('GET', `/workers/${w.worker.A}`)).body.gridIds).toEqual(['G-A1']);
  },
  'DELETE /api/v1/workers/:id': async (w) => {
    expectCode(await w.as('dispatcherA')('DELETE', `/workers/${w.worker.B}`), 404, 'WORKER_NOT_FOUND');
  },
  'POST /api/v1/workers/:id/duty': async (w) => {
    expectCode(await w.as('dispatcherA')('POST', `/workers/${w.worker.B}/duty`, { onDuty: false }), 404, 'WORKER_NOT_FOUND');
    // Reading another region's worker's track is refused too (its history is region B's).
    expectCode(await w.as('dispatcherA')('GET', `/workers/${w.worker.B}/track`), 404, 'WORKER_NOT_FOUND');
  },
  'POST /api/v1/cameras': async (w) => {
    expectCode(await w.as('integratorA')('POST', '/cameras', { id: 'cam-into-b', rtspUrl: 'rtsp://127.0.0.1/x', ...AT.B2 }), 403, 'OUTSIDE_REGION');
    expectCode(await w.as('integratorA')('POST', '/cameras', { id: 'cam-into-b2', rtspUrl: 'rtsp://127.0.0.1/x', ...AT.A1, gridId: 'G-B2' }), 403, 'OUTSIDE_REGION');
  },
  'PATCH /api/v1/cameras/:id': async (w) => {
    expect(w.camera.B).toBeTruthy();
    expectCode(await w.as('integratorA')('PATCH', `/cameras/${w.camera.B}`, { name: 'mine' }), 404, 'NOT_FOUND');
  },
  'POST /api/v1/cameras/:id/snapshot': async (w) => {
    expectCode(await w.as('officerA')('POST', `/cameras/${w.camera.B}/snapshot`, { caseId: w.caseId.A }), 404, 'NOT_FOUND');
    expectCode(await w.as('officerA')('POST', `/cameras/${w.camera.A}/snapshot`, { caseId: w.caseId.B }), 404, 'NOT_FOUND');
  },
  'POST /api/v1/m/sessions/:id/revoke': async (w) => {
    expectCode(await w.as('dispatcherA')('POST', '/m/sessions/00000000-0000-4000-8000-000000000000/revoke', {}), 404, 'SESSION_NOT_FOUND');
  },
};

async function alarmOf(w: World, deviceId: string): Promise<string> {
  const r = await until(async () => (await w.t.api<{ items: Array<{ id: string; deviceId: string }> }>('GET', `/alarms?deviceId=${deviceId}`)).body.items[0]);
  return r.id;
}

describe('region scope on every write (route table walk)', () => {
  let w: World;
  beforeAll(async () => {
    w = await startWorld();
    // One smoke alarm in each region (alarms and backtests need history).
    for (const d of [w.dev.A, w.dev.B]) {
      const r = await w.t.hub.ctx.ingest.handleAsync(d.id, 'event', Buffer.from(JSON.stringify({ type: 'smoke_alarm', ts: w.clock.now() })));
      expect(r.ok).toBe(true);
    }
    await alarmOf(w, w.dev.B.id);
  }, 180_000);
  afterAll(async () => w?.t.stop(), 60_000);

  it('should have an out-of-region attack (or a stated reason) for every mutating route', () => {
    const writes = w.t.hub.ctx.app.routeTable
      .filter((r) => ['POST', 'PUT', 'PATCH', 'DELETE'].includes(r.method))
      .map((r) => `${r.method} ${r.url}`)
      .filter((k) => k.includes('/api/') || k.startsWith('POST /osmand'));
    const missing = writes.filter((k) => !(k in attacks) && !(k in NOT_USER_WRITES));
    expect(missing).toEqual([]);
    // And nothing here is stale.
    expect(Object.keys(attacks).filter((k) => !writes.includes(k))).toEqual([]);
  });

  for (const key of Object.keys(attacks)) {
    it(`should refuse an out-of-region caller: ${key}`, async () => {
      await attacks[key]!(w);
    });
  }
});
