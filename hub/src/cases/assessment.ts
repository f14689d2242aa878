/**
 * Monthly 考核 (目标考核问效): per grid, community, street, worker or
 * department over the cases created in a period, the figures of
 * ASSESSMENT_FORMULAS, a weighted score and a ranking; exported as .xlsx.
 * Durations are working hours on the working calendar. Computed in one pass
 * over the period's case rows.
 */
import ExcelJS from 'exceljs';
import type { Queryable } from '../store/index.js';
import type { WorkCalendar } from '@gridlink/devices/calendar';
import type { GridIndex } from './grids.js';

// Levels and metrics are the contract's (docs/contract.md section 5 `/stats/assessment`).
import { ASSESSMENT_LEVELS, ASSESSMENT_METRICS as METRICS, type AssessmentLevel, type AssessmentMetric as Metric } from '@gridlink/devices/workflow';

export { ASSESSMENT_LEVELS, METRICS, type AssessmentLevel, type Metric };
export type Weights = Record<Metric, number>;
export const DEFAULT_WEIGHTS: Weights = { onTimeClose: 30, onTimeAck: 15, rework: 15, satisfaction: 25, selfFound: 15 };

export const ASSESSMENT_FORMULAS = `Over the cases created in [from, to) that are not rejected, per unit (grid, community and street by the case's grid and its ancestors; worker by the worker the case is dispatched to; department by the department it is routed to):
- 按期结案率 onTimeClose = closedOnTime / due; due = closed, or deadline ≤ min(to, now); closedOnTime = closed with closedAt ≤ deadline.
- 按期签收率 onTimeAck = ackedOnTime / dispatched; dispatched = cases with a 签收 deadline (their last dispatch or routing); ackedOnTime = acknowledged (accept, arrive or sign) by that deadline.
- 返工率 rework = reworked / resolved; reworked = sent back (rework) at least once; resolved = ever resolved.
- 超期数 overdue = due − closedOnTime (closed late, or open past the deadline).
- 平均响应时长 avgResponseWh = mean working hours from creation to acknowledgement, over acknowledged cases.
- 平均处置时长 avgHandleWh = mean working hours from acknowledgement to resolution, over resolved acknowledged cases.
- 满意率 satisfaction = rated ≥ 4 / rated.
- 主动发现率 selfFound = cases reported by grid workers (source worker) / cases; for a worker, the cases they reported themselves among those dispatched to them; none for departments.
- score = Σ wᵢ·vᵢ / Σ wᵢ × 100 over the metrics with a value, where v = the rate, and 1 − rate for 返工率; default weights onTimeClose 30, onTimeAck 15, rework 15, satisfaction 25, selfFound 15.
- rank: by score, highest first (units without any scored metric last), ties by unit id.`;

export interface AssessmentRow {
  rank: number;
  key: string;
  name: string;
  score: number | null;
  cases: number;
  counts: { due: number; closedOnTime: number; dispatched: number; ackedOnTime: number; resolved: number; reworked: number; overdue: number; rated: number; satisfied: number; selfFound: number };
  rates: Record<Metric, number | null>;
  avgResponseWh: number | null;
  avgHandleWh: number | null;
}

export interface Assessment {
  from: number;
  to: number;
  level: AssessmentLevel;
  weights: Weights;
  items: AssessmentRow[];
}

interface Row {
  grid_id: string | null;
  worker_id: string | null;
  department_id: string | null;
  source: string;
  reporter: { kind?: string; id?: string } | null;
  status: string;
  created_at: Date;
  deadline: Date;
  closed_at: Date | null;
  resolved_at: Date | null;
  ack_deadline: Date | null;
  acked_at: Date | null;
  rework_count: number;
  rating: number | null;
}

const t = (d: Date | null) => (d ? new Date(d).getTime() : null);
const rate = (n: number, d: number) => (d > 0 ? n / d : null);

