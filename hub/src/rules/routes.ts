/**
 * REST for rules (the rule set is data) and alarms. Rule writes take effect
 * at once: the evaluator is updated in the same request.
 */
import { Type } from '@sinclair/typebox';
// Rules and alarms as REST takes and returns them are the contract's (CONTRACT 5 `/rules`, `/alarms`).
import {
  Alarm as AlarmSchema, AlarmAckBody, AlarmComment as CommentSchema, AlarmCommentBody, AlarmDetail, AlarmsQuery, BacktestWindow, IdParams, RuleBacktest as BacktestSchema, RuleBacktestBody,
  RuleRecord as RuleRecordSchema,
} from '@gridlink/devices/contract';
import { SEVERITIES, type Severity } from '@gridlink/devices';
import { GLOBAL, regionScope, type Auth, type Principal, type Target } from '../auth/index.js';
import { Errors } from '../core/errors.js';
import type { GridService } from '../core/services.js';
import type { App } from '../http/app.js';
import { authenticate, parseTime, principal, requireRole } from '../http/guards.js';
import { errors, Items } from '../http/schemas.js';
import type { AlarmService } from './alarms.js';
import { MAX_WINDOW_MS, type BacktestResult } from './backtest.js';
import { RuleT, type Rule } from './rule.schema.js';
import type { RuleRecord, RuleRepo } from './rules.repo.js';

export interface RuleRouteDeps {
  auth: Auth;
  repo: RuleRepo;
  alarms: AlarmService;
  grids: () => GridService | undefined;
  backtest(rule: Rule, from: number, to: number, regionId?: string | null): Promise<BacktestResult>;
  now: () => number;
}

