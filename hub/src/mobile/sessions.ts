/**
 * Handheld sessions: the worker logs in with their own user; the hub answers
 * with an opaque token `hs_<id>_<secret>` bound to that worker and their
 * handheld. The app never sees the device secret. Active sessions are kept in
 * memory (one per handheld at most), so verifying a request costs a map
 * lookup and a SHA-256 (in a cluster, one primary-key read more: below).
 *
 * In a cluster (`shared`) a session may be opened or revoked on another
 * node. Every change is announced by id alone (`onChange`, carried between
 * nodes as `handheld.session` by cluster/index.ts); a node that hears of one
 * reads the row back (`refresh`) and never takes anything else from the
 * message. A token whose session this node does not hold yet (a request that
 * overtakes the announcement) is looked up in the database once; misses are
 * remembered briefly so garbage tokens do not reach the database on every
 * request. Revoked ids are remembered (bounded) so a read that raced a revoke
 * cannot bring the session back, and `resync` (every 5 s, and when Redis is
 * back) drops whatever the database no longer shows active. Every handheld
 * request and every app socket connect asks for a `fresh` check: the row is
 * read by primary key, so a revoke whose announcement was lost is refused
 * there at once, and the session's sockets are cut then (`onRevoke`;
 * index.ts cuts them on every node through the Socket.IO adapter), as its
 * announcement would have done.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { Errors } from '../core/errors.js';
import type { Db } from '../store/db.js';

export const MobileErrors = {
  notWorker: Errors.notAWorker,
  notBound: Errors.workerNotBound,
  sessionNotFound: Errors.sessionNotFound,
  taskNotFound: Errors.taskNotFound,
  reasonRequired: Errors.reasonRequired,
};

export interface HandheldSession {
  id: string;
  userId: string;
  workerId: string;
  deviceId: string;
  userAgent: string | null;
  createdAt: number;
  expiresAt: number;
  lastSeenAt: number | null;
  revokedAt: number | null;
  revokedBy: string | null;
  revokeReason: string | null;
}

/** A session opened or revoked on this node (`remote` unset) or, in a cluster, on another one. Only the id travels. */
export interface HandheldSessionChange {
  /** Absent: re-read every active session (the messages of a Redis outage may be lost). */
  sessionId?: string;
  remote?: boolean;
}

declare module '../core/bus.js' {
  interface EventMap {
    'handheld.session': HandheldSessionChange;
  }
}

interface Row {
  id: string;
  token_hash: string;
  user_id: string;
  worker_id: string;
  device_id: string;
  user_agent: string | null;
  created_at: Date | string;
  expires_at: Date | string;
  last_seen_at: Date | string | null;
  revoked_at: Date | string | null;
  revoked_by: string | null;
  revoke_reason: string | null;
}

const ms = (v: Date | string | null): number | null => (v === null ? null : new Date(v).getTime());
const toSession = (r: Row): HandheldSession => ({
  id: r.id, userId: r.user_id, workerId: r.worker_id, deviceId: r.device_id, userAgent: r.user_agent,
  createdAt: ms(r.created_at)!, expiresAt: ms(r.expires_at)!, lastSeenAt: ms(r.last_seen_at),
  revokedAt: ms(r.revoked_at), revokedBy: r.revoked_by, revokeReason: r.revoke_reason,
});
const sha256 = (s: string) => createHash('sha256').update(s).digest();

const TOKEN_RE = /^hs_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;
/** last_seen_at is written at most this often per session. */
const SEEN_EVERY_MS = 60_000;
/** Cluster: a session id the database did not show active is not looked up again for this long... */
const MISS_TTL_MS = 5_000;
/** ... and at most this many misses are remembered (the oldest go first). */
const MISS_MAX = 10_000;
/** Revoked ids remembered so a read that raced the revoke is not taken for an active session. */
const GONE_MAX = 50_000;
const ACTIVE = 'revoked_at is null and expires_at > to_timestamp($2 / 1000.0)';

type Held = HandheldSession & { hash: Buffer; seenWritten: number; gen: number };

export interface SessionStoreOptions {
  /** Other hub nodes open and revoke sessions too (cluster mode). */
  shared?: boolean;
}