export interface AssessmentDeps {
  db: Queryable;
  grids: GridIndex;
  calendar: WorkCalendar;
  names: { worker(id: string): string | undefined; department(id: string): string | undefined };
}

/** Every unit of the level inside the scope gets a row, with or without cases. */
export async function computeAssessment(d: AssessmentDeps, q: { from: number; to: number; now: number; level: AssessmentLevel; gridIds: string[] | null; weights?: Partial<Weights> }): Promise<Assessment> {
  const weights = { ...DEFAULT_WEIGHTS, ...q.weights };
  const rows = await d.db.query<Row>(
    `select grid_id, worker_id, department_id, source, reporter, status, created_at, deadline, closed_at, resolved_at, ack_deadline, acked_at, rework_count, rating
       from cases where status <> 'rejected' and created_at >= to_timestamp($1 / 1000.0) and created_at < to_timestamp($2 / 1000.0)
        and ($3::text[] is null or grid_id = any($3::text[]))`,
    [q.from, q.to, q.gridIds],
  );
  const cutoff = Math.min(q.to, q.now);
  const units = new Map<string, Row[]>();
  const unitOf = (r: Row): string | null => {
    if (q.level === 'worker') return r.worker_id;
    if (q.level === 'department') return r.department_id;
    if (!r.grid_id) return null;
    if (q.level === 'grid') return r.grid_id;
    return d.grids.ancestors(r.grid_id).find((id) => d.grids.get(id)?.level === q.level) ?? null;
  };
  // Grid levels list every unit of the level in scope, so a unit without cases still shows (and ranks last).
  if (q.level === 'grid' || q.level === 'community' || q.level === 'street') {
    for (const f of d.grids.features((id) => d.grids.get(id)?.level === q.level && (!q.gridIds || q.gridIds.includes(id)))) units.set(String(f.properties.id), []);
  }
  for (const r of rows) {
    const k = unitOf(r);
    if (!k) continue;
    let list = units.get(k);
    if (!list) units.set(k, (list = []));
    list.push(r);
  }
  const hours = (a: number, b: number) => d.calendar.workingMsBetween(a, b) / 3600_000;
  const items: AssessmentRow[] = [];
  for (const [key, list] of units) {
    const c = { due: 0, closedOnTime: 0, dispatched: 0, ackedOnTime: 0, resolved: 0, reworked: 0, overdue: 0, rated: 0, satisfied: 0, selfFound: 0 };
    let resp = 0, respN = 0, handle = 0, handleN = 0;
    for (const r of list) {
      const closed = r.status === 'closed' ? t(r.closed_at) : null;
      const deadline = t(r.deadline)!;
      if (closed !== null || deadline <= cutoff) c.due++;
      if (closed !== null && closed <= deadline) c.closedOnTime++;
      const ackBy = t(r.ack_deadline);
      const acked = t(r.acked_at);
      if (ackBy !== null) {
        c.dispatched++;
        if (acked !== null && acked <= ackBy) c.ackedOnTime++;
      }
      const resolved = t(r.resolved_at);
      if (resolved !== null) c.resolved++;
      if (r.rework_count > 0) c.reworked++;
      if (r.rating !== null) {
        c.rated++;
        if (r.rating >= 4) c.satisfied++;
      }
      const self = q.level === 'worker' ? r.source === 'worker' && r.reporter?.id === r.worker_id : r.source === 'worker';
      if (self) c.selfFound++;
      if (acked !== null) {
        resp += hours(t(r.created_at)!, acked);
        respN++;
        if (resolved !== null && resolved >= acked) {
          handle += hours(acked, resolved);
          handleN++;
        }
      }
    }
    c.overdue = c.due - c.closedOnTime;
    const rates: Record<Metric, number | null> = {
      onTimeClose: rate(c.closedOnTime, c.due),
      onTimeAck: rate(c.ackedOnTime, c.dispatched),
      rework: rate(c.reworked, c.resolved),
      satisfaction: rate(c.satisfied, c.rated),
      selfFound: q.level === 'department' ? null : rate(c.selfFound, list.length),
    };
    let sum = 0, w = 0;
    for (const m of METRICS) {
      const v = rates[m];
      if (v === null || !weights[m]) continue;
      sum += weights[m] * (m === 'rework' ? 1 - v : v);
      w += weights[m];
    }
    items.push({
      rank: 0, key, name: nameOf(d, q.level, key), score: w > 0 ? (sum / w) * 100 : null, cases: list.length, counts: c, rates,
      avgResponseWh: respN ? resp / respN : null, avgHandleWh: handleN ? handle / handleN : null,
    });
  }
  items.sort((a, b) => (b.score ?? -1) - (a.score ?? -1) || a.key.localeCompare(b.key));
  items.forEach((x, i) => (x.rank = i + 1));
  return { from: q.from, to: q.to, level: q.level, weights, items };
}

