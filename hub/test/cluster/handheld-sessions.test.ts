/**
 * Two hub nodes: a worker app session (handheld token) opened through one
 * node works through the other at once; a revoke through one node (an
 * officer revoking a lost phone, a new login) is honoured by the other, whose
 * app socket is cut and refused; a revoke made while Redis is away is
 * honoured once it is back; the session outlives the node it was opened on.
 * Garbage and forged tokens fail through both nodes, and a forged message on
 * `gridlink:handheld.session` revives nothing: the row is read back. A revoke
 * whose announcement was lost is refused at once by every request, read or
 * write, and socket connect on either node, and the session's socket cut; a
 * revoke cuts that session's sockets only, not those of the phone's new one.
 */
import { createHash, randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { io, type Socket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { until } from '../helpers.js';
import { api, RUN_CLUSTER, twoNodeDistrict, type HubNode, type RedisServer, type TestDatabase } from './harness.js';

/** Guards against a hang on a busy machine; nothing here is a latency assertion. */
const WAIT = 60_000;
const PASSWORD = 'worker-pass-123';
const CHANNEL = 'gridlink:handheld.session';

interface SignedIn { token: string; me: { session: { id: string } } }

describe.runIf(RUN_CLUSTER)('handheld sessions across two nodes', () => {
  let redis: RedisServer;
  let stop = async () => {};
  let db: TestDatabase;
  let a: HubNode, b: HubNode;
  let admin = '';
  const sockets: Socket[] = [];

  beforeAll(async () => {
    ({ redis, db, a, b, token: admin, stop } = await twoNodeDistrict([], 'officer-pass-123'));
    // Two workers with their handhelds, made through A; both nodes know them before anyone signs in.
    for (const n of [1, 2]) {
      const u = await api<{ id: string }>(a.http, 'POST', '/users', { username: `worker${n}`, password: PASSWORD, role: 'worker' }, admin);
      expect(u.status, JSON.stringify(u.body)).toBe(201);
      expect((await api(a.http, 'POST', '/devices', { type: 'handheld', id: `hh-${n}` }, admin)).status).toBe(201);
      const w = await api(a.http, 'POST', '/workers', { id: `w-${n}`, name: `网格员${n}`, deviceId: `hh-${n}`, gridIds: ['G-A1'], onDuty: true, userId: u.body.id }, admin);
      expect(w.status, JSON.stringify(w.body)).toBe(201);
      for (const node of [a, b]) {
        await until(async () => (await api(node.http, 'GET', `/workers/w-${n}`, undefined, admin)).status === 200, WAIT, 100);
        await until(async () => (await api(node.http, 'GET', `/devices/hh-${n}`, undefined, admin)).status === 200, WAIT, 100);
      }
    }
  }, 180_000);

  afterAll(async () => {
    for (const s of sockets) s.close();
    await stop();
  }, 60_000);

  async function signIn(node: HubNode, n: number): Promise<SignedIn> {
    const r = await api<SignedIn>(node.http, 'POST', '/m/session', { username: `worker${n}`, password: PASSWORD });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    return r.body;
  }
  const me = async (node: HubNode, token: string) => (await api(node.http, 'GET', '/m/me', undefined, token)).status;

  /** The app's socket on a node: resolves once connected, or with the refusal. */
  function connect(node: HubNode, token: string): Promise<{ socket: Socket } | { refused: string }> {
    const socket = io(node.http, { path: '/socket.io', auth: { token }, transports: ['websocket'], reconnection: false, timeout: WAIT });
    sockets.push(socket);
    return new Promise((resolve) => {
      socket.once('connect', () => resolve({ socket }));
      socket.once('connect_error', (err) => resolve({ refused: err.message }));
    });
  }

  it('serves a token signed in through node A through node B at once, and its task list there', async () => {
    const s = await signIn(a, 1);
    // No wait: B has not necessarily heard of the session yet.
    expect(await me(b, s.token)).toBe(200);
    expect((await api(b.http, 'GET', '/m/tasks', undefined, s.token)).status).toBe(200);
    expect(await me(a, s.token)).toBe(200);
  });

  it('refuses a session revoked through node B on node A, and cuts and refuses its app socket there', async () => {
    const s = await signIn(a, 1);
    expect(await me(a, s.token)).toBe(200);
    const conn = await connect(a, s.token);
    if (!('socket' in conn)) throw new Error(`socket refused: ${conn.refused}`);
    const closed = new Promise<void>((resolve) => conn.socket.once('disconnect', () => resolve()));

    const r = await api<{ id: string; revokedBy: string }>(b.http, 'POST', `/m/sessions/${s.me.session.id}/revoke`, { reason: '手机丢失' }, admin);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body).toMatchObject({ id: s.me.session.id, revokedBy: 'admin' });
    expect(await me(b, s.token)).toBe(401);
    await until(async () => (await me(a, s.token)) === 401, WAIT, 100);
    await closed;
    // The app reconnects at once: refused by A.
    const again = await connect(a, s.token);
    expect('refused' in again).toBe(true);
  });

  it('revokes the token held on node A when the worker signs in again through node B', async () => {
    const old = await signIn(a, 2);
    expect(await me(a, old.token)).toBe(200);
    const next = await signIn(b, 2);
    await until(async () => (await me(a, old.token)) === 401, WAIT, 100);
    expect(await me(b, old.token)).toBe(401);
    expect(await me(a, next.token)).toBe(200);
    expect(await me(b, next.token)).toBe(200);
    const [row] = await db.query<{ revoke_reason: string }>('select revoke_reason from handheld_sessions where id = $1', [old.me.session.id]);
    expect(row?.revoke_reason).toBe('replaced by a new login');
    expect((await db.query("select 1 from handheld_sessions where worker_id = 'w-2' and revoked_at is null")).length).toBe(1);
  });

  it('refuses garbage and forged tokens through both nodes, every time', async () => {
    const s = await signIn(a, 1);
    const [, id, secret] = /^hs_([0-9a-f]{16})_(.+)$/.exec(s.token)!;
    const wrongSecret = `hs_${id}_${secret![0] === 'A' ? 'B' : 'A'}${secret!.slice(1)}`;
    const unknown = `hs_${'0123456789abcdef'}_${secret}`;
    for (const t of [wrongSecret, unknown, 'hs_garbage', `${s.token}x`, `hs_${id}_`, `hs_${"'; drop table handheld_sessions; --".padEnd(16, 'x')}_${secret}`]) {
      for (const node of [a, b, a, b]) expect(await me(node, t), `${t} via ${node.id}`).toBe(401);
      const sock = await connect(b, t);
      expect('refused' in sock, t).toBe(true);
    }
    // A forged announcement of the unknown id makes it no more valid.
    const pub = new Redis(redis.url);
    try {
      await pub.publish(CHANNEL, JSON.stringify({ node: 'node-x', sessionId: '0123456789abcdef', change: 'created', tokenHash: '00'.repeat(32) }));
    } finally {
      pub.disconnect();
    }
    for (const node of [a, b]) expect(await me(node, unknown)).toBe(401);
    expect(await me(b, s.token)).toBe(200);
  });

  it('does not revive a revoked token on a forged message on the channel: the row is read back', async () => {
    const s = await signIn(a, 1);
    expect(await me(b, s.token)).toBe(200);
    expect((await api(a.http, 'POST', `/m/sessions/${s.me.session.id}/revoke`, {}, admin)).status).toBe(200);
    await until(async () => (await me(b, s.token)) === 401, WAIT, 100);

    // A marker: worker 2's session, revoked in the database behind the hub's back and announced after the forgeries
    // from the same connection (delivered in order), shows when the nodes have read what came before it.
    const marker = await signIn(b, 2);
    expect(await me(a, marker.token)).toBe(200);
    const pub = new Redis(redis.url);
    try {
      for (const forged of [
        { node: 'node-b', sessionId: s.me.session.id, change: 'created' },
        { node: 'node-x', sessionId: s.me.session.id, revokedAt: null, session: { id: s.me.session.id, revokedAt: null } },
        { sessionId: s.me.session.id },
      ]) await pub.publish(CHANNEL, JSON.stringify(forged));
      await pub.publish(CHANNEL, 'not json');
      await db.query("update handheld_sessions set revoked_at = now(), revoked_by = 'test', revoke_reason = 'marker' where id = $1", [marker.me.session.id]);
      await pub.publish(CHANNEL, JSON.stringify({ node: 'node-x', sessionId: marker.me.session.id }));
    } finally {
      pub.disconnect();
    }
    for (const node of [a, b]) await until(async () => (await me(node, marker.token)) === 401, WAIT, 100);
    for (const node of [a, b]) expect(await me(node, s.token), node.id).toBe(401);
    const [row] = await db.query<{ revoked_at: Date | null }>('select revoked_at from handheld_sessions where id = $1', [s.me.session.id]);
    expect(row?.revoked_at).not.toBeNull();
  });

  it('refuses a write and an app socket on node A at once when the revoke made elsewhere was never announced', async () => {
    const s = await signIn(b, 1);
    // Node A holds the session in memory and serves it.
    expect(await me(a, s.token)).toBe(200);
    const before = await api<{ worker: { onDuty: boolean } }>(a.http, 'GET', '/m/me', undefined, s.token);
    expect(before.status).toBe(200);
    // The revoke B's API makes (the same statement), with its announcement lost: nothing reaches A on Redis, as
    // when a message is dropped while A's subscriber stays connected.
    await db.query("update handheld_sessions set revoked_at = now(), revoked_by = 'admin', revoke_reason = 'announcement lost' where id = $1", [s.me.session.id]);
    // No wait: the very next write through A is refused and changes nothing.
    const duty = await api(a.http, 'POST', '/m/duty', { onDuty: !before.body.worker.onDuty }, s.token);
    expect(duty.status, JSON.stringify(duty.body)).toBe(401);
    const [w] = await db.query<{ on_duty: boolean }>("select on_duty from workers where id = 'w-1'");
    expect(w?.on_duty).toBe(before.body.worker.onDuty);
    // A has dropped the session: reads are refused from then on too, and the app socket is refused.
    expect(await me(a, s.token)).toBe(401);
    const sock = await connect(a, s.token);
    expect('refused' in sock).toBe(true);
    // A socket connect alone is also checked on the row: a second session, revoked the same way, is refused by B's socket.
    const t = await signIn(a, 2);
    expect(await me(b, t.token)).toBe(200);
    await db.query("update handheld_sessions set revoked_at = now(), revoked_by = 'admin', revoke_reason = 'announcement lost' where id = $1", [t.me.session.id]);
    const sock2 = await connect(b, t.token);
    expect('refused' in sock2).toBe(true);
  });

  it('refuses every read on node A at once when the revoke made elsewhere was never announced, and cuts the app socket', async () => {
    const task = await db.query<{ id: string }>('select id from cases limit 1');
    const reads = ['/m/me', '/m/tasks', '/m/tasks?limit=5', '/m/categories', '/m/reports', `/m/tasks/${task[0]?.id ?? 'c-none'}`, '/m/evidence/ev-none'];
    for (const path of reads) {
      // Each read with a session of its own, held in A's memory and served there.
      const s = await signIn(a, 1);
      const served = await api(a.http, 'GET', path, undefined, s.token);
      expect(served.status, `${path}: ${JSON.stringify(served.body)}`).not.toBe(401);
      const conn = path === '/m/me' ? await connect(a, s.token) : null;
      if (conn && !('socket' in conn)) throw new Error(`socket refused: ${conn.refused}`);
      const closed = conn ? new Promise<void>((resolve) => conn.socket.once('disconnect', () => resolve())) : null;
      // B's revoke, its announcement lost (as above).
      await db.query("update handheld_sessions set revoked_at = now(), revoked_by = 'admin', revoke_reason = 'announcement lost' where id = $1", [s.me.session.id]);
      // No wait: the very next read through A is refused, and through B.
      expect((await api(a.http, 'GET', path, undefined, s.token)).status, path).toBe(401);
      expect((await api(b.http, 'GET', path, undefined, s.token)).status, path).toBe(401);
      // The refusal cut the session's app socket on A.
      await closed;
    }
  });

  it('cuts the app socket on node A when a request through node B finds the revoke A never heard of', async () => {
    const s = await signIn(a, 1);
    expect(await me(b, s.token)).toBe(200);
    const conn = await connect(a, s.token);
    if (!('socket' in conn)) throw new Error(`socket refused: ${conn.refused}`);
    const closed = new Promise<void>((resolve) => conn.socket.once('disconnect', () => resolve()));
    await db.query("update handheld_sessions set revoked_at = now(), revoked_by = 'admin', revoke_reason = 'announcement lost' where id = $1", [s.me.session.id]);
    // The app's next request goes through B: refused, and A's socket of the session is cut through the Socket.IO adapter.
    expect(await me(b, s.token)).toBe(401);
    await closed;
    expect(await me(a, s.token)).toBe(401);
  });

  it('cuts only the revoked session\'s app socket: the socket of the same phone\'s new session stays up', async () => {
    const old = await signIn(a, 1);
    const first = await connect(a, old.token);
    if (!('socket' in first)) throw new Error(`socket refused: ${first.refused}`);
    const closed = new Promise<void>((resolve) => first.socket.once('disconnect', () => resolve()));
    // The phone's new login made through B, its announcement not yet on A: the row written as B's login writes it,
    // with a secret the test knows. The old session is still active until the revoke below.
    const [row] = await db.query<{ user_id: string }>('select user_id from handheld_sessions where id = $1', [old.me.session.id]);
    const id = randomBytes(8).toString('hex');
    const secret = randomBytes(32).toString('base64url');
    await db.query(
      `insert into handheld_sessions (id, token_hash, user_id, worker_id, device_id, created_at, expires_at)
       values ($1, $2, $3, 'w-1', 'hh-1', now(), now() + interval '1 hour')`,
      [id, createHash('sha256').update(secret).digest('hex'), row!.user_id],
    );
    const next = await connect(a, `hs_${id}_${secret}`);
    if (!('socket' in next)) throw new Error(`socket refused: ${next.refused}`);
    const cut = new Promise<void>((resolve) => next.socket.once('disconnect', () => resolve()));
    let nextCut = false;
    void cut.then(() => (nextCut = true));
    // Then the old session's revoke reaches A, late.
    await db.query("update handheld_sessions set revoked_at = now(), revoked_by = 'system', revoke_reason = 'replaced by a new login' where id = $1", [old.me.session.id]);
    const pub = new Redis(redis.url);
    try {
      await pub.publish(CHANNEL, JSON.stringify({ node: 'node-b', sessionId: old.me.session.id }));
    } finally {
      pub.disconnect();
    }
    await closed;
    // The old session's socket and the new one's were cut in one go on A if at all: the handheld still counts as
    // online on A through the new session's socket, which is still connected.
    const dev = await api<{ online: boolean }>(a.http, 'GET', '/devices/hh-1', undefined, admin);
    expect(dev.body.online).toBe(true);
    expect(nextCut).toBe(false);
    expect(next.socket.connected).toBe(true);
    expect(await me(a, old.token)).toBe(401);
    expect(await me(a, `hs_${id}_${secret}`)).toBe(200);
  });

  it('honours a revoke made while Redis was away once it is back', async () => {
    const s = await signIn(a, 1);
    expect(await me(a, s.token)).toBe(200);
    expect(await me(b, s.token)).toBe(200);
    await redis.halt();
    try {
      // The revoke is stored; its announcement cannot travel.
      expect((await api(b.http, 'POST', `/m/sessions/${s.me.session.id}/revoke`, {}, admin)).status).toBe(200);
    } finally {
      await redis.start();
    }
    await until(async () => (await me(a, s.token)) === 401, WAIT * 2, 200);
    expect(await me(b, s.token)).toBe(401);
  });

  it('keeps a session signed in through node A working through node B after A is killed', async () => {
    const s = await signIn(a, 1);
    expect(await me(a, s.token)).toBe(200);
    await a.kill('SIGKILL');
    expect(await me(b, s.token)).toBe(200);
    expect((await api(b.http, 'GET', '/m/tasks', undefined, s.token)).status).toBe(200);
    const conn = await connect(b, s.token);
    expect('socket' in conn).toBe(true);
  });
});
