/**
 * Case service: creation from every source, the workflow table applied in a
 * transaction with the row locked, append-only history, attachment of rule
 * triggers to open cases, overdue detection. After each commit it emits
 * `case.changed` on the bus and `case` on Socket.IO.
 */
import { randomUUID } from 'node:crypto';
import { SEVERITIES, type Severity } from '@gridlink/devices';
import type { CaseDetail, CaseHistoryEntry as HistoryEntry } from '@gridlink/devices/contract';
import type { Principal } from '../auth/index.js';
import type { EventBus } from '../core/bus.js';
import { Errors } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { Actor, CaseAction, CaseActInput, CaseService, CaseSource, CaseStatus, CaseSummary, RealtimeService, WorkerService } from '../core/services.js';
import type { Auth } from '../auth/index.js';
import type { Db, Queryable } from '../store/index.js';
import type { WorkCalendar } from '@gridlink/devices/calendar';
import type { Category, CategoryCatalogue } from './categories.js';
import { DepartmentErrors, departmentRoom, type DepartmentDirectory } from './departments.js';
import type { Evidence, EvidenceStore } from './evidence.js';
import type { GridIndex } from './grids.js';
import { CASE_STATUSES as CASE_STATUS_LIST, isOpen, OPEN_STATUSES, POOR_RATING, WORKFLOW } from './workflow.js';

/** Besides workflow actions: creation, a rule trigger joining, overdue detection (超期, 签收超时), 黄牌 and escalation. */
export type CaseChange = CaseAction | 'create' | 'attach' | 'overdue' | 'ack_overdue' | 'warn' | 'escalate';

export interface CaseChanged {
  case: CaseSummary;
  action: CaseChange;
  from: CaseStatus | null;
  actor: Actor;
  /** e.g. `{workerId}` of the worker who declined or was cancelled, `{alarmId}` on attach. */
  data?: Record<string, unknown>;
}

declare module '../core/bus.js' {
  interface EventMap {
    /** After every committed case change (creation, transition, attach, overdue). */
    'case.changed': CaseChanged;
    /** An open case passed its deadline (超期). */
    'case.overdue': { case: CaseSummary };
    /** A handheld `case` message that could not be applied. */
    'case.refused': { deviceId: string; caseId: string; action: string; code: string; message: string };
  }
}

/** 黄牌 once this share of the 处置 limit has passed. */
export const WARN_AT = 0.75;
/** 四级网络: a case is handled at community level; overdue, it goes up to the street, then to the district. */
export const ESCALATION_LEVELS = ['street', 'district'] as const;
const SUPERVISOR = systemActorOf('supervision', '督办');

export const SEVERITY_RANK: Record<Severity, number> = { info: 0, warning: 1, minor: 2, major: 3, critical: 4 };
export const maxSeverity = (a: Severity, b: Severity): Severity => (SEVERITY_RANK[a] >= SEVERITY_RANK[b] ? a : b);

// A history line and a case with its history are the contract's (CONTRACT 4-5): the REST answer is this type.
export type { CaseDetail, CaseHistoryEntry as HistoryEntry } from '@gridlink/devices/contract';

export interface CreateCaseInput {
  title?: string;
  description?: string;
  /** Category code, key or name. */
  category: string;
  severity?: Severity;
  lat: number;
  lon: number;
  address?: string;
  gridId?: string | null;
  source: CaseSource;
  actor: Actor;
  /** `deviceId:reportId` of a worker report: the same report is one case. */
  reportKey?: string;
  ruleId?: string;
  deviceId?: string;
  alarmId?: string;
  photos?: Uint8Array[];
  note?: string;
  data?: Record<string, unknown>;
}

export interface CaseQuery {
  status?: CaseStatus[];
  /** Only cases in these grids (a region expanded to its descendants). */
  gridIds?: string[] | null;
  workerId?: string;
  /** Only cases routed to one of these departments. */
  departmentIds?: string[];
  /** Only cases escalated (督办升级) to this region. */
  escalatedTo?: string;
  category?: string;
  from?: number;
  to?: number;
  limit: number;
  cursor?: string;
}

interface CaseRow {
  id: string;
  code: string;
  title: string;
  description: string | null;
  status: CaseStatus;
  category_code: string;
  severity: Severity;
  lat: number;
  lon: number;
  address: string | null;
  grid_id: string | null;
  source: CaseSource;
  report_key: string | null;
  rule_id: string | null;
  device_id: string | null;
  worker_id: string | null;
  reporter: Actor | null;
  deadline: Date;
  overdue: boolean;
  created_at: Date;
  updated_at: Date;
  registered_at: Date | null;
  dispatched_at: Date | null;
  accepted_at: Date | null;
  arrived_at: Date | null;
  resolved_at: Date | null;
  closed_at: Date | null;
  dispatch_count: number;
  decline_count: number;
  rework_count: number;
  verified_by: string | null;
  rating: number | null;
  rating_comment: string | null;
  rated_at: Date | null;
  rated_by: Actor | null;
  ack_deadline: Date | null;
  acked_at: Date | null;
  ack_overdue: boolean;
  department_id: string | null;
  route_count: number;
  return_count: number;
  warn_at: Date | null;
  warned: boolean;
  escalation_level: number;
  escalated_to: string | null;
  next_escalation_at: Date | null;
  supervise_count: number;
}

const ms = (d: Date | null): number | null => (d ? new Date(d).getTime() : null);

export const CaseErrors = {
  notFound: () => Errors.caseNotFound('Case not found'),
  transition: (action: string, status: string) => Errors.caseTransitionInvalid(`cannot ${action} a case that is ${status}`, { action, status }),
  role: (action: string) => Errors.forbidden(`your role may not ${action} a case`, { action }),
  notAssigned: () => Errors.caseNotAssigned('the case is not dispatched to this worker'),
  workerRequired: () => Errors.validation('dispatch needs workerId'),
  category: (ref: string) => Errors.categoryRefused(`unknown category ${ref}`),
  categoryNotFound: (ref: string) => Errors.categoryNotFound(`unknown category ${ref}`),
  alreadyRated: () => Errors.caseAlreadyRated('this closure is already rated'),
  notPoor: () => Errors.caseTransitionInvalid(`a closed case is reworked only after a rating of ${POOR_RATING} or less`, { action: 'rework', status: 'closed' }),
  notDepartment: () => Errors.caseNotAssigned('the case is not routed to your department'),
  departmentUser: (action: string) => Errors.forbidden(`a department user may only sign, reply to or return cases, not ${action}`, { action }),
  notRater: () => Errors.forbidden('only the citizen who reported the case, or for internal cases the officer who verified it, may rate it', { action: 'rate' }),
};

