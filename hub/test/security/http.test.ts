/**
 * The HTTP edge: authentication before the body is read, 401 and nothing
 * else for strangers, coded 400s for malformed input (NUL bytes, times out
 * of range, deep JSON), security headers, origins, protected /metrics and
 * /docs, media tokens, stream tokens, worker identity.
 */
import { request } from 'node:http';
import { io } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemActor } from '../../src/cases/index.js';
import { VideoKeys } from '../../src/video/keys.js';
import { startHub, type TestHub } from '../helpers.js';
import { AT, startWorld, type World } from './fixtures.js';

/** Sends headers announcing `length` bytes and only `send` of them; resolves with the status the server answers with. */
function partialBody(base: string, method: string, path: string, token: string | null, length: number, send: number): Promise<{ status: number; body: string }> {
  const u = new URL(path, base);
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, path: u.pathname, method, headers: { 'content-type': 'application/json', 'content-length': String(length), ...(token ? { authorization: `Bearer ${token}` } : {}) } }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      const done = () => {
        req.destroy();
        resolve({ status: res.statusCode ?? 0, body });
      };
      res.on('end', done);
      res.on('error', done);
    });
    req.on('error', reject);
    req.write('{"type":"FeatureCollection","features":['.padEnd(send, ' '));
    // The rest never comes: only an answer given before the body is read can arrive.
  });
}

