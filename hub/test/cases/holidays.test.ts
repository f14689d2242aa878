/**
 * The default working calendar ships the 2026 PRC public holidays and 调休
 * working days (国务院办公厅 notice for 2026): a 处置 limit in working hours
 * skips 国庆 (10/1–10/7) and counts the 调休 Saturday 10/10; a calendar stored
 * before the dates shipped gets them by migration, an operator's own year is
 * left alone.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { calendarProblems, CN_HOLIDAYS, DEFAULT_CALENDAR, WorkCalendar, type CalendarData } from '@gridlink/devices/calendar';
import { caseMigrations } from '../../src/cases/schema.js';
import type { CaseSummary } from '../../src/core/services.js';
import { engines } from '../helpers.js';
import { AT, startCaseHub, type CaseHub } from './fixtures.js';

/** A CST wall-clock time as epoch ms. */
const cst = (y: number, mo: number, d: number, h: number, mi = 0) => Date.UTC(y, mo - 1, d, h - 8, mi);
const weekday = (d: string) => new Date(`${d}T00:00:00Z`).getUTCDay();

describe('the 2026 PRC holidays in the default calendar', () => {
  const y = CN_HOLIDAYS[2026]!;

  it('should hold the notice\'s days off and 调休 days, every 调休 day a weekend day', () => {
    expect(y.source).toContain('国务院办公厅');
    expect(calendarProblems(DEFAULT_CALENDAR)).toEqual([]);
    // 元旦 3 + 春节 9 + 清明 3 + 劳动节 5 + 端午 3 + 中秋 3 + 国庆 7
    expect(y.holidays).toHaveLength(33);
    expect(y.holidays).toEqual(expect.arrayContaining(['2026-01-01', '2026-01-03', '2026-02-15', '2026-02-23', '2026-04-06', '2026-05-05', '2026-06-19', '2026-09-25', '2026-10-01', '2026-10-07']));
    expect(y.holidays).not.toContain('2026-10-08');
    expect(y.workdays).toEqual(['2026-01-04', '2026-02-14', '2026-02-28', '2026-05-09', '2026-09-20', '2026-10-10']);
    for (const d of y.workdays) expect([0, 6]).toContain(weekday(d));
    expect(DEFAULT_CALENDAR.holidays).toEqual(expect.arrayContaining(y.holidays));
  });

  it('should make 国庆 days off and 10/10 a working Saturday', () => {
    const cal = new WorkCalendar(DEFAULT_CALENDAR);
    for (let d = 1; d <= 7; d++) expect(cal.isWorkingDay(cst(2026, 10, d, 10))).toBe(false);
    expect(cal.isWorkingDay(cst(2026, 10, 8, 10))).toBe(true);
    expect(cal.isWorkingDay(cst(2026, 10, 10, 10))).toBe(true); // Saturday, 调休
    expect(cal.isWorkingDay(cst(2026, 10, 11, 10))).toBe(false); // Sunday
    expect(cal.isWorkingDay(cst(2026, 10, 3, 10))).toBe(false);
  });
});

for (const engine of engines()) {
  describe(`a working-hours 处置 limit across 国庆 on the shipped calendar (${engine.name})`, () => {
    let h: CaseHub;
    beforeAll(async () => {
      h = await startCaseHub({ databaseUrl: engine.url, rules: false });
    });
    afterAll(async () => h?.stop());

    it('should serve the shipped calendar to everyone', async () => {
      const c = (await h.as('officer')<CalendarData>('GET', '/calendar')).body;
      expect(c.holidays).toEqual(expect.arrayContaining(['2026-10-01', '2026-10-07']));
      expect(c.workdays).toEqual(expect.arrayContaining(['2026-09-20', '2026-10-10']));
    });

    it('should skip 10/1–10/7 and count 10/10 (Saturday, 调休) in the deadline', async () => {
      // 暴露垃圾 in working hours, limit 1,020 working minutes; the day has 7.5 working hours (09:00–12:00, 13:30–18:00).
      const p = await h.api<{ timeLimitMin: number; limitUnit: string }>('PATCH', '/categories/E0101', { timeLimitMin: 1020, limitUnit: 'working' });
      expect(p.status, JSON.stringify(p.body)).toBe(200);
      // Wednesday 9/30 17:00: 60 min that day; 10/1–10/7 off; Thursday 10/8 450, Friday 10/9 450; the last 60 on Saturday 10/10.
      h.clock.t = cst(2026, 9, 30, 17);
      const c = await h.as('officer')<CaseSummary>('POST', '/cases', { category: 'E0101', ...AT.A1 });
      expect(c.status, JSON.stringify(c.body)).toBe(201);
      expect(c.body.category.limitUnit).toBe('working');
      expect(c.body.deadline).toBe(cst(2026, 10, 10, 10));
      // An emergency in calendar hours runs through the holiday.
      const fire = await h.as('officer')<CaseSummary>('POST', '/cases', { category: 'E0402', ...AT.A1 });
      expect(fire.body.deadline - h.clock.t).toBeLessThan(86_400_000);
      expect(fire.body.category.limitUnit).toBe('calendar');
    });

    it('should add the shipped years to a calendar stored without them, and keep a year the operator entered', async () => {
      const m = caseMigrations.find((x) => x.id === '208_cn_holidays')!;
      const bare: CalendarData = { ...DEFAULT_CALENDAR, holidays: [], workdays: [] };
      expect((await h.api('PUT', '/calendar', bare)).status).toBe(200);
      await m.up(h.hub.ctx.db);
      const row = async () => (await h.hub.ctx.db.query<{ data: CalendarData }>("select data from work_calendar where id = 'default'"))[0]!.data;
      expect((await row()).holidays).toEqual([...CN_HOLIDAYS[2026]!.holidays].sort());
      expect((await row()).workdays).toEqual(CN_HOLIDAYS[2026]!.workdays);

      const own: CalendarData = { ...DEFAULT_CALENDAR, holidays: ['2026-10-01'], workdays: [] };
      expect((await h.api('PUT', '/calendar', own)).status).toBe(200);
      await m.up(h.hub.ctx.db);
      expect(await row()).toMatchObject({ holidays: ['2026-10-01'], workdays: [] });
    });
  });
}
