/**
 * The working calendar (工作日历) as data: working hours per day, the weekly
 * rest days, public holidays and 调休 working days (a weekend day worked in
 * exchange for a holiday). Time limits "in working hours" count only time
 * inside the working hours of working days, in the calendar's UTC offset.
 *
 * Pure and dependency-free (`@gridlink/devices/calendar`): the hub and the
 * console import this same file, the console to draw its
 * countdowns, so hub and console can never disagree on a deadline.
 */
import { cnHolidays } from './holidays-cn.js';

export { CN_HOLIDAYS, type HolidayYear } from './holidays-cn.js';

export interface CalendarData {
  /** Minutes east of UTC the calendar's dates and hours are in (China Standard Time: 480). */
  utcOffsetMin: number;
  /** Working intervals of a working day, local `HH:MM` pairs, ascending, not overlapping. */
  hours: Array<[string, string]>;
  /** Rest days of the week, 0 = Sunday … 6 = Saturday. */
  weekend: number[];
  /** Public holidays (YYYY-MM-DD, local): no work even on a weekday. */
  holidays: string[];
  /** 调休 working days (YYYY-MM-DD, local): work even on a weekend day. */
  workdays: string[];
}

export type LimitUnit = 'working' | 'calendar';

/** China Standard Time, 09:00–12:00 and 13:30–18:00, Saturday and Sunday off, the published PRC holidays and 调休 days. */
export const DEFAULT_CALENDAR: CalendarData = {
  utcOffsetMin: 480,
  hours: [['09:00', '12:00'], ['13:30', '18:00']],
  weekend: [0, 6],
  ...cnHolidays(),
};

const DAY = 86_400_000;
const HHMM = /^([01]\d|2[0-4]):([0-5]\d)$/;
const DATE = /^\d{4}-\d{2}-\d{2}$/;

/** Every problem with a calendar, or an empty list. */
export function calendarProblems(c: CalendarData): string[] {
  const out: string[] = [];
  if (!Number.isInteger(c.utcOffsetMin) || Math.abs(c.utcOffsetMin) > 14 * 60) out.push('utcOffsetMin must be an integer within ±840');
  let last = -1;
  for (const [a, b] of c.hours) {
    const s = parseHm(a);
    const e = parseHm(b);
    if (s === null || e === null) out.push(`hours ${a}-${b}: use HH:MM`);
    else if (e <= s || s < last) out.push(`hours ${a}-${b}: intervals must ascend without overlap`);
    else last = e;
  }
  if (!c.hours.length) out.push('hours: at least one working interval');
  for (const d of c.weekend) if (!Number.isInteger(d) || d < 0 || d > 6) out.push(`weekend ${d}: 0 (Sunday) … 6 (Saturday)`);
  for (const d of [...c.holidays, ...c.workdays]) if (!validDate(d)) out.push(`date ${d}: not a date (YYYY-MM-DD)`);
  const both = c.holidays.filter((d) => c.workdays.includes(d));
  if (both.length) out.push(`both holiday and working day: ${both.join(', ')}`);
  return out;
}

function validDate(d: string): boolean {
  if (!DATE.test(d)) return false;
  const t = Date.parse(`${d}T00:00:00Z`);
  // A round trip catches 2026-02-31, which Date.parse rolls over into March.
  return !Number.isNaN(t) && new Date(t).toISOString().slice(0, 10) === d;
}

function parseHm(s: string): number | null {
  const m = HHMM.exec(s);
  if (!m) return null;
  const v = Number(m[1]) * 60 + Number(m[2]);
  return v <= 24 * 60 ? v : null;
}

export class WorkCalendar {
  private readonly offset: number;
  /** Working intervals in ms after local midnight. */
  private readonly spans: Array<[number, number]>;
  private readonly weekend: Set<number>;
  private readonly holidays: Set<string>;
  private readonly workdays: Set<string>;

  constructor(readonly data: CalendarData = DEFAULT_CALENDAR) {
    this.offset = data.utcOffsetMin * 60_000;
    this.spans = data.hours.map(([a, b]) => [parseHm(a)! * 60_000, parseHm(b)! * 60_000]);
    this.weekend = new Set(data.weekend);
    this.holidays = new Set(data.holidays);
    this.workdays = new Set(data.workdays);
  }

  /** Local midnight (as a UTC instant) of the day containing `t`. */
  private dayStart(t: number): number {
    return Math.floor((t + this.offset) / DAY) * DAY - this.offset;
  }

  /** YYYY-MM-DD of the local day containing `t`. */
  localDate(t: number): string {
    return new Date(t + this.offset).toISOString().slice(0, 10);
  }

  isWorkingDay(t: number): boolean {
    const date = this.localDate(t);
    if (this.workdays.has(date)) return true;
    if (this.holidays.has(date)) return false;
    return !this.weekend.has(new Date(t + this.offset).getUTCDay());
  }

  /** The instant `minutes` of working time after `start` (10 years of no working time at all is an error). */
  addWorking(start: number, minutes: number): number {
    let left = minutes * 60_000;
    if (left <= 0) return start;
    let day = this.dayStart(start);
    for (let i = 0; i < 3660; i++, day += DAY) {
      if (!this.isWorkingDay(day)) continue;
      for (const [s, e] of this.spans) {
        const from = Math.max(start, day + s);
        const to = day + e;
        if (from >= to) continue;
        if (to - from >= left) return from + left;
        left -= to - from;
      }
    }
    throw new Error('the working calendar has no working time');
  }

  /** Working milliseconds in [a, b). */
  workingMsBetween(a: number, b: number): number {
    if (b <= a) return 0;
    let total = 0;
    for (let day = this.dayStart(a); day < b; day += DAY) {
      if (!this.isWorkingDay(day)) continue;
      for (const [s, e] of this.spans) {
        const from = Math.max(a, day + s);
        const to = Math.min(b, day + e);
        if (to > from) total += to - from;
      }
    }
    return total;
  }

  /** A time limit from `start` in the given unit. */
  add(start: number, minutes: number, unit: LimitUnit): number {
    return unit === 'working' ? this.addWorking(start, minutes) : start + minutes * 60_000;
  }

  /** Time left until `deadline` in the unit (negative when past: overdue by that much). */
  remainingMs(now: number, deadline: number, unit: LimitUnit): number {
    if (unit === 'calendar') return deadline - now;
    return now <= deadline ? this.workingMsBetween(now, deadline) : -this.workingMsBetween(deadline, now) || 0;
  }
}
