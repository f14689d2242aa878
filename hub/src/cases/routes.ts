/**
 * REST for cases, categories, grids, evidence and KPIs. Every object is
 * checked against the caller's region: outside it, it does not exist (404)
 * and never shows in a list.
 */
import { Type } from '@sinclair/typebox';
// Case payloads are the contract's (CONTRACT 4-5): the console and integrators read the same schemas.
import {
  CaseActionBody, CaseCounts, CaseDetail, CaseFilterQuery, CaseListQuery, CasesPerDay, CasesPerDayQuery, CaseSummary, Category as CategorySchema, CategoryParams, CreateCaseBody, CreateCategoryBody,
  GridCollectionResponse, GridLocateQuery, GridLocation, GridsQuery, GridsReplaced, GridUpload, IdParams, Kpi as KpiSchema, KpiQuery, UpdateCategoryBody, WorkingCalendar,
} from '@gridlink/devices/contract';
import { GLOBAL, regionScope, type Auth, type Principal } from '../auth/index.js';
import { Errors } from '../core/errors.js';
import type { App } from '../http/app.js';
import { authenticate, mediaPath, parseTime, principal, requireRole } from '../http/guards.js';
import { errors, Items } from '../http/schemas.js';
import type { Db } from '../store/index.js';
import type { CalendarStore } from './calendar.store.js';
import type { DepartmentDirectory } from './departments.js';
import { MAJOR, type CategoryCatalogue } from './categories.js';
import { decodePhoto, type EvidenceStore } from './evidence.js';
import { sendMedia } from './stored-media.js';
import { normaliseGrids, replaceGrids, type GridCollection, type GridIndex } from './grids.js';
import { computeKpi, KPI_DESCRIPTION, type KpiGroupBy } from './kpi.js';
import { CaseErrors, userActor, type CaseStore } from './service.js';
import { CASE_STATUSES, workflowTable } from './workflow.js';

/** History fields only the hub writes. */
const RESERVED_DATA = new Set(['workerId', 'deviceTs', 'evidenceIds', 'source', 'alarmId', 'rating', 'departmentId', 'actor', 'action', 'from', 'to', 'ts', 'severity']);

export interface CaseRouteDeps {
  auth: Auth;
  db: Db;
  cases: CaseStore;
  categories: CategoryCatalogue;
  grids: GridIndex;
  evidence: EvidenceStore;
  calendar: CalendarStore;
  departments: DepartmentDirectory;
  now: () => number;
}

