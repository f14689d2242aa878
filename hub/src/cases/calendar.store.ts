/**
 * The working calendar in the database (table `work_calendar`, row
 * `default`), cached: every deadline computation reads `current()`.
 */
import { Errors } from '../core/errors.js';
import type { Queryable } from '../store/index.js';
import { calendarProblems, DEFAULT_CALENDAR, WorkCalendar, type CalendarData } from '@gridlink/devices/calendar';

export class CalendarStore {
  private cal = new WorkCalendar(DEFAULT_CALENDAR);

  constructor(private readonly db: Queryable) {}

  async load(): Promise<void> {
    const row = (await this.db.query<{ data: CalendarData }>("select data from work_calendar where id = 'default'"))[0];
    this.cal = new WorkCalendar(row ? { ...DEFAULT_CALENDAR, ...row.data } : DEFAULT_CALENDAR);
  }

  current(): WorkCalendar {
    return this.cal;
  }

  /** Replaces the calendar (validated: every problem listed); applies to deadlines computed from now on. */
  async save(data: CalendarData): Promise<WorkCalendar> {
    const clean: CalendarData = {
      utcOffsetMin: data.utcOffsetMin, hours: data.hours.map(([a, b]) => [a, b]), weekend: [...new Set(data.weekend)].sort(),
      holidays: [...new Set(data.holidays)].sort(), workdays: [...new Set(data.workdays)].sort(),
    };
    const problems = calendarProblems(clean);
    if (problems.length) throw Errors.validation(`invalid calendar: ${problems.join('; ')}`);
    await this.db.query(
      `insert into work_calendar (id, data, updated_at) values ('default', $1::jsonb, now())
       on conflict (id) do update set data = excluded.data, updated_at = now()`,
      [JSON.stringify(clean)],
    );
    this.cal = new WorkCalendar(clean);
    return this.cal;
  }
}
