/**
 * The worker app's API under /api/v1/m (handheld session token, never the
 * device secret). Positions go through ingest exactly like the handheld's own
 * `location` channel (same decoder, durable commit, plausibility flags,
 * idempotent by timestamp); task actions and reports go to the case service
 * with the worker as actor, photos as multipart parts saved as evidence in
 * the same transaction as the transition. Every write carries an id the app
 * made (`opId`, `reportId`), so a replay from the offline outbox is applied
 * once.
 */
import type { FastifyRequest } from 'fastify';
import multipart from '@fastify/multipart';
import { Type, type Static } from '@sinclair/typebox';
// The app's bodies and answers are the contract's (docs/contract.md section 7): the app reads the same types.
import {
  HandheldSession as SessionSchema, HandheldSessionsQuery, MobileCategory as CategorySchema, MobileDutyBody, MobileIdParams as IdParams, MobileListQuery, MobileMe as MeSchema,
  MobilePositionsBody, MobileReport as ReportSchema, MobileSignedIn, MobileSignInBody, MobileReportBody as ReportBody, MobileTask as TaskSchema, MobileTaskActionBody as ActionBody,
  MobileTaskActionResult, RevokeSessionBody, Stored, type MobileTask as Task,
} from '@gridlink/devices/contract';
import type { Auth } from '../auth/index.js';
import type { CaseDetail, CasesModule } from '../cases/index.js';
import { imageMime } from '../cases/index.js';
import { Errors, isGridError } from '../core/errors.js';
import type { Actor, CaseAction } from '../core/services.js';
import type { DispatchModule } from '../dispatch/index.js';
import { authenticate, bearerToken, principal, requireRole } from '../http/guards.js';
import type { App } from '../http/app.js';
import { errors, Items } from '../http/schemas.js';
import type { Ingest } from '../ingest/index.js';
import type { DeviceRegistry } from '../registry/index.js';
import type { Db } from '../store/index.js';
import type { MobileConfig } from './mobile.config.js';
import { MobileErrors, type HandheldSession, type SessionStore } from './sessions.js';

declare module 'fastify' {
  interface FastifyRequest {
    handheld?: HandheldSession;
  }
}

export interface MobileDeps {
  auth: Auth;
  db: Db;
  registry: DeviceRegistry;
  ingest: Ingest;
  sessions: SessionStore;
  cfg: MobileConfig;
  cases: () => CasesModule | undefined;
  dispatch: () => DispatchModule | undefined;
  now: () => number;
}

/** Handheld routes authenticate with the session token themselves (not a console bearer token). */
const HANDHELD = [{ handheld: [] }];

/** Multipart file values (one Buffer or several) → photo bytes, each checked as JPEG/PNG. */
function photosOf(v: unknown, max: number): Uint8Array[] {
  if (v === undefined || v === null || v === '') return [];
  const list = Array.isArray(v) ? v : [v];
  if (list.length > max) throw Errors.validation(`at most ${max} photos`);
  return list.map((p) => {
    if (!Buffer.isBuffer(p)) throw Errors.validation('photos must be file parts of a multipart body');
    const bytes = new Uint8Array(p);
    if (!imageMime(bytes)) throw Errors.evidenceInvalid('photos must be JPEG or PNG images');
    return bytes;
  });
}

const actorName = (a: Actor | null | undefined) => (a ? a.name : '');

/** Multipart fields skip the JSON checks: text PostgreSQL cannot store (NUL) is refused here, before anything is written. */
function noNul(...values: Array<string | undefined>): void {
  if (values.some((v) => v?.includes('\0'))) throw Errors.nulByte('NUL bytes are not allowed in text');
}

