import { Type } from '@sinclair/typebox';
import { catalogue, DEVICE_TYPES, type DeviceType } from '@gridlink/devices';
// A device as REST returns it is the contract's (CONTRACT 5 `/devices`).
import {
  Device as DeviceSchema, DeviceIdParams as IdParams, DeviceSecret, DevicesQuery, OsmandToken, RegisterDeviceBody, RegisteredDevice, Telemetry, TelemetryQuery, UpdateDeviceBody,
} from '@gridlink/devices/contract';
import type { Auth } from '../../auth/index.js';
import { Errors } from '../../core/errors.js';
import type { Ingest } from '../../ingest/index.js';
import { publicDevice, type Device, type DeviceRegistry } from '../../registry/index.js';
import type { Db } from '../../store/db.js';
import type { App } from '../app.js';
import { authenticate, parseTime, principal, requireRole } from '../guards.js';
import { errors, Items } from '../schemas.js';

const BUCKETS: Record<string, number> = { '10s': 10, '30s': 30, '1m': 60, '5m': 300, '15m': 900, '30m': 1800, '1h': 3600, '6h': 21600, '1d': 86400 };

function bucketSeconds(b: string): number {
  const s = BUCKETS[b] ?? (/^\d+$/.test(b) ? Number(b) : NaN);
  if (!Number.isFinite(s) || s < 1) throw Errors.validation(`bucket must be one of ${Object.keys(BUCKETS).join(', ')} or seconds`);
  return s;
}

