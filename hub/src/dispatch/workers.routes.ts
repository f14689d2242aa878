/**
 * REST for workers (CONTRACT 5) plus dispatch's case routes: candidates and
 * the per-case dispatch history. Every route carries a TypeBox schema.
 */
import { Type } from '@sinclair/typebox';
import type { Auth, Principal } from '../auth/index.js';
import { Errors } from '../core/errors.js';
import type { CaseService } from '../core/services.js';
// Workers, candidates and track points as REST returns them are the contract's (CONTRACT 5 `/workers`).
import {
  Candidate as CandidateSchema, CandidatesQuery, CreateWorkerBody, DispatchesQuery, DispatchRecord as DispatchRecordSchema, DutyBody, IdParams as CaseParams, TrackQuery, UpdateWorkerBody,
  Worker as WorkerSchema, WorkerIdParams as IdParams, WorkersQuery, WorkerTrack,
} from '@gridlink/devices/contract';
import { authenticate, parseTime, principal, requireRole } from '../http/guards.js';
import type { App } from '../http/app.js';
import { errors, Items } from '../http/schemas.js';
import type { Db } from '../store/index.js';
import type { DispatchConfig } from './dispatch.config.js';
import type { DispatchEngine } from './dispatch.engine.js';
import { DispatchErrors } from './errors.js';
import { caseDispatches, loadTrack } from './track.js';
import { statusOf, type WorkerState } from './worker.model.js';
import type { GridCheck, PublicWorker, Workers } from './workers.service.js';