/** A console user as an actor. */
export function userActor(p: Principal): Actor {
  return { kind: 'user', id: p.sub, name: p.username, role: p.role, regionId: p.regionId };
}

export const systemActor = (id: string, name = id): Actor => ({ kind: 'system', id, name });
function systemActorOf(id: string, name: string): Actor {
  return { kind: 'system', id, name };
}

export interface CaseServiceDeps {
  db: Db;
  bus: EventBus;
  logger: Logger;
  auth: Auth;
  /** Consoles hear every committed change (`case` on Socket.IO) when realtime is loaded. */
  realtime?: RealtimeService;
  /** The worker registry, once dispatch has one (dispatch is built after cases). */
  workers: () => WorkerService | undefined;
  categories: CategoryCatalogue;
  grids: GridIndex;
  evidence: EvidenceStore;
  now: () => number;
  /** The working calendar deadlines are computed with. */
  calendar: { current(): WorkCalendar };
  /** Departments (分流) and their users. */
  departments: DepartmentDirectory;
  /** Case codes use this UTC offset for their date part (China Standard Time). */
  codeUtcOffsetH?: number;
}

export class CaseStore implements CaseService {
  /**
   * Open cases by link key (`r|rule|device`, `c|category|device`), oldest first:
   * the rule path finds the case a trigger joins without a query. Kept in step
   * with case_links by create/attach/act; loaded by loadLinks() on start.
   */
  private readonly links = new Map<string, Array<{ id: string; createdAt: number }>>();
  private readonly keysOf = new Map<string, Set<string>>();

  constructor(private readonly d: CaseServiceDeps) {}

  private addLink(caseId: string, createdAt: number, ruleId: string | null, categoryCode: string, deviceId: string): void {
    const keys = [`c|${categoryCode}|${deviceId}`, ...(ruleId ? [`r|${ruleId}|${deviceId}`] : [])];
    let mine = this.keysOf.get(caseId);
    if (!mine) this.keysOf.set(caseId, (mine = new Set()));
    for (const k of keys) {
      if (mine.has(k)) continue;
      mine.add(k);
      const list = this.links.get(k) ?? [];
      list.push({ id: caseId, createdAt });
      list.sort((a, b) => a.createdAt - b.createdAt);
      this.links.set(k, list);
    }
  }

  private dropLinks(caseId: string): void {
    for (const k of this.keysOf.get(caseId) ?? []) {
      const list = this.links.get(k)?.filter((x) => x.id !== caseId) ?? [];
      if (list.length) this.links.set(k, list);
      else this.links.delete(k);
    }
    this.keysOf.delete(caseId);
  }

  async loadLinks(): Promise<void> {
    this.links.clear();
    this.keysOf.clear();
    const rows = await this.d.db.query<{ case_id: string; rule_id: string | null; category_code: string; device_id: string; created_at: Date }>(
      `select l.case_id, l.rule_id, l.category_code, l.device_id, c.created_at from case_links l join cases c on c.id = l.case_id where c.status = any($1::text[])`,
      [OPEN_STATUSES],
    );
    for (const r of rows) this.addLink(r.case_id, new Date(r.created_at).getTime(), r.rule_id, r.category_code, r.device_id);
  }

  get evidence(): EvidenceStore {
    return this.d.evidence;
  }

  get grids(): GridIndex {
    return this.d.grids;
  }

  get categories(): CategoryCatalogue {
    return this.d.categories;
  }

  // ---- reads ---------------------------------------------------------------------------------

  summary(r: CaseRow): CaseSummary {
    const c = this.d.categories.get(r.category_code);
    return {
      id: r.id, code: r.code, title: r.title, status: r.status,
      category: { code: r.category_code, name: c?.name ?? r.category_code, ...(c ? { nameEn: c.nameEn, limitUnit: c.limitUnit } : {}) },
      severity: r.severity, lat: r.lat, lon: r.lon, address: r.address, gridId: r.grid_id, source: r.source, workerId: r.worker_id,
      deadline: ms(r.deadline)!, overdue: r.overdue, createdAt: ms(r.created_at)!, updatedAt: ms(r.updated_at)!,
      rating: r.rating ?? null,
      departmentId: r.department_id,
      warned: r.warned,
      escalatedTo: r.escalated_to,
      // Only while waiting for 签收.
      ackDeadline: r.status === 'dispatched' && !r.acked_at ? ms(r.ack_deadline) : null,
      ackOverdue: r.ack_overdue,
    };
  }

  private async row(id: string, q: Queryable = this.d.db, lock = false): Promise<CaseRow | null> {
    // Handhelds may name a case by its code.
    const col = id.startsWith('GL-') ? 'code' : 'id';
    return (await q.query<CaseRow>(`select * from cases where ${col} = $1${lock ? ' for update' : ''}`, [id]))[0] ?? null;
  }

  async get(id: string): Promise<CaseSummary | null> {
    const r = await this.row(id);
    return r ? this.summary(r) : null;
  }

