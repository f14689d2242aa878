/**
 * The whole loop over the real protocols: a smoke detector publishes over
 * MQTT, the rule raises an alarm and a case, Socket.IO clients see them by
 * region, officers register and dispatch over REST, the handheld accepts,
 * arrives and resolves with a photo on its MQTT `case` channel, the officer
 * verifies, and the KPIs count the closed case.
 */
import { io, type Socket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CaseDetail, KpiResult } from '../../src/cases/index.js';
import type { CaseSummary } from '../../src/core/services.js';
import type { AlarmEvent, CaseEvent, ServerToClientEvents } from '../../src/realtime/events.js';
import { engines, publishAck, until } from '../helpers.js';
import { AT, JPEG_B64, startCaseHub, T0, type CaseHub } from './fixtures.js';

for (const engine of engines()) {
  describe(`the closed loop end to end (${engine.name})`, () => {
    let h: CaseHub;
    const sockets: Array<Socket<ServerToClientEvents>> = [];
    beforeAll(async () => {
      h = await startCaseHub({ databaseUrl: engine.url });
    });
    afterAll(async () => {
      for (const s of sockets) s.close();
      await h?.stop();
    });

    const connect = async (token: string) => {
      const s: Socket<ServerToClientEvents> = io(h.http, { path: '/socket.io', auth: { token }, transports: ['websocket'], reconnection: false, forceNew: true });
      sockets.push(s);
      await new Promise<void>((resolve, reject) => {
        s.once('connect', () => resolve());
        s.once('connect_error', reject);
      });
      return s;
    };

    it('should run smoke_alarm → alarm → case → register → dispatch → accept → arrive → resolve with photo → verify → closed, counted in KPIs', async () => {
      const officer = await connect(h.tokens.officer);
      const other = await connect(h.tokens.officerB);
      const seen = { alarms: [] as AlarmEvent[], cases: [] as CaseEvent[], other: 0 };
      officer.on('alarm', (a) => seen.alarms.push(a));
      officer.on('case', (c) => seen.cases.push(c));
      other.on('alarm', () => seen.other++);
      other.on('case', () => seen.other++);

      const smoke = await h.registerDevice('sensor.smoke', 'e2e-smoke', { ...AT.A2, name: '3号楼烟感' });
      const hh = await h.registerDevice('handheld', 'e2e-hh');
      const sm = await h.connect(smoke.id, smoke.secret);
      const hand = await h.connect(hh.id, hh.secret);

      await publishAck(sm, `gridlink/v1/${smoke.id}/event`, { type: 'smoke_alarm', severity: 'critical', ts: h.clock.t });
      await until(() => seen.alarms.some((a) => a.caseId) && seen.cases.length > 0);
      const alarm = seen.alarms.find((a) => a.caseId)!;
      expect(alarm).toMatchObject({ rule: 'smoke-alarm', deviceId: smoke.id, severity: 'critical', status: 'active', gridId: 'G-A2', lat: AT.A2.lat, lon: AT.A2.lon });
      const caseId = alarm.caseId!;
      expect(seen.cases[0]).toMatchObject({ id: caseId, status: 'reported', category: { name: '火灾' }, source: 'rule', change: 'create' });

      const act = (user: 'officer' | 'dispatcher', body: Record<string, unknown>) => h.as(user)<CaseSummary>('POST', `/cases/${caseId}/actions`, body);
      h.clock.advance(60_000);
      expect((await act('officer', { action: 'register', note: '已核实' })).body.status).toBe('registered');
      h.clock.advance(60_000);
      // Without the dispatch module a handheld acts as the worker whose id is its device id.
      expect((await act('dispatcher', { action: 'dispatch', workerId: hh.id })).body.status).toBe('dispatched');

      const statusIs = (s: string) => until(async () => (await h.cases.get(caseId))?.status === s);
      h.clock.advance(30_000);
      await publishAck(hand, `gridlink/v1/${hh.id}/case`, { caseId, action: 'accept' });
      await statusIs('accepted');
      h.clock.advance(240_000);
      await publishAck(hand, `gridlink/v1/${hh.id}/case`, { caseId, action: 'arrive' });
      await statusIs('on_scene');
      h.clock.advance(600_000);
      await publishAck(hand, `gridlink/v1/${hh.id}/case`, { caseId, action: 'resolve', note: '明火已扑灭', photos: [JPEG_B64] });
      await statusIs('resolved');
      h.clock.advance(300_000);
      expect((await act('officer', { action: 'verify' })).body.status).toBe('closed');

      const d = (await h.as('officer')<CaseDetail>('GET', `/cases/${caseId}`)).body;
      expect(d.history.map((x) => [x.action, x.to, (x.actor as { kind: string }).kind])).toEqual([
        ['create', 'reported', 'system'], ['register', 'registered', 'user'], ['dispatch', 'dispatched', 'user'],
        ['accept', 'accepted', 'worker'], ['arrive', 'on_scene', 'worker'], ['resolve', 'resolved', 'worker'], ['verify', 'closed', 'user'],
      ]);
      expect(d.evidence).toEqual([expect.objectContaining({ kind: 'photo', deviceId: hh.id })]);
      // The evidence URL carries its own short-lived media token (bearer tokens never go in URLs).
      const photo = await fetch(`${h.http}${d.evidence[0]!.url}`);
      expect(photo.status).toBe(200);
      expect(Buffer.from(await photo.arrayBuffer()).toString('base64')).toBe(JPEG_B64);

      await until(() => seen.cases.some((c) => c.status === 'closed'));
      expect(seen.cases.map((c) => c.status)).toEqual(['reported', 'reported', 'registered', 'dispatched', 'accepted', 'on_scene', 'resolved', 'closed'].slice(seen.cases.length === 8 ? 0 : 1));
      expect(seen.other).toBe(0);

      const kr = await h.as('officer')<KpiResult>('GET', `/stats/kpi?from=${T0}&to=${h.clock.t + 1}`);
      expect(kr.status, JSON.stringify(kr.body)).toBe(200);
      const k = kr.body;
      expect(k.byStatus.closed).toBe(1);
      expect(k.counts.closedOnTime).toBe(1);
      expect(k.rates.onTimeClose).toBe(1);
      expect(k.avgSeconds).toMatchObject({ reportToRegister: 60, registerToDispatch: 60, dispatchToArrive: 270, arriveToResolve: 600 });

      // A handheld may act only on a case dispatched to its worker.
      const refused: string[] = [];
      h.hub.ctx.bus.on('case.refused', 'e2e', (e) => void refused.push(e.code));
      await publishAck(hand, `gridlink/v1/${hh.id}/case`, { caseId, action: 'accept' });
      await until(() => refused.length > 0);
      expect(refused).toEqual(['CASE_TRANSITION_INVALID']);
    });

    it('should open one case per worker report, however often it is re-sent', async () => {
      const hh = await h.registerDevice('handheld', 'e2e-hh2');
      const c = await h.connect(hh.id, hh.secret);
      const report = { reportId: 'r-001', category: '占道经营', description: '路口流动摊贩', ...AT.A1, photos: [JPEG_B64] };
      await publishAck(c, `gridlink/v1/${hh.id}/report`, report);
      await publishAck(c, `gridlink/v1/${hh.id}/report`, { ...report, ts: Date.now() + 1 });
      const cases = await until(async () => {
        const list = (await h.as('officer')<{ items: CaseSummary[] }>('GET', '/cases?category=E0501')).body.items;
        return list.length ? list : null;
      });
      await new Promise((r) => setTimeout(r, 200));
      const again = (await h.as('officer')<{ items: CaseSummary[] }>('GET', '/cases?category=E0501')).body.items;
      expect(again).toHaveLength(1);
      expect(cases[0]).toMatchObject({ source: 'worker', gridId: 'G-A1', category: { name: '占道经营' } });
      const d = (await h.as('officer')<CaseDetail>('GET', `/cases/${cases[0]!.id}`)).body;
      expect(d.evidence).toHaveLength(1);
      expect(d.reporter).toMatchObject({ kind: 'worker', deviceId: hh.id });
    });
  });
}
