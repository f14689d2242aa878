/**
 * Citizen intake: Open311 GeoReport v2 (services, POST a request with a
 * photo, GET its status with the request's token, and a rating extension)
 * and the 12345 hotline's work orders (idempotent by order number). Both
 * create cases with `source: citizen` and a citizen reporter, who alone may
 * rate the result (评价) with the token they were given.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import {
  HotlineOrderBody, HotlineOrderResult, Open311Created, Open311RatingBody, Open311Request, Open311RequestBody, Open311RequestParams, Open311Requests, Open311Services,
  Open311TokenQuery,
} from '@gridlink/devices/contract';
import type { Auth } from '../auth/index.js';
import type { Actor } from '../core/services.js';
import { Errors } from '../core/errors.js';
import type { App } from '../http/app.js';
import { authenticate, principal, requireRole } from '../http/guards.js';
import { errors } from '../http/schemas.js';
import type { Queryable } from '../store/index.js';
import { decodePhoto } from './evidence.js';
import type { GridIndex } from './grids.js';
import { CaseErrors, type CaseStore } from './service.js';

const hash = (token: string) => createHash('sha256').update(token).digest('hex');
const newToken = () => randomBytes(24).toString('base64url');
const PUBLIC = [{}];
const notFound = () => Errors.requestNotFound('service request not found');

export interface IntakeRouteDeps {
  auth: Auth;
  db: Queryable;
  cases: CaseStore;
  grids: GridIndex;
}

export function intakeRoutes(app: App, d: IntakeRouteDeps): void {
  const { cases, db } = d;
  const guard = authenticate(d.auth);

  async function issueToken(caseId: string): Promise<string> {
    const token = newToken();
    await db.query('update cases set citizen_token_hash = $2 where id = $1', [caseId, hash(token)]);
    return token;
  }

  /** The case a request id (case code) and token name; 404 for a wrong token, as for a wrong id. */
  async function byToken(id: string, token: string) {
    const rows = await db.query<{ id: string; citizen_token_hash: string | null }>('select id, citizen_token_hash from cases where code = $1', [id]);
    const r = rows[0];
    const want = r?.citizen_token_hash ? Buffer.from(r.citizen_token_hash, 'hex') : null;
    const got = Buffer.from(hash(token), 'hex');
    if (!r || !want || want.length !== got.length || !timingSafeEqual(want, got)) throw notFound();
    return (await cases.detail(r.id))!;
  }

  function georeport(c: NonNullable<Awaited<ReturnType<CaseStore['detail']>>>): Open311Request {
    const closed = c.status === 'closed' || c.status === 'rejected';
    const last = [...c.history].reverse().find((h) => h.note && h.action !== 'create');
    const cat = cases.categories.get(c.category.code);
    return {
      service_request_id: c.code,
      status: closed ? 'closed' : 'open',
      status_notes: c.status === 'rejected' ? '不予受理' : last?.note ?? null,
      service_name: c.category.name,
      service_code: c.category.code,
      description: c.description,
      agency_responsible: c.departmentId ?? null,
      service_notice: null,
      requested_datetime: new Date(c.createdAt).toISOString(),
      updated_datetime: new Date(c.updatedAt).toISOString(),
      expected_datetime: closed ? null : new Date(c.deadline).toISOString(),
      address: c.address ?? null,
      lat: c.lat,
      long: c.lon,
      media_url: null,
      // Extensions: the workflow status and the rating the citizen may give once closed.
      gridlink_status: c.status,
      gridlink_rating: c.evaluation?.rating ?? null,
      gridlink_can_rate: c.status === 'closed' && !c.evaluation && !!cat,
    };
  }

  // ---- Open311 GeoReport v2 ----------------------------------------------------------------------

  app.get('/open311/v2/services.json', {
    schema: {
      tags: ['open311'], summary: 'GeoReport v2 service list: one service per case category', security: PUBLIC,
      response: { 200: Open311Services },
    },
  }, async () => cases.categories.list().map((c) => ({
    service_code: c.code, service_name: c.name, description: `${c.nameEn}（${c.kind === 'event' ? '事件' : '部件'} · ${c.majorName}）`,
    metadata: false, type: 'realtime', keywords: [c.key, c.nameEn].filter(Boolean).join(','), group: c.majorName,
  })));

  app.post('/open311/v2/requests.json', {
    preHandler: [guard, requireRole('integrator')],
    bodyLimit: 4 * 1024 * 1024,
    schema: {
      tags: ['open311'],
      summary: 'GeoReport v2: create a service request (a citizen case); answers the request id and the token that reads its status and rates it',
      body: Open311RequestBody,
      response: { 201: Open311Created, ...errors(400, 401, 403) },
    },
  }, async (req, reply) => {
    const b = req.body;
    const p = principal(req);
    // The write rule: a scoped integrator reports only inside its region.
    if (p.regionId && !d.auth.canSee(p, d.grids.locate(b.lat, b.long))) throw Errors.outsideRegion('the location is outside your region');
    const cat = cases.categories.get(b.service_code);
    if (!cat) throw CaseErrors.category(b.service_code);
    const name = [b.last_name, b.first_name].filter(Boolean).join('') || '市民';
    const ref = `open311:${newToken().slice(0, 16)}`;
    const actor: Actor = { kind: 'citizen', id: ref, name };
    const { case: c } = await cases.create({
      category: cat.code, description: b.description, lat: b.lat, lon: b.long, address: b.address_string, source: 'citizen', actor,
      photos: b.media ? [decodePhoto(b.media)] : undefined, title: `${cat.name}（市民上报）`,
      data: { channel: 'open311', ...(b.phone ? { phone: b.phone } : {}), ...(b.email ? { email: b.email } : {}), ...(b.account_id ? { accountId: b.account_id } : {}) },
    });
    const token = await issueToken(c.id);
    return reply.status(201).send([{ service_request_id: c.code, token, service_notice: null, account_id: b.account_id ?? null }]);
  });

  app.get('/open311/v2/requests/:id.json', {
    schema: {
      tags: ['open311'], summary: 'GeoReport v2: one service request, for the holder of its token', security: PUBLIC,
      params: Open311RequestParams,
      querystring: Open311TokenQuery,
      response: { 200: Open311Requests, ...errors(400, 404) },
    },
  }, async (req) => [georeport(await byToken(req.params.id, req.query.token))]);

  app.post('/open311/v2/requests/:id/rating.json', {
    schema: {
      tags: ['open311'], summary: 'Extension: the citizen rates a closed request (评价) with its token', security: PUBLIC,
      params: Open311RequestParams,
      body: Open311RatingBody,
      response: { 200: Open311Requests, ...errors(400, 403, 404, 409) },
    },
  }, async (req) => {
    const c = await byToken(req.params.id, req.body.token);
    await cases.act(c.id, 'rate', c.reporter!, { rating: req.body.rating, ...(req.body.comment ? { note: req.body.comment } : {}) });
    return [georeport((await cases.detail(c.id))!)];
  });

  // ---- 12345 hotline work orders ---------------------------------------------------------------

  app.post('/intake/12345', {
    preHandler: [guard, requireRole('integrator')],
    bodyLimit: 16 * 1024 * 1024,
    schema: {
      tags: ['open311'],
      summary: '12345 hotline work order → citizen case, idempotent by orderNo (a resent order answers the same case, created: false, no new token)',
      body: HotlineOrderBody,
      response: { 200: HotlineOrderResult, ...errors(400, 401, 403) },
    },
  }, async (req) => {
    const b = req.body;
    const p = principal(req);
    const gridId = d.grids.locate(b.lat, b.lon);
    if (p.regionId && !d.auth.canSee(p, gridId)) throw Errors.outsideRegion('the location is outside your region');
    const actor: Actor = { kind: 'citizen', id: `12345:${b.orderNo}`, name: b.caller?.name || '12345 来电市民' };
    const { case: c, created } = await cases.create({
      category: b.category, title: b.title ?? undefined, description: b.content, lat: b.lat, lon: b.lon, address: b.address, gridId, source: 'citizen', actor,
      reportKey: `12345:${b.orderNo}`, photos: b.photos?.map(decodePhoto),
      data: { channel: '12345', orderNo: b.orderNo, ...(b.caller?.phone ? { phone: b.caller.phone } : {}), ...(b.receivedAt ? { receivedAt: b.receivedAt } : {}) },
    });
    return { caseId: c.id, code: c.code, created, token: created ? await issueToken(c.id) : null };
  });
}