export class SessionStore {
  /** Active (not revoked) sessions by id, with the token hash. */
  private readonly active = new Map<string, Held>();
  /**
   * Called with every session that stops being valid (revoked here, or on another node: `remote`, found by an
   * announcement, a re-read or a fresh check), once per node; its own sockets are cut then, no other session's.
   */
  onRevoke: ((s: HandheldSession, remote: boolean) => void) | null = null;
  /** Called with the id of every session opened or revoked on this node (announced to the other nodes). */
  onChange: ((sessionId: string) => void) | null = null;
  private readonly shared: boolean;
  /** Session ids the database did not show active, until when (cluster). */
  private readonly misses = new Map<string, number>();
  /** Revoked session ids (cluster): never active again. */
  private readonly gone = new Set<string>();
  /** Database look-ups in flight, one per id. */
  private readonly lookups = new Map<string, Promise<Held | null>>();
  /** Increases with every session taken into memory: a re-read drops only what it had in memory when it began. */
  private gen = 0;

  constructor(private readonly db: Db, private readonly now: () => number, opts: SessionStoreOptions = {}) {
    this.shared = opts.shared ?? false;
  }

  private hold(r: Row): Held {
    const h: Held = { ...toSession(r), hash: Buffer.from(r.token_hash, 'hex'), seenWritten: 0, gen: ++this.gen };
    this.active.set(r.id, h);
    this.misses.delete(r.id);
    return h;
  }

  private forget(id: string): void {
    this.active.delete(id);
    if (!this.shared) return;
    this.gone.add(id);
    if (this.gone.size > GONE_MAX) this.gone.delete(this.gone.values().next().value!);
  }

  async load(): Promise<void> {
    const rows = await this.db.query<Row>('select * from handheld_sessions where revoked_at is null and expires_at > to_timestamp($1 / 1000.0)', [this.now()]);
    this.active.clear();
    for (const r of rows) this.hold(r);
  }

  /**
   * Opens a session; any earlier session of the same handheld or worker is
   * revoked (one phone per handheld), in the database, so a session held by
   * another node goes too.
   */
  async create(input: { userId: string; workerId: string; deviceId: string; userAgent?: string | null; ttlS: number }): Promise<{ token: string; session: HandheldSession }> {
    // Out of memory at once: the very next request with the old token fails.
    const mine = [...this.active.values()].filter((s) => s.deviceId === input.deviceId || s.workerId === input.workerId);
    for (const s of mine) this.forget(s.id);
    const id = randomBytes(8).toString('hex');
    const secret = randomBytes(32).toString('base64url');
    const hash = sha256(secret);
    const at = this.now();
    const { replaced, row } = await this.db.tx(async (q) => {
      // Two logins of one worker on two nodes at once: one after the other, so one session is left.
      for (const key of [input.deviceId, input.workerId].sort()) await q.query('select pg_advisory_xact_lock(hashtext($1))', [`handheld_session:${key}`]);
      const replaced = await q.query<Row>(
        `update handheld_sessions set revoked_at = to_timestamp($3 / 1000.0), revoked_by = 'system', revoke_reason = 'replaced by a new login'
         where (device_id = $1 or worker_id = $2) and revoked_at is null returning *`,
        [input.deviceId, input.workerId, at],
      );
      const rows = await q.query<Row>(
        `insert into handheld_sessions (id, token_hash, user_id, worker_id, device_id, user_agent, created_at, expires_at)
         values ($1, $2, $3, $4, $5, $6, to_timestamp($7 / 1000.0), to_timestamp($8 / 1000.0)) returning *`,
        [id, hash.toString('hex'), input.userId, input.workerId, input.deviceId, input.userAgent?.slice(0, 300) ?? null, at, at + input.ttlS * 1000],
      );
      return { replaced, row: rows[0]! };
    });
    for (const r of replaced) this.revoked(r);
    const held = this.hold(row);
    held.seenWritten = at;
    this.onChange?.(id);
    const { hash: _h, seenWritten: _w, gen: _g, ...session } = held;
    return { token: `hs_${id}_${secret}`, session };
  }

  /** A session revoked here: out of memory, its sockets cut, the other nodes told. */
  private revoked(r: Row): HandheldSession {
    this.forget(r.id);
    const s = toSession(r);
    this.onRevoke?.(s, false);
    this.onChange?.(s.id);
    return s;
  }

