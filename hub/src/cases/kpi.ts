/**
 * KPIs (绩效评价) over the cases created in [from, to), optionally inside a
 * region and grouped by grid, worker or category. One SQL pass with
 * aggregate filters; the formulas are stated in KPI_DESCRIPTION, which the
 * OpenAPI document carries.
 */
import type { CaseStatus } from '../core/services.js';
import type { Db } from '../store/index.js';
import { CASE_STATUSES } from './workflow.js';

export const KPI_DESCRIPTION = `KPIs over the cases created in [from, to) (default: the last 30 days), inside gridId / the caller's region.
- 按期结案率 onTimeCloseRate = closedOnTime / due, where due = cases not rejected that are closed or whose deadline ≤ min(to, now), and closedOnTime = closed cases with closedAt ≤ deadline.
- 结案率 closeRate = closed / registered, where registered = cases that reached 立案 (registeredAt set) and are not rejected.
- 处置率 handleRate = resolved / dispatched: cases ever resolved over cases ever dispatched.
- 返工率 reworkRate = reworked / resolved: cases sent back (rework) at least once over cases ever resolved.
- 准确派遣率 accurateDispatchRate = (dispatches − declines) / dispatches, counting every dispatch and rework dispatch and every decline.
- avgSeconds: reportToRegister = registeredAt − createdAt, registerToDispatch = first dispatchedAt − registeredAt, dispatchToArrive = arrivedAt − first dispatchedAt, arriveToResolve = last resolvedAt − arrivedAt, reportToClose = closedAt − createdAt; averaged over cases that reached both stages.
- 满意率 satisfaction = satisfied / rated, where rated = cases with a 评价 (rating 1–5) and satisfied = rating ≥ 4; avgRating = mean rating over rated cases.
- byStatus: count of cases in each status now.
A rate is null when its denominator is 0. groupBy=grid|worker|category adds one entry per group with the same figures.`;

export type KpiGroupBy = 'grid' | 'worker' | 'category';

export interface KpiFigures {
  total: number;
  byStatus: Record<CaseStatus, number>;
  counts: { registered: number; closed: number; dispatched: number; resolved: number; reworked: number; due: number; closedOnTime: number; dispatches: number; declines: number; overdue: number; rated: number; satisfied: number };
  rates: { onTimeClose: number | null; close: number | null; handle: number | null; rework: number | null; accurateDispatch: number | null; satisfaction: number | null };
  avgSeconds: { reportToRegister: number | null; registerToDispatch: number | null; dispatchToArrive: number | null; arriveToResolve: number | null; reportToClose: number | null };
  avgRating: number | null;
}

export interface KpiResult extends KpiFigures {
  from: number;
  to: number;
  gridId: string | null;
  groupBy: KpiGroupBy | null;
  groups?: Array<KpiFigures & { key: string | null }>;
}

interface KpiRow {
  key: string | null;
  total: number;
  registered: number;
  closed: number;
  dispatched: number;
  resolved: number;
  reworked: number;
  due: number;
  closed_on_time: number;
  dispatches: number;
  declines: number;
  overdue: number;
  rated: number;
  satisfied: number;
  avg_rating: number | null;
  r2reg: number | null;
  reg2d: number | null;
  d2a: number | null;
  a2res: number | null;
  r2c: number | null;
  [status: string]: unknown;
}

const rate = (n: number, d: number) => (d > 0 ? n / d : null);
const num = (v: unknown) => (v === null || v === undefined ? null : Number(v));

function figures(r: KpiRow): KpiFigures {
  const byStatus = Object.fromEntries(CASE_STATUSES.map((s) => [s, Number(r[`s_${s}`] ?? 0)])) as Record<CaseStatus, number>;
  const dispatches = Number(r.dispatches);
  const declines = Number(r.declines);
  return {
    total: Number(r.total),
    byStatus,
    counts: {
      registered: Number(r.registered), closed: Number(r.closed), dispatched: Number(r.dispatched), resolved: Number(r.resolved), reworked: Number(r.reworked),
      due: Number(r.due), closedOnTime: Number(r.closed_on_time), dispatches, declines, overdue: Number(r.overdue),
      rated: Number(r.rated), satisfied: Number(r.satisfied),
    },
    rates: {
      onTimeClose: rate(Number(r.closed_on_time), Number(r.due)),
      close: rate(Number(r.closed), Number(r.registered)),
      handle: rate(Number(r.resolved), Number(r.dispatched)),
      rework: rate(Number(r.reworked), Number(r.resolved)),
      accurateDispatch: rate(dispatches - declines, dispatches),
      satisfaction: rate(Number(r.satisfied), Number(r.rated)),
    },
    avgRating: num(r.avg_rating),
    avgSeconds: { reportToRegister: num(r.r2reg), registerToDispatch: num(r.reg2d), dispatchToArrive: num(r.d2a), arriveToResolve: num(r.a2res), reportToClose: num(r.r2c) },
  };
}

const GROUP_COLUMN: Record<KpiGroupBy, string> = { grid: 'grid_id', worker: 'worker_id', category: 'category_code' };

export async function computeKpi(db: Db, q: { from: number; to: number; now: number; gridIds: string[] | null; gridId: string | null; groupBy?: KpiGroupBy }): Promise<KpiResult> {
  const secs = (a: string, b: string) => `avg(extract(epoch from (${b} - ${a})))::float8`;
  const select = `
    count(*)::int as total,
    ${CASE_STATUSES.map((s) => `count(*) filter (where status = '${s}')::int as s_${s}`).join(',\n    ')},
    count(*) filter (where registered_at is not null and status <> 'rejected')::int as registered,
    count(*) filter (where status = 'closed')::int as closed,
    count(*) filter (where dispatched_at is not null)::int as dispatched,
    count(*) filter (where resolved_at is not null)::int as resolved,
    count(*) filter (where rework_count > 0)::int as reworked,
    count(*) filter (where status <> 'rejected' and (status = 'closed' or deadline <= to_timestamp(least($2::float8, $3::float8) / 1000.0)))::int as due,
    count(*) filter (where status = 'closed' and closed_at <= deadline)::int as closed_on_time,
    coalesce(sum(dispatch_count), 0)::int as dispatches,
    coalesce(sum(decline_count), 0)::int as declines,
    count(*) filter (where overdue)::int as overdue,
    count(*) filter (where rating is not null)::int as rated,
    count(*) filter (where rating >= 4)::int as satisfied,
    avg(rating)::float8 as avg_rating,
    ${secs('created_at', 'registered_at')} as r2reg,
    ${secs('registered_at', 'dispatched_at')} as reg2d,
    ${secs('dispatched_at', 'arrived_at')} as d2a,
    ${secs('arrived_at', 'resolved_at')} as a2res,
    ${secs('created_at', 'closed_at')} as r2c`;
  const where = `created_at >= to_timestamp($1 / 1000.0) and created_at < to_timestamp($2 / 1000.0) and ($4::text[] is null or grid_id = any($4::text[]))`;
  const params = [q.from, q.to, q.now, q.gridIds];
  const total = (await db.query<KpiRow>(`select null as key, ${select} from cases where ${where}`, params))[0]!;
  const result: KpiResult = { from: q.from, to: q.to, gridId: q.gridId, groupBy: q.groupBy ?? null, ...figures(total) };
  if (q.groupBy) {
    const col = GROUP_COLUMN[q.groupBy];
    const rows = await db.query<KpiRow>(`select ${col} as key, ${select} from cases where ${where} group by ${col} order by ${col} nulls last`, params);
    result.groups = rows.map((r) => ({ key: r.key, ...figures(r) }));
  }
  return result;
}