describe('http edge', () => {
  let w: World;
  beforeAll(async () => {
    w = await startWorld();
  }, 180_000);
  afterAll(async () => w?.t.stop(), 60_000);

  it('should answer 401 to a stranger before reading a 30 MB body, and 403 to a non-admin', async () => {
    const anon = await partialBody(w.t.http, 'PUT', '/api/v1/grids', null, 30 * 1024 * 1024, 1024);
    expect(anon.status).toBe(401);
    expect(JSON.parse(anon.body)).toEqual({ code: 'UNAUTHORIZED', message: 'Authentication required' });
    const officer = await partialBody(w.t.http, 'PUT', '/api/v1/grids', w.token.officer, 30 * 1024 * 1024, 1024);
    expect(officer.status).toBe(403);
  });

  it('should give a stranger 401 and nothing about the schema', async () => {
    const r = await w.t.api<any>('POST', '/devices', { nonsense: true }, '');
    expect(r).toEqual({ status: 401, body: { code: 'UNAUTHORIZED', message: 'Authentication required' } });
  });

  it('should answer NUL bytes in the query or path with 400 NUL_BYTE', async () => {
    for (const path of ['/cases?category=a%00b', '/devices/smoke-a%00', '/alarms?rule=%00', '/workers?gridId=G%00']) {
      const r = await w.t.api<any>('GET', path);
      expect([path, r.status, r.body.code]).toEqual([path, 400, 'NUL_BYTE']);
    }
  });

  it('should answer times out of range with 400 TIME_OUT_OF_RANGE', async () => {
    for (const path of [`/devices/${w.dev.A.id}/telemetry?from=1e20`, `/devices/${w.dev.A.id}/telemetry?to=99999999999999999999`, `/workers/${w.worker.A}/track?from=-99999999999999999`, '/stats/kpi?to=300000000000000', '/cases?from=9999999999999999999']) {
      const r = await w.t.api<any>('GET', path);
      expect([path, r.status, r.body.code]).toEqual([path, 400, 'TIME_OUT_OF_RANGE']);
    }
  });

  it('should answer deeply nested JSON with 400 NESTING_TOO_DEEP', async () => {
    const post = (method: string, path: string, body: string) =>
      fetch(`${w.t.http}/api/v1${path}`, { method, headers: { 'content-type': 'application/json', authorization: `Bearer ${w.t.token}` }, body }).then(async (r) => [r.status, ((await r.json()) as { code: string }).code]);
    const deep = `{"meta":{"x":${'{"a":'.repeat(5000)}1${'}'.repeat(5000)}}}`;
    expect(await post('PATCH', `/devices/${w.dev.A.id}`, deep)).toEqual([400, 'NESTING_TOO_DEEP']);
    const arr = `{"action":"register","data":{"x":${'['.repeat(100_000)}${']'.repeat(100_000)}}}`;
    expect((await post('POST', `/cases/${w.caseId.A}/actions`, arr))[0]).toBe(400);
  });

  it('should send security headers', async () => {
    for (const path of ['/api/v1/healthz', '/']) {
      const r = await fetch(`${w.t.http}${path}`);
      expect(r.headers.get('x-content-type-options')).toBe('nosniff');
      expect(r.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
      expect(r.headers.get('referrer-policy')).toBe('no-referrer');
    }
  });

  it('should refuse a Socket.IO connection from a foreign Origin, and take the hub\'s own', async () => {
    const attempt = (origin: string) => new Promise<string>((resolve) => {
      const s = io(w.t.http, { path: '/socket.io', auth: { token: w.t.token }, transports: ['polling'], reconnection: false, forceNew: true, extraHeaders: { origin } });
      s.once('connect', () => {
        s.close();
        resolve('connected');
      });
      s.once('connect_error', (e) => {
        s.close();
        resolve(`refused: ${e.message}`);
      });
    });
    expect(await attempt('https://evil.example')).toMatch(/^refused/);
    expect(await attempt(w.t.http)).toBe('connected');
  });

  it('should serve evidence through a media token bound to one file and one user, never a bearer in the URL', async () => {
    const JPEG = Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46, 0x49, 0x46, 0x00, 0x01, 0xff, 0xd9]).toString('base64');
    const c = await w.t.api<any>('POST', '/cases', { category: 'E0101', ...AT.A1, photos: [JPEG, JPEG] });
    expect(c.status).toBe(201);
    const d = (await w.as('officerA')<any>('GET', `/cases/${c.body.id}`)).body;
    const [e1, e2] = d.evidence;
    expect(e1.url).toMatch(/\?media=/);
    expect((await fetch(`${w.t.http}${e1.url}`)).status).toBe(200);
    // Its token on another file, on another route, and the bearer token in the URL: all refused.
    const m1 = new URL(e1.url, w.t.http).searchParams.get('media')!;
    expect((await fetch(`${w.t.http}${e2.url.split('?')[0]}?media=${encodeURIComponent(m1)}`)).status).toBe(401);
    expect((await fetch(`${w.t.http}/api/v1/auth/me?media=${encodeURIComponent(m1)}`)).status).toBe(401);
    expect((await fetch(`${w.t.http}${e1.url.split('?')[0]}?token=${encodeURIComponent(w.token.officerA)}`)).status).toBe(401);
    // A media token is not a bearer token.
    expect((await w.t.api<any>('GET', '/auth/me', undefined, m1)).status).toBe(401);
  });

  it('should refuse a device secret in an OsmAnd URL, take the OsmAnd token as id, and drop the token with a secret rotation', async () => {
    const dev = await w.t.registerDevice('handheld', 'hh-osm', { gridId: 'G-A1' });
    const fix = `lat=${AT.A1.lat}&lon=${AT.A1.lon}`;
    const inUrl = await fetch(`${w.t.http}/osmand?id=${dev.id}&secret=${encodeURIComponent(dev.secret)}&${fix}`);
    expect([inUrl.status, ((await inUrl.json()) as { code: string }).code]).toEqual([401, 'SECRET_IN_URL']);
    const { token } = (await w.t.api<{ token: string }>('POST', `/devices/${dev.id}/osmand-token`)).body;
    expect(token).not.toContain(dev.secret);
    expect((await fetch(`${w.t.http}/osmand?id=${encodeURIComponent(token)}&${fix}`)).status).toBe(200);
    expect((await fetch(`${w.t.http}/osmand?id=${dev.id}&${fix}`)).status).toBe(401);
    const forged = `${token.slice(0, -1)}${token.endsWith('x') ? 'y' : 'x'}`;
    expect((await fetch(`${w.t.http}/osmand?id=${encodeURIComponent(forged)}&${fix}`)).status).toBe(401);
    // Keeps the plain ?id= with HTTP Basic.
    const basic = `Basic ${Buffer.from(`${dev.id}:${dev.secret}`).toString('base64')}`;
    expect((await fetch(`${w.t.http}/osmand?id=${dev.id}&${fix}`, { headers: { authorization: basic } })).status).toBe(200);
    await w.t.api('POST', `/devices/${dev.id}/rotate-secret`);
    expect((await fetch(`${w.t.http}/osmand?id=${encodeURIComponent(token)}&${fix}`)).status).toBe(401);
  });

  it('should refuse a stream token with extra segments', () => {
    const keys = new VideoKeys(Buffer.alloc(32, 7));
    const t = keys.sign('cam-1', 60, Date.now());
    expect(keys.verify('cam-1', t.token, Date.now())).toBe(t.nonce);
    expect(keys.verify('cam-1', `${t.token}.extra`, Date.now())).toBeNull();
    expect(keys.verify('cam-1', `${t.token}.`, Date.now())).toBeNull();
  });

  it('should give a worker login bound to no worker no worker identity (not the worker named like the user)', async () => {
    const store = w.t.hub.ctx.domains.cases!.store;
    const c = await w.t.api<any>('POST', '/cases', { category: 'E0101', ...AT.A1 });
    await store.act(c.body.id, 'register', systemActor('t'));
    await store.act(c.body.id, 'dispatch', systemActor('t'), { workerId: w.worker.A });
    // A user whose username equals the worker's id, bound to no worker.
    const id = 'u-impostor';
    await w.t.hub.ctx.db.query("insert into users (id, username, password_hash, role, region_id, display_name) values ($1, $2, 'x', 'worker', null, 'x')", [id, w.worker.A]);
    const tok = w.t.hub.ctx.auth.sign({ id, username: w.worker.A, role: 'worker', regionId: null, displayName: 'x' });
    const r = await w.t.api<any>('POST', `/cases/${c.body.id}/actions`, { action: 'accept' }, tok);
    expect([r.status, r.body.code]).toEqual([403, 'CASE_NOT_ASSIGNED']);
  });
});