  /**
   * The active session a token names, or null (wrong, expired or revoked).
   * `fresh` (cluster; every request and socket connect asks for it): a
   * session held in memory is also checked against its row, so a revoke made
   * on another node whose announcement was lost is honoured here at once;
   * without it, within one re-read (`resync`).
   */
  async check(token: string, opts: { fresh?: boolean } = {}): Promise<HandheldSession | null> {
    const m = TOKEN_RE.exec(token);
    if (!m) return null;
    let s = this.active.get(m[1]!);
    // A session read from the database just now is as fresh as a check would make it.
    let read = false;
    if (!s && this.shared) {
      s = (await this.lookup(m[1]!)) ?? undefined;
      read = true;
    }
    if (!s) return null;
    const hash = sha256(m[2]!);
    if (!timingSafeEqual(hash, s.hash)) return null;
    const at = this.now();
    if (s.expiresAt <= at) {
      this.active.delete(s.id);
      return null;
    }
    if (opts.fresh && this.shared && !read && !(await this.stillActive(s))) return null;
    s.lastSeenAt = at;
    if (at - s.seenWritten >= SEEN_EVERY_MS) {
      s.seenWritten = at;
      void this.db.query('update handheld_sessions set last_seen_at = to_timestamp($2 / 1000.0) where id = $1', [s.id, at]).catch(() => undefined);
    }
    const { hash: _h, seenWritten: _w, gen: _g, ...pub } = s;
    return pub;
  }

  /** Cluster: whether the row of a held session is still active; if not, it is dropped here as a remote revoke would drop it. */
  private async stillActive(s: Held): Promise<boolean> {
    const rows = await this.db.query<{ id: string }>(`select id from handheld_sessions where id = $1 and ${ACTIVE}`, [s.id, this.now()]);
    if (rows.length) return true;
    if (this.active.get(s.id) === s) {
      this.forget(s.id);
      const r = (await this.db.query<Row>('select * from handheld_sessions where id = $1', [s.id]))[0];
      this.onRevoke?.(r ? toSession(r) : s, true);
    }
    return false;
  }

  /** Cluster: a session this node has not heard of yet (opened on another node a moment ago), read once. */
  private lookup(id: string): Promise<Held | null> {
    if (this.gone.has(id)) return Promise.resolve(null);
    const miss = this.misses.get(id);
    if (miss !== undefined) {
      if (miss > this.now()) return Promise.resolve(null);
      this.misses.delete(id);
    }
    let p = this.lookups.get(id);
    if (!p) {
      p = this.read(id).finally(() => this.lookups.delete(id));
      this.lookups.set(id, p);
    }
    return p;
  }

  /**
   * The row of `id` taken into memory if the database shows it active; a miss is remembered briefly. A row
   * revoked that this node had not heard of (its announcement lost) is remembered as revoked, and its sockets
   * are cut wherever they are (`onRevoke`): the app's next request through any node ends its socket.
   */
  private async read(id: string): Promise<Held | null> {
    const r = (await this.db.query<Row & { active: boolean }>(`select *, (${ACTIVE}) as active from handheld_sessions where id = $1`, [id, this.now()]))[0];
    // Revoked while the row was on its way: a revoke is never undone.
    if (r?.active && !this.gone.has(id)) return this.active.get(id) ?? this.hold(r);
    if (r && r.revoked_at !== null && !this.gone.has(id)) {
      this.forget(id);
      this.onRevoke?.(toSession(r), true);
      return null;
    }
    this.misses.set(id, this.now() + MISS_TTL_MS);
    if (this.misses.size > MISS_MAX) this.misses.delete(this.misses.keys().next().value!);
    return null;
  }

  /**
   * Another node opened or revoked session `id`: its row decides. Revoked or
   * expired: dropped here and its sockets on this node cut. Active: held here,
   * and the other sessions of its handheld or worker that the database shows
   * revoked are dropped (one session per handheld).
   */
  async refresh(id: string): Promise<void> {
    const r = (await this.db.query<Row>('select * from handheld_sessions where id = $1', [id]))[0];
    const active = r && r.revoked_at === null && new Date(r.expires_at).getTime() > this.now();
    if (!active) {
      const held = this.active.get(id);
      if (r?.revoked_at != null || held) this.forget(id);
      if (held) this.onRevoke?.(r ? toSession(r) : held, true);
      return;
    }
    if (this.gone.has(id)) return;
    if (!this.active.has(id)) this.hold(r);
    const others = [...this.active.values()].filter((s) => s.id !== id && (s.deviceId === r.device_id || s.workerId === r.worker_id));
    if (others.length) await this.resync(others.map((s) => s.id));
  }

