/**
 * Accounts and sessions: login throttling per account and per address,
 * bounded password hashing, revocable sessions (REST and sockets), user
 * lifecycle, `exp` required, the password policy, bearer tokens only in the
 * Authorization header.
 */
import { createSigner } from 'fast-jwt';
import { io, type Socket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Clock } from '../cases/fixtures.js';
import { startHub, until, type TestHub } from '../helpers.js';

const login = (t: TestHub, username: string, password: string, headers: Record<string, string> = {}) =>
  fetch(`${t.http}/api/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ username, password }) })
    .then(async (r) => ({ status: r.status, body: (await r.json()) as any, retryAfter: r.headers.get('retry-after') }));

describe('accounts: throttling, sessions, lifecycle, password policy', () => {
  let t: TestHub;
  const clock = new Clock(Date.now());
  const sockets: Socket[] = [];
  beforeAll(async () => {
    t = await startHub({}, { now: clock.now });
  }, 180_000);
  afterAll(async () => {
    for (const s of sockets) s.close();
    await t?.stop();
  });

  async function user(username: string, role = 'officer', password = 'correct horse battery'): Promise<{ id: string; password: string }> {
    const r = await t.api<{ id: string }>('POST', '/users', { username, password, role });
    expect(r.status).toBe(201);
    return { id: r.body.id, password };
  }

  async function socket(token: string): Promise<Socket> {
    const s = io(t.http, { path: '/socket.io', auth: { token }, transports: ['websocket'], reconnection: false, forceNew: true });
    sockets.push(s);
    await new Promise<void>((resolve, reject) => {
      s.once('connect', () => resolve());
      s.once('connect_error', reject);
    });
    return s;
  }

  it('should refuse the right password after five wrong ones (429, no hashing), and accept it once the delay has passed', async () => {
    const u = await user('throttled');
    for (let i = 0; i < 5; i++) expect((await login(t, 'throttled', `wrong-${i}-password`)).body.code).toBe('BAD_CREDENTIALS');
    const locked = await login(t, 'throttled', u.password);
    expect(locked.status).toBe(429);
    expect(locked.body.code).toBe('LOGIN_THROTTLED');
    expect(Number(locked.retryAfter)).toBeGreaterThan(0);
    // The delay grows with every further failure.
    expect((await login(t, 'throttled', 'wrong-again-password')).status).toBe(429);
    clock.advance(Number(locked.retryAfter) * 1000);
    const late = await login(t, 'throttled', u.password);
    expect(late.status).toBe(200);
  });

  it('should throttle one address trying many accounts, and ignore X-Forwarded-For (trustProxy off)', async () => {
    clock.advance(16 * 60_000);
    const u = await user('victim-by-address');
    let last = 0;
    for (let i = 0; i < 20; i++) last = (await login(t, `nobody-${i}`, 'wrong-password', { 'x-forwarded-for': `10.9.${i}.1` })).status;
    expect(last).toBe(401);
    const r = await login(t, 'victim-by-address', u.password, { 'x-forwarded-for': '10.99.99.99' });
    expect(r.body.code).toBe('LOGIN_THROTTLED');
    clock.advance(16 * 60_000);
  });

  it('should run at most two password hashes at once, however many logins arrive', async () => {
    clock.advance(16 * 60_000);
    const before = t.hub.ctx.auth.hashing.peak;
    const results = await Promise.all(Array.from({ length: 24 }, (_, i) => login(t, `parallel-${i}`, 'wrong-password', { 'x-forwarded-for': `10.0.0.${i}` })));
    expect(results.every((r) => [401, 429, 503].includes(r.status))).toBe(true);
    expect(Math.max(before, t.hub.ctx.auth.hashing.peak)).toBeLessThanOrEqual(2);
    expect(t.hub.ctx.auth.hashing.peak).toBe(2);
    clock.advance(16 * 60_000);
  });

  it('should end a deleted user\'s sessions at once (REST and socket)', async () => {
    const u = await user('to-delete');
    const { token } = (await login(t, 'to-delete', u.password)).body;
    const s = await socket(token);
    const gone = new Promise<string>((resolve) => s.once('disconnect', resolve));
    expect((await t.api('DELETE', `/users/${u.id}`)).status).toBe(204);
    expect(await gone).toBe('io server disconnect');
    const r = await t.api<any>('GET', '/auth/me', undefined, token);
    expect([r.status, r.body.code]).toEqual([401, 'TOKEN_REVOKED']);
  });

  it('should disable, re-enable, change role and region, and reset a password, each ending old sessions at once', async () => {
    const u = await user('lifecycle', 'dispatcher');
    const t1 = (await login(t, 'lifecycle', u.password)).body.token;
    const s = await socket(t1);
    const gone = new Promise<string>((resolve) => s.once('disconnect', resolve));
    expect((await t.api<any>('PATCH', `/users/${u.id}`, { enabled: false })).body.enabled).toBe(false);
    expect(await gone).toBe('io server disconnect');
    expect((await t.api<any>('GET', '/auth/me', undefined, t1)).body.code).toBe('TOKEN_REVOKED');
    expect((await login(t, 'lifecycle', u.password)).status).toBe(401);
    await t.api('PATCH', `/users/${u.id}`, { enabled: true });
    const t2 = (await login(t, 'lifecycle', u.password)).body.token;
    // A role or region change takes effect on the next request: the old token is gone.
    expect((await t.api<any>('PATCH', `/users/${u.id}`, { role: 'officer', regionId: 'S-A' })).body).toMatchObject({ role: 'officer', regionId: 'S-A' });
    expect((await t.api<any>('GET', '/auth/me', undefined, t2)).status).toBe(401);
    const t3 = (await login(t, 'lifecycle', u.password)).body.token;
    expect((await t.api<any>('GET', '/auth/me', undefined, t3)).body).toMatchObject({ role: 'officer', regionId: 'S-A' });
    expect((await t.api('POST', `/users/${u.id}/password`, { password: 'another good passphrase' })).status).toBe(204);
    expect((await t.api<any>('GET', '/auth/me', undefined, t3)).status).toBe(401);
    expect((await login(t, 'lifecycle', u.password)).status).toBe(401);
    expect((await login(t, 'lifecycle', 'another good passphrase')).status).toBe(200);
  });

  it('should end a worker\'s handheld (app) session when the user is disabled', async () => {
    const u = await user('app-worker', 'worker');
    const hh = await t.registerDevice('handheld', 'hh-app-worker');
    expect((await t.api('POST', '/workers', { id: 'w-app', name: 'w', deviceId: hh.id, userId: u.id })).status).toBe(201);
    const s = await t.api<any>('POST', '/m/session', { username: 'app-worker', password: u.password }, '');
    expect(s.status).toBe(201);
    expect((await t.api('GET', '/m/me', undefined, s.body.token)).status).toBe(200);
    await t.api('PATCH', `/users/${u.id}`, { enabled: false });
    const after = await t.api<any>('GET', '/m/me', undefined, s.body.token);
    expect(after.status).toBe(401);
  });

  it('should honour a revocation made by another hub process (the user table is read back)', async () => {
    const u = await user('revoked-elsewhere');
    const tok = (await login(t, 'revoked-elsewhere', u.password)).body.token;
    const s = await socket(tok);
    const gone = new Promise<string>((resolve) => s.once('disconnect', resolve));
    // Another node of a cluster bumps the version in the shared database.
    await t.hub.ctx.db.query('update users set token_version = token_version + 1 where id = $1', [u.id]);
    await until(async () => (await t.api('GET', '/auth/me', undefined, tok)).status === 401);
    expect(await gone).toBe('io server disconnect');
  });

  it('should keep the last city-wide admin: no self-deletion, no demotion of the last one', async () => {
    const me = (await t.api<any>('GET', '/auth/me')).body.sub;
    expect((await t.api<any>('DELETE', `/users/${me}`)).body.code).toBe('SELF_CHANGE');
    expect((await t.api<any>('PATCH', `/users/${me}`, { role: 'officer' })).body.code).toBe('SELF_CHANGE');
  });

  it('should refuse a token without exp, a token of a user that does not exist, and a bearer token in the query', async () => {
    const me = (await t.api<any>('GET', '/auth/me')).body;
    const noExp = createSigner({ key: t.config.jwtSecret!, algorithm: 'HS256' })({ sub: me.sub, username: 'admin', role: 'admin', regionId: null, tv: 0 });
    expect((await t.api<any>('GET', '/auth/me', undefined, noExp)).body.code).toBe('TOKEN_INVALID');
    const ghost = createSigner({ key: t.config.jwtSecret!, algorithm: 'HS256', expiresIn: 60_000 })({ sub: 'ghost', username: 'ghost', role: 'admin', regionId: null });
    expect((await t.api<any>('GET', '/auth/me', undefined, ghost)).status).toBe(401);
    const q = await fetch(`${t.http}/api/v1/auth/me?token=${encodeURIComponent(t.token)}`);
    expect(q.status).toBe(401);
  });

  it('should end the caller\'s own sessions on logout', async () => {
    const u = await user('leaver');
    const tok = (await login(t, 'leaver', u.password)).body.token;
    expect((await t.api('POST', '/auth/logout', undefined, tok)).status).toBe(204);
    expect((await t.api<any>('GET', '/auth/me', undefined, tok)).body.code).toBe('TOKEN_REVOKED');
  });

  it.each([
    ['password', 'common'], ['12345678', 'common'], ['Password1', 'common'], ['qwertyuiop', 'common'], ['woaini1314', 'common'],
    ['policy-user', 'the username'], ['aaaaaaaaaa', 'one repeated character'], ['short', 'too short'],
  ])('should refuse the password %s (%s)', async (password) => {
    const r = await t.api<any>('POST', '/users', { username: 'policy-user', password, role: 'officer' });
    expect(r.status).toBe(400);
    expect(['PASSWORD_WEAK', 'VALIDATION_FAILED']).toContain(r.body.code);
    if (password.length >= 8) expect(r.body.code).toBe('PASSWORD_WEAK');
  });
});