export function workerRoutes(app: App, deps: { auth: Auth; db: Db; workers: Workers; engine: DispatchEngine; cfg: DispatchConfig; cases: () => CaseService | undefined; now: () => number }): void {
  const { auth, db, workers, engine, cfg } = deps;
  const guard = authenticate(auth);
  const manage = requireRole('officer', 'dispatcher');
  const canSeeWorker = (p: Principal, w: WorkerState): boolean =>
    !p.regionId || w.gridIds.some((g) => auth.canSee(p, g)) || auth.canSee(p, w.gridId);
  const visible = (req: Parameters<typeof principal>[0], id: string): WorkerState => {
    const w = workers.byId.get(id);
    if (!w || !canSeeWorker(principal(req), w)) throw DispatchErrors.workerNotFound(`worker ${id} not found`);
    return w;
  };
  /**
   * A worker belongs to the grids of its beat: a scoped user may change it (or
   * read its history) only when the region holds every one of them; outside,
   * it does not exist.
   */
  const own = (req: Parameters<typeof principal>[0], id: string, after?: { gridIds: string[] }): WorkerState => {
    const w = workers.byId.get(id);
    const notFound = () => DispatchErrors.workerNotFound(`worker ${id} not found`);
    if (!w) throw notFound();
    auth.assertCanWrite(principal(req), { gridIds: w.gridIds }, after ?? { gridIds: w.gridIds }, notFound, 'a grid of the worker');
    return w;
  };
  /**
   * The same judgement on the worker's grids as stored, for the write itself
   * (Workers `checkedWrite`): in a cluster this node's view of the grids can
   * be a moment behind another node's edit. None for an unscoped caller.
   */
  const onRow = (req: Parameters<typeof principal>[0], id: string, after?: { gridIds: string[] }): GridCheck | undefined => {
    const p = principal(req);
    if (!p.regionId) return undefined;
    const notFound = () => DispatchErrors.workerNotFound(`worker ${id} not found`);
    return (gridIds) => auth.assertCanWrite(p, { gridIds }, after ?? { gridIds }, notFound, 'a grid of the worker');
  };
  const out = (w: WorkerState): PublicWorker => workers.toPublic(w);
  const visibleCase = async (req: Parameters<typeof principal>[0], id: string) => {
    const cases = deps.cases();
    if (!cases) throw DispatchErrors.casesUnavailable();
    const c = await cases.get(id);
    if (!c || !auth.canSee(principal(req), c.gridId)) throw DispatchErrors.caseNotFound(`case ${id} not found`);
    return c;
  };

  app.post('/workers', {
    onRequest: [guard, manage],
    schema: {
      tags: ['workers'],
      summary: 'Create a grid worker bound to one handheld device (starts off duty)',
      body: CreateWorkerBody,
      response: { 201: WorkerSchema, ...errors(400, 401, 403, 404, 409) },
    },
  }, async (req, reply) => {
    const p = principal(req);
    const b = req.body;
    const gridIds = b.gridIds ?? [];
    auth.assertCanWrite(p, null, { gridIds }, undefined, 'a grid of the worker');
    // A handheld of another region answers exactly like one that does not exist.
    const device = workers.device(b.deviceId);
    if (!device || !auth.canSee(p, device.gridId)) throw DispatchErrors.deviceNotFound(`device ${b.deviceId} not found`);
    // An existing user must be a worker of the caller's region (a user outside it does not exist for the caller).
    const user = b.userId === undefined ? undefined : await auth.getUser(b.userId);
    if (user) {
      if (p.regionId && !(user.regionId && auth.contains(p, { gridId: user.regionId }))) throw Errors.userNotFound('User not found');
      if (user.role !== 'worker') throw Errors.validation('userId must name a user with role worker', { reason: 'USER_NOT_WORKER' });
    }
    const w = await workers.create({ id: b.id, name: b.name, deviceId: b.deviceId, team: b.team, phone: b.phone, gridIds, userId: b.userId });
    if (req.body.onDuty) await workers.setDuty(w, true);
    return reply.status(201).send(out(w));
  });

  app.get('/workers', {
    onRequest: [guard],
    schema: {
      tags: ['workers'],
      querystring: WorkersQuery,
      response: { 200: Items(WorkerSchema), ...errors(401) },
    },
  }, async (req) => {
    const p = principal(req);
    const q = req.query;
    const items: PublicWorker[] = [];
    for (const w of workers.all()) {
      if (!canSeeWorker(p, w)) continue;
      if (q.status && statusOf(w) !== q.status) continue;
      if (q.team && w.team !== q.team) continue;
      if (q.onDuty !== undefined && w.onDuty !== q.onDuty) continue;
      if (q.gridId && !w.gridIds.includes(q.gridId) && w.gridId !== q.gridId) continue;
      items.push(out(w));
    }
    return { items };
  });

  app.get('/workers/:id', {
    onRequest: [guard],
    schema: { tags: ['workers'], params: IdParams, response: { 200: WorkerSchema, ...errors(401, 404) } },
  }, async (req) => out(visible(req, req.params.id)));

  app.patch('/workers/:id', {
    onRequest: [guard, manage],
    schema: {
      tags: ['workers'],
      params: IdParams,
      body: UpdateWorkerBody,
      response: { 200: WorkerSchema, ...errors(400, 401, 403, 404) },
    },
  }, async (req) => {
    const b = req.body;
    const after = b.gridIds ? { gridIds: b.gridIds } : undefined;
    const w = own(req, req.params.id, after);
    return out(await workers.update(w.id, { name: b.name, gridIds: b.gridIds, team: b.team, phone: b.phone }, onRow(req, w.id, after)));
  });

  app.delete('/workers/:id', {
    onRequest: [guard, manage],
    schema: { tags: ['workers'], summary: 'Remove a worker (not while busy with a case); the handheld stays registered', params: IdParams, response: { 204: Type.Null(), ...errors(401, 403, 404, 409) } },
  }, async (req, reply) => {
    await workers.remove(own(req, req.params.id).id, onRow(req, req.params.id));
    return reply.status(204).send(null);
  });

  app.post('/workers/:id/duty', {
    onRequest: [guard, manage],
    schema: {
      tags: ['workers'],
      summary: 'On / off duty. On duty means available unless busy with a case; a busy worker going off duty finishes the case first',
      params: IdParams,
      body: DutyBody,
      response: { 200: WorkerSchema, ...errors(400, 401, 403, 404) },
    },
  }, async (req) => {
    const w = own(req, req.params.id);
    await workers.setDuty(w, req.body.onDuty, onRow(req, w.id));
    return out(w);
  });

  app.get('/workers/:id/track', {
    onRequest: [guard],
    schema: {
      tags: ['workers'],
      summary: 'Positions over time (downsampled into buckets past maxPoints), distance travelled and stops',
      params: IdParams,
      querystring: TrackQuery,
      response: {
        200: WorkerTrack,
        ...errors(400, 401, 404),
      },
    },
  }, async (req) => {
    // A track is history: only a region holding the worker's whole beat may read it.
    const w = own(req, req.params.id);
    const to = parseTime(req.query.to, deps.now());
    const from = parseTime(req.query.from, to - 24 * 3600_000);
    if (from >= to) throw Errors.validation('from must be before to');
    const t = await loadTrack(db, w.deviceId, from, to, req.query.maxPoints ?? cfg.trackMaxPoints);
    return { workerId: w.id, deviceId: w.deviceId, from, to, ...t };
  });

  app.get('/cases/:id/candidates', {
    onRequest: [guard, requireRole('officer', 'dispatcher')],
    schema: {
      tags: ['dispatch'],
      summary: 'Nearest available workers for a case, nearest first (own-grid workers first within the configured extra distance)',
      params: CaseParams,
      querystring: CandidatesQuery,
      response: { 200: Items(CandidateSchema), ...errors(401, 403, 404, 503) },
    },
  }, async (req) => {
    const c = await visibleCase(req, req.params.id);
    return { items: await engine.candidatesWithEta(c, req.query.limit ?? 10) };
  });

  app.get('/cases/:id/dispatches', {
    onRequest: [guard],
    schema: {
      tags: ['dispatch'],
      summary: 'Dispatch attempts of a case with dispatched / accepted / arrived / resolved times and the path travelled to the scene',
      params: CaseParams,
      querystring: DispatchesQuery,
      response: { 200: Items(DispatchRecordSchema), ...errors(401, 404, 503) },
    },
  }, async (req) => {
    const c = await visibleCase(req, req.params.id);
    return { items: await caseDispatches(db, c.id, { withPath: req.query.path ?? true, now: deps.now(), maxPoints: cfg.trackMaxPoints }) };
  });
}