  /**
   * Drops the held sessions (all, or the given ids) that the database no
   * longer shows active. Only sessions held before the read began: one taken
   * in meanwhile may be newer than the read.
   */
  async resync(ids?: string[]): Promise<number> {
    const before = this.gen;
    const at = this.now();
    const want = ids ?? [...this.active.keys()];
    if (!want.length) return 0;
    const rows = await this.db.query<{ id: string }>(`select id from handheld_sessions where id = any($1::text[]) and ${ACTIVE}`, [want, at]);
    const still = new Set(rows.map((r) => r.id));
    let n = 0;
    for (const id of want) {
      const s = this.active.get(id);
      if (!s || s.gen > before || still.has(id)) continue;
      this.forget(id);
      this.onRevoke?.(s, true);
      n++;
    }
    return n;
  }

  /** Whether session `id` is held here as active (a session `check` just returned and no revoke dropped since). */
  holds(id: string): boolean {
    return this.active.has(id);
  }

  /** Throws TOKEN_INVALID unless the token names an active session. */
  async require(token: string | null, opts: { fresh?: boolean } = {}): Promise<HandheldSession> {
    const s = token ? await this.check(token, opts) : null;
    if (!s) throw Errors.tokenInvalid('handheld session is invalid, expired or revoked');
    return s;
  }

  async revoke(id: string, by: string, reason: string): Promise<HandheldSession | null> {
    const rows = await this.db.query<Row>(
      `update handheld_sessions set revoked_at = to_timestamp($2 / 1000.0), revoked_by = $3, revoke_reason = $4
       where id = $1 and revoked_at is null returning *`,
      [id, this.now(), by, reason.slice(0, 200)],
    );
    this.active.delete(id);
    return rows[0] ? this.revoked(rows[0]) : null;
  }

  /** Every active session of a handheld (disabled, deleted, new secret), in the database: those held by other nodes too. */
  async revokeDevice(deviceId: string, by: string, reason: string): Promise<number> {
    for (const s of [...this.active.values()]) if (s.deviceId === deviceId) this.forget(s.id);
    return this.revokeWhere('device_id', deviceId, by, reason);
  }

  /** Every active session of a user (disabled, deleted, new role or region, new password). */
  async revokeUser(userId: string, by: string, reason: string): Promise<number> {
    // Out of the active set at once, before the database hears of it: the very next request fails.
    for (const s of [...this.active.values()]) if (s.userId === userId) this.forget(s.id);
    return this.revokeWhere('user_id', userId, by, reason);
  }

  private async revokeWhere(column: 'device_id' | 'user_id', value: string, by: string, reason: string): Promise<number> {
    const rows = await this.db.query<Row>(
      `update handheld_sessions set revoked_at = to_timestamp($2 / 1000.0), revoked_by = $3, revoke_reason = $4
       where ${column} = $1 and revoked_at is null returning *`,
      [value, this.now(), by, reason.slice(0, 200)],
    );
    for (const r of rows) this.revoked(r);
    return rows.length;
  }

  async get(id: string): Promise<HandheldSession | null> {
    const r = (await this.db.query<Row>('select * from handheld_sessions where id = $1', [id]))[0];
    return r ? toSession(r) : null;
  }

  async list(f: { workerId?: string; activeOnly?: boolean; limit: number }): Promise<HandheldSession[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    if (f.workerId) {
      params.push(f.workerId);
      where.push(`worker_id = $${params.length}`);
    }
    if (f.activeOnly) {
      params.push(this.now());
      where.push(`revoked_at is null and expires_at > to_timestamp($${params.length} / 1000.0)`);
    }
    params.push(f.limit);
    const rows = await this.db.query<Row>(
      `select * from handheld_sessions ${where.length ? `where ${where.join(' and ')}` : ''} order by created_at desc limit $${params.length}`,
      params,
    );
    return rows.map(toSession);
  }
}