export function deviceRoutes(app: App, deps: { auth: Auth; registry: DeviceRegistry; ingest: Ingest; db: Db }): void {
  const { auth, registry, ingest, db } = deps;
  const guard = authenticate(auth);
  const visible = (req: Parameters<typeof principal>[0], d: Device | undefined): Device => {
    if (!d || !auth.canSee(principal(req), d.gridId)) throw Errors.deviceNotFound();
    return d;
  };
  /** The write rule for a device as it is (404 when outside the region) and as it will be. */
  const writable = (req: Parameters<typeof principal>[0], id: string, after?: { gridId: string | null }): Device => {
    const d = registry.get(id);
    if (!d) throw Errors.deviceNotFound();
    auth.assertCanWrite(principal(req), { gridId: d.gridId }, after ?? { gridId: d.gridId }, () => Errors.deviceNotFound(), 'the device\'s grid');
    return d;
  };

  app.get('/device-types', { onRequest: [guard], schema: { tags: ['devices'], summary: 'The device type catalogue (metrics, units, ranges, channels)' } }, async () => ({
    items: DEVICE_TYPES.map((t) => catalogue[t]),
  }));

  app.post('/devices', {
    onRequest: [guard, requireRole('integrator')],
    schema: {
      tags: ['devices'],
      summary: 'Register a device; the secret is returned once and only its hash is stored',
      body: RegisterDeviceBody,
      response: { 201: RegisteredDevice, ...errors(400, 401, 403, 409) },
    },
  }, async (req, reply) => {
    auth.assertCanWrite(principal(req), null, { gridId: req.body.gridId ?? null }, undefined, 'the device\'s grid');
    const { device, secret } = await registry.register(req.body);
    return reply.status(201).send({ ...device, secret });
  });

  app.get('/devices', {
    onRequest: [guard],
    schema: { tags: ['devices'], querystring: DevicesQuery, response: { 200: Items(DeviceSchema), ...errors(401) } },
  }, async (req) => {
    const p = principal(req);
    let items = registry.list(req.query.type ? { type: req.query.type } : {}).filter((d) => auth.canSee(p, d.gridId));
    if (req.query.online !== undefined) items = items.filter((d) => d.online === req.query.online);
    return { items };
  });

  app.get('/devices/:id', {
    onRequest: [guard],
    schema: { tags: ['devices'], params: IdParams, response: { 200: DeviceSchema, ...errors(401, 404) } },
  }, async (req) => ({ ...publicDevice(visible(req, registry.get(req.params.id))), rejected: ingest.rejectedFor(req.params.id) }));

  app.patch('/devices/:id', {
    onRequest: [guard, requireRole('integrator')],
    schema: {
      tags: ['devices'],
      params: IdParams,
      body: UpdateDeviceBody,
      response: { 200: DeviceSchema, ...errors(400, 401, 403, 404) },
    },
  }, async (req) => {
    const before = writable(req, req.params.id, req.body.gridId !== undefined ? { gridId: req.body.gridId } : undefined);
    const { enabled, name, lat, lon, gridId, meta } = req.body;
    let d = await registry.update(before.id, { name, lat, lon, gridId, meta });
    if (enabled !== undefined && enabled !== d.enabled) d = await registry.setEnabled(req.params.id, enabled);
    return d;
  });

  app.post('/devices/:id/disable', {
    onRequest: [guard, requireRole('integrator')],
    schema: { tags: ['devices'], summary: 'Disable a device; it is disconnected at once', params: IdParams, response: { 200: DeviceSchema, ...errors(401, 403, 404) } },
  }, async (req) => {
    writable(req, req.params.id);
    return registry.setEnabled(req.params.id, false);
  });

  app.post('/devices/:id/enable', {
    onRequest: [guard, requireRole('integrator')],
    schema: { tags: ['devices'], params: IdParams, response: { 200: DeviceSchema, ...errors(401, 403, 404) } },
  }, async (req) => {
    writable(req, req.params.id);
    return registry.setEnabled(req.params.id, true);
  });

  app.post('/devices/:id/rotate-secret', {
    onRequest: [guard, requireRole('integrator')],
    schema: { tags: ['devices'], summary: 'Issue a new secret (returned once); the device is disconnected', params: IdParams, response: { 200: DeviceSecret, ...errors(401, 403, 404) } },
  }, async (req) => {
    writable(req, req.params.id);
    return { id: req.params.id, secret: await registry.rotateSecret(req.params.id) };
  });

  app.post('/devices/:id/osmand-token', {
    onRequest: [guard, requireRole('integrator')],
    schema: {
      tags: ['devices'],
      summary: 'The OsmAnd token of a handheld: Traccar Client\'s device identifier (`/osmand?id=<token>`); it uploads positions only and dies with a secret rotation',
      params: IdParams,
      response: { 200: OsmandToken, ...errors(400, 401, 403, 404) },
    },
  }, async (req) => {
    const d = writable(req, req.params.id);
    if (d.type !== 'handheld') throw Errors.validation('only handhelds upload OsmAnd positions', { reason: 'NOT_HANDHELD' });
    const token = registry.osmandToken(d.id);
    return { id: d.id, token, url: `/osmand?id=${encodeURIComponent(token)}` };
  });

  app.delete('/devices/:id', {
    onRequest: [guard, requireRole('integrator')],
    schema: { tags: ['devices'], summary: 'Delete a device; it is disconnected at once (its history stays)', params: IdParams, response: { 204: Type.Null(), ...errors(401, 403, 404) } },
  }, async (req, reply) => {
    writable(req, req.params.id);
    await registry.remove(req.params.id);
    return reply.status(204).send(null);
  });

  app.get('/devices/:id/telemetry', {
    onRequest: [guard],
    schema: {
      tags: ['devices'],
      summary: 'Readings of a device, raw or bucketed (avg/min/max per bucket)',
      params: IdParams,
      querystring: TelemetryQuery,
      response: {
        200: Telemetry,
        ...errors(400, 401, 404),
      },
    },
  }, async (req) => {
    const d = visible(req, registry.get(req.params.id));
    const to = parseTime(req.query.to, Date.now());
    const from = parseTime(req.query.from, to - 24 * 3600_000);
    const metric = req.query.metric ?? null;
    const limit = req.query.limit ?? 10_000;
    const kinds = new Map(catalogue[d.type as DeviceType]?.metrics.map((m) => [m.name, m.kind]) ?? []);
    if (req.query.bucket) {
      const secs = bucketSeconds(req.query.bucket);
      const bucketExpr = db.timescale
        ? `time_bucket(make_interval(secs => $4), ts)`
        : `date_bin(make_interval(secs => $4), ts, timestamptz '2000-01-03')`;
      const rows = await db.query<{ b: Date; metric: string; avg: number | null; min: number | null; max: number | null; n: number }>(
        `select ${bucketExpr} as b, metric, avg(value) as avg, min(value) as min, max(value) as max, count(*)::int as n
         from readings where device_id = $1 and ts >= to_timestamp($2 / 1000.0) and ts < to_timestamp($3 / 1000.0)
           and ($5::text is null or metric = $5) and value is not null
         group by 1, 2 order by 1 limit $6`,
        [d.id, from, to, secs, metric, limit],
      );
      return {
        deviceId: d.id, metric, bucket: req.query.bucket,
        points: rows.map((r) => ({ ts: new Date(r.b).getTime(), value: r.avg, min: r.min ?? undefined, max: r.max ?? undefined, n: r.n, ...(metric ? {} : { metric: r.metric }) })),
      };
    }
    const rows = await db.query<{ ts: Date; metric: string; value: number | null; value_text: string | null }>(
      `select ts, metric, value, value_text from readings
       where device_id = $1 and ts >= to_timestamp($2 / 1000.0) and ts < to_timestamp($3 / 1000.0) and ($4::text is null or metric = $4)
       order by ts limit $5`,
      [d.id, from, to, metric, limit],
    );
    return {
      deviceId: d.id, metric, bucket: null,
      points: rows.map((r) => {
        const kind = kinds.get(r.metric);
        const value = r.value_text ?? (kind === 'boolean' && r.value !== null ? r.value !== 0 : r.value);
        return { ts: new Date(r.ts).getTime(), value, ...(metric ? {} : { metric: r.metric }) };
      }),
    };
  });
}