export function mobileRoutes(app: App, deps: MobileDeps): void {
  const { sessions, cfg, db } = deps;

  const handheld = async (req: FastifyRequest) => {
    // Every request, read or write, checks the session's row (one primary-key read), so a revoke made on another
    // node is honoured at once even when its announcement was lost (cluster; docs/cluster.md). One process: memory.
    const s = await sessions.require(bearerToken(req), { fresh: true });
    const d = deps.dispatch();
    const w = d?.workers.byId.get(s.workerId);
    const device = deps.registry.get(s.deviceId);
    // The binding is checked on every request: a worker moved to another handheld, or a
    // disabled device, ends the session's power at once.
    if (!w || w.removed || w.deviceId !== s.deviceId || !device || !device.enabled) {
      await sessions.revoke(s.id, 'system', 'worker or handheld changed');
      throw Errors.tokenInvalid('handheld session is no longer valid');
    }
    req.handheld = s;
  };
  const session = (req: FastifyRequest): HandheldSession => {
    if (!req.handheld) throw Errors.unauthorized();
    return req.handheld;
  };
  const casesOf = () => {
    const c = deps.cases();
    if (!c) throw Errors.unavailable('cases are not loaded');
    return c;
  };
  const workerOf = (s: HandheldSession) => {
    const w = deps.dispatch()?.workers.byId.get(s.workerId);
    if (!w) throw Errors.tokenInvalid('handheld session is no longer valid');
    return w;
  };
  const actorOf = (s: HandheldSession): Actor => ({ kind: 'worker', id: s.workerId, name: workerOf(s).name, deviceId: s.deviceId });

  function me(s: HandheldSession): Static<typeof MeSchema> {
    const d = deps.dispatch()!;
    const w = workerOf(s);
    const pub = d.workers.toPublic(w);
    const grids = deps.cases()?.grids;
    const own = new Set(w.gridIds);
    return {
      worker: {
        id: pub.id, name: pub.name, team: pub.team, teamName: pub.teamName, deviceId: pub.deviceId, gridIds: pub.gridIds, onDuty: pub.onDuty,
        status: pub.status, caseId: pub.caseId, online: pub.online, position: pub.position,
      },
      grids: grids ? grids.features((id) => own.has(id)).map((f) => ({ id: f.properties.id, name: f.properties.name, level: f.properties.level, geometry: f.geometry })) : [],
      settings: { positionIntervalS: cfg.positionIntervalS, minMoveM: cfg.minMoveM, minGapS: cfg.minGapS, staleAfterS: cfg.staleAfterS, maxPhotos: cfg.maxPhotos },
      session: s,
      serverTime: deps.now(),
    };
  }

  function toTask(c: CaseDetail, s: HandheldSession): Task {
    return {
      id: c.id, code: c.code, title: c.title, description: c.description ?? null, status: c.status, category: c.category, severity: c.severity,
      lat: c.lat, lon: c.lon, address: c.address ?? null, gridId: c.gridId, deadline: c.deadline, overdue: c.overdue, createdAt: c.createdAt, updatedAt: c.updatedAt,
      mine: c.workerId === s.workerId,
      history: c.history.map((h) => ({ ts: h.ts, action: h.action, from: h.from, to: h.to, by: actorName(h.actor), note: h.note })),
      photos: c.evidence.map((e) => ({ id: e.id, kind: e.kind, url: `/api/v1/m/evidence/${e.id}`, createdAt: e.createdAt })),
    };
  }

  /** Cases this worker has or had (every dispatch attempt) or reported from this handheld. */
  async function related(s: HandheldSession, caseId: string): Promise<boolean> {
    const rows = await db.query<{ ok: number }>(
      `select 1 as ok from cases where id = $1 and (worker_id = $2 or (device_id = $3 and source = 'worker'))
       union all select 1 from case_dispatches where case_id = $1 and worker_id = $2 limit 1`,
      [caseId, s.workerId, s.deviceId],
    );
    return rows.length > 0;
  }

  function toReport(c: CaseDetail): Static<typeof ReportSchema> {
    const create = c.history.find((h) => h.action === 'create');
    const last = [...c.history].reverse().find((h) => h.note && h.actor.kind === 'user');
    return {
      reportId: typeof create?.data?.reportId === 'string' ? create.data.reportId : null, caseId: c.id, code: c.code, status: c.status,
      category: { code: c.category.code, name: c.category.name }, createdAt: c.createdAt, updatedAt: c.updatedAt, lat: c.lat, lon: c.lon,
      description: c.description ?? null, outcome: last?.note ?? null,
    };
  }

  // ---- session ------------------------------------------------------------------------------

  app.post('/m/session', {
    schema: {
      tags: ['mobile'],
      security: [],
      summary: 'Worker app login: the worker\'s own user → a handheld session token bound to that worker\'s handheld (never the device secret)',
      body: MobileSignInBody,
      response: { 201: MobileSignedIn, ...errors(400, 401, 403, 503) },
    },
  }, async (req, reply) => {
    // Same throttling as the console login (per account and per address).
    const { user } = await deps.auth.login(req.body.username, req.body.password, req.ip);
    if (user.role !== 'worker') throw MobileErrors.notWorker();
    const d = deps.dispatch();
    if (!d) throw Errors.unavailable('dispatch is not loaded');
    const w = d.workers.byUserId.get(user.id);
    if (!w || w.removed) throw MobileErrors.notBound();
    const device = deps.registry.get(w.deviceId);
    if (!device || !device.enabled) throw Errors.deviceDisabled(`handheld ${w.deviceId} is disabled or missing`);
    const { token, session: s } = await sessions.create({ userId: user.id, workerId: w.id, deviceId: w.deviceId, userAgent: req.headers['user-agent'] ?? null, ttlS: cfg.sessionTtlS });
    return reply.status(201).send({ token, me: me(s) });
  });

  app.delete('/m/session', {
    preHandler: [handheld],
    schema: { tags: ['mobile'], security: HANDHELD, summary: 'Sign out: revokes this handheld session', response: { 204: Type.Null(), ...errors(401) } },
  }, async (req, reply) => {
    await sessions.revoke(session(req).id, 'worker', 'signed out');
    return reply.status(204).send(null);
  });

  app.get('/m/me', {
    preHandler: [handheld],
    schema: { tags: ['mobile'], security: HANDHELD, summary: 'The worker, their grids, live status and the app settings', response: { 200: MeSchema, ...errors(401) } },
  }, async (req) => me(session(req)));

  app.post('/m/duty', {
    preHandler: [handheld],
    schema: {
      tags: ['mobile'], security: HANDHELD, summary: '上班 / 下班 (a busy worker going off duty finishes the case first)',
      body: MobileDutyBody,
      response: { 200: MeSchema, ...errors(400, 401) },
    },
  }, async (req) => {
    const s = session(req);
    await deps.dispatch()!.workers.setDuty(workerOf(s), req.body.onDuty);
    return me(s);
  });

  app.post('/m/positions', {
    preHandler: [handheld],
    schema: {
      tags: ['mobile'], security: HANDHELD,
      summary: 'Fixes in time order (the contract `location` array): stored durably, idempotent by ts, replayed from the offline queue',
      body: MobilePositionsBody,
      response: { 202: Stored, ...errors(400, 401, 503) },
    },
  }, async (req, reply) => {
    const s = session(req);
    const outcome = await deps.ingest.handleAsync(s.deviceId, 'location', Buffer.from(JSON.stringify(req.body.items)));
    if (outcome.ok) return reply.status(202).send({ stored: outcome.stored });
    if (outcome.retryable) throw Errors.unavailable('positions not stored, retry later');
    throw Errors.payloadInvalid(outcome.detail, { reason: outcome.reason });
  });

  app.get('/m/categories', {
    preHandler: [handheld],
    schema: { tags: ['mobile'], security: HANDHELD, summary: 'The 部件/事件 catalogue for 巡查上报', response: { 200: Items(CategorySchema), ...errors(401) } },
  }, async () => ({
    items: (deps.cases()?.categories.list() ?? []).map((c) => ({ code: c.code, kind: c.kind, majorCode: c.majorCode, majorName: c.majorName, name: c.name, nameEn: c.nameEn })),
  }));

  // ---- tasks --------------------------------------------------------------------------------

  app.get('/m/tasks', {
    preHandler: [handheld],
    schema: {
      tags: ['mobile'], security: HANDHELD, summary: 'Current and recent tasks (every case dispatched to this worker, newest first), with history and photos',
      querystring: MobileListQuery,
      response: { 200: Items(TaskSchema), ...errors(401) },
    },
  }, async (req) => {
    const s = session(req);
    const store = casesOf().store;
    const ids = await db.query<{ case_id: string }>(
      `select case_id from (
         select id as case_id, updated_at as at from cases where worker_id = $1
         union all select case_id, coalesce(ended_at, dispatched_at) from case_dispatches where worker_id = $1
       ) t group by case_id order by max(at) desc limit $2`,
      [s.workerId, req.query.limit ?? 30],
    );
    const details = await Promise.all(ids.map((r) => store.detail(r.case_id)));
    return { items: details.filter((c): c is CaseDetail => c !== null).map((c) => toTask(c, s)) };
  });

  app.get('/m/tasks/:id', {
    preHandler: [handheld],
    schema: { tags: ['mobile'], security: HANDHELD, params: IdParams, response: { 200: TaskSchema, ...errors(401, 404) } },
  }, async (req) => {
    const s = session(req);
    const c = (await related(s, req.params.id)) ? await casesOf().store.detail(req.params.id) : null;
    if (!c) throw MobileErrors.taskNotFound();
    return toTask(c, s);
  });

  app.register(async (scope) => {
    await scope.register(multipart, {
      attachFieldsToBody: 'keyValues',
      limits: { fileSize: cfg.maxPhotoBytes, files: cfg.maxPhotos, fields: 12, fieldSize: 8192, parts: cfg.maxPhotos + 12 },
    });
    const api = scope as unknown as App;

    api.post('/m/tasks/:id/actions', {
      preHandler: [handheld],
      schema: {
        tags: ['mobile'], security: HANDHELD,
        summary: '接单 accept / 拒单 decline (note = reason) / 到达 arrive / 处置完成 resolve with photos; JSON or multipart/form-data (photos as file parts)',
        description: 'Idempotent by `opId`: a replay answers the case as it is now with `replayed: true`. 404 TASK_NOT_FOUND for a case never dispatched to this worker, 403 CASE_NOT_ASSIGNED when it is no longer theirs, 409 CASE_TRANSITION_INVALID from the wrong status, 413 for a photo over the size limit.',
        params: IdParams,
        body: ActionBody,
        response: { 200: MobileTaskActionResult, ...errors(400, 401, 403, 404, 409, 413) },
      },
    }, async (req) => {
      const s = session(req);
      const b = req.body;
      noNul(b.note, b.opId);
      const store = casesOf().store;
      if (!(await related(s, req.params.id))) throw MobileErrors.taskNotFound();
      const applied = async () => (await db.query<{ n: number }>("select count(*)::int as n from case_history where case_id = $1 and data->>'opId' = $2", [req.params.id, b.opId]))[0]!.n > 0;
      const answer = async (replayed: boolean) => ({ task: toTask((await store.detail(req.params.id))!, s), replayed });
      if (await applied()) return answer(true);
      if (b.action === 'decline' && !b.note?.trim()) throw MobileErrors.reasonRequired();
      const photos = photosOf(b.photos, cfg.maxPhotos);
      try {
        await store.act(req.params.id, b.action as CaseAction, actorOf(s), {
          ...(b.note ? { note: b.note } : {}), ...(b.ts !== undefined ? { ts: b.ts } : {}), ...(photos.length ? { photos } : {}),
          data: { opId: b.opId, via: 'app' },
        });
      } catch (err) {
        // A replay racing the original: the original won, so this one is the same operation.
        if (isGridError(err) && err.statusCode === 409 && (await applied())) return answer(true);
        throw err;
      }
      return answer(false);
    });

    api.post('/m/reports', {
      preHandler: [handheld],
      schema: {
        tags: ['mobile'], security: HANDHELD,
        summary: '巡查上报: a new case from patrol; JSON or multipart/form-data (photos as file parts). Idempotent by reportId (same key as the handheld `report` channel)',
        body: ReportBody,
        response: { 200: ReportSchema, 201: ReportSchema, ...errors(400, 401, 413) },
      },
    }, async (req, reply) => {
      const s = session(req);
      const b = req.body;
      const mod = casesOf();
      noNul(b.description, b.category, b.reportId);
      const cat = mod.categories.resolve(b.category);
      if (!cat) throw Errors.categoryUnknown(`unknown category ${b.category}`);
      const photos = photosOf(b.photos, cfg.maxPhotos);
      const r = await mod.store.create({
        category: cat.code, description: b.description, lat: b.lat, lon: b.lon, source: 'worker', actor: actorOf(s), deviceId: s.deviceId,
        reportKey: `${s.deviceId}:${b.reportId}`, photos, title: `${cat.name}（网格员上报）`,
        data: { reportId: b.reportId, via: 'app', ...(b.ts !== undefined ? { deviceTs: b.ts } : {}) },
      });
      const detail = (await mod.store.detail(r.case.id))!;
      return reply.status(r.created ? 201 : 200).send({ ...toReport(detail), created: r.created });
    });
  });

  app.get('/m/reports', {
    preHandler: [handheld],
    schema: {
      tags: ['mobile'], security: HANDHELD, summary: 'What became of this handheld\'s reports (立案, 派遣, 结案, 作废 with the reason)',
      querystring: MobileListQuery,
      response: { 200: Items(ReportSchema), ...errors(401) },
    },
  }, async (req) => {
    const s = session(req);
    const store = casesOf().store;
    const ids = await db.query<{ id: string }>("select id from cases where device_id = $1 and source = 'worker' order by created_at desc limit $2", [s.deviceId, req.query.limit ?? 30]);
    const details = await Promise.all(ids.map((r) => store.detail(r.id)));
    return { items: details.filter((c): c is CaseDetail => c !== null).map(toReport) };
  });

  app.get('/m/evidence/:id', {
    preHandler: [handheld],
    schema: { tags: ['mobile'], security: HANDHELD, summary: 'A photo or snapshot of one of this worker\'s tasks or reports', params: IdParams, response: { 401: Type.Ref('Error'), 404: Type.Ref('Error') } },
  }, async (req, reply) => {
    const s = session(req);
    const evidence = casesOf().evidence;
    const e = await evidence.get(req.params.id);
    if (!e || !e.caseId || !(await related(s, e.caseId))) throw Errors.evidenceNotFound('Evidence not found');
    const bytes = await evidence.read(e).catch(() => null);
    if (!bytes) throw Errors.evidenceNotFound('Evidence file is missing');
    return reply.type(e.mime).header('cache-control', 'private, max-age=86400').header('etag', `"${e.sha256}"`).send(bytes);
  });

  // ---- sessions, for officers and dispatchers ----------------------------------------------------

  const guard = authenticate(deps.auth);
  const visibleWorker = (req: FastifyRequest, workerId: string) => {
    const w = deps.dispatch()?.workers.byId.get(workerId);
    const p = principal(req);
    // Region-scoped users manage the workers of their region only (own grids or where they stand).
    if (!w || (p.regionId && !(w.gridIds.some((g) => deps.auth.canSee(p, g)) || (w.gridId && deps.auth.canSee(p, w.gridId))))) throw Errors.notFound('worker not found');
    return w;
  };

  app.get('/m/sessions', {
    preHandler: [guard, requireRole('officer', 'dispatcher')],
    schema: {
      tags: ['mobile'], summary: 'Handheld sessions of a worker, newest first',
      querystring: HandheldSessionsQuery,
      response: { 200: Items(SessionSchema), ...errors(401, 403, 404) },
    },
  }, async (req) => {
    visibleWorker(req, req.query.workerId);
    return { items: await sessions.list({ workerId: req.query.workerId, activeOnly: req.query.active, limit: 50 }) };
  });

  app.post('/m/sessions/:id/revoke', {
    preHandler: [guard, requireRole('officer', 'dispatcher')],
    schema: {
      tags: ['mobile'], summary: 'Revoke a handheld session (lost phone): REST answers 401 and the socket is closed at once',
      params: IdParams,
      body: Type.Optional(RevokeSessionBody),
      response: { 200: SessionSchema, ...errors(401, 403, 404) },
    },
  }, async (req) => {
    const existing = await sessions.get(req.params.id);
    if (!existing) throw MobileErrors.sessionNotFound();
    try {
      visibleWorker(req, existing.workerId);
    } catch {
      throw MobileErrors.sessionNotFound();
    }
    const p = principal(req);
    return (await sessions.revoke(existing.id, p.username, req.body?.reason ?? 'revoked')) ?? existing;
  });
}
