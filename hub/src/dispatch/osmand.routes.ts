/**
 * The OsmAnd HTTP protocol as Traccar Client speaks it, at the server root:
 *   GET|POST /osmand?id=&lat=&lon=&timestamp=&speed=&bearing=&altitude=&accuracy=&batt=
 * and the JSON body of Traccar Client 9+ ({device_id, location: {timestamp,
 * coords: {latitude, longitude, speed, heading, accuracy, altitude}, battery: {level}}}).
 * Fixes go through the same ingest path as MQTT `location` messages.
 *
 * Authentication: HTTP Basic deviceId:secret, or the device's OsmAnd token
 * as the device identifier (`?id=<token>`, Traccar Client's "Device
 * identifier" field; POST /api/v1/devices/{id}/osmand-token issues it). The
 * token only uploads positions, is not the MQTT secret, and dies with a
 * secret rotation. A device secret in the URL (`secret=`, `password=`) is
 * refused: URLs end up in proxy logs and phone histories.
 *
 * Units: query-string `speed` is in knots (Traccar Client's convention);
 * JSON `coords.speed` is m/s. `timestamp`: epoch seconds, epoch ms, or a date.
 */
import { OsmandQuery, Stored } from '@gridlink/devices/contract';
import { Errors } from '../core/errors.js';
import type { App } from '../http/app.js';
import { admitDevice, basicCredentials } from '../http/guards.js';
import { errors } from '../http/schemas.js';
import type { Ingest } from '../ingest/index.js';
import type { DeviceRegistry } from '../registry/index.js';

const KNOT_MPS = 0.514444;

type Params = Record<string, unknown>;

function num(v: unknown): number | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  const n = typeof v === 'number' ? v : Number(v);
  return Number.isFinite(n) ? n : undefined;
}

/** epoch seconds, epoch ms, ISO-8601, or "yyyy-MM-dd HH:mm:ss" (UTC). */
export function parseOsmandTime(v: unknown): number | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  const n = num(v);
  if (n !== undefined) return n > 1e11 ? Math.round(n) : Math.round(n * 1000);
  const s = String(v).trim();
  const t = Date.parse(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}(:\d{2}(\.\d+)?)?$/.test(s) ? `${s.replace(' ', 'T')}Z` : s);
  return Number.isNaN(t) ? NaN : t;
}

/** OsmAnd / Traccar parameters (query or form) or a Traccar Client 9 JSON body → a native `location` body. */
export function osmandToLocation(q: Params, body: unknown): { deviceId: string | undefined; item: Record<string, unknown> } {
  const b = (body && typeof body === 'object' && !Buffer.isBuffer(body) ? body : {}) as Params;
  const loc = b.location as Params | undefined;
  if (loc && typeof loc === 'object') {
    const c = (loc.coords ?? {}) as Params;
    const batt = num((loc.battery as Params | undefined)?.level);
    const item: Record<string, unknown> = { lat: num(c.latitude), lon: num(c.longitude) };
    const ts = parseOsmandTime(loc.timestamp);
    if (ts !== undefined) item.ts = ts;
    const spd = num(c.speed);
    if (spd !== undefined && spd >= 0) item.spd = spd;
    const hdg = num(c.heading);
    if (hdg !== undefined && hdg >= 0) item.hdg = hdg;
    const acc = num(c.accuracy);
    if (acc !== undefined && acc >= 0) item.acc = acc;
    const alt = num(c.altitude);
    if (alt !== undefined) item.alt = alt;
    if (batt !== undefined && batt >= 0) item.batt = batt <= 1 ? Math.round(batt * 100) : batt;
    return { deviceId: (b.device_id ?? q.id ?? q.deviceid) as string | undefined, item };
  }
  const p: Params = { ...b, ...q };
  let lat = num(p.lat);
  let lon = num(p.lon);
  if ((lat === undefined || lon === undefined) && typeof p.location === 'string') {
    const [a, o] = p.location.split(',');
    lat = num(a);
    lon = num(o);
  }
  const item: Record<string, unknown> = { lat, lon };
  const ts = parseOsmandTime(p.timestamp);
  if (ts !== undefined) item.ts = ts;
  const spd = num(p.speed);
  if (spd !== undefined && spd >= 0) item.spd = Math.round(spd * KNOT_MPS * 1000) / 1000;
  const hdg = num(p.bearing ?? p.heading);
  if (hdg !== undefined && hdg >= 0 && hdg <= 360) item.hdg = hdg;
  const acc = num(p.accuracy ?? p.hdop);
  if (acc !== undefined && acc >= 0) item.acc = acc;
  const alt = num(p.altitude);
  if (alt !== undefined) item.alt = alt;
  const batt = num(p.batt ?? p.battery);
  if (batt !== undefined && batt >= 0 && batt <= 100) item.batt = batt;
  return { deviceId: (p.id ?? p.deviceid) as string | undefined, item };
}

export function osmandRoutes(app: App, deps: { registry: DeviceRegistry; ingest: Ingest }): void {
  const { registry, ingest } = deps;
  void app.register(async (sub) => {
    // Traccar Client posts form bodies or nothing at all; its parameters may also sit in the query.
    sub.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_req, body, done) => {
      done(null, Object.fromEntries(new URLSearchParams(body as string)));
    });
    sub.addContentTypeParser('*', { parseAs: 'string' }, (_req, body, done) => done(null, body));

    const handler = async (req: { query: unknown; body?: unknown; headers: Record<string, string | string[] | undefined> }, reply: { header(k: string, v: string): unknown; status(n: number): { send(b: unknown): unknown } }) => {
      const q = (req.query ?? {}) as Params;
      const { deviceId, item } = osmandToLocation(q, req.body);
      if (q.secret !== undefined || q.password !== undefined) {
        throw Errors.secretInUrl('a device secret never goes in a URL: use HTTP Basic or the device\'s OsmAnd token as id=');
      }
      const basic = basicCredentials(typeof req.headers.authorization === 'string' ? req.headers.authorization : undefined);
      let id: string | undefined;
      if (basic) {
        if (deviceId !== undefined && deviceId !== basic.id) throw Errors.unauthorized('id does not match the HTTP Basic device');
        if (await registry.authenticate(basic.id, basic.secret)) id = basic.id;
      } else if (typeof deviceId === 'string') {
        id = registry.authenticateOsmand(deviceId)?.id;
      }
      if (!id) {
        reply.header('www-authenticate', 'Basic realm="gridlink-device"');
        throw Errors.unauthorized('HTTP Basic deviceId:secret or id=<OsmAnd token> required');
      }
      if (item.ts !== undefined && Number.isNaN(item.ts)) throw Errors.payloadInvalid('timestamp is not a time', { reason: 'ts_invalid' });
      admitDevice(ingest, id, reply);
      const outcome = await ingest.handleAsync(id, 'location', Buffer.from(JSON.stringify(item)));
      if (outcome.ok) return reply.status(200).send({ stored: outcome.stored });
      if (outcome.retryable) throw Errors.unavailable('position not stored, retry later');
      throw Errors.payloadInvalid(outcome.detail, { reason: outcome.reason });
    };
    const schema = {
      tags: ['ingest'],
      summary: 'OsmAnd / Traccar Client position upload (HTTP Basic, or id=<OsmAnd token>; secret= in the URL is refused)',
      querystring: OsmandQuery,
      response: { 200: Stored, ...errors(400, 401, 429, 503) },
    };
    sub.get('/osmand', { schema }, handler);
    sub.post('/osmand', { schema }, handler);
  });
}
