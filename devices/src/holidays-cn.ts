/**
 * PRC public holidays (法定节假日) and 调休 working days, year by year, as
 * published by the General Office of the State Council (国务院办公厅) in its
 * yearly notice on the arrangement of holidays. Dates are local (China
 * Standard Time). Only published years are listed: the next year is added
 * when its notice is out (docs/cases.md, "Working calendar").
 */

export interface HolidayYear {
  /** The notice the dates are taken from. */
  source: string;
  /** Days off, each listed (YYYY-MM-DD). */
  holidays: string[];
  /** Weekend days worked in exchange (调休上班). */
  workdays: string[];
}

const range = (from: string, to: string): string[] => {
  const out: string[] = [];
  for (let t = Date.parse(`${from}T00:00:00Z`); t <= Date.parse(`${to}T00:00:00Z`); t += 86_400_000) out.push(new Date(t).toISOString().slice(0, 10));
  return out;
};

export const CN_HOLIDAYS: Readonly<Record<number, HolidayYear>> = {
  2026: {
    source: '国务院办公厅关于2026年部分节假日安排的通知',
    holidays: [
      ...range('2026-01-01', '2026-01-03'), // 元旦
      ...range('2026-02-15', '2026-02-23'), // 春节
      ...range('2026-04-04', '2026-04-06'), // 清明节
      ...range('2026-05-01', '2026-05-05'), // 劳动节
      ...range('2026-06-19', '2026-06-21'), // 端午节
      ...range('2026-09-25', '2026-09-27'), // 中秋节
      ...range('2026-10-01', '2026-10-07'), // 国庆节
    ],
    workdays: [
      '2026-01-04', // 元旦: Sunday worked
      '2026-02-14', '2026-02-28', // 春节: Saturdays worked
      '2026-05-09', // 劳动节: Saturday worked
      '2026-09-20', '2026-10-10', // 国庆节: Sunday and Saturday worked
    ],
  },
};

/** Every published year's days off and 调休 working days, merged. */
export function cnHolidays(): { holidays: string[]; workdays: string[] } {
  const years = Object.values(CN_HOLIDAYS);
  return { holidays: years.flatMap((y) => y.holidays), workdays: years.flatMap((y) => y.workdays) };
}
