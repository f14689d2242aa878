/**
 * Users, roles, region scope and access tokens. REST and Socket.IO both
 * verify tokens here. A user scoped to a region (a grid id at any level)
 * sees and acts on nothing outside it; the grid hierarchy that decides
 * "inside" is plugged in by the grids module (RegionResolver).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { createSigner, createVerifier } from 'fast-jwt';
import type { Config } from '../core/config.js';
import { Errors } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { hashSecret, loadKeyFile, verifySecret } from '../core/secrets.js';
import type { Db } from '../store/db.js';

export const ROLES = ['admin', 'officer', 'dispatcher', 'worker', 'integrator'] as const;
export type Role = (typeof ROLES)[number];

export interface User {
  id: string;
  username: string;
  role: Role;
  regionId: string | null;
  displayName: string;
  /** For role `worker`: the worker record this user acts as (set by dispatch). */
  workerId?: string | null;
}

/** The claims carried by a token and attached to every authenticated request / socket. */
export interface Principal {
  sub: string;
  username: string;
  role: Role;
  regionId: string | null;
  exp: number;
}

export interface RegionResolver {
  /** True when `gridId` lies inside `regionId` (same grid or a descendant). */
  contains(regionId: string, gridId: string | null | undefined): boolean;
}

/** Until grids are loaded a region contains only itself. */
export const exactRegion: RegionResolver = { contains: (r, g) => g === r };

export interface Auth {
  start(): Promise<void>;
  stop(): Promise<void>;
  login(username: string, password: string): Promise<{ token: string; user: User }>;
  verify(token: string): Principal;
  sign(user: User): string;
  createUser(input: { username: string; password: string; role: Role; regionId?: string | null; displayName?: string }): Promise<User>;
  listUsers(): Promise<User[]>;
  /** May this principal see an object in grid `gridId`? Unscoped users see everything. */
  canSee(p: Pick<Principal, 'regionId'>, gridId: string | null | undefined): boolean;
  setRegionResolver(r: RegionResolver): void;
  readonly regions: RegionResolver;
}

interface UserRow {
  id: string;
  username: string;
  password_hash: string;
  role: Role;
  region_id: string | null;
  display_name: string;
  enabled: boolean;
}

const toUser = (r: UserRow): User => ({ id: r.id, username: r.username, role: r.role, regionId: r.region_id, displayName: r.display_name });

function jwtSecret(config: Config): string {
  if (config.jwtSecret) return config.jwtSecret;
  // Kept with the data so tokens survive a restart.
  return loadKeyFile(config.dataDir, 'jwt.key', !config.databaseUrl?.startsWith('memory://')).toString('hex');
}

export function createAuth(deps: { db: Db; config: Config; logger: Logger }): Auth {
  const { db, config, logger } = deps;
  const key = jwtSecret(config);
  const signer = createSigner({ key, algorithm: 'HS256', expiresIn: config.tokenTtlS * 1000 });
  const verifier = createVerifier({ key, algorithms: ['HS256'], cache: 1000 });
  let regions: RegionResolver = exactRegion;

  const sign = (u: User) => signer({ sub: u.id, username: u.username, role: u.role, regionId: u.regionId });

  async function createUser(input: { username: string; password: string; role: Role; regionId?: string | null; displayName?: string }): Promise<User> {
    if (!ROLES.includes(input.role)) throw Errors.validation(`role must be one of ${ROLES.join(', ')}`);
    if (input.password.length < 8) throw Errors.validation('password must have at least 8 characters');
    const hash = await hashSecret(input.password);
    const rows = await db.query<UserRow>(
      `insert into users (id, username, password_hash, role, region_id, display_name) values ($1, $2, $3, $4, $5, $6)
       on conflict (username) do nothing returning *`,
      [randomUUID(), input.username, hash, input.role, input.regionId ?? null, input.displayName ?? input.username],
    );
    if (!rows[0]) throw Errors.userExists(`user ${input.username} already exists`);
    return toUser(rows[0]);
  }

  return {
    async start() {
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
    async stop() {},
    async login(username, password) {
      const rows = await db.query<UserRow>('select * from users where username = $1', [username]);
      const row = rows[0];
      // Hash even for an unknown user so timing does not reveal which usernames exist.
      const ok = await verifySecret(password, row?.password_hash ?? 'scrypt$32768$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=');
      if (!row || !ok || !row.enabled) throw Errors.badCredentials();
      const user = toUser(row);
      return { token: sign(user), user };
    },
    verify(token) {
      try {
        return verifier(token) as Principal;
      } catch {
        throw Errors.tokenInvalid();
      }
    },
    sign,
    createUser,
    async listUsers() {
      return (await db.query<UserRow>('select * from users order by username')).map(toUser);
    },
    canSee: (p, gridId) => !p.regionId || regions.contains(p.regionId, gridId),
    setRegionResolver(r) {
      regions = r;
    },
    get regions() {
      return regions;
    },
  };
}
