/**
 * Handheld sessions: the worker logs in with their own user; the hub answers
 * with an opaque token `hs_<id>_<secret>` bound to that worker and their
 * handheld. The app never sees the device secret. Active sessions are kept in
 * memory (one per handheld at most), so verifying a request costs a map
 * lookup and a SHA-256.
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

export class SessionStore {
  /** Active (not revoked) sessions by id, with the token hash. */
  private readonly active = new Map<string, HandheldSession & { hash: Buffer; seenWritten: number }>();
  /** Called with every session that stops being valid (revoked). */
  onRevoke: ((s: HandheldSession) => void) | null = null;

  constructor(private readonly db: Db, private readonly now: () => number) {}

  async load(): Promise<void> {
    const rows = await this.db.query<Row>('select * from handheld_sessions where revoked_at is null and expires_at > to_timestamp($1 / 1000.0)', [this.now()]);
    this.active.clear();
    for (const r of rows) this.active.set(r.id, { ...toSession(r), hash: Buffer.from(r.token_hash, 'hex'), seenWritten: 0 });
  }

  /** Opens a session; any earlier session of the same handheld is revoked (one phone per handheld). */
  async create(input: { userId: string; workerId: string; deviceId: string; userAgent?: string | null; ttlS: number }): Promise<{ token: string; session: HandheldSession }> {
    for (const s of [...this.active.values()]) if (s.deviceId === input.deviceId || s.workerId === input.workerId) await this.revoke(s.id, 'system', 'replaced by a new login');
    const id = randomBytes(8).toString('hex');
    const secret = randomBytes(32).toString('base64url');
    const hash = sha256(secret);
    const at = this.now();
    const rows = await this.db.query<Row>(
      `insert into handheld_sessions (id, token_hash, user_id, worker_id, device_id, user_agent, created_at, expires_at)
       values ($1, $2, $3, $4, $5, $6, to_timestamp($7 / 1000.0), to_timestamp($8 / 1000.0)) returning *`,
      [id, hash.toString('hex'), input.userId, input.workerId, input.deviceId, input.userAgent?.slice(0, 300) ?? null, at, at + input.ttlS * 1000],
    );
    const session = toSession(rows[0]!);
    this.active.set(id, { ...session, hash, seenWritten: at });
    return { token: `hs_${id}_${secret}`, session };
  }

  /** The active session a token names, or null (wrong, expired or revoked). */
  check(token: string): HandheldSession | null {
    const m = TOKEN_RE.exec(token);
    if (!m) return null;
    const s = this.active.get(m[1]!);
    if (!s) return null;
    const hash = sha256(m[2]!);
    if (!timingSafeEqual(hash, s.hash)) return null;
    const at = this.now();
    if (s.expiresAt <= at) {
      this.active.delete(s.id);
      return null;
    }
    s.lastSeenAt = at;
    if (at - s.seenWritten >= SEEN_EVERY_MS) {
      s.seenWritten = at;
      void this.db.query('update handheld_sessions set last_seen_at = to_timestamp($2 / 1000.0) where id = $1', [s.id, at]).catch(() => undefined);
    }
    const { hash: _h, seenWritten: _w, ...pub } = s;
    return pub;
  }

  /** Throws TOKEN_INVALID unless the token names an active session. */
  require(token: string | null): HandheldSession {
    const s = token ? this.check(token) : null;
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
    const s = rows[0] ? toSession(rows[0]) : null;
    if (s) this.onRevoke?.(s);
    return s;
  }

  async revokeDevice(deviceId: string, by: string, reason: string): Promise<number> {
    let n = 0;
    for (const s of [...this.active.values()]) if (s.deviceId === deviceId && (await this.revoke(s.id, by, reason))) n++;
    return n;
  }

  /** Every active session of a user (disabled, deleted, new role or region, new password). */
  async revokeUser(userId: string, by: string, reason: string): Promise<number> {
    const mine = [...this.active.values()].filter((s) => s.userId === userId);
    // Out of the active set at once, before the database hears of it: the very next request fails.
    for (const s of mine) this.active.delete(s.id);
    let n = 0;
    for (const s of mine) if (await this.revoke(s.id, by, reason)) n++;
    return n;
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