function nameOf(d: AssessmentDeps, level: AssessmentLevel, key: string): string {
  if (level === 'worker') return d.names.worker(key) ?? key;
  if (level === 'department') return d.names.department(key) ?? key;
  return d.grids.get(key)?.name ?? key;
}

const LEVEL_ZH: Record<AssessmentLevel, string> = { grid: '网格', community: '社区', street: '街道', worker: '网格员', department: '部门' };
export const XLSX_COLUMNS = ['排名', '单位', '编号', '得分', '案件数', '按期结案率', '按期签收率', '返工率', '超期数', '平均响应时长(工时)', '平均处置时长(工时)', '满意率', '主动发现率'] as const;

/** The league table as an .xlsx workbook: sheet 考核 (one row per unit) and sheet 公式 (period, weights, formulas). */
export async function assessmentXlsx(a: Assessment, utcOffsetMin = 480): Promise<Buffer> {
  const wb = new ExcelJS.Workbook();
  wb.creator = 'GridLink';
  const ws = wb.addWorksheet('考核');
  ws.addRow([...XLSX_COLUMNS]);
  ws.getRow(1).font = { bold: true };
  const pct = (v: number | null) => (v === null ? null : Math.round(v * 10000) / 10000);
  const round = (v: number | null, n = 2) => (v === null ? null : Math.round(v * 10 ** n) / 10 ** n);
  for (const x of a.items) {
    ws.addRow([x.rank, x.name, x.key, round(x.score), x.cases, pct(x.rates.onTimeClose), pct(x.rates.onTimeAck), pct(x.rates.rework), x.counts.overdue,
      round(x.avgResponseWh), round(x.avgHandleWh), pct(x.rates.satisfaction), pct(x.rates.selfFound)]);
  }
  for (const col of [6, 7, 8, 12, 13]) ws.getColumn(col).numFmt = '0.0%';
  ws.columns.forEach((c, i) => (c.width = i === 1 ? 18 : 12));
  const day = (ms: number) => new Date(ms + utcOffsetMin * 60_000).toISOString().slice(0, 16).replace('T', ' ');
  const info = wb.addWorksheet('公式');
  info.addRow(['层级', LEVEL_ZH[a.level]]);
  info.addRow(['开始', day(a.from)]);
  info.addRow(['结束（不含）', day(a.to)]);
  info.addRow(['权重', METRICS.map((m) => `${m} ${a.weights[m]}`).join(', ')]);
  for (const line of ASSESSMENT_FORMULAS.split('\n')) info.addRow([line]);
  return Buffer.from(await wb.xlsx.writeBuffer());
}

/** `YYYY-MM` as [from, to) in the calendar's time zone. */
export function monthRange(month: string, utcOffsetMin: number): { from: number; to: number } {
  const [y, m] = month.split('-').map(Number) as [number, number];
  const off = utcOffsetMin * 60_000;
  return { from: Date.UTC(y, m - 1, 1) - off, to: Date.UTC(y, m, 1) - off };
}
