import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CaseDetail } from '../../src/cases/index.js';
import type { CaseSummary } from '../../src/core/services.js';
import type { Alarm } from '../../src/rules/index.js';
import { engines } from '../helpers.js';
import { AT, JPEG_B64, startCaseHub, type CaseHub } from '../cases/fixtures.js';

const S = 1000;
const MIN = 60 * S;

for (const engine of engines()) {
  describe(`rules and alarms (${engine.name})`, () => {
    let h: CaseHub;
    beforeAll(async () => {
      h = await startCaseHub({ databaseUrl: engine.url });
      const dev = (type: string, id: string, at: { lat: number; lon: number }) => h.registerDevice(type, id, at);
      await dev('sensor.water_level', 'water-1', AT.A1);
      await dev('sensor.water_level', 'water-2', AT.B1);
      await dev('sensor.smoke', 'smoke-1', AT.A1);
      await dev('sensor.smoke', 'smoke-2', AT.A2);
      await dev('camera', 'cam-1', { lat: AT.A1.lat + 0.0005, lon: AT.A1.lon }); // ~55 m north of smoke-1
      await dev('camera', 'cam-2', AT.B2);
      await dev('sensor.gas', 'gas-1', AT.A2);
    });
    afterAll(async () => h?.stop());

    const alarmsOf = async (q: string) => (await h.as('officer')<{ items: Alarm[] }>('GET', `/alarms?${q}`)).body.items;
    const caseOf = async (id: string) => (await h.as('officer')<CaseDetail>('GET', `/cases/${id}`)).body;

    it('should raise a threshold alarm and a 积水 case at ≥ 30, keep it through the hysteresis band, clear below 25', async () => {
      const t = h.clock.t;
      await h.send('water-1', 'telemetry', { ts: t, values: { water_level_cm: 29 } });
      expect(await alarmsOf('rule=water-level&deviceId=water-1')).toHaveLength(0);
      await h.send('water-1', 'telemetry', { ts: t + S, values: { water_level_cm: 31 } });
      let [a] = await alarmsOf('rule=water-level&deviceId=water-1');
      expect(a).toMatchObject({ status: 'active', severity: 'major', count: 1, ts: t + S, gridId: 'G-A1', type: 'water_level_cm' });
      expect(a!.caseId).toBeTruthy();
      const c = await caseOf(a!.caseId!);
      expect(c).toMatchObject({ category: { code: 'E0401', name: '积水' }, source: 'rule', gridId: 'G-A1', status: 'reported', ruleId: 'water-level', deviceId: 'water-1' });
      await h.send('water-1', 'telemetry', { ts: t + 2 * S, values: { water_level_cm: 27 } });
      await h.send('water-1', 'telemetry', { ts: t + 3 * S, values: { water_level_cm: 33 } });
      [a] = await alarmsOf('rule=water-level&deviceId=water-1');
      expect(a).toMatchObject({ status: 'active', count: 2, lastTs: t + 3 * S });
      await h.send('water-1', 'telemetry', { ts: t + 4 * S, values: { water_level_cm: 24 } });
      [a] = await alarmsOf('rule=water-level&deviceId=water-1');
      expect(a).toMatchObject({ status: 'cleared', clearedAt: t + 4 * S, clearedBy: 'rule: water_level_cm 24' });
      // A new episode while the case is open joins it.
      await h.send('water-1', 'telemetry', { ts: t + 5 * S, values: { water_level_cm: 40 } });
      const all = await alarmsOf('rule=water-level&deviceId=water-1');
      expect(all).toHaveLength(2);
      expect(all[0]!.caseId).toBe(a!.caseId);
      const d = await caseOf(a!.caseId!);
      expect(d.history.map((x) => x.action)).toEqual(['create', 'attach']);
      expect(d.alarmIds.sort()).toEqual(all.map((x) => x.id).sort());
    });

    it('should need the duration and the count in a row before raising', async () => {
      const r = await h.api('POST', '/rules', {
        id: 'gas-high', name: 'gas', enabled: true, kind: 'threshold', metric: 'ch4_pct_lel', op: '>=', value: 20, forS: 120, count: 3,
        severity: 'critical', scope: { deviceTypes: ['sensor.gas'] }, case: { category: 'gas_leak' },
      });
      expect(r.status, JSON.stringify(r.body)).toBe(201);
      const t = h.clock.t;
      await h.send('gas-1', 'telemetry', { ts: t, values: { ch4_pct_lel: 25 } });
      await h.send('gas-1', 'telemetry', { ts: t + 60 * S, values: { ch4_pct_lel: 26 } });
      await h.send('gas-1', 'telemetry', { ts: t + 70 * S, values: { ch4_pct_lel: 5 } }); // breaks the row
      await h.send('gas-1', 'telemetry', { ts: t + 80 * S, values: { ch4_pct_lel: 25 } });
      await h.send('gas-1', 'telemetry', { ts: t + 140 * S, values: { ch4_pct_lel: 25 } });
      await h.send('gas-1', 'telemetry', { ts: t + 190 * S, values: { ch4_pct_lel: 25 } }); // 3 in a row, 110 s
      expect(await alarmsOf('rule=gas-high')).toHaveLength(0);
      await h.send('gas-1', 'telemetry', { ts: t + 200 * S, values: { ch4_pct_lel: 25 } }); // 120 s held
      const [a] = await alarmsOf('rule=gas-high');
      expect(a).toMatchObject({ ts: t + 200 * S, severity: 'critical', status: 'active' });
      await h.send('gas-1', 'telemetry', { ts: t + 210 * S, values: { ch4_pct_lel: 1 } });
      expect((await alarmsOf('rule=gas-high'))[0]!.status).toBe('cleared');
    });

    it('should match smoke_alarm → critical 火灾 case, fold repeats, clear on smoke_alarm_clear', async () => {
      const t = h.clock.t;
      await h.send('smoke-2', 'event', { ts: t, type: 'smoke_alarm' });
      await h.send('smoke-2', 'event', { ts: t + S, type: 'smoke_alarm' });
      let [a] = await alarmsOf('rule=smoke-alarm&deviceId=smoke-2');
      expect(a).toMatchObject({ severity: 'critical', count: 2, status: 'active' });
      expect((await caseOf(a!.caseId!))).toMatchObject({ category: { name: '火灾' }, severity: 'critical' });
      await h.send('smoke-2', 'event', { ts: t + 2 * S, type: 'smoke_alarm_clear' });
      [a] = await alarmsOf('rule=smoke-alarm&deviceId=smoke-2');
      expect(a!.status).toBe('cleared');
    });

    it('should take camera alerts above the confidence with the snapshot as case evidence, and auto-clear', async () => {
      const t = h.clock.t;
      await h.send('cam-2', 'alert', { ts: t, type: 'garbage_overflow', confidence: 0.5, snapshot: JPEG_B64 });
      expect(await alarmsOf('deviceId=cam-2')).toHaveLength(0);
      await h.send('cam-2', 'alert', { ts: t + S, type: 'garbage_overflow', confidence: 0.8, snapshot: JPEG_B64 });
      const [a] = await alarmsOf('deviceId=cam-2');
      expect(a).toMatchObject({ rule: 'camera-garbage', severity: 'minor', gridId: 'G-B2' });
      const c = await caseOf(a!.caseId!);
      expect(c.category.name).toBe('暴露垃圾');
      expect(c.evidence).toEqual([expect.objectContaining({ kind: 'snapshot', alarmId: a!.id, deviceId: 'cam-2' })]);
      h.clock.advance(601 * S);
      await h.rules.tick();
      expect(await alarmsOf('rule=camera-garbage&deviceId=cam-2')).toMatchObject([{ status: 'cleared', clearedAt: a!.createdAt + 600 * S }]);
      // Silent for 10 min: the camera is offline too.
      expect(await alarmsOf('rule=device-offline&deviceId=cam-2')).toMatchObject([{ status: 'active' }]);
    });

    it('should raise 设备离线 after offlineAfter on the hub clock and clear on the next message', async () => {
      await h.registerDevice('sensor.air_quality', 'aq-1', AT.B1);
      await h.send('aq-1', 'telemetry', { ts: h.clock.t, values: { aqi: 40 } });
      const heard = h.clock.t;
      h.clock.advance(599 * S);
      await h.rules.tick();
      expect(await alarmsOf('rule=device-offline&deviceId=aq-1')).toHaveLength(0);
      h.clock.advance(2 * S);
      await h.rules.tick();
      const [a] = await alarmsOf('rule=device-offline&deviceId=aq-1');
      expect(a).toMatchObject({ status: 'active', severity: 'warning', ts: heard + 600 * S, type: 'offline', caseId: null });
      await h.send('aq-1', 'telemetry', { ts: h.clock.t, values: { aqi: 41 } });
      expect((await alarmsOf('rule=device-offline&deviceId=aq-1'))[0]).toMatchObject({ status: 'cleared', clearedAt: h.clock.t });
    });

    it('should correlate a smoke sensor and a camera fire alert within 200 m and 2 min into one critical case', async () => {
      const t = h.clock.t;
      await h.send('smoke-1', 'event', { ts: t, type: 'smoke_alarm' });
      await h.send('cam-1', 'alert', { ts: t + 30 * S, type: 'fire', confidence: 0.9 });
      const smoke = (await alarmsOf('deviceId=smoke-1&status=active')).find((a) => a.rule === 'smoke-alarm')!;
      const cam = (await alarmsOf('deviceId=cam-1&status=active')).find((a) => a.rule === 'camera-fire')!;
      const corr = (await alarmsOf('rule=fire-correlation&status=active'))[0]!;
      expect(corr).toMatchObject({ deviceId: 'smoke-1', severity: 'critical', type: 'correlation', related: ['cam-1'] });
      expect(new Set([smoke.caseId, cam.caseId, corr.caseId]).size).toBe(1);
      const c = await caseOf(smoke.caseId!);
      expect(c.severity).toBe('critical');
      expect(c.alarmIds.sort()).toEqual([smoke.id, cam.id, corr.id].sort());
      const fireCases = (await h.as('officer')<{ items: CaseSummary[] }>('GET', '/cases?category=E0402&status=reported')).body.items.filter((x) => x.gridId === 'G-A1');
      expect(fireCases).toHaveLength(1);
    });

    it('should scope rules by grid and device list, and map severities by type', async () => {
      await h.api('POST', '/rules', {
        id: 'b-only-tamper', name: 'tamper in street B', enabled: true, kind: 'match', channel: 'event', types: ['tamper', 'fault'],
        severity: 'info', severityMap: { tamper: 'major' }, scope: { gridIds: ['S-B'] },
      });
      await h.api('POST', '/rules', { id: 'water-2-fault', name: 'w2 fault', enabled: true, kind: 'match', channel: 'event', types: ['fault'], severity: 'minor', scope: { deviceIds: ['water-2'] } });
      const t = h.clock.t;
      await h.send('water-1', 'event', { ts: t, type: 'tamper' }); // street A
      await h.send('water-2', 'event', { ts: t, type: 'tamper' }); // street B
      await h.send('water-2', 'event', { ts: t + S, type: 'fault' });
      await h.send('smoke-1', 'event', { ts: t, type: 'fault' });
      expect((await alarmsOf('rule=b-only-tamper')).map((a) => [a.deviceId, a.severity, a.count])).toEqual([['water-2', 'major', 2]]);
      expect((await alarmsOf('rule=water-2-fault')).map((a) => a.deviceId)).toEqual(['water-2']);
    });

    it('should apply rule edits live: a new threshold, disable, enable', async () => {
      const cur = (await h.api<Record<string, unknown>>('GET', '/rules/water-level')).body;
      const { version: _v, createdAt: _c, updatedAt: _u, ...rule } = cur;
      const put = await h.api<{ version: number }>('PUT', '/rules/water-level', { ...rule, value: 50, clear: { op: '<', value: 45 } });
      expect(put.status, JSON.stringify(put.body)).toBe(200);
      expect(put.body.version).toBe(2);
      const t = h.clock.t;
      await h.send('water-2', 'telemetry', { ts: t, values: { water_level_cm: 40 } });
      expect(await alarmsOf('rule=water-level&deviceId=water-2')).toHaveLength(0);
      await h.send('water-2', 'telemetry', { ts: t + S, values: { water_level_cm: 55 } });
      expect(await alarmsOf('rule=water-level&deviceId=water-2')).toHaveLength(1);
      expect((await h.api('POST', '/rules/smoke-alarm/disable')).status).toBe(200);
      await h.send('smoke-2', 'event', { ts: t + 2 * S, type: 'smoke_alarm' });
      expect((await alarmsOf('rule=smoke-alarm&deviceId=smoke-2&status=active'))).toHaveLength(0);
      expect((await h.api('POST', '/rules/smoke-alarm/enable')).status).toBe(200);
      await h.send('smoke-2', 'event', { ts: t + 3 * S, type: 'smoke_alarm' });
      expect((await alarmsOf('rule=smoke-alarm&deviceId=smoke-2&status=active'))).toHaveLength(1);
      const bad = await h.api<{ code: string }>('POST', '/rules', { id: 'bad', name: 'x', enabled: true, kind: 'threshold', metric: 'x', op: '~', value: 1, severity: 'info' });
      expect(bad.status).toBe(400);
      expect((await h.as('w1')('POST', '/rules', { ...rule, id: 'copy' })).status).toBe(403);
    });

    it('should escalate an unacknowledged alarm after the per-severity time, not an acknowledged one', async () => {
      const t = h.clock.t;
      await h.send('water-1', 'event', { ts: t, type: 'fault' });
      await h.api('POST', '/rules', { id: 'fault-any', name: 'fault', enabled: true, kind: 'match', channel: 'event', types: ['fault'], severity: 'major' });
      await h.send('smoke-2', 'event', { ts: t + S, type: 'fault' });
      await h.send('gas-1', 'event', { ts: t + S, type: 'fault' });
      const [gas] = await alarmsOf('rule=fault-any&deviceId=gas-1');
      const ack = await h.as('officerA')<Alarm>('POST', `/alarms/${gas!.id}/ack`, { comment: '已通知燃气公司' });
      expect(ack.body).toMatchObject({ acknowledged: true, ackBy: 'officerA' });
      h.clock.advance(10 * MIN);
      await h.rules.tick();
      const [smoke] = await alarmsOf('rule=fault-any&deviceId=smoke-2');
      expect(smoke).toMatchObject({ severity: 'critical', originalSeverity: 'major', escalated: true, escalations: 1 });
      expect((await alarmsOf('rule=fault-any&deviceId=gas-1'))[0]).toMatchObject({ severity: 'major', escalated: false });
      const detail = await h.as('officer')<Alarm & { comments: Array<{ author: string; text: string }> }>('GET', `/alarms/${gas!.id}`);
      expect(detail.body.comments).toEqual([expect.objectContaining({ author: 'officerA', text: '已通知燃气公司' })]);
    });

    it('should ack, comment and clear over REST within the caller region only', async () => {
      const [b] = await alarmsOf('rule=b-only-tamper');
      const r404 = await h.as('officerA')('POST', `/alarms/${b!.id}/ack`);
      expect(r404.status, JSON.stringify(r404.body)).toBe(404);
      expect((await h.as('officerA')<{ items: Alarm[] }>('GET', '/alarms')).body.items.every((a) => a.gridId?.startsWith('G-A'))).toBe(true);
      expect((await h.as('officerB')('POST', `/alarms/${b!.id}/comments`, { text: '现场核实中' })).status).toBe(201);
      expect((await h.as('integrator')('POST', `/alarms/${b!.id}/clear`)).status).toBe(403);
      const cleared = await h.as('officerB')<Alarm>('POST', `/alarms/${b!.id}/clear`);
      expect(cleared.body).toMatchObject({ status: 'cleared', clearedBy: 'officerB' });
      expect((await h.as('officerB')<{ code: string }>('POST', `/alarms/${b!.id}/clear`)).body.code).toBe('ALARM_NOT_ACTIVE');
      // Cleared by hand: the next trigger is a new alarm.
      await h.send('water-2', 'event', { ts: h.clock.t, type: 'tamper' });
      expect(await alarmsOf('rule=b-only-tamper')).toHaveLength(2);
      expect(await alarmsOf('rule=b-only-tamper&status=active')).toHaveLength(1);
    });

    it('should open a new case when a trigger comes after the alarm\'s case was closed', async () => {
      const [a] = await alarmsOf('rule=smoke-alarm&deviceId=smoke-2&status=active');
      const { systemActor } = await import('../../src/cases/index.js');
      await h.cases.act(a!.caseId!, 'cancel', systemActor('test'));
      await h.send('smoke-2', 'event', { ts: h.clock.t, type: 'smoke_alarm' });
      const [b] = await alarmsOf('rule=smoke-alarm&deviceId=smoke-2&status=active');
      expect(b!.id).toBe(a!.id);
      expect(b!.caseId).not.toBe(a!.caseId);
      expect((await caseOf(b!.caseId!)).status).toBe('reported');
    });
  });
}