  async detail(id: string): Promise<CaseDetail | null> {
    const r = await this.row(id);
    if (!r) return null;
    const [history, evidence, links] = await Promise.all([
      this.d.db.query<{ id: number; ts: Date; action: string; from_status: CaseStatus | null; to_status: CaseStatus | null; actor: Actor; note: string | null; data: Record<string, unknown> | null }>(
        'select * from case_history where case_id = $1 order by id', [r.id]),
      this.d.evidence.forCase(r.id),
      this.d.db.query<{ alarm_id: string }>('select distinct alarm_id from case_links where case_id = $1 and alarm_id is not null', [r.id]),
    ]);
    return {
      ...this.summary(r),
      description: r.description, ruleId: r.rule_id, deviceId: r.device_id, reporter: r.reporter,
      times: { registeredAt: ms(r.registered_at), dispatchedAt: ms(r.dispatched_at), acceptedAt: ms(r.accepted_at), arrivedAt: ms(r.arrived_at), resolvedAt: ms(r.resolved_at), closedAt: ms(r.closed_at) },
      counts: { dispatches: r.dispatch_count, declines: r.decline_count, reworks: r.rework_count, routes: r.route_count, returns: r.return_count, supervisions: r.supervise_count, escalationLevel: r.escalation_level },
      alarmIds: links.map((l) => l.alarm_id),
      evaluation: r.rating !== null && r.rated_at ? { rating: r.rating, comment: r.rating_comment, at: ms(r.rated_at)!, by: r.rated_by } : null,
      history: history.map((h) => ({ id: Number(h.id), ts: ms(h.ts)!, action: h.action, from: h.from_status, to: h.to_status, actor: h.actor, note: h.note, data: h.data })),
      evidence,
    };
  }

  /** Exact counts of the cases a filter selects (no paging): the board's column badges. */
  async counts(f: Omit<CaseQuery, 'limit' | 'cursor'>): Promise<{ total: number; byStatus: Record<CaseStatus, number>; overdue: number; warned: number; escalated: number }> {
    const { where, params } = caseFilter(f);
    const rows = await this.d.db.query<{ status: CaseStatus; n: number; overdue: number; warned: number; escalated: number }>(
      `select status, count(*)::int as n, count(*) filter (where overdue)::int as overdue, count(*) filter (where warned and not overdue)::int as warned,
              count(*) filter (where escalated_to is not null)::int as escalated
         from cases ${where.length ? `where ${where.join(' and ')}` : ''} group by status`,
      params,
    );
    const byStatus = Object.fromEntries(CASE_STATUS_LIST.map((s) => [s, 0])) as Record<CaseStatus, number>;
    let total = 0, overdue = 0, warned = 0, escalated = 0;
    for (const r of rows) {
      byStatus[r.status] = r.n;
      total += r.n;
      overdue += r.overdue;
      warned += r.warned;
      escalated += r.escalated;
    }
    return { total, byStatus, overdue, warned, escalated };
  }

  /** Cases created per local day (the calendar's time zone) in [from, to), every day present, no cap. */
  async perDay(from: number, to: number, gridIds: string[] | null): Promise<Array<{ date: string; count: number }>> {
    const cal = this.d.calendar.current();
    const off = cal.data.utcOffsetMin;
    const rows = await this.d.db.query<{ day: string; n: number }>(
      `select to_char(created_at at time zone 'UTC' + make_interval(mins => $3::int), 'YYYY-MM-DD') as day, count(*)::int as n
         from cases where created_at >= to_timestamp($1 / 1000.0) and created_at < to_timestamp($2 / 1000.0) and ($4::text[] is null or grid_id = any($4::text[]))
        group by 1`,
      [from, to, off, gridIds],
    );
    const got = new Map(rows.map((r) => [r.day, r.n]));
    const out: Array<{ date: string; count: number }> = [];
    const add = (date: string) => {
      if (out.at(-1)?.date !== date) out.push({ date, count: got.get(date) ?? 0 });
    };
    for (let t = from; t < to && out.length < 3700; t += 86_400_000) add(cal.localDate(t));
    if (to > from) add(cal.localDate(to - 1));
    return out;
  }

  async list(f: CaseQuery): Promise<{ items: CaseSummary[]; nextCursor?: string }> {
    const { where, params, p } = caseFilter(f);
    if (f.cursor) {
      const [t, id] = Buffer.from(f.cursor, 'base64url').toString().split('|');
      if (!t || !id || !/^\d+$/.test(t)) throw Errors.validation('bad cursor');
      where.push(`(created_at, id) < (to_timestamp(${p(Number(t))} / 1000.0), ${p(id)})`);
    }
    const rows = await this.d.db.query<CaseRow>(
      `select * from cases ${where.length ? `where ${where.join(' and ')}` : ''} order by created_at desc, id desc limit ${p(f.limit + 1)}`,
      params,
    );
    const more = rows.length > f.limit;
    const items = rows.slice(0, f.limit).map((r) => this.summary(r));
    const last = items[items.length - 1];
    return { items, ...(more && last ? { nextCursor: Buffer.from(`${last.createdAt}|${last.id}`).toString('base64url') } : {}) };
  }

  // ---- writes --------------------------------------------------------------------------------

  private code(at: number, n: number): string {
    const d = new Date(at + (this.d.codeUtcOffsetH ?? 8) * 3600_000);
    const ymd = `${d.getUTCFullYear()}${String(d.getUTCMonth() + 1).padStart(2, '0')}${String(d.getUTCDate()).padStart(2, '0')}`;
    return `GL-${ymd}-${String(n).padStart(6, '0')}`;
  }

  /** 处置 deadline of a case of this category created at `at`. */
  deadline(cat: Category, at: number): number {
    return this.d.calendar.current().add(at, cat.timeLimitMin, cat.limitUnit);
  }

  /** 黄牌: when WARN_AT of the 处置 limit has passed (in the category's unit). */
  warnAt(cat: Category, at: number): number {
    return this.d.calendar.current().add(at, cat.timeLimitMin * WARN_AT, cat.limitUnit);
  }

  /** The region an escalation of `level` goes to: the street (1), then the district (2) above the case's grid. */
  escalationTarget(gridId: string | null, level: number): string | null {
    if (!gridId) return null;
    const up = this.d.grids.ancestors(gridId);
    const want = ESCALATION_LEVELS[level - 1];
    return up.find((id) => this.d.grids.get(id)?.level === want) ?? up[Math.min(level + 1, up.length - 1)] ?? null;
  }

  /** 签收 deadline of a dispatch (or routing) at `at`. */
  ackDeadline(cat: Category, at: number): number {
    return this.d.calendar.current().add(at, cat.ackLimitMin, cat.limitUnit);
  }

  resolveCategory(ref: string): Category {
    const c = this.d.categories.resolve(ref);
    if (!c) throw CaseErrors.category(ref);
    return c;
  }