export function caseRoutes(app: App, d: CaseRouteDeps): void {
  const { auth, cases, categories, grids, evidence } = d;
  const guard = authenticate(auth);

  /** Grid ids a list may show: the region (or the asked grid inside it) and everything below; null = all. */
  const scope = (p: Principal, gridId?: string): string[] | null => regionScope(auth, p, gridId, grids);

  /** A department user sees the cases routed to their department; everyone else what lies in their region. */
  function canSeeCase(p: Principal, c: { gridId: string | null; departmentId?: string | null }): boolean {
    const mine = d.departments.of(p.sub);
    if (mine.length) return !!c.departmentId && mine.includes(c.departmentId);
    return auth.canSee(p, c.gridId);
  }

  async function visibleCase(p: Principal, id: string) {
    const c = await cases.get(id);
    if (!c || !canSeeCase(p, c)) throw CaseErrors.notFound();
    return c;
  }

  app.post('/cases', {
    onRequest: [guard, requireRole('officer', 'dispatcher', 'integrator')],
    schema: {
      tags: ['cases'],
      summary: 'Open a case (officer, or a citizen report through an integrator)',
      body: CreateCaseBody,
      response: { 201: CaseSummary, ...errors(400, 401, 403) },
    },
    bodyLimit: 16 * 1024 * 1024,
  }, async (req, reply) => {
    const p = principal(req);
    const b = req.body;
    // PostgreSQL text cannot hold U+0000: refuse it here rather than fail the insert.
    for (const v of [b.title, b.description, b.address, b.note, b.category]) if (v?.includes('\0')) throw Errors.nulByte('NUL bytes are not allowed in text');
    const source = p.role === 'integrator' ? 'citizen' : b.source ?? 'officer';
    const gridId = grids.locate(b.lat, b.lon);
    if (p.regionId && !auth.canSee(p, gridId)) throw Errors.outsideRegion('the location is outside your region');
    const photos = (b.photos ?? []).map(decodePhoto);
    const { case: c } = await cases.create({
      title: b.title, description: b.description, category: b.category, severity: b.severity, lat: b.lat, lon: b.lon, address: b.address,
      gridId, source, actor: userActor(p), photos, note: b.note,
    } as Parameters<CaseStore['create']>[0]);
    return reply.status(201).send(c);
  });

  /** The filter a list or a count applies for this caller: region, department, escalation level. */
  function filterFor(p: Principal, q: CaseFilterQuery) {
    const status = q.status?.split(',').map((s) => s.trim()).filter(Boolean);
    for (const s of status ?? []) if (!(CASE_STATUSES as readonly string[]).includes(s)) throw Errors.validation(`unknown status ${s}`);
    // A department user's list is their department's cases, wherever they lie.
    const mine = d.departments.of(p.sub);
    if (mine.length && q.departmentId && !mine.includes(q.departmentId)) throw CaseErrors.notFound();
    const escalatedTo = q.escalatedTo === 'mine' ? p.regionId ?? undefined : q.escalatedTo;
    if (q.escalatedTo === 'mine' && !p.regionId) throw Errors.validation('escalatedTo=mine needs a user scoped to a region');
    if (escalatedTo && !auth.canSee(p, escalatedTo)) throw Errors.gridNotFound();
    const departmentIds = mine.length ? (q.departmentId ? [q.departmentId] : mine) : q.departmentId ? [q.departmentId] : undefined;
    return {
      status: status as never, gridIds: mine.length ? (q.gridId ? [q.gridId] : null) : scope(p, q.gridId), workerId: q.workerId, category: q.category, departmentIds, escalatedTo,
      from: q.from === undefined ? undefined : parseTime(q.from, 0), to: q.to === undefined ? undefined : parseTime(q.to, 0),
    };
  }

  app.get('/cases', {
    onRequest: [guard],
    schema: {
      tags: ['cases'],
      summary: 'Cases visible to the caller, newest first',
      querystring: CaseListQuery,
      response: { 200: Items(CaseSummary), ...errors(400, 401, 404) },
    },
  }, async (req) => {
    const q = req.query;
    return cases.list({ ...filterFor(principal(req), q), limit: q.limit ?? 100, cursor: q.cursor });
  });

  app.get('/cases/counts', {
    onRequest: [guard],
    schema: {
      tags: ['cases'],
      summary: 'Exact counts of the cases the same filters select (the board\'s column badges): total, by status, overdue (红牌), warned (黄牌, not yet overdue), escalated',
      querystring: CaseFilterQuery,
      response: {
        200: CaseCounts,
        ...errors(400, 401, 404),
      },
    },
  }, async (req) => cases.counts(filterFor(principal(req), req.query)));

  app.get('/stats/cases-per-day', {
    onRequest: [guard, requireRole('officer', 'dispatcher', 'integrator')],
    schema: {
      tags: ['stats'],
      summary: 'Cases created per day in the working calendar\'s time zone (Asia/Shanghai by default), every day in [from, to) present, no cap',
      querystring: CasesPerDayQuery,
      response: { 200: CasesPerDay, ...errors(400, 401, 403, 404) },
    },
  }, async (req) => {
    const to = parseTime(req.query.to, d.now());
    const from = parseTime(req.query.from, to - 30 * 86_400_000);
    if (!(from < to) || to - from > 3660 * 86_400_000) throw Errors.validation('from must be before to, at most 10 years apart');
    return { items: await cases.perDay(from, to, scope(principal(req), req.query.gridId)) };
  });

  app.get('/cases/:id', {
    onRequest: [guard],
    schema: { tags: ['cases'], summary: 'A case with its history and evidence', params: IdParams, response: { 200: CaseDetail, ...errors(401, 404) } },
  }, async (req) => {
    const mine = d.departments.of(principal(req).sub);
    if (mine.length) {
      const dc = await cases.detail(req.params.id);
      if (!dc || !canSeeCase(principal(req), dc)) throw CaseErrors.notFound();
      return dc;
    }
    // One read: the detail carries the grid the region check needs.
    const c = await cases.detail(req.params.id);
    const p = principal(req);
    if (!c || !auth.canSee(p, c.gridId)) throw CaseErrors.notFound();
    // Evidence URLs go into <img src>: each carries a short-lived media token for that file and this user.
    return { ...c, evidence: c.evidence.map((e) => ({ ...e, url: `${e.url}?media=${encodeURIComponent(auth.signMedia(p, mediaPath(e.url)).token)}` })) };
  });

  app.post('/cases/:id/actions', {
    onRequest: [guard],
    schema: {
      tags: ['cases'],
      summary: 'Take a workflow action',
      description: `The case workflow (CONTRACT section 4). 404 CASE_NOT_FOUND outside your region, 403 FORBIDDEN for a role that may not take the action, 403 CASE_NOT_ASSIGNED for a worker the case is not dispatched to, 409 CASE_TRANSITION_INVALID from a status the action does not start from.\n\n${workflowTable()}`,
      params: IdParams,
      body: CaseActionBody,
      response: { 200: CaseSummary, ...errors(400, 401, 403, 404, 409) },
    },
    bodyLimit: 16 * 1024 * 1024,
  }, async (req) => {
    const p = principal(req);
    await visibleCase(p, req.params.id);
    const b = req.body;
    // `data` annotates the history entry; it may not speak for the hub (who was dispatched, when, which photos).
    const reserved = Object.keys(b.data ?? {}).filter((k) => RESERVED_DATA.has(k));
    if (reserved.length) throw Errors.dataFieldReserved(`data may not set ${reserved.join(', ')}`, { fields: reserved });
    return cases.act(req.params.id, b.action, userActor(p), {
      ...(b.workerId ? { workerId: b.workerId } : {}), ...(b.note ? { note: b.note } : {}), ...(b.data ? { data: b.data } : {}),
      ...(b.rating !== undefined ? { rating: b.rating } : {}), ...(b.departmentId ? { departmentId: b.departmentId } : {}),
      ...(b.photos?.length ? { photos: b.photos.map(decodePhoto) } : {}),
    });
  });

  app.get('/evidence/:id', {
    onRequest: [guard],
    config: { media: true },
    schema: { tags: ['cases'], summary: 'An evidence image (snapshot or photo); the `url` of a case\'s evidence carries a media token for <img src>', params: IdParams, response: { 401: Type.Ref('Error'), 404: Type.Ref('Error') } },
  }, async (req, reply) => {
    const e = await evidence.get(req.params.id);
    if (!e || !auth.canSee(principal(req), e.gridId)) throw Errors.evidenceNotFound('Evidence not found');
    // Cluster mode: from the database, whichever node made it (cases/evidence.ts); a range too (a clip in a <video>).
    const media = await evidence.open(e);
    if (!media) throw Errors.evidenceNotFound('Evidence file is missing');
    return sendMedia(reply.header('cache-control', 'private, max-age=86400').header('etag', `"${e.sha256}"`), req.headers.range, media, e.mime);
  });

  // ---- categories -----------------------------------------------------------------------------

  app.get('/categories', {
    onRequest: [guard],
    schema: { tags: ['cases'], summary: 'The 部件/事件 category catalogue', response: { 200: Items(CategorySchema), ...errors(401) } },
  }, async () => ({ items: categories.list() }));

  app.post('/categories', {
    onRequest: [guard, requireRole('admin')],
    schema: {
      tags: ['cases'],
      summary: 'Add a category; the code is kind letter (C 部件 / E 事件) + 2-digit 大类 + 2-digit 小类',
      body: CreateCategoryBody,
      response: { 201: CategorySchema, ...errors(400, 401, 403, 409) },
    },
  }, async (req, reply) => {
    auth.assertCanWrite(principal(req), null, GLOBAL);
    const b = req.body;
    const code = `${b.kind === 'component' ? 'C' : 'E'}${b.majorCode}${b.minorCode}`;
    if (b.code && b.code !== code) throw Errors.validation(`code must be ${code} for this kind, 大类 and 小类`);
    const majorName = b.majorName ?? MAJOR[b.kind][b.majorCode];
    if (!majorName) throw Errors.validation('majorName is required for a new 大类');
    if (b.key && categories.resolve(b.key)) throw Errors.categoryExists(`key ${b.key} is taken`);
    const added = await categories.add({ code, key: b.key ?? null, kind: b.kind, majorCode: b.majorCode, majorName, minorCode: b.minorCode, name: b.name, nameEn: b.nameEn, timeLimitMin: b.timeLimitMin, defaultSeverity: b.defaultSeverity, ackLimitMin: b.ackLimitMin ?? 60, limitUnit: b.limitUnit ?? 'working' });
    if (!added) throw Errors.categoryExists(`category ${code} exists`);
    return reply.status(201).send(added);
  });

  app.patch('/categories/:code', {
    onRequest: [guard, requireRole('admin')],
    schema: {
      tags: ['cases'],
      summary: 'Change a category\'s 签收 / 处置 limits, their unit, or its default severity (applies to cases created or dispatched from now on)',
      params: CategoryParams,
      body: UpdateCategoryBody,
      response: { 200: CategorySchema, ...errors(400, 401, 403, 404) },
    },
  }, async (req) => {
    auth.assertCanWrite(principal(req), null, GLOBAL);
    const c = await categories.update(req.params.code, req.body);
    if (!c) throw CaseErrors.categoryNotFound(req.params.code);
    return c;
  });

  // ---- working calendar -----------------------------------------------------------------------

  app.get('/calendar', {
    onRequest: [guard],
    schema: { tags: ['cases'], summary: 'The working calendar (工作日历): hours, weekend, public holidays, 调休 working days', response: { 200: WorkingCalendar, ...errors(401) } },
  }, async () => d.calendar.current().data);

  app.put('/calendar', {
    onRequest: [guard, requireRole('admin')],
    schema: {
      tags: ['cases'],
      summary: 'Replace the working calendar (deadlines computed from now on use it)',
      body: WorkingCalendar,
      response: { 200: WorkingCalendar, ...errors(400, 401, 403) },
    },
  }, async (req) => {
    auth.assertCanWrite(principal(req), null, GLOBAL);
    return (await d.calendar.save(req.body)).data;
  });

  // ---- grids ----------------------------------------------------------------------------------

  app.put('/grids', {
    // Checked before the (possibly large) body is read: only a city-wide admin may send one.
    onRequest: [guard, requireRole('admin'), async (req) => auth.assertCanWrite(principal(req), null, GLOBAL)],
    schema: {
      tags: ['grids'],
      summary: 'Replace the grid hierarchy',
      description: 'A GeoJSON FeatureCollection of Polygon/MultiPolygon features with properties `id`, `name`, `level` (city, district, street, community, grid), `parentId`, optional `code` (built from the parent code when absent: district 6 digits, then 3 per level). Cases get the finest grid containing their point.',
      body: GridUpload,
      response: { 200: GridsReplaced, ...errors(400, 401, 403) },
    },
    bodyLimit: 256 * 1024 * 1024,
  }, async (req) => {
    const features = normaliseGrids(req.body as unknown as GridCollection);
    await replaceGrids(d.db, features);
    grids.load(features);
    return { count: features.length };
  });

  app.get('/grids', {
    onRequest: [guard],
    schema: {
      tags: ['grids'],
      summary: 'The grid hierarchy as GeoJSON (only your region when you are scoped)',
      querystring: GridsQuery,
      // Features are the contract's GridFeature; the serializer passes them through untouched (a file's own properties stay).
      response: { 200: GridCollectionResponse, ...errors(401) },
    },
  }, async (req) => {
    const p = principal(req);
    const { level, parentId } = req.query;
    const features = grids.features((id) => {
      const g = grids.get(id)!;
      if (level && g.level !== level) return false;
      if (parentId && g.parentId !== parentId) return false;
      return auth.canSee(p, id);
    });
    return { type: 'FeatureCollection' as const, features };
  });

  app.get('/grids/locate', {
    onRequest: [guard],
    schema: {
      tags: ['grids'], summary: 'The finest grid containing a point, with its ancestors',
      querystring: GridLocateQuery,
      response: { 200: GridLocation, ...errors(400, 401) },
    },
  }, async (req) => {
    const id = grids.locate(req.query.lat, req.query.lon);
    return { gridId: id, ancestors: id ? grids.ancestors(id) : [] };
  });

  // ---- KPIs -----------------------------------------------------------------------------------

  app.get('/stats/kpi', {
    onRequest: [guard, requireRole('officer', 'dispatcher', 'integrator')],
    schema: {
      tags: ['stats'],
      summary: '绩效评价: 按期结案率, 结案率, 处置率, 返工率, 准确派遣率, stage times, counts by status',
      description: KPI_DESCRIPTION,
      querystring: KpiQuery,
      response: { 200: KpiSchema, ...errors(400, 401, 403, 404) },
    },
  }, async (req) => {
    const p = principal(req);
    const now = d.now();
    const to = parseTime(req.query.to, now);
    const from = parseTime(req.query.from, to - 30 * 24 * 3600_000);
    const gridId = req.query.gridId ?? null;
    return computeKpi(d.db, { from, to, now, gridIds: scope(p, gridId ?? undefined), gridId, groupBy: req.query.groupBy as KpiGroupBy | undefined });
  });
}
