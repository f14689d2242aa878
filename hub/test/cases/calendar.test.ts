/**
 * Working time: a fixture calendar (09:00–12:00 and 14:00–18:00, Saturday and
 * Sunday off, Monday 2026-11-30 a public holiday) moves deadlines across a
 * weekend and a holiday; a 调休 working Sunday pulls them back; calendar-hour
 * categories ignore it. Deadlines, 签收 deadlines and overdue flags all follow.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemActor, WorkCalendar, type CalendarData, type CaseDetail, type KpiResult } from '../../src/cases/index.js';
import type { CaseSummary } from '../../src/core/services.js';
import { engines } from '../helpers.js';
import { AT, startCaseHub, type CaseHub } from './fixtures.js';

/** A CST wall-clock time as epoch ms. */
const cst = (y: number, mo: number, d: number, h: number, mi = 0) => Date.UTC(y, mo - 1, d, h - 8, mi);

const FIXTURE: CalendarData = {
  utcOffsetMin: 480,
  hours: [['09:00', '12:00'], ['14:00', '18:00']],
  weekend: [0, 6],
  holidays: ['2026-11-30'],
  workdays: [],
};

describe('WorkCalendar', () => {
  const cal = new WorkCalendar(FIXTURE);

  it('should add working time inside one day, skipping the lunch break', () => {
    expect(cal.addWorking(cst(2026, 11, 26, 9), 120)).toBe(cst(2026, 11, 26, 11));
    expect(cal.addWorking(cst(2026, 11, 26, 11), 120)).toBe(cst(2026, 11, 26, 15));
    // Starting in the lunch break or before work counts from the next working minute.
    expect(cal.addWorking(cst(2026, 11, 26, 12, 30), 60)).toBe(cst(2026, 11, 26, 15));
    expect(cal.addWorking(cst(2026, 11, 26, 6), 30)).toBe(cst(2026, 11, 26, 9, 30));
  });

  it('should carry a limit over a weekend and a public holiday', () => {
    // Friday 17:00 + 4 working hours: 1 h on Friday, Saturday, Sunday and Monday (holiday) off, 3 h on Tuesday.
    expect(cal.addWorking(cst(2026, 11, 27, 17), 240)).toBe(cst(2026, 12, 1, 12));
    // Friday 19:00 (after hours) + 1 h: Tuesday 10:00.
    expect(cal.addWorking(cst(2026, 11, 27, 19), 60)).toBe(cst(2026, 12, 1, 10));
    expect(cal.isWorkingDay(cst(2026, 11, 30, 10))).toBe(false);
    expect(cal.isWorkingDay(cst(2026, 12, 1, 10))).toBe(true);
  });

  it('should count a 调休 working Sunday as a working day', () => {
    const swapped = new WorkCalendar({ ...FIXTURE, workdays: ['2026-11-29'] });
    expect(swapped.addWorking(cst(2026, 11, 27, 17), 240)).toBe(cst(2026, 11, 29, 12));
  });

  it('should measure working time between two instants, the inverse of adding it', () => {
    expect(cal.workingMsBetween(cst(2026, 11, 27, 17), cst(2026, 12, 1, 12))).toBe(4 * 3600_000);
    expect(cal.workingMsBetween(cst(2026, 11, 28, 0), cst(2026, 11, 30, 23))).toBe(0);
    for (const [start, min] of [[cst(2026, 11, 26, 10, 17), 1000], [cst(2026, 11, 27, 23, 59), 7], [cst(2026, 11, 25, 13), 421 * 5]] as const) {
      expect(cal.workingMsBetween(start, cal.addWorking(start, min))).toBe(min * 60_000);
    }
    expect(cal.remainingMs(cst(2026, 12, 1, 13), cst(2026, 12, 1, 12), 'working')).toBe(0);
    expect(cal.remainingMs(cst(2026, 12, 1, 15), cst(2026, 12, 1, 12), 'working')).toBe(-3600_000);
  });

  it('should refuse a calendar without working time', () => {
    const none = new WorkCalendar({ ...FIXTURE, weekend: [0, 1, 2, 3, 4, 5, 6] });
    expect(() => none.addWorking(cst(2026, 11, 26, 9), 60)).toThrow(/no working time/);
  });
});