describe('http edge: configured protection', () => {
  let t: TestHub;
  beforeAll(async () => {
    t = await startHub({ metricsToken: 'scrape-secret-0123456789', docsAuth: true, allowedOrigins: 'https://console.example' });
  }, 180_000);
  afterAll(async () => t?.stop(), 60_000);

  it('should put /metrics behind its bearer token and /docs behind login', async () => {
    expect((await fetch(`${t.http}/metrics`)).status).toBe(401);
    expect((await fetch(`${t.http}/api/v1/metrics`, { headers: { authorization: 'Bearer wrong' } })).status).toBe(401);
    expect((await fetch(`${t.http}/metrics`, { headers: { authorization: 'Bearer scrape-secret-0123456789' } })).status).toBe(200);
    expect((await fetch(`${t.http}/docs/json`)).status).toBe(401);
    expect((await fetch(`${t.http}/docs/json`, { headers: { authorization: `Bearer ${t.token}` } })).status).toBe(200);
  });

  it('should take a configured console origin on Socket.IO', async () => {
    const ok = await new Promise<boolean>((resolve) => {
      const s = io(t.http, { path: '/socket.io', auth: { token: t.token }, transports: ['polling'], reconnection: false, forceNew: true, extraHeaders: { origin: 'https://console.example' } });
      s.once('connect', () => (s.close(), resolve(true)));
      s.once('connect_error', () => (s.close(), resolve(false)));
    });
    expect(ok).toBe(true);
  });
});
