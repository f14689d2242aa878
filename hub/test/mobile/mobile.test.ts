/**
 * The worker app's API (/api/v1/m): handheld sessions instead of device
 * secrets, positions through ingest, task actions and reports with multipart
 * photos, idempotent replays, revocation, and the app's private socket.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { io, type Socket } from 'socket.io-client';
import { mobileModule } from '../../src/hub.js';
import type { MobileModule } from '../../src/mobile/index.js';
import { AT } from '../cases/fixtures.js';
import { JPEG } from '../cases/fixtures.js';
import { startDispatchHub, waitFor, type DispatchHub } from '../dispatch/fixtures.js';

type Json = Record<string, any>;

describe('mobile API (handheld sessions, tasks, reports)', () => {
  let h: DispatchHub;
  let mobile: MobileModule;
  let token = '';
  let deviceSecret = '';
  const PASSWORD = 'worker-password-1';

  const m = async <T = Json>(method: string, path: string, body?: unknown, tok = token): Promise<{ status: number; body: T }> => {
    const headers: Record<string, string> = {};
    if (tok) headers.authorization = `Bearer ${tok}`;
    let payload: RequestInit['body'];
    if (body instanceof FormData) payload = body;
    else if (body !== undefined) {
      headers['content-type'] = 'application/json';
      payload = JSON.stringify(body);
    }
    const res = await fetch(`${h.http}/api/v1${path}`, { method, headers, body: payload });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : null) as T };
  };
  const form = (fields: Record<string, string | number>, photos: Buffer[] = []) => {
    const f = new FormData();
    for (const [k, v] of Object.entries(fields)) f.append(k, String(v));
    photos.forEach((p, i) => f.append('photos', new Blob([new Uint8Array(p)], { type: 'image/jpeg' }), `p${i}.jpg`));
    return f;
  };

  beforeAll(async () => {
    h = await startDispatchHub({
      config: { arrivalDwellS: 0 },
      extraModules: [mobileModule({ config: { positionIntervalS: 5 } })],
    });
    mobile = h.hub.ctx.domains.mobile!;
    const u = await h.api<Json>('POST', '/users', { username: 'zhang', password: PASSWORD, role: 'worker', displayName: '张网格' });
    expect(u.status).toBe(201);
    const other = await h.api<Json>('POST', '/users', { username: 'li', password: PASSWORD, role: 'worker' });
    // Enrolled as a district does: a handheld, and a worker bound to it and to the user.
    const dev = await h.hub.ctx.registry.register({ id: 'hh-w-zhang', type: 'handheld' });
    deviceSecret = dev.secret;
    const w = await h.as('dispatcher')<Json>('POST', '/workers', { id: 'w-zhang', name: '张网格', deviceId: 'hh-w-zhang', gridIds: ['G-A1'], userId: u.body.id });
    expect(w.status).toBe(201);
    await h.hub.ctx.registry.register({ id: 'hh-li', type: 'handheld' });
    expect((await h.as('dispatcher')<Json>('POST', '/workers', { id: 'w-li', name: 'li', deviceId: 'hh-li', gridIds: ['G-B1'], userId: other.body.id })).status).toBe(201);
  }, 300_000);

  afterAll(async () => {
    await h?.stop();
  });

  it('should issue a handheld session to a worker login without ever showing the device secret', async () => {
    const r = await m<Json>('POST', '/m/session', { username: 'zhang', password: PASSWORD }, '');
    expect(r.status).toBe(201);
    token = r.body.token;
    expect(token).toMatch(/^hs_[0-9a-f]{16}_/);
    expect(JSON.stringify(r.body)).not.toContain(deviceSecret);
    expect(r.body.me.worker).toMatchObject({ id: 'w-zhang', deviceId: 'hh-w-zhang', onDuty: false, gridIds: ['G-A1'] });
    expect(r.body.me.grids.map((g: Json) => g.id)).toEqual(['G-A1']);
    expect(r.body.me.settings.positionIntervalS).toBe(5);
    // Not a console token: the rest of the API refuses it.
    expect((await m('GET', '/cases', undefined, token)).status).toBe(401);
    // A user that is not a worker, a wrong password.
    expect((await m<Json>('POST', '/m/session', { username: 'admin', password: h.config.adminPassword }, '')).body.code).toBe('NOT_A_WORKER');
    expect((await m<Json>('POST', '/m/session', { username: 'zhang', password: 'wrong-password' }, '')).status).toBe(401);
    // A field it must not accept.
    expect((await m<Json>('POST', '/m/session', { username: 'zhang', password: PASSWORD, deviceId: 'hh-li' }, '')).status).toBe(400);
  });

  it('should describe every app route in the OpenAPI document', async () => {
    const doc = (await fetch(`${h.http}/docs/json`).then((r) => r.json())) as { paths: Record<string, Record<string, { security?: unknown[] }>> };
    for (const p of ['/api/v1/m/session', '/api/v1/m/me', '/api/v1/m/duty', '/api/v1/m/positions', '/api/v1/m/tasks', '/api/v1/m/tasks/{id}/actions', '/api/v1/m/reports', '/api/v1/m/sessions/{id}/revoke']) {
      expect(doc.paths[p], p).toBeDefined();
    }
    expect(doc.paths['/api/v1/m/positions']!.post!.security).toEqual([{ handheld: [] }]);
  });

  it('should put the worker on duty and store fixes through ingest once, however often they are replayed', async () => {
    expect((await m<Json>('POST', '/m/duty', { onDuty: true })).body.worker).toMatchObject({ onDuty: true, status: 'available' });
    const t0 = h.clock.now();
    const items = [0, 1, 2].map((i) => ({ ts: t0 - 3000 + i * 1000, lat: AT.A1.lat, lon: AT.A1.lon + i * 0.0001, acc: 5, batt: 80 }));
    expect((await m<Json>('POST', '/m/positions', { items })).status).toBe(202);
    expect((await m<Json>('POST', '/m/positions', { items })).status).toBe(202);
    const rows = await h.hub.ctx.db.query<{ n: number }>("select count(*)::int as n from positions where device_id = 'hh-w-zhang'");
    expect(rows[0]!.n).toBe(3);
    const w = await h.as('dispatcher')<Json>('GET', '/workers/w-zhang');
    expect(w.body.position).toMatchObject({ lat: AT.A1.lat, lon: AT.A1.lon + 0.0002, batt: 80 });
    // Values the database cannot store / the contract refuses; fields it must not accept.
    expect((await m<Json>('POST', '/m/positions', { items: [{ ts: t0, lat: 91, lon: 0 }] })).status).toBe(400);
    expect((await m<Json>('POST', '/m/positions', { items: [{ ts: 1e300, lat: 30, lon: 104 }] })).status).toBe(400);
    expect((await m<Json>('POST', '/m/positions', { items: [{ ts: t0, lat: 30, lon: 104, deviceId: 'hh-li' }] })).status).toBe(400);
    expect((await m<Json>('POST', '/m/positions', { items: [] })).status).toBe(400);
  });

  it('should push a dispatch to the app socket and apply accept / arrive / resolve with photos once each', async () => {
    const sock: Socket = io(h.http, { path: '/socket.io', auth: { token }, transports: ['websocket'], reconnection: false });
    const commands: Json[] = [];
    sock.on('command', (c: Json) => commands.push(c));
    await new Promise<void>((resolve, reject) => {
      sock.once('connect', () => resolve());
      sock.once('connect_error', reject);
    });
    await waitFor(() => h.hub.ctx.registry.get('hh-w-zhang')?.online);
    const c = await h.newCase(AT.A1);
    expect((await h.as('dispatcher')('POST', `/cases/${c.id}/actions`, { action: 'dispatch', workerId: 'w-zhang' })).status).toBe(200);
    const cmd = await waitFor(() => commands.find((x) => x.type === 'dispatch'));
    expect(cmd.case).toMatchObject({ id: c.id, code: c.code });

    const tasks = await m<Json>('GET', '/m/tasks');
    expect(tasks.body.items[0]).toMatchObject({ id: c.id, status: 'dispatched', mine: true });

    const accept = { action: 'accept', opId: 'op-accept-0001', note: '马上到' };
    expect((await m<Json>('POST', `/m/tasks/${c.id}/actions`, accept)).body).toMatchObject({ replayed: false, task: { status: 'accepted' } });
    expect((await m<Json>('POST', `/m/tasks/${c.id}/actions`, accept)).body).toMatchObject({ replayed: true, task: { status: 'accepted' } });
    expect((await m<Json>('POST', `/m/tasks/${c.id}/actions`, { action: 'arrive', opId: 'op-arrive-001' })).body.task.status).toBe('on_scene');
    // Not a photo: refused before anything changes; too many fields.
    const bad = await m<Json>('POST', `/m/tasks/${c.id}/actions`, form({ action: 'resolve', opId: 'op-resolve-01' }, [Buffer.from('not an image at all')]));
    expect(bad.body.code).toBe('EVIDENCE_INVALID');
    expect((await m<Json>('POST', `/m/tasks/${c.id}/actions`, form({ action: 'resolve', opId: 'op-resolve-01', workerId: 'w-li' }))).status).toBe(400);
    const resolved = await m<Json>('POST', `/m/tasks/${c.id}/actions`, form({ action: 'resolve', opId: 'op-resolve-01', note: '已清理' }, [JPEG, JPEG]));
    expect(resolved.status).toBe(200);
    expect(resolved.body.task.status).toBe('resolved');
    expect(resolved.body.task.photos).toHaveLength(2);
    const again = await m<Json>('POST', `/m/tasks/${c.id}/actions`, form({ action: 'resolve', opId: 'op-resolve-01', note: '已清理' }, [JPEG, JPEG]));
    expect(again.body).toMatchObject({ replayed: true });
    const detail = await h.as('officer')<Json>('GET', `/cases/${c.id}`);
    expect(detail.body.status).toBe('resolved');
    expect(detail.body.evidence.filter((e: Json) => e.kind === 'photo')).toHaveLength(2);
    const photo = await fetch(`${h.http}${resolved.body.task.photos[0].url}`, { headers: { authorization: `Bearer ${token}` } });
    expect(photo.headers.get('content-type')).toBe('image/jpeg');
    sock.close();
  });

  it('should refuse tasks of another worker and decline without a reason', async () => {
    const c = await h.newCase(AT.B1);
    await h.fix('hh-li', AT.B1.lat, AT.B1.lon);
    await h.dispatch.workers.setDuty(h.dispatch.workers.byId.get('w-li')!, true);
    expect((await h.as('dispatcher')('POST', `/cases/${c.id}/actions`, { action: 'dispatch', workerId: 'w-li' })).status).toBe(200);
    expect((await m<Json>('POST', `/m/tasks/${c.id}/actions`, { action: 'accept', opId: 'op-steal-0001' })).body.code).toBe('TASK_NOT_FOUND');
    expect((await m<Json>('GET', `/m/tasks/${c.id}`)).status).toBe(404);
    const mine = await h.newCase(AT.A1);
    await h.as('dispatcher')('POST', `/cases/${mine.id}/actions`, { action: 'dispatch', workerId: 'w-zhang' });
    expect((await m<Json>('POST', `/m/tasks/${mine.id}/actions`, { action: 'decline', opId: 'op-decline-01' })).body.code).toBe('REASON_REQUIRED');
    const d = await m<Json>('POST', `/m/tasks/${mine.id}/actions`, { action: 'decline', opId: 'op-decline-01', note: '不在辖区' });
    expect(d.body.task).toMatchObject({ status: 'registered', mine: false });
    // Declined tasks stay in the worker's history.
    expect((await m<Json>('GET', '/m/tasks')).body.items.map((t: Json) => t.id)).toContain(mine.id);
  });

  it('should turn a patrol report with photos into one case, however often it is sent, and show what became of it', async () => {
    const f = () => form({ reportId: 'rep-0000-0001', category: 'E0101', description: '路口垃圾堆积', lat: AT.A1.lat, lon: AT.A1.lon }, [JPEG]);
    const first = await m<Json>('POST', '/m/reports', f());
    expect(first.status).toBe(201);
    const second = await m<Json>('POST', '/m/reports', f());
    expect(second.status).toBe(200);
    expect(second.body.caseId).toBe(first.body.caseId);
    const c = await h.as('officer')<Json>('GET', `/cases/${first.body.caseId}`);
    expect(c.body).toMatchObject({ source: 'worker', status: 'reported', gridId: 'G-A1', category: { code: 'E0101' } });
    expect(c.body.evidence).toHaveLength(1);
    await h.as('officer')('POST', `/cases/${first.body.caseId}/actions`, { action: 'reject', note: '重复上报' });
    const list = await m<Json>('GET', '/m/reports');
    expect(list.body.items[0]).toMatchObject({ reportId: 'rep-0000-0001', status: 'rejected', outcome: '重复上报' });
    expect((await m<Json>('POST', '/m/reports', { reportId: 'rep-0000-0002', category: 'no-such', lat: 30, lon: 104 })).body.code).toBe('CATEGORY_UNKNOWN');
    expect((await m<Json>('POST', '/m/reports', { reportId: 'rep-0000-0003', category: 'E0101', lat: 'x', lon: 104 })).status).toBe(400);
  });

  it('should let only a dispatcher of the worker\'s region revoke a session, and cut REST and socket at once', async () => {
    const sessions = await h.as('dispatcher')<Json>('GET', '/m/sessions?workerId=w-zhang&active=true');
    expect(sessions.body.items).toHaveLength(1);
    const id = sessions.body.items[0].id;
    // dispatcherA is scoped to street A, where G-A1 lies; a street-B dispatcher would not see it.
    const outsider = h.hub.ctx.auth.sign({ id: 'u-b', username: 'b', role: 'dispatcher', regionId: 'S-B', displayName: 'b' });
    expect((await h.api<Json>('POST', `/m/sessions/${id}/revoke`, {}, outsider)).status).toBe(404);
    // A forged signature: its first character changed (the last one carries two padding bits that decoders ignore, so
    // changing only it can leave the signature's bytes as they were).
    const forged = h.tokens.officer.replace(/\.([^.])([^.]*)$/, (_, c: string, rest: string) => `.${c === 'A' ? 'B' : 'A'}${rest}`);
    expect(forged).not.toBe(h.tokens.officer);
    expect((await h.api<Json>('POST', `/m/sessions/${id}/revoke`, {}, forged)).status).toBe(401);
    const sock: Socket = io(h.http, { path: '/socket.io', auth: { token }, transports: ['websocket'], reconnection: false });
    await new Promise<void>((resolve) => sock.once('connect', () => resolve()));
    const closed = new Promise<void>((resolve) => sock.once('disconnect', () => resolve()));
    const r = await h.as('dispatcherA')<Json>('POST', `/m/sessions/${id}/revoke`, { reason: '手机丢失' });
    expect(r.body).toMatchObject({ id, revokedBy: 'dispatcherA', revokeReason: '手机丢失' });
    await closed;
    expect((await m<Json>('GET', '/m/me')).status).toBe(401);
    await waitFor(() => h.hub.ctx.registry.get('hh-w-zhang')?.online === false);
    // A new login works; disabling the handheld revokes it.
    const again = await m<Json>('POST', '/m/session', { username: 'zhang', password: PASSWORD }, '');
    token = again.body.token;
    expect((await m('GET', '/m/me')).status).toBe(200);
    expect((await h.api('POST', '/devices/hh-w-zhang/disable')).status).toBe(200);
    await waitFor(async () => (await m('GET', '/m/me')).status === 401);
    expect(mobile.sessions).toBeDefined();
  });

  it('should cut an app socket whose session is revoked while the socket is being admitted', async () => {
    const li = await m<Json>('POST', '/m/session', { username: 'li', password: PASSWORD }, '');
    expect(li.status).toBe(201);
    const { sessions } = mobile;
    const check = sessions.check.bind(sessions);
    // The revoke lands after the socket's session was checked, before the socket joins its session's room.
    sessions.check = async (tok, opts) => {
      const s = await check(tok, opts);
      if (s && tok === li.body.token) await sessions.revoke(s.id, 'dispatcherA', '手机丢失');
      return s;
    };
    try {
      const sock: Socket = io(h.http, { path: '/socket.io', auth: { token: li.body.token }, transports: ['websocket'], reconnection: false });
      const closed = new Promise<void>((resolve) => sock.once('disconnect', () => resolve()));
      await new Promise<void>((resolve, reject) => {
        sock.once('connect', () => resolve());
        sock.once('connect_error', reject);
      });
      await closed;
      // Counted off again: the handheld is not left online by a socket that is gone.
      await waitFor(() => h.hub.ctx.registry.get('hh-li')?.online === false);
    } finally {
      sessions.check = check;
    }
  });
});
