/** Evaluation figures (CONTRACT 5 `/stats/*`): KPIs, cases per day, the monthly assessment (月度考核). */
import { Type, type Static, type TNull, type TNumber, type TUnion } from '@sinclair/typebox';
import { Nullable, OneOf, TimeQuery } from './common.js';
import { ASSESSMENT_LEVELS, ASSESSMENT_METRICS, type AssessmentMetric } from './values.js';

/** Figures of `GET /stats/kpi` (overall and per group): counts, rates (null: nothing to divide by), mean stage times in seconds. */
export const KpiFigures = Type.Object({
  total: Type.Number(),
  byStatus: Type.Record(Type.String(), Type.Number()),
  counts: Type.Record(Type.String(), Type.Number()),
  rates: Type.Record(Type.String(), Nullable(Type.Number())),
  avgSeconds: Type.Record(Type.String(), Nullable(Type.Number())),
  avgRating: Nullable(Type.Number()),
});
export type KpiFigures = Static<typeof KpiFigures>;

/** `GET /stats/kpi` (绩效评价): the window's figures, and per grid, worker or category with `groupBy`. */
export const Kpi = Type.Intersect([KpiFigures, Type.Object({
  from: Type.Number(), to: Type.Number(), gridId: Nullable(Type.String()), groupBy: Nullable(Type.String()),
  groups: Type.Optional(Type.Array(Type.Intersect([KpiFigures, Type.Object({ key: Nullable(Type.String()) })]))),
})]);
export type Kpi = Static<typeof Kpi>;

/** `GET /stats/cases-per-day`: every day of the window in the calendar's time zone, none left out. */
export const CasesPerDay = Type.Object({ items: Type.Array(Type.Object({ date: Type.String(), count: Type.Integer() })) });
export type CasesPerDay = Static<typeof CasesPerDay>;

/** Each metric's rate, null when there was nothing to measure. */
const AssessmentRates = Type.Object(Object.fromEntries(ASSESSMENT_METRICS.map((m) => [m, Nullable(Type.Number())])) as Record<AssessmentMetric, TUnion<[TNumber, TNull]>>);

/** A row of the monthly assessment: a street, community, grid, worker or department, ranked by its weighted score. */
export const AssessmentRow = Type.Object({
  rank: Type.Integer(), key: Type.String(), name: Type.String(), score: Nullable(Type.Number()), cases: Type.Integer(),
  counts: Type.Record(Type.String(), Type.Integer()),
  rates: AssessmentRates,
  avgResponseWh: Nullable(Type.Number()), avgHandleWh: Nullable(Type.Number()),
});
export type AssessmentRow = Static<typeof AssessmentRow>;

/** `GET /stats/assessment`. */
export const Assessment = Type.Object({
  from: Type.Number(), to: Type.Number(), level: Type.String(), weights: Type.Record(Type.String(), Type.Number()), items: Type.Array(AssessmentRow),
});
export type Assessment = Static<typeof Assessment>;

/** `GET /stats/kpi`: the window (default the last 30 days), a grid and everything below it, and an optional grouping. */
export const KpiQuery = Type.Object({
  from: Type.Optional(TimeQuery),
  to: Type.Optional(TimeQuery),
  gridId: Type.Optional(Type.String({ maxLength: 64 })),
  groupBy: Type.Optional(Type.Union([Type.Literal('grid'), Type.Literal('worker'), Type.Literal('category')])),
});
export type KpiQuery = Static<typeof KpiQuery>;

/** `GET /stats/cases-per-day`. */
export const CasesPerDayQuery = Type.Object({ from: Type.Optional(TimeQuery), to: Type.Optional(TimeQuery), gridId: Type.Optional(Type.String({ maxLength: 64 })) });
export type CasesPerDayQuery = Static<typeof CasesPerDayQuery>;

/** `GET /stats/assessment` and `/stats/assessment.xlsx`: a level, and a month or a from/to window. */
export const AssessmentQuery = Type.Object({
  level: OneOf(ASSESSMENT_LEVELS),
  month: Type.Optional(Type.String({ pattern: '^\\d{4}-(0[1-9]|1[0-2])$', description: 'YYYY-MM in the calendar time zone (instead of from/to)' })),
  from: Type.Optional(TimeQuery),
  to: Type.Optional(TimeQuery),
  gridId: Type.Optional(Type.String({ maxLength: 64 })),
  weights: Type.Optional(Type.String({ maxLength: 200, pattern: '^[a-zA-Z]+:\\d{1,3}(,[a-zA-Z]+:\\d{1,3})*$', description: 'e.g. onTimeClose:40,satisfaction:30 (others keep their default)' })),
}, { additionalProperties: false });
export type AssessmentQuery = Static<typeof AssessmentQuery>;