  /** Creates a case; a worker report already seen returns the existing case with `created: false`. */
  async create(input: CreateCaseInput): Promise<{ case: CaseSummary; created: boolean }> {
    const cat = this.resolveCategory(input.category);
    const at = this.d.now();
    const gridId = input.gridId ?? this.d.grids.locate(input.lat, input.lon);
    if (!input.photos?.length) return this.createOne(input, cat, gridId, at);
    const result = await this.d.db.tx(async (q) => {
      if (input.reportKey) {
        const existing = (await q.query<CaseRow>('select * from cases where report_key = $1', [input.reportKey]))[0];
        if (existing) return { row: existing, created: false };
      }
      const n = (await q.query<{ n: number }>("select nextval('case_code_seq')::int as n"))[0]!.n;
      const id = randomUUID();
      const severity = input.severity ?? cat.defaultSeverity;
      const rows = await q.query<CaseRow>(
        `insert into cases (id, code, title, description, status, category_code, severity, lat, lon, address, grid_id, source,
           report_key, rule_id, device_id, reporter, deadline, created_at, updated_at, warn_at)
         values ($1, $2, $3, $4, 'reported', $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15,
           to_timestamp($16 / 1000.0), to_timestamp($17 / 1000.0), to_timestamp($17 / 1000.0), to_timestamp($18 / 1000.0))
         on conflict (report_key) do nothing returning *`,
        [id, this.code(at, n), input.title ?? cat.name, input.description ?? null, cat.code, severity, input.lat, input.lon, input.address ?? null, gridId,
          input.source, input.reportKey ?? null, input.ruleId ?? null, input.deviceId ?? null, JSON.stringify(input.actor), this.deadline(cat, at), at, this.warnAt(cat, at)],
      );
      const row = rows[0];
      if (!row) return { row: (await q.query<CaseRow>('select * from cases where report_key = $1', [input.reportKey]))[0]!, created: false };
      const evidenceIds: string[] = [];
      for (const bytes of input.photos ?? []) {
        evidenceIds.push((await this.d.evidence.save({ bytes, kind: 'photo', caseId: id, deviceId: input.deviceId ?? null, gridId, actor: input.actor, at }, q)).id);
      }
      if (input.deviceId && (input.ruleId || input.alarmId)) {
        await q.query('insert into case_links (case_id, rule_id, category_code, device_id, alarm_id, created_at) values ($1, $2, $3, $4, $5, to_timestamp($6 / 1000.0))',
          [id, input.ruleId ?? null, cat.code, input.deviceId, input.alarmId ?? null, at]);
      }
      await this.history(q, id, at, 'create', null, 'reported', input.actor, input.note ?? null, {
        source: input.source, ...(input.alarmId ? { alarmId: input.alarmId } : {}), ...(evidenceIds.length ? { evidenceIds } : {}), ...(input.data ?? {}),
      });
      return { row, created: true };
    });
    const summary = this.summary(result.row);
    if (result.created && input.deviceId && (input.ruleId || input.alarmId)) this.addLink(summary.id, summary.createdAt, input.ruleId ?? null, summary.category.code, input.deviceId);
    if (result.created) this.emit({ case: summary, action: 'create', from: null, actor: input.actor });
    return { case: summary, created: result.created };
  }

  /**
   * Creation without photos as one statement (case, link, history): a rule
   * opening a case under load waits for one pool connection, not six.
   */
  private async createOne(input: CreateCaseInput, cat: Category, gridId: string | null, at: number): Promise<{ case: CaseSummary; created: boolean }> {
    const d = new Date(at + (this.d.codeUtcOffsetH ?? 8) * 3600_000);
    const ymd = `${d.getUTCFullYear()}${String(d.getUTCMonth() + 1).padStart(2, '0')}${String(d.getUTCDate()).padStart(2, '0')}`;
    const link = input.deviceId && (input.ruleId || input.alarmId);
    const data = { source: input.source, ...(input.alarmId ? { alarmId: input.alarmId } : {}), ...(input.data ?? {}) };
    const rows = await this.d.db.query<CaseRow & { existing: boolean }>(
      `with ins as (
         insert into cases (id, code, title, description, status, category_code, severity, lat, lon, address, grid_id, source,
           report_key, rule_id, device_id, reporter, deadline, created_at, updated_at, warn_at)
         values ($1, 'GL-' || $2::text || '-' || lpad(nextval('case_code_seq')::text, 6, '0'), $3, $4, 'reported', $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15::jsonb,
           to_timestamp($16 / 1000.0), to_timestamp($17 / 1000.0), to_timestamp($17 / 1000.0), to_timestamp($22 / 1000.0))
         on conflict (report_key) do nothing returning *
       ), lnk as (
         insert into case_links (case_id, rule_id, category_code, device_id, alarm_id, created_at)
         select id, $13, category_code, $14, $18, created_at from ins where $19::boolean
       ), hist as (
         insert into case_history (case_id, ts, action, from_status, to_status, actor, note, data)
         select id, created_at, 'create', null, 'reported', $15::jsonb, $20, $21::jsonb from ins
       )
       select ins.*, false as existing from ins
       union all
       select c.*, true as existing from cases c where $12::text is not null and c.report_key = $12 and not exists (select 1 from ins)`,
      [randomUUID(), ymd, input.title ?? cat.name, input.description ?? null, cat.code, input.severity ?? cat.defaultSeverity, input.lat, input.lon, input.address ?? null, gridId,
        input.source, input.reportKey ?? null, input.ruleId ?? null, input.deviceId ?? null, JSON.stringify(input.actor), this.deadline(cat, at), at,
        input.alarmId ?? null, !!link, input.note ?? null, JSON.stringify(data), this.warnAt(cat, at)],
    );
    const row = rows[0];
    if (!row) throw Errors.internal('case not created');
    const { existing, ...caseRow } = row;
    const summary = this.summary(caseRow as CaseRow);
    if (!existing && link) this.addLink(summary.id, summary.createdAt, input.ruleId ?? null, summary.category.code, input.deviceId!);
    if (!existing) this.emit({ case: summary, action: 'create', from: null, actor: input.actor });
    return { case: summary, created: !existing };
  }