for (const engine of engines()) {
  describe(`working-time deadlines on cases (${engine.name})`, () => {
    let h: CaseHub;
    beforeAll(async () => {
      h = await startCaseHub({ databaseUrl: engine.url, rules: false });
      const r = await h.api('PUT', '/calendar', FIXTURE);
      expect(r.status, JSON.stringify(r.body)).toBe(200);
    });
    afterAll(async () => h?.stop());

    it('should give a working-hours category (暴露垃圾, 4 h) a deadline after the weekend and the holiday, and an emergency (火灾, 1 h) one on the clock', async () => {
      h.clock.t = cst(2026, 11, 27, 17);
      const garbage = await h.as('officer')<CaseSummary>('POST', '/cases', { category: 'E0101', ...AT.A1 });
      expect(garbage.status).toBe(201);
      expect(garbage.body.deadline).toBe(cst(2026, 12, 1, 12));
      expect(garbage.body.category.limitUnit).toBe('working');
      const fire = await h.as('officer')<CaseSummary>('POST', '/cases', { category: 'E0402', ...AT.A1 });
      expect(fire.body.deadline).toBe(cst(2026, 11, 27, 18));
      expect(fire.body.category.limitUnit).toBe('calendar');
    });

    it('should set the 签收 deadline at dispatch in working time and flag overdue and 签收超时 at the right instants', async () => {
      h.clock.t = cst(2026, 11, 27, 17);
      const sys = systemActor('test');
      const { case: c } = await h.cases.create({ category: 'E0101', ...AT.A2, source: 'officer', actor: sys });
      await h.cases.act(c.id, 'register', sys);
      h.clock.t = cst(2026, 11, 27, 17, 30);
      const d = await h.cases.act(c.id, 'dispatch', sys, { workerId: 'w1' });
      // 60 working minutes: 30 on Friday, 30 on Tuesday.
      expect(d.ackDeadline).toBe(cst(2026, 12, 1, 9, 30));

      h.clock.t = cst(2026, 12, 1, 9, 29);
      await h.cases.checkOverdue();
      expect((await h.cases.get(c.id))!.ackOverdue).toBe(false);
      h.clock.t = cst(2026, 12, 1, 9, 31);
      await h.cases.checkOverdue();
      expect((await h.cases.get(c.id))).toMatchObject({ ackOverdue: true, overdue: false });

      h.clock.t = cst(2026, 12, 1, 11, 59);
      expect((await h.cases.checkOverdue()).some((x) => x.id === c.id)).toBe(false);
      h.clock.t = cst(2026, 12, 1, 12, 1);
      expect((await h.cases.checkOverdue()).map((x) => x.id)).toContain(c.id);
      const detail = (await h.as('officer')<CaseDetail>('GET', `/cases/${c.id}`)).body;
      expect(detail.history.map((x) => x.action)).toEqual(['create', 'register', 'dispatch', 'ack_overdue', 'warn', 'overdue', 'supervise', 'escalate']);
      // 黄牌 at 3 of the 4 working hours: 1 h on Friday, 2 h on Tuesday.
      expect(detail.history.find((x) => x.action === 'warn')?.ts).toBe(cst(2026, 12, 1, 11, 59));
      expect(detail.history.find((x) => x.action === 'ack_overdue')?.ts).toBe(cst(2026, 12, 1, 9, 31));
    });

    it('should count a case closed on Tuesday morning as on time in the KPIs', async () => {
      const from = cst(2026, 11, 27, 18, 30);
      h.clock.t = from;
      const sys = systemActor('test');
      const { case: c } = await h.cases.create({ category: 'E0101', ...AT.B1, source: 'officer', actor: sys });
      expect(c.deadline).toBe(cst(2026, 12, 1, 13 + 2)); // 4 h from Tuesday 09:00: 3 h before lunch, 1 h after
      for (const [a, w] of [['register'], ['dispatch', 'w1'], ['accept'], ['arrive'], ['resolve'], ['verify']] as const) {
        if (a === 'verify') h.clock.t = cst(2026, 12, 1, 14, 30);
        await h.cases.act(c.id, a, sys, w ? { workerId: w } : {});
      }
      const k = (await h.as('officer')<KpiResult>('GET', `/stats/kpi?from=${from}&to=${from + 1000}`)).body;
      expect(k.counts).toMatchObject({ due: 1, closedOnTime: 1 });
      expect(k.rates.onTimeClose).toBe(1);
    });

    it('should refuse a bad calendar, a non-admin, an unknown field, and change a category limit through PATCH', async () => {
      const bad = await h.api('PUT', '/calendar', { ...FIXTURE, workdays: ['2026-11-30'] });
      expect(bad.status).toBe(400);
      expect((await h.api('PUT', '/calendar', { ...FIXTURE, hours: [['14:00', '12:00']] })).status).toBe(400);
      expect((await h.api('PUT', '/calendar', { ...FIXTURE, hours: [['25:00', '26:00']] })).status).toBe(400);
      expect((await h.api('PUT', '/calendar', { ...FIXTURE, holidays: ['2026-02-31'] })).status).toBe(400);
      expect((await h.api('PUT', '/calendar', { ...FIXTURE, timezone: 'UTC' })).status).toBe(400);
      expect((await h.as('officer')('PUT', '/calendar', FIXTURE)).status).toBe(403);
      expect((await h.as('officer')<CalendarData>('GET', '/calendar')).body).toEqual(FIXTURE);

      expect((await h.as('officer')('PATCH', '/categories/E0101', { timeLimitMin: 60 })).status).toBe(403);
      expect((await h.api('PATCH', '/categories/E0101', { timeLimitMin: 0 })).status).toBe(400);
      expect((await h.api('PATCH', '/categories/E0101', { limitUnit: 'fortnights' })).status).toBe(400);
      expect((await h.api('PATCH', '/categories/E0999', { timeLimitMin: 60 })).status).toBe(404);
      const p = await h.api<{ timeLimitMin: number; limitUnit: string }>('PATCH', '/categories/E0102', { timeLimitMin: 60, limitUnit: 'calendar' });
      expect(p.body).toMatchObject({ timeLimitMin: 60, limitUnit: 'calendar', ackLimitMin: 60 });
      h.clock.t = cst(2026, 11, 28, 10);
      const c = await h.as('officer')<CaseSummary>('POST', '/cases', { category: 'E0102', ...AT.A1 });
      expect(c.body.deadline).toBe(cst(2026, 11, 28, 11));
    });
  });
}
