import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Command } from '@gridlink/devices';
import type { DispatchAlarm } from '../../src/dispatch/index.js';
import { publishAck } from '../helpers.js';
import { AT, startDispatchHub, waitFor, type DispatchHub } from './fixtures.js';

const caseTopic = (id: string) => `gridlink/v1/${id}/case`;

describe('dispatch over MQTT', () => {
  let h: DispatchHub;
  const alarms: DispatchAlarm[] = [];
  const worker = async (id: string) => (await h.as('dispatcher')<{ status: string; caseId: string | null; position: { lat: number } | null }>('GET', `/workers/${id}`)).body;
  const caseOf = async (id: string) => (await h.as('dispatcher')<{ status: string; workerId: string | null }>('GET', `/cases/${id}`)).body;
  const dispatch = (caseId: string, workerId: string) => h.as('dispatcher')<{ status: string; code?: string }>('POST', `/cases/${caseId}/actions`, { action: 'dispatch', workerId });
  /** Takes a worker off the board so later tests choose among their own workers. */
  const offDuty = async (...ids: string[]) => {
    for (const id of ids) await h.dispatch.workers.setDuty(h.dispatch.workers.byId.get(id)!, false);
  };

  /** Withdraws a dispatch a test leaves open, so a later test's accept timeout does not re-dispatch it to that test's workers. */
  const done = async (caseId: string) => {
    expect((await h.as('dispatcher')('POST', `/cases/${caseId}/actions`, { action: 'cancel' })).status).toBe(200);
    await h.dispatch.engine.idle();
  };

  beforeAll(async () => {
    h = await startDispatchHub({ config: { acceptTimeoutS: 60, arrivalRadiusM: 50, arrivalDwellS: 20, autoDispatch: 'fire:critical', geofenceMinutes: 10 } });
    h.hub.ctx.bus.on('dispatch.alarm', 'test', (a) => void alarms.push(a));
  }, 120_000);

  afterAll(async () => {
    await h?.stop();
  });

  it('should send the dispatch command to the handheld and follow accept, arrive and resolve from its case channel', async () => {
    const w = await h.addWorker({ id: 'w-loop', gridIds: ['G-A1'], at: AT.A1 });
    const { client, commands } = await h.handheld(w.deviceId, w.secret);
    const c = await h.newCase({ lat: AT.A1.lat + 0.001, lon: AT.A1.lon });
    const r = await dispatch(c.id, 'w-loop');
    expect(r.status).toBe(200);
    const cmd = await waitFor(() => commands.find((x) => x.type === 'dispatch'));
    expect(cmd).toMatchObject({ type: 'dispatch', case: { id: c.id, code: c.code, category: 'E0101', lat: AT.A1.lat + 0.001, lon: AT.A1.lon } });
    expect(cmd.type === 'dispatch' && cmd.case.deadline).toBeGreaterThan(h.clock.now());
    expect((await worker('w-loop')).status).toBe('dispatched');

    await publishAck(client, caseTopic(w.deviceId), { caseId: c.id, action: 'accept' });
    await waitFor(async () => (await caseOf(c.id)).status === 'accepted');
    await waitFor(async () => (await worker('w-loop')).status === 'en_route');

    h.clock.advance(60_000);
    await publishAck(client, caseTopic(w.deviceId), { caseId: c.id, action: 'arrive' });
    await waitFor(async () => (await worker('w-loop')).status === 'on_scene');
    expect((await caseOf(c.id)).status).toBe('on_scene');

    h.clock.advance(60_000);
    await publishAck(client, caseTopic(w.deviceId), { caseId: c.id, action: 'resolve', note: '已清理' });
    await waitFor(async () => (await worker('w-loop')).status === 'available');
    expect((await caseOf(c.id)).status).toBe('resolved');

    await h.dispatch.engine.idle();
    const hist = await h.as('dispatcher')<{ items: Array<{ workerId: string; dispatchedAt: number; acceptedAt: number; arrivedAt: number; arrivedBy: string; resolvedAt: number; outcome: string }> }>('GET', `/cases/${c.id}/dispatches`);
    expect(hist.body.items).toHaveLength(1);
    const d = hist.body.items[0]!;
    expect(d).toMatchObject({ workerId: 'w-loop', arrivedBy: 'worker', outcome: 'resolved' });
    expect(d.acceptedAt - d.dispatchedAt).toBe(0);
    expect(d.arrivedAt - d.acceptedAt).toBe(60_000);
    expect(d.resolvedAt - d.arrivedAt).toBe(60_000);
    await offDuty('w-loop');
  });

  it('should refuse to dispatch a worker who is off duty or busy', async () => {
    const w = await h.addWorker({ id: 'w-off', gridIds: ['G-A2'], onDuty: false, at: AT.A2 });
    const c = await h.newCase(AT.A2);
    const r = await dispatch(c.id, w.id);
    expect(r.status).toBe(409);
    expect(r.body.code).toBe('WORKER_UNAVAILABLE');
  });

  it('should deliver a dispatch to a handheld that was offline once it reconnects (persistent session)', async () => {
    const w = await h.addWorker({ id: 'w-persist', gridIds: ['G-B1'], at: AT.B1 });
    const first = await h.handheld(w.deviceId, w.secret, { clean: false });
    await first.client.endAsync();
    await waitFor(() => !h.hub.ctx.broker.isConnected(w.deviceId));
    const c = await h.newCase(AT.B1);
    expect((await dispatch(c.id, w.id)).status).toBe(200);
    await h.dispatch.engine.idle();
    // Reconnect with the same persistent session: the queued QoS 1 command arrives without subscribing again.
    const again = await h.connect(w.deviceId, w.secret, { clean: false });
    const got: Command[] = [];
    again.on('message', (_t, p) => got.push(JSON.parse(p.toString()) as Command));
    const cmd = await waitFor(() => got.find((x) => x.type === 'dispatch' && x.case.id === c.id));
    expect(cmd.type).toBe('dispatch');
    await done(c.id);
    await offDuty(w.id);
  });

  it('should re-send a pending dispatch from its outbox when the handheld comes back without a session', async () => {
    const w = await h.addWorker({ id: 'w-outbox', gridIds: ['G-B2'], at: AT.B2 });
    const c = await h.newCase(AT.B2);
    expect((await dispatch(c.id, w.id)).status).toBe(200);
    await h.dispatch.engine.idle();
    // A clean session has no queue (as after a hub restart): only the outbox can deliver it.
    const { commands } = await h.handheld(w.deviceId, w.secret, { clean: true });
    const cmd = await waitFor(() => commands.find((x) => x.type === 'dispatch' && x.case.id === c.id));
    expect(cmd.type).toBe('dispatch');
    const rows = await h.hub.ctx.db.query<{ sends: number; done_at: Date | null }>('select sends, done_at from dispatch_commands where cmd_id = $1', [cmd.cmdId]);
    expect(rows[0]!.sends).toBe(2);
    expect(rows[0]!.done_at).toBeNull();
    await done(c.id);
    await offDuty(w.id);
  });

  it('should re-dispatch to the next candidate and raise an alarm when a dispatch is not accepted in time', async () => {
    const a = await h.addWorker({ id: 'w-slow', gridIds: ['G-A1'], at: { lat: 30.612, lon: 104.005 } });
    const b = await h.addWorker({ id: 'w-next', gridIds: ['G-A1'], at: { lat: 30.613, lon: 104.005 } });
    const hb = await h.handheld(b.deviceId, b.secret);
    const c = await h.newCase({ lat: 30.6119, lon: 104.005 });
    expect((await dispatch(c.id, a.id)).status).toBe(200);
    await h.dispatch.engine.idle();
    h.clock.advance(59_000);
    h.dispatch.flush();
    await h.dispatch.engine.idle();
    expect((await caseOf(c.id)).workerId).toBe('w-slow');
    h.clock.advance(1_000);
    h.dispatch.flush();
    await h.dispatch.engine.idle();
    await waitFor(async () => (await caseOf(c.id)).workerId === 'w-next');
    expect((await caseOf(c.id)).status).toBe('dispatched');
    expect((await worker('w-slow')).status).toBe('available');
    expect((await worker('w-next')).status).toBe('dispatched');
    await waitFor(() => hb.commands.find((x) => x.type === 'dispatch' && x.case.id === c.id));
    const alarm = alarms.find((x) => x.caseId === c.id && x.kind === 'dispatch_timeout');
    expect(alarm).toMatchObject({ workerId: 'w-slow', nextWorkerId: 'w-next', status: 'active' });
    const hist = await h.as('dispatcher')<{ items: Array<{ workerId: string; outcome: string | null; attempt: number }> }>('GET', `/cases/${c.id}/dispatches?path=false`);
    expect(hist.body.items.map((i) => [i.workerId, i.outcome, i.attempt])).toEqual([['w-slow', 'timeout', 1], ['w-next', null, 2]]);
    await h.as('dispatcher')('POST', `/cases/${c.id}/actions`, { action: 'cancel' });
    await h.dispatch.engine.idle();
    await offDuty('w-slow', 'w-next');
  });

  it('should pass a declined dispatch to the next candidate, never back to who declined', async () => {
    const a = await h.addWorker({ id: 'w-decl', gridIds: ['G-A2'], at: { lat: 30.605, lon: 104.015 } });
    await h.addWorker({ id: 'w-decl2', gridIds: ['G-A2'], at: { lat: 30.6052, lon: 104.015 } });
    const ha = await h.handheld(a.deviceId, a.secret);
    const c = await h.newCase({ lat: 30.605, lon: 104.0151 });
    expect((await dispatch(c.id, a.id)).status).toBe(200);
    await waitFor(() => ha.commands.length > 0);
    await publishAck(ha.client, caseTopic(a.deviceId), { caseId: c.id, action: 'decline', note: '在处理别的事' });
    await waitFor(async () => (await caseOf(c.id)).workerId === 'w-decl2');
    await h.dispatch.engine.idle();
    expect((await worker('w-decl')).status).toBe('available');
    expect(alarms.find((x) => x.caseId === c.id)).toMatchObject({ kind: 'dispatch_declined', workerId: 'w-decl', nextWorkerId: 'w-decl2' });
    // w-decl2 declines too: nobody left who has not declined → no candidate alarm.
    await h.cases.act(c.id, 'decline', { kind: 'worker', id: 'w-decl2', name: 'w-decl2', deviceId: 'hh-w-decl2' });
    await h.dispatch.engine.idle();
    await waitFor(() => alarms.find((x) => x.caseId === c.id && x.kind === 'dispatch_no_candidate'));
    expect((await caseOf(c.id)).status).toBe('registered');
    await offDuty('w-decl', 'w-decl2');
  });

  it('should detect arrival from GPS after the dwell time and set the worker on scene', async () => {
    const w = await h.addWorker({ id: 'w-gps', gridIds: ['G-B2'], at: { lat: 30.6, lon: 104.035 } });
    const hw = await h.handheld(w.deviceId, w.secret);
    const target = { lat: 30.605, lon: 104.035 };
    const c = await h.newCase(target);
    expect((await dispatch(c.id, w.id)).status).toBe(200);
    await publishAck(hw.client, caseTopic(w.deviceId), { caseId: c.id, action: 'accept' });
    await waitFor(async () => (await worker(w.id)).status === 'en_route');
    const loc = (lat: number) => publishAck(hw.client, `gridlink/v1/${w.deviceId}/location`, { ts: h.clock.now(), lat, lon: target.lon });
    h.clock.advance(120_000);
    await loc(30.603); // 220 m away
    h.clock.advance(120_000);
    await loc(30.6049); // 11 m: inside the radius, dwell starts
    h.clock.advance(10_000);
    await loc(30.60495);
    await h.dispatch.engine.idle();
    expect((await caseOf(c.id)).status).toBe('accepted');
    h.clock.advance(10_000);
    await loc(30.605);
    await waitFor(async () => (await caseOf(c.id)).status === 'on_scene');
    await waitFor(async () => (await worker(w.id)).status === 'on_scene');
    await h.dispatch.engine.idle();
    const hist = await h.as('dispatcher')<{ items: Array<{ arrivedBy: string; path: { points: unknown[]; distanceM: number } }> }>('GET', `/cases/${c.id}/dispatches`);
    expect(hist.body.items[0]!.arrivedBy).toBe('gps');
    expect(hist.body.items[0]!.path.points.length).toBe(5);
    expect(hist.body.items[0]!.path.distanceM).toBeGreaterThan(500);
    await offDuty(w.id);
  });

  it('should send cancel to the handheld when a dispatched case is cancelled', async () => {
    const w = await h.addWorker({ id: 'w-cancel', gridIds: ['G-B1'], at: { lat: 30.615, lon: 104.025 } });
    const hw = await h.handheld(w.deviceId, w.secret);
    const c = await h.newCase({ lat: 30.615, lon: 104.0255 });
    expect((await dispatch(c.id, w.id)).status).toBe(200);
    await waitFor(() => hw.commands.some((x) => x.type === 'dispatch'));
    await h.as('dispatcher')('POST', `/cases/${c.id}/actions`, { action: 'cancel', note: '重复上报' });
    const cancel = await waitFor(() => hw.commands.find((x) => x.type === 'cancel'));
    expect(cancel).toMatchObject({ type: 'cancel', caseId: c.id });
    await waitFor(async () => (await worker(w.id)).status === 'available');
    await offDuty(w.id);
  });

  it('should auto-dispatch a critical fire to the nearest available worker at once', async () => {
    const near = await h.addWorker({ id: 'w-fire', gridIds: ['G-A1'], at: { lat: 30.6181, lon: 104.0021 } });
    await h.addWorker({ id: 'w-fire-far', gridIds: ['G-A1'], at: { lat: 30.6101, lon: 104.0021 } });
    const hw = await h.handheld(near.deviceId, near.secret);
    const c = await h.as('officer')<{ id: string }>('POST', '/cases', { category: 'fire', lat: 30.618, lon: 104.002 });
    expect(c.status).toBe(201);
    await waitFor(async () => (await caseOf(c.body.id)).workerId === 'w-fire');
    expect((await caseOf(c.body.id)).status).toBe('dispatched');
    await waitFor(() => hw.commands.find((x) => x.type === 'dispatch' && x.case.id === c.body.id));
  });

  it('should raise a geofence alarm when an idle on-duty worker stays outside their grids too long, and clear it on return', async () => {
    const w = await h.addWorker({ id: 'w-fence', gridIds: ['G-A2'], at: AT.A2 });
    h.clock.advance(120_000);
    await h.fix(w.deviceId, AT.B2.lat, AT.B2.lon); // 2 km east, in G-B2
    h.clock.advance(9 * 60_000);
    h.dispatch.flush();
    expect(alarms.find((a) => a.kind === 'worker_left_grid' && a.workerId === 'w-fence')).toBeUndefined();
    h.clock.advance(60_000);
    h.dispatch.flush();
    expect(alarms.filter((a) => a.kind === 'worker_left_grid' && a.workerId === 'w-fence')).toMatchObject([{ status: 'active', id: 'geofence:w-fence', gridId: 'G-B2' }]);
    h.dispatch.flush();
    expect(alarms.filter((a) => a.kind === 'worker_left_grid' && a.workerId === 'w-fence')).toHaveLength(1);
    h.clock.advance(120_000);
    await h.fix(w.deviceId, AT.A2.lat, AT.A2.lon);
    expect(alarms.filter((a) => a.kind === 'worker_left_grid' && a.workerId === 'w-fence').map((a) => a.status)).toEqual(['active', 'cleared']);
    await offDuty(w.id);
  });

  it('should create workers over REST bound to one handheld each, and map a worker login', async () => {
    const reg = h.hub.ctx.registry;
    await reg.register({ id: 'hh-rest', type: 'handheld' });
    await reg.register({ id: 'smoke-1', type: 'sensor.smoke' });
    const api = h.as('dispatcher');
    const bad = await api<{ code: string }>('POST', '/workers', { name: '张三', deviceId: 'smoke-1' });
    expect(bad.body.code).toBe('DEVICE_NOT_HANDHELD');
    const ok = await api<{ id: string; status: string; team: string; teamName: string; userId: string }>('POST', '/workers', { id: 'w-rest', name: '张三', deviceId: 'hh-rest', gridIds: ['G-A1'], team: 'grid_leader', phone: '13800000000', userId: 'u-zhang' });
    expect(ok.status).toBe(201);
    expect(ok.body).toMatchObject({ id: 'w-rest', status: 'off_duty', team: 'grid_leader', teamName: '网格长', userId: 'u-zhang' });
    const dup = await api<{ code: string }>('POST', '/workers', { name: '李四', deviceId: 'hh-rest' });
    expect(dup.body.code).toBe('DEVICE_ALREADY_BOUND');
    expect(h.hub.ctx.services.workers?.byUser?.('u-zhang')?.id).toBe('w-rest');
    const list = await h.as('dispatcherA')<{ items: Array<{ id: string }> }>('GET', '/workers?team=grid_leader');
    expect(list.body.items.map((w) => w.id)).toEqual(['w-rest']);
    expect((await h.as('dispatcherA')('GET', '/workers/w-decl2')).status).toBe(200); // G-A2 is in street A
    expect((await h.as('dispatcherA')('GET', '/workers/w-persist')).status).toBe(404); // G-B1 is not
  });
});
