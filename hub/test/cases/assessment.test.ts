/**
 * Monthly 考核 on a fixture of five cases whose figures were computed by hand
 * (docs/cases.md formulas), by street and by worker, and the .xlsx export
 * opened and read back.
 */
import ExcelJS from 'exceljs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemActor, type Assessment } from '../../src/cases/index.js';
import type { Actor, CaseAction } from '../../src/core/services.js';
import { engines } from '../helpers.js';
import { AT, startCaseHub, T0, type CaseHub } from './fixtures.js';

const MIN = 60_000;
/** Thursday 2026-11-26, CST wall clock. */
const at = (h: number, m = 0) => T0 + ((h - 9) * 60 + m) * MIN;

for (const engine of engines()) {
  describe(`monthly 考核 (${engine.name})`, () => {
    let h: CaseHub;
    let to: number;
    beforeAll(async () => {
      h = await startCaseHub({ databaseUrl: engine.url, rules: false });
      const sys = systemActor('test');
      const worker = (id: string): Actor => ({ kind: 'worker', id, name: id, deviceId: `hh-${id}` });
      /** 暴露垃圾 (4 working hours, 签收 60 working minutes), created 09:00: deadline 14:30. */
      const run = async (where: { lat: number; lon: number }, reporter: string | null, steps: Array<[number, CaseAction, Record<string, unknown>?]>) => {
        h.clock.t = at(9);
        const { case: c } = await h.cases.create({ category: 'E0101', ...where, source: reporter ? 'worker' : 'officer', actor: reporter ? worker(reporter) : sys });
        for (const [time, action, input] of steps) {
          h.clock.t = time;
          await h.cases.act(c.id, action, sys, input ?? {});
        }
      };
      // c1 (S-A, reported by w1): 签收 09:20 ≤ 10:10, closed 10:30 on time, rated 5.
      await run(AT.A1, 'w1', [[at(9), 'register'], [at(9, 10), 'dispatch', { workerId: 'w1' }], [at(9, 20), 'accept'], [at(9, 30), 'arrive'], [at(10), 'resolve'], [at(10, 30), 'verify'], [at(10, 31), 'rate', { rating: 5 }]]);
      // c2 (S-A): 签收 10:30 > 10:00 late, closed 11:10 on time, rated 2.
      await run(AT.A2, null, [[at(9), 'register'], [at(9), 'dispatch', { workerId: 'w1' }], [at(10, 30), 'accept'], [at(10, 40), 'arrive'], [at(11), 'resolve'], [at(11, 10), 'verify'], [at(11, 11), 'rate', { rating: 2 }]]);
      // c3 (S-A): reworked; last 签收 10:20 ≤ 11:10; resolved 14:00 (130 working minutes after 签收, across lunch); closed 15:00, late.
      await run(AT.A1, null, [[at(9), 'register'], [at(9), 'dispatch', { workerId: 'w1' }], [at(9, 30), 'accept'], [at(9, 40), 'arrive'], [at(10), 'resolve'],
        [at(10, 10), 'rework'], [at(10, 20), 'accept'], [at(10, 30), 'arrive'], [at(14), 'resolve'], [at(15), 'verify']]);
      // c4 (S-B, reported by w2): 签收 09:05, resolved 09:40, closed 09:50, rated 4.
      await run(AT.B1, 'w2', [[at(9), 'register'], [at(9), 'dispatch', { workerId: 'w2' }], [at(9, 5), 'accept'], [at(9, 10), 'arrive'], [at(9, 40), 'resolve'], [at(9, 50), 'verify'], [at(9, 51), 'rate', { rating: 4 }]]);
      // c5 (S-B): registered, never dispatched, past its deadline when assessed.
      await run(AT.B1, null, [[at(9), 'register']]);
      to = T0 + 2 * 24 * 3600_000;
      h.clock.t = to;
    });
    afterAll(async () => h?.stop());

    const get = (q: string, who: keyof CaseHub['tokens'] = 'officer') => h.as(who)<Assessment>('GET', `/stats/assessment?from=${T0 - 3600_000}&to=${to}&${q}`);

    it('should compute the street league table by the stated formulas (hand-computed)', async () => {
      const r = await get('level=street');
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      const [first, second] = r.body.items;
      // S-B: onTimeClose 1/2, onTimeAck 1/1, rework 0/1, satisfaction 1/1, selfFound 1/2 → 30·½ + 15 + 15·1 + 25 + 15·½ = 77.5
      expect(first).toMatchObject({ rank: 1, key: 'S-B', cases: 2, counts: { due: 2, closedOnTime: 1, dispatched: 1, ackedOnTime: 1, resolved: 1, reworked: 0, overdue: 1, rated: 1, satisfied: 1, selfFound: 1 } });
      expect(first!.score).toBeCloseTo(77.5, 10);
      expect(first!.rates).toEqual({ onTimeClose: 0.5, onTimeAck: 1, rework: 0, satisfaction: 1, selfFound: 0.5 });
      expect(first!.avgResponseWh).toBeCloseTo(5 / 60, 10);
      expect(first!.avgHandleWh).toBeCloseTo(35 / 60, 10);
      // S-A: 2/3, 2/3, 1/3 (→ 2/3), 1/2, 1/3 → 20 + 10 + 10 + 12.5 + 5 = 57.5
      expect(second).toMatchObject({ rank: 2, key: 'S-A', cases: 3, counts: { due: 3, closedOnTime: 2, dispatched: 3, ackedOnTime: 2, resolved: 3, reworked: 1, overdue: 1, rated: 2, satisfied: 1, selfFound: 1 } });
      expect(second!.score).toBeCloseTo(57.5, 10);
      // Response: 20, 90, 80 minutes; handling: 40, 30, 130 working minutes.
      expect(second!.avgResponseWh).toBeCloseTo(190 / 3 / 60, 10);
      expect(second!.avgHandleWh).toBeCloseTo(200 / 3 / 60, 10);
    });

    it('should rank workers, count only their own reports as 主动发现, and take weights from the query', async () => {
      const w = (await get('level=worker')).body.items;
      expect(w.map((x) => [x.rank, x.key, x.cases])).toEqual([[1, 'w2', 1], [2, 'w1', 3]]);
      expect(w[0]!.score).toBeCloseTo(100, 10);
      expect(w[1]!.rates.selfFound).toBeCloseTo(1 / 3, 10);
      expect(w[1]!.score).toBeCloseTo(57.5, 10);
      // Only 满意率 counts: S-B 1, S-A ½.
      const only = (await get('level=street&weights=onTimeClose:0,onTimeAck:0,rework:0,selfFound:0')).body.items;
      expect(only.map((x) => [x.key, x.score])).toEqual([['S-B', 100], ['S-A', 50]]);
      // Every community is listed; grids without cases rank last with no score.
      const grids = (await get('level=grid')).body.items;
      expect(grids.map((x) => x.key).sort()).toEqual(['G-A1', 'G-A2', 'G-B1', 'G-B2']);
      expect(grids.at(-1)).toMatchObject({ key: 'G-B2', cases: 0, score: null });
    });

    it('should scope to the caller region and refuse bad input', async () => {
      expect((await get('level=street', 'officerA')).body.items.map((x) => x.key)).toEqual(['S-A']);
      expect((await get('level=street&gridId=S-B', 'officerA')).status).toBe(404);
      expect((await get('level=street', 'w1')).status).toBe(403);
      expect((await get('level=planet')).status).toBe(400);
      expect((await get('level=street&weights=luck:10')).status).toBe(400);
      expect((await get('level=street&extra=1')).status).toBe(400);
      expect((await h.as('officer')('GET', '/stats/assessment?level=street&month=2026-13')).status).toBe(400);
      const month = (await h.as('officer')<Assessment>('GET', '/stats/assessment?level=street&month=2026-11')).body;
      expect([month.from, month.to]).toEqual([Date.UTC(2026, 9, 31, 16), Date.UTC(2026, 10, 30, 16)]);
      expect(month.items.find((x) => x.key === 'S-A')!.cases).toBe(3);
    });

    it('should export the league table as .xlsx that reads back with the same figures', async () => {
      const res = await fetch(`${h.http}/api/v1/stats/assessment.xlsx?level=street&from=${T0 - 3600_000}&to=${to}`, { headers: { authorization: `Bearer ${h.tokens.officer}` } });
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toContain('spreadsheetml');
      const wb = new ExcelJS.Workbook();
      await wb.xlsx.load(Buffer.from(await res.arrayBuffer()) as never);
      const ws = wb.getWorksheet('考核')!;
      expect(ws.getRow(1).values).toEqual([undefined, '排名', '单位', '编号', '得分', '案件数', '按期结案率', '按期签收率', '返工率', '超期数', '平均响应时长(工时)', '平均处置时长(工时)', '满意率', '主动发现率']);
      expect((ws.getRow(2).values as unknown[]).slice(1)).toEqual([1, 'S-B', 'S-B', 77.5, 2, 0.5, 1, 0, 1, 0.08, 0.58, 1, 0.5]);
      expect((ws.getRow(3).values as unknown[]).slice(1, 6)).toEqual([2, 'S-A', 'S-A', 57.5, 3]);
      expect(ws.rowCount).toBe(3);
      expect(wb.getWorksheet('公式')!.getCell('B1').value).toBe('街道');
    });
  });
}