  private async history(q: Queryable, caseId: string, at: number, action: string, from: CaseStatus | null, to: CaseStatus | null, actor: Actor, note: string | null, data: Record<string, unknown> | null): Promise<void> {
    await q.query(
      'insert into case_history (case_id, ts, action, from_status, to_status, actor, note, data) values ($1, to_timestamp($2 / 1000.0), $3, $4, $5, $6, $7, $8)',
      [caseId, at, action, from, to, JSON.stringify(actor), note, data && Object.keys(data).length ? JSON.stringify(data) : null],
    );
  }

  /** Region, role and assignment checks for one action on one case row. */
  private authorize(actor: Actor, action: CaseAction, r: CaseRow): void {
    const t = WORKFLOW[action];
    if (actor.kind === 'system') return;
    if (action === 'rate') return this.authorizeRating(actor, r);
    if (actor.kind === 'citizen') throw CaseErrors.role(action);
    if (actor.kind === 'worker') {
      if (!t.worker) throw CaseErrors.role(action);
      if (r.worker_id !== actor.id) throw CaseErrors.notAssigned();
      return;
    }
    // A department user sees only the cases routed to their department, wherever they are.
    const mine = this.d.departments.of(actor.id);
    if (mine.length) {
      if (!r.department_id || !mine.includes(r.department_id)) throw CaseErrors.notFound();
      if (!t.department) throw CaseErrors.departmentUser(action);
      return;
    }
    // A case outside the user's region does not exist for them.
    if (!this.d.auth.canSee({ regionId: actor.regionId }, r.grid_id)) throw CaseErrors.notFound();
    if (actor.role === 'admin' || t.roles.includes(actor.role)) return;
    if (t.department) throw r.department_id ? CaseErrors.notDepartment() : CaseErrors.role(action);
    if (actor.role === 'worker' && t.worker) {
      const me = this.workerIdOfUser(actor.id, actor.name);
      if (!me || r.worker_id !== me) throw CaseErrors.notAssigned();
      return;
    }
    throw CaseErrors.role(action);
  }

  private authorizeRating(actor: Actor, r: CaseRow): void {
    const reporter = r.reporter;
    if (r.source === 'citizen') {
      if (actor.kind === 'citizen' && reporter?.kind === 'citizen' && reporter.id === actor.id) return;
      if (actor.kind === 'user' && !this.d.auth.canSee({ regionId: actor.regionId }, r.grid_id)) throw CaseErrors.notFound();
      throw CaseErrors.notRater();
    }
    if (actor.kind !== 'user') throw CaseErrors.notRater();
    if (!this.d.auth.canSee({ regionId: actor.regionId }, r.grid_id)) throw CaseErrors.notFound();
    if (actor.role === 'admin') return;
    if (actor.role !== 'officer') throw CaseErrors.role('rate');
    if (r.verified_by !== actor.id) throw CaseErrors.notRater();
  }

  /**
   * The worker record a `worker` login acts as. With a worker registry
   * (dispatch) only its binding counts: a login bound to no worker acts as
   * none. A hub without one (cases alone) knows workers by name only.
   */
  workerIdOfUser(userId: string, username?: string): string | null {
    const workers = this.d.workers();
    if (workers) return workers.byUser(userId)?.id ?? null;
    return username ?? null;
  }

  /** A region-scoped user may send only a worker whose whole beat lies in the region; another region's worker does not exist. */
  private assertWorkerInRegion(actor: Actor, workerId: string): void {
    if (actor.kind !== 'user' || !actor.regionId) return;
    const w = this.d.workers()?.get(workerId);
    const notFound = () => Errors.workerNotFound(`worker ${workerId} not found`);
    if (!w) throw notFound();
    this.d.auth.assertCanWrite({ regionId: actor.regionId }, { gridIds: w.gridIds }, null, notFound);
  }

