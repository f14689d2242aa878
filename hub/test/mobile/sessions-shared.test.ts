/**
 * The session store of two cluster nodes over one database (PGlite, two
 * SessionStores): a session opened by one is served by the other after one
 * read; a miss is remembered so a garbage token does not reach the database
 * on every request; a revoke heard of (or found by the periodic re-read, a
 * fresh check, or the look-up of a token the node did not hold) ends the
 * session on the other node and cuts its sockets; a read that raced a revoke
 * does not bring the session back; a new login through one node ends the
 * other's session.
 * The single process never looks a token up.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { SessionStore, type HandheldSession } from '../../src/mobile/sessions.js';
import { mobileMigrations } from '../../src/mobile/schema.js';
import { openDb, type Db } from '../../src/store/index.js';

const TTL_S = 3600;

describe('handheld sessions shared between nodes', () => {
  let db: Db;
  let t = Date.now();
  const now = () => t;
  /** Reads each node sent to the database (writes of last_seen_at aside). */
  const sent = { a: 0, b: 0 };
  /** When set, a read of the lookup kind is answered only after `gate` resolves (a slow read racing a revoke). */
  let gate: Promise<void> | null = null;
  /** Called when a read is held at the gate. */
  let held: (() => void) | null = null;
  let a: SessionStore, b: SessionStore;
  const revokedOn: Record<'a' | 'b', Array<{ id: string; remote: boolean }>> = { a: [], b: [] };

  function node(name: 'a' | 'b', shared = true): SessionStore {
    const counted = new Proxy(db, {
      get(target, key, receiver) {
        if (key !== 'query') return Reflect.get(target, key, receiver);
        return async (sql: string, params?: unknown[]) => {
          if (/^\s*select/i.test(sql)) sent[name]++;
          const g = sql.includes('revoked_at is null and expires_at') ? gate : null;
          const rows = await target.query(sql, params);
          if (g) {
            held?.();
            await g;
          }
          return rows;
        };
      },
    });
    const s = new SessionStore(counted, now, { shared });
    s.onRevoke = (x: HandheldSession, remote: boolean) => revokedOn[name].push({ id: x.id, remote });
    return s;
  }

  const open = (store: SessionStore, worker = 'w-1', device = 'hh-1') => store.create({ userId: `u-${worker}`, workerId: worker, deviceId: device, ttlS: TTL_S });

  beforeAll(async () => {
    db = await openDb({ url: 'memory://', dataDir: '' });
    for (const m of mobileMigrations) await m.up(db);
  });
  afterAll(() => db.close());

  beforeEach(async () => {
    await db.query('delete from handheld_sessions');
    t = Date.now();
    a = node('a');
    b = node('b');
    await Promise.all([a.load(), b.load()]);
    sent.a = sent.b = 0;
    revokedOn.a = [];
    revokedOn.b = [];
    gate = null;
    held = null;
  });

  it('serves a session opened on the other node after one read, and no more; the single process never reads', async () => {
    const solo = node('a', false);
    await solo.load();
    const { token, session } = await open(a);
    sent.a = 0;
    expect(await solo.check(token)).toBeNull();
    expect(sent.a).toBe(0);
    expect(sent.b).toBe(0);
    expect((await b.check(token))?.id).toBe(session.id);
    expect(sent.b).toBe(1);
    for (let i = 0; i < 5; i++) expect((await b.check(token))?.workerId).toBe('w-1');
    expect(sent.b).toBe(1);
  });

  it('reads a garbage token once until its miss is forgotten, and never takes a wrong secret', async () => {
    const { token } = await open(a);
    const unknown = token.replace(/^hs_[0-9a-f]{16}_/, 'hs_0123456789abcdef_');
    const [, id, secret] = /^hs_([0-9a-f]{16})_(.+)$/.exec(token)!;
    const wrong = `hs_${id}_${secret![0] === 'A' ? 'B' : 'A'}${secret!.slice(1)}`;
    await Promise.all(Array.from({ length: 20 }, () => b.check(unknown)));
    for (let i = 0; i < 20; i++) expect(await b.check(unknown)).toBeNull();
    expect(sent.b).toBe(1);
    t += 5_001;
    expect(await b.check(unknown)).toBeNull();
    expect(sent.b).toBe(2);
    // Malformed tokens never reach the database.
    for (const bad of ['hs_x', `${token}x`, `hs_${"'; drop table x; --".padEnd(16, 'x')}_${secret}`, '']) expect(await b.check(bad)).toBeNull();
    expect(sent.b).toBe(2);
    expect(await b.check(wrong)).toBeNull();
    expect(await b.check(wrong)).toBeNull();
    expect((await b.check(token))?.id).toBe(id);
  });

  it('ends the session on the other node when it hears of the revoke, and cuts its sockets there', async () => {
    const { token, session } = await open(a);
    expect(await b.check(token)).not.toBeNull();
    expect(await a.revoke(session.id, 'officer', 'lost')).not.toBeNull();
    expect(revokedOn.a).toEqual([{ id: session.id, remote: false }]);
    await b.refresh(session.id);
    expect(revokedOn.b).toEqual([{ id: session.id, remote: true }]);
    expect(await b.check(token)).toBeNull();
    // A second word of it changes nothing; nor does a word that it was created.
    await b.refresh(session.id);
    expect(await b.check(token)).toBeNull();
    expect(revokedOn.b).toHaveLength(1);
  });

  it('drops on the periodic re-read a session revoked without a word to this node', async () => {
    const { token, session } = await open(a);
    const other = await open(a, 'w-2', 'hh-2');
    expect(await b.check(token)).not.toBeNull();
    expect(await b.check(other.token)).not.toBeNull();
    await db.query("update handheld_sessions set revoked_at = now() where id = $1", [session.id]);
    expect(await b.resync()).toBe(1);
    expect(revokedOn.b).toEqual([{ id: session.id, remote: true }]);
    expect(await b.check(token)).toBeNull();
    expect(await b.check(other.token)).not.toBeNull();
  });

  it('refuses a fresh check of a session revoked without a word to this node, reading its row; the single process never reads', async () => {
    const { token, session } = await open(a);
    expect(await b.check(token)).not.toBeNull();
    sent.b = 0;
    // Held and active: a fresh check reads the row once per call, a plain one never.
    expect((await b.check(token, { fresh: true }))?.id).toBe(session.id);
    expect(sent.b).toBe(1);
    expect(await b.check(token)).not.toBeNull();
    expect(sent.b).toBe(1);
    await db.query("update handheld_sessions set revoked_at = now() where id = $1", [session.id]);
    // The memory copy still serves a plain check (until the re-read); a fresh one refuses and drops it, sockets cut.
    expect(await b.check(token)).not.toBeNull();
    expect(await b.check(token, { fresh: true })).toBeNull();
    expect(revokedOn.b).toEqual([{ id: session.id, remote: true }]);
    expect(await b.check(token)).toBeNull();
    // A wrong secret is refused before any read.
    const other = await open(a, 'w-2', 'hh-2');
    expect(await b.check(other.token)).not.toBeNull();
    sent.b = 0;
    expect(await b.check(`${other.token.slice(0, -1)}${other.token.endsWith('A') ? 'B' : 'A'}`, { fresh: true })).toBeNull();
    expect(sent.b).toBe(0);
    // One process: nothing else writes sessions, so a fresh check costs nothing.
    const solo = node('a', false);
    await solo.load();
    sent.a = 0;
    expect(await solo.check(other.token, { fresh: true })).not.toBeNull();
    expect(sent.a).toBe(0);
  });

  it('cuts the sockets of a session revoked without a word the first time its token reaches a node that did not hold it, then reads it no more', async () => {
    const { token, session } = await open(a);
    // B never heard of the session, nor of its revoke.
    await db.query("update handheld_sessions set revoked_at = now() where id = $1", [session.id]);
    expect(await b.check(token, { fresh: true })).toBeNull();
    expect(sent.b).toBe(1);
    // Its sockets, wherever they are, are cut as the lost announcement would have cut them.
    expect(revokedOn.b).toEqual([{ id: session.id, remote: true }]);
    // Known as revoked from then on: no read, no second cut.
    for (let i = 0; i < 3; i++) expect(await b.check(token)).toBeNull();
    t += 5_001;
    expect(await b.check(token, { fresh: true })).toBeNull();
    expect(sent.b).toBe(1);
    expect(revokedOn.b).toHaveLength(1);
    // An id the database does not know cuts nothing.
    expect(await b.check(token.replace(/^hs_[0-9a-f]{16}_/, 'hs_0123456789abcdef_'))).toBeNull();
    expect(revokedOn.b).toHaveLength(1);
  });

  it('does not take in a session whose read raced its revoke', async () => {
    const { token, session } = await open(a);
    let release!: () => void;
    gate = new Promise<void>((r) => (release = r));
    const reached = new Promise<void>((r) => (held = r));
    // B reads the row while it is active; the answer is held back...
    const pending = b.check(token);
    try {
      await Promise.race([reached, pending]);
      gate = null;
      // ... while the session is revoked and B hears of it.
      await a.revoke(session.id, 'officer', 'lost');
      await b.refresh(session.id);
    } finally {
      release();
    }
    expect(await pending).toBeNull();
    expect(await b.check(token)).toBeNull();
  });

  it('ends the session held by the other node when the worker signs in again, in the database', async () => {
    const first = await open(a);
    expect(await a.check(first.token)).not.toBeNull();
    const second = await open(b);
    const rows = await db.query<{ id: string }>('select id from handheld_sessions where revoked_at is null');
    expect(rows.map((r) => r.id)).toEqual([second.session.id]);
    // A hears only that the new session was created: it reads it back and drops the old one.
    await a.refresh(second.session.id);
    expect(await a.check(first.token)).toBeNull();
    expect(revokedOn.a).toEqual([{ id: first.session.id, remote: true }]);
    expect((await a.check(second.token))?.id).toBe(second.session.id);
  });

  it('revokes a user\'s and a handheld\'s sessions held by another node', async () => {
    const s1 = await open(a);
    const s2 = await open(a, 'w-2', 'hh-2');
    expect(await b.revokeUser('u-w-1', 'system', 'user disabled')).toBe(1);
    expect(await b.revokeDevice('hh-2', 'system', 'device disabled')).toBe(1);
    for (const s of [s1, s2]) await a.refresh(s.session.id);
    expect(await a.check(s1.token)).toBeNull();
    expect(await a.check(s2.token)).toBeNull();
  });
});
