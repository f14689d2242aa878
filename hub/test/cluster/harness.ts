/**
 * Cluster test harness: a real redis-server on a free port, a database of its
 * own on the PostgreSQL of TEST_DATABASE_URL, and real hub processes
 * (hub/src/main.ts) started with GRIDLINK_REDIS_URL.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { districtGrids } from '../cases/fixtures.js';
import { REQUIRE_ALL, PG_URL, until } from '../helpers.js';

export const root = path.resolve(import.meta.dirname, '../../..');
export const HAS_REDIS = spawnSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' }).status === 0;
/** Runs when redis-server and PostgreSQL are here; with GRIDLINK_REQUIRE_ALL=1 a missing one fails the file. */
export const RUN_CLUSTER = (HAS_REDIS && !!PG_URL) || REQUIRE_ALL;
export const ADMIN_PASSWORD = 'admin-pass-123';

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

export interface RedisServer {
  url: string;
  port: number;
  /** Stops redis-server (SIGTERM; with append-only on it flushes its file first); `start` brings it back. */
  halt(): Promise<void>;
  /** Starts redis-server again on the same port and directory. */
  start(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * A redis-server on a free port. `appendonly: true` keeps its data in an
 * append-only file (fsync every write) so a restart finds sessions and
 * streams again, as a production Redis configured for the hub would.
 */
export async function startRedis(opts: { appendonly?: boolean } = {}): Promise<RedisServer> {
  if (!HAS_REDIS) throw new Error('redis-server is not installed (apt-get install redis-server)');
  const port = await freePort();
  const dir = mkdtempSync(path.join(tmpdir(), 'gridlink-redis-'));
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--dir', dir,
    ...(opts.appendonly ? ['--appendonly', 'yes', '--appendfsync', 'always'] : ['--appendonly', 'no'])];
  let proc: ChildProcess | null = null;
  const launch = async () => {
    const p = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    proc = p;
    let out = '';
    await new Promise<void>((resolve, reject) => {
      p.stdout!.on('data', (b: Buffer) => {
        out += b.toString();
        if (out.includes('Ready to accept connections')) resolve();
      });
      p.once('exit', (code) => reject(new Error(`redis-server exited ${code}: ${out}`)));
    });
  };
  const halt = async () => {
    const p = proc;
    if (p && p.exitCode === null && p.signalCode === null) {
      const gone = new Promise((r) => p.once('exit', r));
      p.kill('SIGTERM');
      await gone;
    }
    proc = null;
  };
  await launch();
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    halt,
    start: launch,
    async stop() {
      await halt();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface TestDatabase {
  url: string;
  query<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>;
  drop(): Promise<void>;
}

/** A database of its own, created from TEST_DATABASE_URL and dropped at the end. */
export async function createDatabase(): Promise<TestDatabase> {
  if (!PG_URL) throw new Error('TEST_DATABASE_URL is not set');
  const name = `gridlink_cluster_${randomBytes(5).toString('hex')}`;
  const admin = new pg.Client({ connectionString: PG_URL });
  await admin.connect();
  await admin.query(`create database ${name}`);
  await admin.end();
  const u = new URL(PG_URL);
  u.pathname = `/${name}`;
  const url = u.toString();
  const pool = new pg.Pool({ connectionString: url, max: 2 });
  return {
    url,
    query: async <T>(sql: string, params?: unknown[]) => (await pool.query(sql, params)).rows as T[],
    async drop() {
      await pool.end();
      const c = new pg.Client({ connectionString: PG_URL });
      await c.connect();
      await c.query(`drop database if exists ${name} with (force)`);
      await c.end();
    },
  };
}

export interface HubNode {
  id: string;
  child: ChildProcess;
  http: string;
  mqttPort: number;
  output(): string;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/** Environment shared by every node of one test cluster. */
export function clusterEnv(redisUrl: string, databaseUrl: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    GRIDLINK_REDIS_URL: redisUrl,
    DATABASE_URL: databaseUrl,
    GRIDLINK_JWT_SECRET: randomBytes(32).toString('hex'),
    GRIDLINK_ADMIN_PASSWORD: ADMIN_PASSWORD,
    GRIDLINK_HOST: '127.0.0.1',
    GRIDLINK_HTTP_PORT: '0',
    GRIDLINK_MQTT_PORT: '0',
    GRIDLINK_LOG_LEVEL: 'warn',
    GRIDLINK_LEASE_TTL_MS: '3000',
    ...extra,
  };
}

/** Starts hub/src/main.ts as node `id`; resolves once it prints its ports. */
export async function startNode(id: string, env: Record<string, string>): Promise<HubNode> {
  const dir = mkdtempSync(path.join(tmpdir(), `gridlink-${id}-`));
  const child = spawn(process.execPath, ['--import', 'tsx', 'hub/src/main.ts'], {
    cwd: root,
    env: { ...process.env, GRIDLINK_DATA_DIR: dir, GRIDLINK_NODE_ID: id, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let stdout = '';
  const ports = await new Promise<{ http: number; mqtt: number }>((resolve, reject) => {
    child.stdout!.on('data', (b: Buffer) => {
      out += b.toString();
      stdout += b.toString();
      // Only whole lines: a chunk may end in the middle of the one with the ports.
      const lines = stdout.split('\n');
      stdout = lines.pop()!;
      for (const line of lines) if (line.startsWith('{"msg":"listening"')) resolve(JSON.parse(line));
    });
    child.stderr!.on('data', (b: Buffer) => (out += b.toString()));
    child.once('exit', (code, signal) => reject(new Error(`node ${id} exited ${code ?? signal}: ${out.slice(-4000)}`)));
  });
  child.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  return {
    id, child, http: `http://127.0.0.1:${ports.http}`, mqttPort: ports.mqtt,
    output: () => out,
    async kill(signal = 'SIGKILL') {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const gone = new Promise((r) => child.once('exit', r));
      child.kill(signal);
      await gone;
    },
  };
}

/** How long a request or a PUBACK may take before a test names it as hung (far above any wait seen on a loaded machine). */
export const HANG_GUARD_MS = 90_000;

/** `p`, or an error naming `what` if it has not settled after HANG_GUARD_MS: a hang guard, not a deadline. */
export function guard<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: nothing after ${HANG_GUARD_MS / 1000} s`)), HANG_GUARD_MS)));
  return Promise.race([p, hung]).finally(() => clearTimeout(timer));
}

export async function api<T = any>(base: string, method: string, p: string, body?: unknown, token?: string): Promise<{ status: number; body: T }> {
  const headers: Record<string, string> = {};
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (token) headers.authorization = `Bearer ${token}`;
  // A hang guard, not a deadline: a node that never answers fails the test by name instead of running into its limit.
  const r = await fetch(`${base}/api/v1${p}`, { method, headers, signal: AbortSignal.timeout(HANG_GUARD_MS), ...(body !== undefined ? { body: JSON.stringify(body) } : {}) })
    .catch((err: Error) => { throw new Error(`${method} ${base}${p}: ${err.message}`); });
  const text = await r.text();
  return { status: r.status, body: (text ? JSON.parse(text) : null) as T };
}

export async function login(base: string, username = 'admin', password = ADMIN_PASSWORD): Promise<string> {
  const r = await api<{ token: string }>(base, 'POST', '/auth/login', { username, password });
  if (r.status !== 200) throw new Error(`login ${username}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body.token;
}

export interface Health {
  cluster: { nodeId: string; peers: Array<{ id: string }>; owners: string[]; leases: Record<string, { holder: string | null; mine: boolean; token: number }> };
}

export async function health(node: HubNode): Promise<Health> {
  const r = await fetch(`${node.http}/healthz`, { signal: AbortSignal.timeout(HANG_GUARD_MS) })
    .catch((err: Error) => { throw new Error(`GET ${node.id} /healthz: ${err.message}`); });
  return (await r.json()) as Health;
}

/**
 * Two nodes over the test district: Redis, a database of their own, node A
 * with the district's grids and the given officers, then node B; resolves
 * once each node counts both as peers. What was started is stopped again if
 * a step fails.
 */
export async function twoNodeDistrict(officers: ReadonlyArray<{ username: string; regionId: string }>, password: string): Promise<{ redis: RedisServer; db: TestDatabase; a: HubNode; b: HubNode; token: string; stop(): Promise<void> }> {
  const redis = await startRedis();
  const db = await createDatabase();
  const nodes: HubNode[] = [];
  try {
    const env = clusterEnv(redis.url, db.url);
    const a = await startNode('node-a', env);
    nodes.push(a);
    const token = await login(a.http);
    const g = await api(a.http, 'PUT', '/grids', districtGrids(), token);
    if (g.status !== 200) throw new Error(`PUT /grids: ${g.status} ${JSON.stringify(g.body)}`);
    for (const o of officers) {
      const r = await api(a.http, 'POST', '/users', { username: o.username, password, role: 'officer', regionId: o.regionId }, token);
      if (r.status !== 201) throw new Error(`POST /users ${o.username}: ${r.status} ${JSON.stringify(r.body)}`);
    }
    // B starts after A has the district: every worker, case and change below is one it has to hear of.
    const b = await startNode('node-b', env);
    nodes.push(b);
    await until(async () => (await Promise.all([a, b].map(health))).every((h) => h.cluster.owners.length === 2), HANG_GUARD_MS, 100);
    const stop = async () => {
      if (process.env.GRIDLINK_CLUSTER_LOGS === '1') for (const n of nodes) process.stderr.write(`--- ${n.id}\n${n.output()}\n`);
      await Promise.all(nodes.map((n) => n.kill('SIGKILL')));
      await redis.stop();
      await db.drop();
    };
    return { redis, db, a, b, token, stop };
  } catch (err) {
    await Promise.all(nodes.map((n) => n.kill('SIGKILL')));
    await redis.stop();
    await db.drop();
    throw err;
  }
}