  async act(id: string, action: CaseAction, actor: Actor, input: CaseActInput = {}): Promise<CaseSummary> {
    const t = WORKFLOW[action];
    if (!t) throw Errors.validation(`unknown action ${String(action)}`);
    // PostgreSQL stores no NUL in text or jsonb: refused here rather than failing the transaction with a 500.
    if ([input.note, input.workerId, input.departmentId].some((v) => v?.includes('\0')) || (input.data && JSON.stringify(input.data).includes('\\u0000'))) {
      throw Errors.nulByte('NUL bytes are not allowed in text');
    }
    const at = this.d.now();
    let from: CaseStatus = 'reported';
    let previousWorker: string | null = null;
    let previousDepartment: string | null = null;
    const row = await this.d.db.tx(async (q) => {
      const r = await this.row(id, q, true);
      if (!r) throw CaseErrors.notFound();
      this.authorize(actor, action, r);
      if (!t.from.includes(r.status) || (input.ifStatus && !input.ifStatus.includes(r.status))) throw CaseErrors.transition(action, r.status);
      from = r.status;
      previousWorker = r.worker_id;
      previousDepartment = r.department_id;
      if (t.needsNote && !input.note?.trim()) throw Errors.validation(`${action} needs a note`);
      const cat = this.d.categories.get(r.category_code);
      const set: string[] = ['status = $2', 'updated_at = to_timestamp($3 / 1000.0)'];
      const params: unknown[] = [r.id, t.to ?? r.status, at];
      const p = (v: unknown) => {
        params.push(v);
        return `$${params.length}`;
      };
      // A new dispatch (or routing) waits for 签收 again.
      const newAck = () => set.push(`ack_deadline = to_timestamp(${p(cat ? this.ackDeadline(cat, at) : at + 3600_000)} / 1000.0)`, 'acked_at = null', 'ack_overdue = false');
      switch (action) {
        case 'register': set.push('registered_at = coalesce(registered_at, to_timestamp($3 / 1000.0))'); break;
        case 'dispatch': {
          if (!input.workerId) throw CaseErrors.workerRequired();
          this.assertWorkerInRegion(actor, input.workerId);
          this.d.workers()?.assertDispatchable(input.workerId);
          // This node's roster may be a moment old (another node dispatched the worker): the row decides.
          await this.d.workers()?.claim?.(q, input.workerId, r.id, at);
          set.push(`worker_id = ${p(input.workerId)}`, 'department_id = null', 'dispatched_at = coalesce(dispatched_at, to_timestamp($3 / 1000.0))', 'dispatch_count = dispatch_count + 1');
          newAck();
          break;
        }
        case 'accept': set.push('accepted_at = coalesce(accepted_at, to_timestamp($3 / 1000.0))', 'acked_at = coalesce(acked_at, to_timestamp($3 / 1000.0))'); break;
        case 'decline': set.push('worker_id = null', 'department_id = null', 'decline_count = decline_count + 1'); break;
        case 'arrive': set.push('arrived_at = coalesce(arrived_at, to_timestamp($3 / 1000.0))', 'acked_at = coalesce(acked_at, to_timestamp($3 / 1000.0))'); break;
        case 'resolve': set.push('resolved_at = to_timestamp($3 / 1000.0)'); break;
        case 'verify': set.push('closed_at = to_timestamp($3 / 1000.0)', `verified_by = ${p(actor.id)}`); break;
        case 'route': {
          if (!input.departmentId) throw Errors.validation('route needs departmentId');
          const dept = this.d.departments.get(input.departmentId);
          if (!dept) throw DepartmentErrors.notFound(input.departmentId);
          if (!dept.enabled) throw DepartmentErrors.disabled(dept.id);
          set.push(`department_id = ${p(dept.id)}`, 'worker_id = null', 'dispatched_at = coalesce(dispatched_at, to_timestamp($3 / 1000.0))', 'route_count = route_count + 1');
          newAck();
          break;
        }
        case 'sign': set.push('accepted_at = coalesce(accepted_at, to_timestamp($3 / 1000.0))', 'acked_at = coalesce(acked_at, to_timestamp($3 / 1000.0))'); break;
        case 'reply': set.push('resolved_at = to_timestamp($3 / 1000.0)'); break;
        // 退回: the centre routes the case again; the department no longer sees it.
        case 'return': set.push('department_id = null', 'return_count = return_count + 1', 'ack_deadline = null'); break;
        case 'rate': {
          const score = input.rating;
          if (score === undefined || !Number.isInteger(score) || score < 1 || score > 5) throw Errors.validation('rate needs rating, an integer 1–5');
          if (r.rated_at && r.closed_at && new Date(r.rated_at).getTime() >= new Date(r.closed_at).getTime()) throw CaseErrors.alreadyRated();
          set.push(`rating = ${p(score)}`, `rating_comment = ${p(input.note ?? null)}`, 'rated_at = to_timestamp($3 / 1000.0)', `rated_by = ${p(JSON.stringify(actor))}::jsonb`);
          break;
        }
        case 'rework': {
          if (r.status === 'closed') {
            const ratedThisClosure = r.rated_at && r.closed_at && new Date(r.rated_at).getTime() >= new Date(r.closed_at).getTime();
            if (!ratedThisClosure || r.rating === null || r.rating > POOR_RATING) throw CaseErrors.notPoor();
            set.push('closed_at = null');
          }
          // Back to the same owner: the worker, or the department it was routed to; a workerId sends it to a worker instead.
          const worker = input.workerId ?? r.worker_id;
          if (!worker && !r.department_id) throw CaseErrors.workerRequired();
          if (input.workerId) this.assertWorkerInRegion(actor, input.workerId);
          // The worker's row is taken with the case, as for a dispatch (in a cluster it refuses a worker busy with another open case).
          if (worker) await this.d.workers()?.claim?.(q, worker, r.id, at, { rework: true });
          if (worker) set.push(`worker_id = ${p(worker)}`, 'department_id = null', 'dispatch_count = dispatch_count + 1');
          else set.push('route_count = route_count + 1');
          set.push('rework_count = rework_count + 1');
          newAck();
          break;
        }
        case 'supervise': set.push('supervise_count = supervise_count + 1'); break;
        case 'reject':
        case 'cancel':
          break;
      }
      const updated = (await q.query<CaseRow>(`update cases set ${set.join(', ')} where id = $1 returning *`, params))[0]!;
      // The worker rows and dispatch records follow the case in its own commit (a stage on, a stamp, released, ended): nothing is left for after it.
      await this.d.workers()?.caseMoved?.(q, { case: this.summary(updated), action, at, actor, ...(input.data ? { data: input.data } : {}) });
      // The dispatch's record and command commit with the case: a process killed after the commit still owes the handheld its command.
      if ((action === 'dispatch' || action === 'rework') && updated.worker_id) {
        await this.d.workers()?.dispatched?.(q, { case: this.summary(updated), workerId: updated.worker_id, actor, at });
      }
      const evidenceIds: string[] = [];
      for (const bytes of input.photos ?? []) {
        evidenceIds.push((await this.d.evidence.save({ bytes, kind: 'photo', caseId: r.id, deviceId: actor.kind === 'worker' ? actor.deviceId : null, gridId: r.grid_id, actor, at }, q)).id);
      }
      // Caller-supplied data first: the hub's own fields (who was dispatched, when) always win.
      await this.history(q, r.id, at, action, from, t.to ?? r.status, actor, input.note ?? null, {
        ...(input.data ?? {}),
        ...(input.workerId ? { workerId: input.workerId } : {}),
        ...(action === 'rate' ? { rating: input.rating } : {}),
        ...(action === 'route' ? { departmentId: input.departmentId } : {}),
        ...(action === 'return' && r.department_id ? { departmentId: r.department_id } : {}),
        ...(action === 'supervise' ? { owner: owner(r), manual: true } : {}),
        ...(input.ts !== undefined ? { deviceTs: input.ts } : {}),
        ...(evidenceIds.length ? { evidenceIds } : {}),
      });
      return updated;
    });
    const summary = this.summary(row);
    if (!isOpen(summary.status)) this.dropLinks(summary.id);
    const data = {
      ...(previousWorker && (action === 'decline' || action === 'cancel' || action === 'reject') ? { workerId: previousWorker } : {}),
      // A case leaving a department (退回, re-routed) still tells that department's desk it left.
      ...(previousDepartment && previousDepartment !== summary.departmentId ? { departmentId: previousDepartment } : {}),
    };
    this.emit({ case: summary, action, from, actor, ...(Object.keys(data).length ? { data } : {}) });
    return summary;
  }

