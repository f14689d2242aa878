import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Alarm, BacktestResult } from '../../src/rules/index.js';
import { engines } from '../helpers.js';
import { AT, JPEG_B64, startCaseHub, type CaseHub } from '../cases/fixtures.js';

const S = 1000;

for (const engine of engines()) {
  describe(`backtest (${engine.name})`, () => {
    let h: CaseHub;
    let from = 0;
    beforeAll(async () => {
      h = await startCaseHub({ databaseUrl: engine.url });
      await h.registerDevice('sensor.water_level', 'bw-1', AT.A1);
      await h.registerDevice('sensor.water_level', 'bw-2', AT.B1);
      await h.registerDevice('camera', 'bc-1', AT.A2);
      await h.registerDevice('sensor.smoke', 'bs-1', AT.B2);
      from = h.clock.t;
      // A deterministic hour of history, fed live through ingest on the hub clock.
      let seed = 7;
      const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
      let level1 = 10, level2 = 20;
      for (let i = 0; i < 240; i++) {
        h.clock.advance(15 * S);
        await h.rules.tick();
        const ts = h.clock.t;
        level1 = Math.max(0, level1 + (rnd() - 0.45) * 6);
        level2 = Math.max(0, level2 + (rnd() - 0.5) * 8);
        await h.send('bw-1', 'telemetry', { ts, values: { water_level_cm: Math.round(level1 * 10) / 10 } });
        if (i % 2 === 0) await h.send('bw-2', 'telemetry', { ts, values: { water_level_cm: Math.round(level2 * 10) / 10 } });
        if (rnd() < 0.08) await h.send('bc-1', 'alert', { ts, type: 'garbage_overflow', confidence: 0.5 + rnd() / 2, snapshot: JPEG_B64 });
        // The smoke sensor goes quiet twice for longer than offlineAfter.
        if ((i < 60 || (i > 110 && i < 150) || i > 200) && i % 4 === 0) await h.send('bs-1', 'status', { ts, online: true });
      }
      h.clock.advance(15 * S);
      await h.rules.tick();
    }, 240_000);
    afterAll(async () => h?.stop());

    for (const rule of ['water-level', 'camera-garbage', 'device-offline']) {
      it(`should answer what ${rule} raised live`, async () => {
        const to = h.clock.t;
        const r = await h.api<BacktestResult>('POST', `/rules/${rule}/backtest`, { from, to });
        expect(r.status, JSON.stringify(r.body)).toBe(200);
        const live = (await h.api<{ items: Alarm[] }>('GET', `/alarms?rule=${rule}&limit=5000`)).body.items
          .filter((a) => ['bw-1', 'bw-2', 'bc-1', 'bs-1'].includes(a.deviceId))
          .sort((a, b) => a.ts - b.ts || a.deviceId.localeCompare(b.deviceId));
        const simulated = [...r.body.alarms].sort((a, b) => a.ts - b.ts || a.deviceId.localeCompare(b.deviceId));
        expect(live.length).toBeGreaterThan(0);
        expect(simulated.map((a) => [a.deviceId, a.ts, a.clearedAt, a.count, a.severity])).toEqual(
          live.map((a) => [a.deviceId, a.ts, a.status === 'cleared' ? a.clearedAt : null, a.count, a.originalSeverity]),
        );
        const liveCases = new Set(live.map((a) => a.caseId).filter(Boolean));
        expect(r.body.totals.cases).toBe(liveCases.size);
      });
    }

    it('should backtest an unsaved definition for tuning', async () => {
      const rule = { id: 'tuning', name: 't', kind: 'threshold', metric: 'water_level_cm', op: '>=', value: 1000, severity: 'info' };
      const r = await h.api<BacktestResult>('POST', '/rules/backtest', { rule, from, to: h.clock.t });
      expect(r.status).toBe(200);
      expect(r.body.totals.alarms).toBe(0);
      expect(r.body.messages).toBeGreaterThan(300);
    });
  });
}
