/**
 * Users, roles, region scope, sessions and the one authorization rule.
 * REST and Socket.IO both verify tokens here. A user scoped to a region (a
 * grid id at any level) sees and acts on nothing outside it; the grid
 * hierarchy that decides "inside" is plugged in by the grids module
 * (RegionResolver).
 *
 * Sessions are revocable: every token carries the user's token version
 * (`tv`), and every request and socket checks it, and the user's current
 * role, region and enabled flag, against the user table (cached here; the
 * cache is written through by every lifecycle change). Disabling, deleting,
 * resetting the password or changing the role or region bumps the version:
 * every token issued before stops working at once, and listeners
 * (`onUserChanged`) drop open sockets.
 */
import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import { ROLES, type Role, type User } from '@gridlink/devices/contract';
import { createSigner, createVerifier } from 'fast-jwt';
import type { Config } from '../core/config.js';
import { Errors, GridError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { hashSecret, loadKeyFile, verifySecret } from '../core/secrets.js';
import type { Db } from '../store/db.js';
import { assertPasswordPolicy } from './passwords.js';
import { assertCanWrite, GLOBAL, regionContains, type Target } from './policy.js';
import { Limiter, Throttle } from './throttle.js';

export { GLOBAL, PolicyErrors, type Place, type Target } from './policy.js';
export { assertPasswordPolicy } from './passwords.js';

// Roles and the user as REST returns it are the contract's (CONTRACT 5).
export { ROLES, type Role, type User } from '@gridlink/devices/contract';

/** The claims carried by a token and attached to every authenticated request / socket. */
export interface Principal {
  sub: string;
  username: string;
  role: Role;
  regionId: string | null;
  exp: number;
  /** Token version: must equal the user's current one. */
  tv?: number;
}

export interface RegionResolver {
  /** True when `gridId` lies inside `regionId` (same grid or a descendant). */
  contains(regionId: string, gridId: string | null | undefined): boolean;
}

/** Until grids are loaded a region contains only itself. */
export const exactRegion: RegionResolver = { contains: (r, g) => g === r };

export type UserChange = 'updated' | 'disabled' | 'enabled' | 'deleted' | 'password' | 'revoked';

export interface UserPatch {
  role?: Role;
  regionId?: string | null;
  displayName?: string;
  enabled?: boolean;
}

export interface Auth {
  start(): Promise<void>;
  stop(): Promise<void>;
  /** `address` is the client address (throttling); absent for internal callers. */
  login(username: string, password: string, address?: string): Promise<{ token: string; user: User }>;
  /** Checks signature, expiry and the user's current state; the principal carries the current role and region. */
  verify(token: string): Principal;
  sign(user: User & { tokenVersion?: number }): string;
  /** A token for one media URL path (an <img>/<video> src), valid for `ttlS` seconds. */
  signMedia(p: Principal, path: string, ttlS?: number): { token: string; expiresAt: number };
  verifyMedia(token: string, path: string): Principal;
  createUser(input: { username: string; password: string; role: Role; regionId?: string | null; displayName?: string }): Promise<User>;
  listUsers(): Promise<User[]>;
  getUser(id: string): Promise<User | undefined>;
  updateUser(id: string, patch: UserPatch, by: Principal): Promise<User>;
  setPassword(id: string, password: string): Promise<void>;
  deleteUser(id: string, by: Principal): Promise<void>;
  /** Ends every session of the user (logout everywhere). */
  revoke(id: string): Promise<void>;
  onUserChanged(listener: (userId: string, change: UserChange) => void): () => void;
  /** May this principal see an object in grid `gridId`? Unscoped users see everything. */
  canSee(p: Pick<Principal, 'regionId'>, gridId: string | null | undefined): boolean;
  /** True when the principal's region contains the target (see policy.ts). */
  contains(p: Pick<Principal, 'regionId'>, t: Target): boolean;
  /**
   * The one write rule: the caller's region must contain the object as it is
   * (`before`, else `notFound()`) and as it will be (`after`, else 403
   * OUTSIDE_REGION); GLOBAL needs a user without a region (403 CITY_SCOPE_REQUIRED).
   */
  assertCanWrite(p: Pick<Principal, 'regionId'>, before: Target, after: Target, notFound?: () => GridError, what?: string): void;
  setRegionResolver(r: RegionResolver): void;
  readonly regions: RegionResolver;
  /** Password hashing currently running / most ever at once (bounded; see Limiter). */
  readonly hashing: { running: number; peak: number };
}

interface UserRow {
  id: string;
  username: string;
  password_hash: string;
  role: Role;
  region_id: string | null;
  display_name: string;
  enabled: boolean;
  token_version: number | null;
}

const toUser = (r: UserRow): User => ({ id: r.id, username: r.username, role: r.role, regionId: r.region_id, displayName: r.display_name, enabled: r.enabled });

/** How often the user table is read back (revocations made by another hub process reach this one within it). */
const RELOAD_MS = 5_000;

/** A well-formed scrypt hash of nothing: unknown users cost the same as known ones. */
const DUMMY_HASH = 'scrypt$32768$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=';

export const AuthErrors = {
  revoked: () => Errors.tokenRevoked('This session has ended; log in again'),
  throttled: (retryAfterMs: number) => Errors.loginThrottled('Too many failed logins; try again later', { retryAfterS: Math.ceil(retryAfterMs / 1000) }),
  busy: () => Errors.loginBusy('Too many logins at once; try again shortly'),
  userNotFound: () => Errors.userNotFound('User not found'),
  lastAdmin: () => Errors.lastAdmin('The last enabled admin without a region cannot be removed, disabled or demoted'),
  self: () => Errors.selfChange('Use another admin account to disable, delete or demote yourself'),
};

function jwtSecret(config: Config): string {
  if (config.jwtSecret) return config.jwtSecret;
  // Kept with the data so tokens survive a restart.
  return loadKeyFile(config.dataDir, 'jwt.key', !config.databaseUrl?.startsWith('memory://')).toString('hex');
}

/**
 * The grid ids a list may show a caller: the asked grid (which must lie in
 * the caller's region, else GRID_NOT_FOUND: another region's grid does not
 * exist for them) or the caller's region, each with everything below it;
 * null means everything (an unscoped caller who asked for no grid).
 */
export function regionScope(
  auth: Pick<Auth, 'canSee'>,
  p: Pick<Principal, 'regionId'>,
  gridId: string | undefined,
  grids: { has(id: string): boolean; descendants(id: string): string[] } | undefined,
): string[] | null {
  const expand = (id: string) => (grids?.has(id) ? grids.descendants(id) : [id]);
  if (gridId) {
    if (!auth.canSee(p, gridId)) throw Errors.gridNotFound();
    return expand(gridId);
  }
  return p.regionId ? expand(p.regionId) : null;
}

export function createAuth(deps: { db: Db; config: Config; logger: Logger; now?: () => number }): Auth {
  const { db, config, logger } = deps;
  const now = deps.now ?? Date.now;
  const key = jwtSecret(config);
  // Media tokens use a derived key: one can never pass for the other.
  const mediaKey = createHmac('sha256', key).update('gridlink/media-token').digest('hex');
  const signer = createSigner({ key, algorithm: 'HS256', expiresIn: config.tokenTtlS * 1000 });
  const verifier = createVerifier({ key, algorithms: ['HS256'], requiredClaims: ['exp', 'sub'], cache: 1000 });
  const mediaSigner = createSigner({ key: mediaKey, algorithm: 'HS256' });
  const mediaVerifier = createVerifier({ key: mediaKey, algorithms: ['HS256'], requiredClaims: ['exp', 'sub', 'res'] });
  let regions: RegionResolver = exactRegion;
  const listeners = new Set<(userId: string, change: UserChange) => void>();
  /**
   * Users by id: loaded at start and written through by every change here,
   * so `verify` stays synchronous. A user missing from it does not exist.
   */
  const users = new Map<string, UserRow>();
  let reloadTimer: NodeJS.Timeout | null = null;
  const accounts = new Throttle({ free: 5, baseDelayMs: 1_000, maxDelayMs: 15 * 60_000, windowMs: 15 * 60_000 }, now);
  const addresses = new Throttle({ free: 20, baseDelayMs: 1_000, maxDelayMs: 15 * 60_000, windowMs: 15 * 60_000 }, now);
  // libuv has 4 threads by default; password hashing (32 MiB scrypt) may take at most 2 of them.
  const hashing = new Limiter(2, 32);
  const hash = (s: string) => hashing.run(() => hashSecret(s), AuthErrors.busy);

  const contains = (r: string, g: string) => regions.contains(r, g);
  const sign = (u: User & { tokenVersion?: number }) => {
    // Trusted code may mint a token for a row it wrote itself (seeds, tests): the user is known from then on.
    if (!users.has(u.id)) {
      users.set(u.id, { id: u.id, username: u.username, password_hash: '', role: u.role, region_id: u.regionId, display_name: u.displayName, enabled: u.enabled ?? true, token_version: u.tokenVersion ?? 0 });
    }
    return signer({ sub: u.id, username: u.username, role: u.role, regionId: u.regionId, tv: users.get(u.id)!.token_version ?? 0 });
  };

  async function row(id: string): Promise<UserRow | undefined> {
    const r = (await db.query<UserRow>('select * from users where id = $1', [id]))[0];
    if (r) users.set(r.id, { ...r, token_version: r.token_version ?? 0 });
    else users.delete(id);
    return r;
  }

  function emit(id: string, change: UserChange): void {
    for (const l of listeners) {
      try {
        l(id, change);
      } catch (err) {
        logger.error({ err }, 'user change listener failed');
      }
    }
  }

  /** The principal of a verified token as the user is now. */
  function current(claims: { sub: string; tv?: number; exp: number }): Principal {
    const r = users.get(claims.sub);
    if (!r || !r.enabled || (claims.tv ?? 0) !== (r.token_version ?? 0)) throw AuthErrors.revoked();
    return { sub: r.id, username: r.username, role: r.role, regionId: r.region_id, exp: claims.exp, tv: r.token_version ?? 0 };
  }

  async function createUser(input: { username: string; password: string; role: Role; regionId?: string | null; displayName?: string }): Promise<User> {
    if (!ROLES.includes(input.role)) throw Errors.validation(`role must be one of ${ROLES.join(', ')}`);
    assertPasswordPolicy(input.password, input.username);
    const h = await hash(input.password);
    const rows = await db.query<UserRow>(
      `insert into users (id, username, password_hash, role, region_id, display_name) values ($1, $2, $3, $4, $5, $6)
       on conflict (username) do nothing returning *`,
      [randomUUID(), input.username, h, input.role, input.regionId ?? null, input.displayName ?? input.username],
    );
    if (!rows[0]) throw Errors.userExists(`user ${input.username} already exists`);
    users.set(rows[0].id, { ...rows[0], token_version: rows[0].token_version ?? 0 });
    return toUser(rows[0]);
  }

  /** The admins that keep the hub manageable: enabled, no region. */
  async function cityAdmins(): Promise<number> {
    const r = await db.query<{ n: number }>("select count(*)::int as n from users where role = 'admin' and enabled and region_id is null");
    return r[0]?.n ?? 0;
  }

  /**
   * Reads the user table back: other hub processes (a cluster) change users
   * too. A user whose access changed elsewhere is announced here as well, so
   * this process's sockets of that user drop within one interval.
   */
  async function reload(): Promise<void> {
    const rows = await db.query<UserRow>('select * from users');
    const seen = new Set<string>();
    for (const r of rows) {
      seen.add(r.id);
      const cur = users.get(r.id);
      users.set(r.id, { ...r, token_version: r.token_version ?? 0 });
      if (cur && cur.password_hash !== '' && ((cur.token_version ?? 0) !== (r.token_version ?? 0) || cur.enabled !== r.enabled || cur.role !== r.role || cur.region_id !== r.region_id)) {
        emit(r.id, r.enabled ? 'updated' : 'disabled');
      }
    }
    for (const [id, u] of [...users]) {
      // Users known only from a token minted in-process (sign) have no row to compare with.
      if (seen.has(id) || u.password_hash === '') continue;
      users.delete(id);
      emit(id, 'deleted');
    }
  }

  async function bump(id: string): Promise<void> {
    const r = await db.query<UserRow>('update users set token_version = coalesce(token_version, 0) + 1 where id = $1 returning *', [id]);
    if (r[0]) users.set(id, r[0]);
  }

  return {
    async start() {
      await db.query('alter table users add column if not exists token_version integer not null default 0');
      for (const r of await db.query<UserRow>('select * from users')) users.set(r.id, r);
      reloadTimer = setInterval(() => void reload().catch((err) => logger.warn({ err: (err as Error).message }, 'could not read users back')), RELOAD_MS);
      reloadTimer.unref();
      const admins = await db.query<{ n: number }>("select count(*)::int as n from users where role = 'admin'");
      if ((admins[0]?.n ?? 0) > 0) return;
      const password = config.adminPassword ?? randomBytes(12).toString('base64url');
      await createUser({ username: 'admin', password, role: 'admin', displayName: '管理员' });
      if (!config.adminPassword) {
        // Printed once, on purpose, outside the JSON log so an operator sees it.
        process.stdout.write(`\nGridLink bootstrap admin created: username "admin", password "${password}" (shown once)\n\n`);
      }
      logger.info('bootstrap admin created');
    },
    async stop() {
      if (reloadTimer) clearInterval(reloadTimer);
      reloadTimer = null;
    },
    async login(username, password, address) {
      const accountKey = `u:${username.toLowerCase()}`;
      const addressKey = address ? `a:${address}` : null;
      const wait = Math.max(accounts.retryAfter(accountKey), addressKey ? addresses.retryAfter(addressKey) : 0);
      // Refused before any hashing: a locked account costs nothing.
      if (wait > 0) throw AuthErrors.throttled(wait);
      const r = (await db.query<UserRow>('select * from users where username = $1', [username]))[0];
      // Hash even for an unknown user so timing does not reveal which usernames exist.
      const ok = await hashing.run(() => verifySecret(password, r?.password_hash ?? DUMMY_HASH), AuthErrors.busy);
      if (!r || !ok || !r.enabled) {
        accounts.fail(accountKey);
        if (addressKey) addresses.fail(addressKey);
        throw Errors.badCredentials();
      }
      accounts.reset(accountKey);
      users.set(r.id, r);
      const user = toUser(r);
      return { token: sign({ ...user, tokenVersion: r.token_version ?? 0 }), user };
    },
    verify(token) {
      let claims: { sub: string; tv?: number; exp: number; res?: unknown };
      try {
        claims = verifier(token);
      } catch {
        throw Errors.tokenInvalid();
      }
      return current(claims);
    },
    sign,
    signMedia(p, path, ttlS = 600) {
      // JWT expiry is checked against the wall clock (fast-jwt), so it is set from it too.
      const exp = Math.floor(Date.now() / 1000) + ttlS;
      return { token: mediaSigner({ sub: p.sub, tv: p.tv ?? 0, res: path, exp }), expiresAt: exp * 1000 };
    },
    verifyMedia(token, path) {
      let claims: { sub: string; tv?: number; exp: number; res: string };
      try {
        claims = mediaVerifier(token);
      } catch {
        throw Errors.tokenInvalid('media token is invalid or expired');
      }
      if (claims.res !== path) throw Errors.tokenInvalid('media token is for another resource');
      return current(claims);
    },
    createUser,
    async listUsers() {
      return (await db.query<UserRow>('select * from users order by username')).map(toUser);
    },
    async getUser(id) {
      const r = await row(id);
      return r && toUser(r);
    },
    async updateUser(id, patch, by) {
      const r = await row(id);
      if (!r) throw AuthErrors.userNotFound();
      if (patch.role !== undefined && !ROLES.includes(patch.role)) throw Errors.validation(`role must be one of ${ROLES.join(', ')}`);
      const next = {
        role: patch.role ?? r.role,
        region_id: patch.regionId === undefined ? r.region_id : patch.regionId,
        display_name: patch.displayName ?? r.display_name,
        enabled: patch.enabled ?? r.enabled,
      };
      const demotes = r.role === 'admin' && r.enabled && r.region_id === null && (next.role !== 'admin' || !next.enabled || next.region_id !== null);
      if (demotes && id === by.sub) throw AuthErrors.self();
      if (demotes && (await cityAdmins()) <= 1) throw AuthErrors.lastAdmin();
      const access = next.role !== r.role || next.region_id !== r.region_id || next.enabled !== r.enabled;
      const rows = await db.query<UserRow>(
        `update users set role = $2, region_id = $3, display_name = $4, enabled = $5,
           token_version = coalesce(token_version, 0) + $6 where id = $1 returning *`,
        [id, next.role, next.region_id, next.display_name, next.enabled, access ? 1 : 0],
      );
      users.set(id, rows[0]!);
      if (access) emit(id, next.enabled !== r.enabled ? (next.enabled ? 'enabled' : 'disabled') : 'updated');
      return toUser(rows[0]!);
    },
    async setPassword(id, password) {
      const r = await row(id);
      if (!r) throw AuthErrors.userNotFound();
      assertPasswordPolicy(password, r.username);
      const h = await hash(password);
      const rows = await db.query<UserRow>('update users set password_hash = $2, token_version = coalesce(token_version, 0) + 1 where id = $1 returning *', [id, h]);
      users.set(id, rows[0]!);
      accounts.reset(`u:${r.username.toLowerCase()}`);
      emit(id, 'password');
    },
    async deleteUser(id, by) {
      const r = await row(id);
      if (!r) throw AuthErrors.userNotFound();
      if (id === by.sub) throw AuthErrors.self();
      if (r.role === 'admin' && r.enabled && r.region_id === null && (await cityAdmins()) <= 1) throw AuthErrors.lastAdmin();
      await db.query('delete from users where id = $1', [id]);
      users.delete(id);
      emit(id, 'deleted');
    },
    async revoke(id) {
      await bump(id);
      emit(id, 'revoked');
    },
    onUserChanged(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    canSee: (p, gridId) => !p.regionId || regions.contains(p.regionId, gridId),
    contains: (p, t) => regionContains(contains, p.regionId, t),
    assertCanWrite(p, before, after, notFound = () => Errors.notFound(), what) {
      assertCanWrite(contains, p.regionId, before, after, notFound, what);
    },
    setRegionResolver(r) {
      regions = r;
    },
    get regions() {
      return regions;
    },
    get hashing() {
      return { running: hashing.running, peak: hashing.peak };
    },
  };
}