  /** The open case a new trigger of (rule, device) belongs to: one linked to that rule or to that category for that device. */
  openCaseFor(deviceId: string, ruleId: string, categoryCode: string | null): string | null {
    return this.oldest([`r|${ruleId}|${deviceId}`, ...(categoryCode ? [`c|${categoryCode}|${deviceId}`] : [])]);
  }

  /** The open case of this category any of these devices is linked to (correlation joins it rather than opening another). */
  openCaseForDevices(deviceIds: string[], categoryCode: string): string | null {
    return this.oldest(deviceIds.map((d) => `c|${categoryCode}|${d}`));
  }

  /** An open case some trigger is linked to (what an active alarm's case is while open). */
  isOpenLinked(caseId: string): boolean {
    return this.keysOf.has(caseId);
  }

  private oldest(keys: string[]): string | null {
    let best: { id: string; createdAt: number } | null = null;
    for (const k of keys) {
      const first = this.links.get(k)?.[0];
      if (first && (!best || first.createdAt < best.createdAt)) best = first;
    }
    return best?.id ?? null;
  }

  /**
   * A trigger joins an open case: a link row (so later triggers of the rule,
   * or of the case category, from that device join too), a history entry,
   * the severity raised when the trigger is more severe.
   */
  async attach(caseId: string, input: { deviceId: string; ruleId: string | null; alarmId?: string | null; severity?: Severity; actor: Actor; note?: string; data?: Record<string, unknown> }): Promise<CaseSummary> {
    const at = this.d.now();
    const row = await this.d.db.tx(async (q) => {
      const r = await this.row(caseId, q, true);
      if (!r) throw CaseErrors.notFound();
      await q.query('insert into case_links (case_id, rule_id, category_code, device_id, alarm_id, created_at) values ($1, $2, $3, $4, $5, to_timestamp($6 / 1000.0))',
        [r.id, input.ruleId, r.category_code, input.deviceId, input.alarmId ?? null, at]);
      const severity = input.severity ? maxSeverity(r.severity, input.severity) : r.severity;
      const updated = (await q.query<CaseRow>('update cases set severity = $2, updated_at = to_timestamp($3 / 1000.0) where id = $1 returning *', [r.id, severity, at]))[0]!;
      await this.history(q, r.id, at, 'attach', r.status, r.status, input.actor, input.note ?? null, {
        deviceId: input.deviceId, ...(input.ruleId ? { ruleId: input.ruleId } : {}), ...(input.alarmId ? { alarmId: input.alarmId } : {}),
        ...(severity !== r.severity ? { severity: { from: r.severity, to: severity } } : {}), ...(input.data ?? {}),
      });
      return updated;
    });
    const summary = this.summary(row);
    if (isOpen(summary.status)) this.addLink(summary.id, summary.createdAt, input.ruleId, summary.category.code, input.deviceId);
    this.emit({ case: summary, action: 'attach', from: summary.status, actor: input.actor, data: { alarmId: input.alarmId ?? null, deviceId: input.deviceId } });
    return summary;
  }

  /**
   * The supervision pass (every 30 s and on demand), once per case and step:
   * 黄牌 (`warn`) when WARN_AT of the limit has passed; 红牌 at the deadline:
   * `overdue`, an automatic 督办 notice to the owner and its leader
   * (`supervise`), and escalation one level up the 四级网络 (`escalate`:
   * community → street); overdue by a further full limit, up again (street →
   * district). Dispatched cases not acknowledged by their 签收 deadline get
   * `ackOverdue`. Returns the cases that became overdue. `fence`: the
   * `cases.overdue` lease's check, the pass's first statement (a stale
   * holder's pass writes nothing).
   */
  async checkOverdue(now = this.d.now(), fence?: { check(q: Queryable): Promise<void> }): Promise<CaseSummary[]> {
    const actor = systemActor('overdue', '超期检测');
    const active = OPEN_STATUSES.filter((s) => s !== 'resolved');
    const events: CaseChanged[] = [];
    const overdue: CaseSummary[] = [];
    // Set-based: a backlog (thousands of cases falling due after a holiday)
    // costs a handful of statements, not several per case, so the pass stays
    // short and never holds the embedded database's one connection for long.
    await this.d.db.tx(async (q) => {
      await fence?.check(q);
      const hist = new HistoryBatch(now);
      const warned = await q.query<CaseRow>(
        `update cases set warned = true, updated_at = to_timestamp($1 / 1000.0)
         where not warned and not overdue and warn_at <= to_timestamp($1 / 1000.0) and deadline >= to_timestamp($1 / 1000.0) and status = any($2::text[]) returning *`,
        [now, active],
      );
      for (const r of warned) {
        hist.add(r.id, 'warn', r.status, SUPERVISOR, null, { deadline: ms(r.deadline), owner: owner(r) });
        events.push({ case: this.summary(r), action: 'warn', from: r.status, actor: SUPERVISOR });
      }
      const due = await q.query<CaseRow>(
        `update cases set overdue = true, updated_at = to_timestamp($1 / 1000.0)
         where not overdue and deadline < to_timestamp($1 / 1000.0) and status = any($2::text[]) returning *`,
        [now, active],
      );
      for (const r of due) {
        hist.add(r.id, 'overdue', r.status, actor, null, { deadline: ms(r.deadline) });
        const leader = r.department_id ? this.d.departments.get(r.department_id)?.leaderUserId ?? null : null;
        hist.add(r.id, 'supervise', r.status, SUPERVISOR, '超期自动督办', { auto: true, owner: owner(r), leader });
      }
      const up1 = await this.escalateAll(q, due, 1, now, hist);
      for (const r of due) {
        const esc = up1.get(r.id);
        const s = this.summary(esc ?? r);
        overdue.push(s);
        events.push({ case: s, action: 'overdue', from: r.status, actor });
        if (esc) events.push({ case: s, action: 'escalate', from: r.status, actor: SUPERVISOR, data: { level: 1, to: esc.escalated_to } });
      }
      // Still open a full limit after the deadline: up again.
      const again = await q.query<CaseRow>(
        `select * from cases where overdue and escalation_level = 1 and next_escalation_at < to_timestamp($1 / 1000.0) and status = any($2::text[]) for update`,
        [now, active],
      );
      const up2 = await this.escalateAll(q, again, 2, now, hist);
      for (const r of again) {
        const esc = up2.get(r.id);
        if (esc) events.push({ case: this.summary(esc), action: 'escalate', from: r.status, actor: SUPERVISOR, data: { level: 2, to: esc.escalated_to } });
      }
      const late = await q.query<CaseRow>(
        `update cases set ack_overdue = true, updated_at = to_timestamp($1 / 1000.0)
         where not ack_overdue and status = 'dispatched' and acked_at is null and ack_deadline < to_timestamp($1 / 1000.0) returning *`,
        [now],
      );
      for (const r of late) {
        hist.add(r.id, 'ack_overdue', r.status, actor, null, { ackDeadline: ms(r.ack_deadline) });
        events.push({ case: this.summary(r), action: 'ack_overdue', from: r.status, actor });
      }
      await hist.write(q);
    });
    for (const e of events) {
      this.emit(e);
      if (e.action === 'overdue') this.d.bus.emit('case.overdue', { case: e.case });
    }
    return overdue;
  }