export function ruleRoutes(app: App, d: RuleRouteDeps): void {
  const { auth, repo, alarms } = d;
  const guard = authenticate(auth);
  const writer = requireRole('officer', 'integrator');
  const record = (r: RuleRecord) => ({ ...r.rule, version: r.version, createdAt: r.createdAt, updatedAt: r.updatedAt });
  /** A rule lives where its scope's grids are; without grids it is city-wide. */
  const place = (r: Rule): Target => (r.scope?.gridIds?.length ? { gridIds: r.scope.gridIds } : GLOBAL);
  const notFound = () => Errors.ruleNotFound('Rule not found');
  /** City-wide rules and rules of grids that overlap the caller's region are visible; others do not exist. */
  const ruleVisible = (p: Principal, r: Rule): boolean => {
    const region = p.regionId;
    const grids = r.scope?.gridIds ?? [];
    return !region || grids.length === 0 || grids.some((g) => auth.regions.contains(region, g) || auth.regions.contains(g, region));
  };
  const visibleRule = (p: Principal, id: string): RuleRecord => {
    const r = repo.require(id);
    if (!ruleVisible(p, r.rule)) throw notFound();
    return r;
  };
  /** A bounded window: at most MAX_WINDOW_MS, from before to. */
  const window = (fromQ: unknown, toQ: unknown) => {
    const to = parseTime(toQ, d.now());
    const from = parseTime(fromQ, 0);
    if (from >= to) throw Errors.validation('from must be before to', { reason: 'WINDOW_INVALID' });
    if (to - from > MAX_WINDOW_MS) throw Errors.windowTooLarge(`a backtest replays at most ${MAX_WINDOW_MS / 86_400_000} days`);
    return { from, to };
  };

  app.get('/rules', {
    onRequest: [guard],
    schema: { tags: ['rules'], summary: 'The rule set', response: { 200: Items(RuleRecordSchema), ...errors(401) } },
  }, async (req) => {
    const p = principal(req);
    return { items: repo.list().filter((r) => ruleVisible(p, r.rule)).map(record) };
  });

  app.get('/rules/:id', {
    onRequest: [guard],
    schema: { tags: ['rules'], params: IdParams, response: { 200: RuleRecordSchema, ...errors(401, 404) } },
  }, async (req) => record(visibleRule(principal(req), req.params.id)));

  app.post('/rules', {
    onRequest: [guard, writer],
    schema: {
      tags: ['rules'],
      summary: 'Add a rule (threshold, match, absence, correlation); it is live at once',
      body: RuleT,
      response: { 201: RuleRecordSchema, ...errors(400, 401, 403, 409) },
    },
  }, async (req, reply) => {
    auth.assertCanWrite(principal(req), null, place(req.body as Rule), notFound, 'the rule\'s scope');
    return reply.status(201).send(record(await repo.create(req.body as Rule)));
  });

  app.put('/rules/:id', {
    onRequest: [guard, writer],
    schema: { tags: ['rules'], summary: 'Replace a rule; pending durations and counts start over, active alarms stay', params: IdParams, body: RuleT, response: { 200: RuleRecordSchema, ...errors(400, 401, 403, 404) } },
  }, async (req) => {
    const body = req.body as Rule;
    if (body.id !== req.params.id) throw Errors.validation('body id must match the path');
    auth.assertCanWrite(principal(req), place(repo.require(req.params.id).rule), place(body), notFound, 'the rule\'s scope');
    return record(await repo.update(body));
  });

  for (const [verb, enabled] of [['enable', true], ['disable', false]] as const) {
    app.post(`/rules/:id/${verb}`, {
      onRequest: [guard, writer],
      schema: { tags: ['rules'], params: IdParams, response: { 200: RuleRecordSchema, ...errors(401, 403, 404) } },
    }, async (req) => {
      const cur = repo.require((req.params as { id: string }).id);
      auth.assertCanWrite(principal(req), place(cur.rule), place(cur.rule), notFound);
      return record(await repo.update({ ...cur.rule, enabled } as Rule));
    });
  }

  app.delete('/rules/:id', {
    onRequest: [guard, writer],
    schema: { tags: ['rules'], params: IdParams, response: { 204: Type.Null(), ...errors(401, 403, 404) } },
  }, async (req, reply) => {
    auth.assertCanWrite(principal(req), place(repo.require(req.params.id).rule), null, notFound);
    await repo.remove(req.params.id);
    return reply.status(204).send(null);
  });

  app.post('/rules/:id/backtest', {
    onRequest: [guard, requireRole('officer', 'dispatcher', 'integrator')],
    schema: {
      tags: ['rules'],
      summary: 'Replay stored history through the rule: the alarms and cases it would have raised, and when',
      description: 'Same evaluator as live. Messages in arrival order; absence and auto-clear on the arrival clock; nobody closes a case during the window.',
      params: IdParams,
      body: BacktestWindow,
      response: { 200: BacktestSchema, ...errors(400, 401, 403, 404) },
    },
  }, async (req) => {
    const p = principal(req);
    const r = visibleRule(p, req.params.id);
    const { from, to } = window(req.body.from, req.body.to);
    // A scoped caller replays only its region's devices, whatever the rule's scope.
    return d.backtest(r.rule, from, to, p.regionId);
  });

  app.post('/rules/backtest', {
    onRequest: [guard, requireRole('officer', 'dispatcher', 'integrator')],
    schema: { tags: ['rules'], summary: 'Backtest a rule definition that is not saved (tuning)', body: RuleBacktestBody, response: { 200: BacktestSchema, ...errors(400, 401, 403) } },
  }, async (req) => {
    const { from, to } = window(req.body.from, req.body.to);
    return d.backtest(req.body.rule as Rule, from, to, principal(req).regionId);
  });

  // ---- alarms ---------------------------------------------------------------------------------

  const scope = (p: Principal, gridId?: string): string[] | null => regionScope(auth, p, gridId, d.grids());

  app.get('/alarms', {
    onRequest: [guard],
    schema: {
      tags: ['alarms'],
      summary: 'Alarms visible to the caller, newest first',
      querystring: AlarmsQuery,
      response: { 200: Items(AlarmSchema), ...errors(400, 401, 404) },
    },
  }, async (req) => {
    const q = req.query;
    const severity = q.severity?.split(',').map((s) => s.trim()).filter(Boolean);
    for (const s of severity ?? []) if (!(SEVERITIES as readonly string[]).includes(s)) throw Errors.validation(`unknown severity ${s}`);
    const items = await alarms.list({
      status: q.status, severity: severity as Severity[] | undefined, gridIds: scope(principal(req), q.gridId), rule: q.rule, deviceId: q.deviceId,
      acknowledged: q.acknowledged, limit: q.limit ?? 500,
    });
    return { items };
  });

  app.get('/alarms/:id', {
    onRequest: [guard],
    schema: { tags: ['alarms'], params: IdParams, response: { 200: AlarmDetail, ...errors(401, 404) } },
  }, async (req) => {
    const a = await alarms.visible(req.params.id, principal(req));
    return { ...a, comments: await alarms.comments(a.id) };
  });

  app.post('/alarms/:id/ack', {
    onRequest: [guard, requireRole('officer', 'dispatcher')],
    schema: { tags: ['alarms'], summary: 'Acknowledge (who and when are recorded); stops escalation', params: IdParams, body: AlarmAckBody, response: { 200: AlarmSchema, ...errors(401, 403, 404) } },
  }, async (req) => {
    return alarms.ack(req.params.id, principal(req), req.body?.comment);
  });

  app.post('/alarms/:id/clear', {
    onRequest: [guard, requireRole('officer', 'dispatcher')],
    schema: { tags: ['alarms'], summary: 'Clear an active alarm by hand', params: IdParams, response: { 200: AlarmSchema, ...errors(401, 403, 404, 409) } },
  }, async (req) => {
    return alarms.clear(req.params.id, principal(req));
  });

  app.post('/alarms/:id/comments', {
    onRequest: [guard, requireRole('officer', 'dispatcher')],
    schema: { tags: ['alarms'], params: IdParams, body: AlarmCommentBody, response: { 201: Items(CommentSchema), ...errors(400, 401, 403, 404) } },
  }, async (req, reply) => {
    return reply.status(201).send({ items: await alarms.comment(req.params.id, principal(req), req.body.text) });
  });
}