  /**
   * Each case one level up the 四级网络 in one statement (history `escalate`
   * for each); cases with no level above, or already there, are left out.
   * Returns the updated rows by case id.
   */
  private async escalateAll(q: Queryable, rows: readonly CaseRow[], level: number, now: number, hist: HistoryBatch): Promise<Map<string, CaseRow>> {
    const ids: string[] = [], tos: string[] = [], nexts: Array<number | null> = [];
    const before = new Map<string, CaseRow>();
    for (const r of rows) {
      const to = this.escalationTarget(r.grid_id, level);
      if (!to || to === r.escalated_to) continue;
      const cat = this.d.categories.get(r.category_code);
      ids.push(r.id);
      tos.push(to);
      nexts.push(level < ESCALATION_LEVELS.length && cat ? this.d.calendar.current().add(new Date(r.deadline).getTime(), cat.timeLimitMin * level, cat.limitUnit) : null);
      before.set(r.id, r);
    }
    const out = new Map<string, CaseRow>();
    if (ids.length === 0) return out;
    const updated = await q.query<CaseRow>(
      `update cases c set escalation_level = $4, escalated_to = u.to_region, next_escalation_at = to_timestamp(u.next_at / 1000.0), updated_at = to_timestamp($5 / 1000.0)
       from unnest($1::text[], $2::text[], $3::float8[]) as u(id, to_region, next_at) where c.id = u.id returning c.*`,
      [ids, tos, nexts, level, now],
    );
    for (const row of updated) {
      const r = before.get(row.id)!;
      hist.add(row.id, 'escalate', r.status, SUPERVISOR, null, { level, from: r.escalated_to, to: row.escalated_to, owner: owner(r) });
      out.set(row.id, row);
    }
    return out;
  }

  private emit(e: CaseChanged): void {
    this.d.bus.emit('case.changed', e);
    const payload = { ...e.case, change: e.action };
    this.d.realtime?.send('case', e.case.gridId, payload);
    // Department members sit in their department's room only (cases/index.ts).
    for (const d of new Set([e.case.departmentId, e.data?.departmentId])) {
      if (typeof d === 'string' && d) this.d.realtime?.sendToRoom(departmentRoom(d), 'case', payload);
    }
  }
}

/** The where clauses of a case query (list and counts select the same cases), with their parameters. */
function caseFilter(f: Omit<CaseQuery, 'limit' | 'cursor'>): { where: string[]; params: unknown[]; p: (v: unknown) => string } {
  const where: string[] = [];
  const params: unknown[] = [];
  const p = (v: unknown) => {
    params.push(v);
    return `$${params.length}`;
  };
  if (f.status?.length) where.push(`status = any(${p(f.status)}::text[])`);
  if (f.gridIds) where.push(`grid_id = any(${p(f.gridIds)}::text[])`);
  if (f.workerId) where.push(`worker_id = ${p(f.workerId)}`);
  if (f.escalatedTo) where.push(`escalated_to = ${p(f.escalatedTo)}`);
  if (f.departmentIds) where.push(`department_id = any(${p(f.departmentIds)}::text[])`);
  if (f.category) where.push(`category_code = ${p(f.category)}`);
  if (f.from !== undefined) where.push(`created_at >= to_timestamp(${p(f.from)} / 1000.0)`);
  if (f.to !== undefined) where.push(`created_at < to_timestamp(${p(f.to)} / 1000.0)`);
  return { where, params, p };
}

/** Who holds a case now (督办 notices go to them). */
function owner(r: CaseRow): { workerId?: string; departmentId?: string } {
  return r.department_id ? { departmentId: r.department_id } : r.worker_id ? { workerId: r.worker_id } : {};
}

export function isSeverity(s: unknown): s is Severity {
  return typeof s === 'string' && (SEVERITIES as readonly string[]).includes(s);
}

export { isOpen };

/** History lines of one supervision pass, written in one statement at its end (in the order they were added). */
class HistoryBatch {
  private readonly rows = { caseId: [] as string[], action: [] as string[], status: [] as CaseStatus[], actor: [] as string[], note: [] as Array<string | null>, data: [] as Array<string | null> };
  constructor(private readonly at: number) {}

  add(caseId: string, action: string, status: CaseStatus, actor: Actor, note: string | null, data: Record<string, unknown> | null): void {
    this.rows.caseId.push(caseId);
    this.rows.action.push(action);
    this.rows.status.push(status);
    this.rows.actor.push(JSON.stringify(actor));
    this.rows.note.push(note);
    this.rows.data.push(data && Object.keys(data).length ? JSON.stringify(data) : null);
  }

  async write(q: Queryable): Promise<void> {
    const r = this.rows;
    if (r.caseId.length === 0) return;
    await q.query(
      `insert into case_history (case_id, ts, action, from_status, to_status, actor, note, data)
       select u.case_id, to_timestamp($1 / 1000.0), u.action, u.status, u.status, u.actor::jsonb, u.note, u.data::jsonb
       from unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[]) with ordinality as u(case_id, action, status, actor, note, data, n) order by u.n`,
      [this.at, r.caseId, r.action, r.status, r.actor, r.note, r.data],
    );
  }
}
