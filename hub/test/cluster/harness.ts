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
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import pg from 'pg';
import { commandTopic, decodeCommand, type Command } from '@gridlink/devices';
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

/** Fails naming the request and its answer unless `r` came back with status `want`. */
function expectStatus(r: { status: number; body: unknown }, want: number, what: string): void {
  if (r.status !== want) throw new Error(`${what}: ${r.status} ${JSON.stringify(r.body)} (expected ${want})`);
}

export interface HealthBody {
  status: string;
  cluster: { redis?: boolean; peers: Array<{ id: string }>; leases: Record<string, { holder: string | null }> };
}

/** The node's /healthz, or null while it does not answer. */
export async function healthOrNull(node: HubNode): Promise<HealthBody | null> {
  try {
    return (await (await fetch(`${node.http}/healthz`)).json()) as HealthBody;
  } catch {
    return null;
  }
}

/** A location fix through the node's HTTP ingest, as the handheld `deviceId` (Basic auth with its secret): the answer. */
export async function ingestLocation(node: HubNode, deviceId: string, secret: string, fix: Record<string, unknown>): Promise<{ status: number; text: string }> {
  const r = await fetch(`${node.http}/api/v1/ingest/${deviceId}/location`, {
    method: 'POST',
    headers: { authorization: `Basic ${Buffer.from(`${deviceId}:${secret}`).toString('base64')}`, 'content-type': 'application/json' },
    body: JSON.stringify(fix),
  });
  return { status: r.status, text: await r.text() };
}

/** Every command that arrives on the device's command topic, in order; resolves once subscribed (QoS 1). */
export async function collectCommands(m: MqttClient, deviceId: string): Promise<Command[]> {
  const got: Command[] = [];
  m.on('message', (topic, payload) => {
    const cmd = topic === commandTopic(deviceId) ? decodeCommand(payload) : null;
    if (cmd) got.push(cmd);
  });
  await m.subscribeAsync(commandTopic(deviceId), { qos: 1 });
  return got;
}

/** The dispatch command of `caseId` among the commands a handheld received. */
export const dispatchOf = (got: Command[], caseId: string) => got.find((x) => x.type === 'dispatch' && x.case.id === caseId);

/** Strictly increasing fix times on the clock: a fix not newer than the device's last is not a move. */
export function fixClock(): () => number {
  let last = 0;
  return () => (last = Math.max(Date.now(), last + 1));
}

/** The node's process has ended (killed, or killed itself). */
export const hasExited = (node: HubNode) => node.child.exitCode !== null || node.child.signalCode !== null;

/** The node printed a JSON log line with message `msg` that mentions `about`. */
export const logged = (node: HubNode, msg: string, about: string) =>
  node.output().split('\n').some((l) => l.includes(`"msg":"${msg}"`) && l.includes(about));

/**
 * What one cluster test starts, in one place: Redis, a database of its own,
 * hub nodes, the admin's token and the MQTT clients it opens. Made in the
 * describe block; `open`, `node` and `district` fill it in beforeAll, `stop`
 * in afterAll tears down whatever was started, so a beforeAll that fails
 * half-way leaves nothing running.
 */
export class TestCluster {
  redis!: RedisServer;
  db!: TestDatabase;
  token = '';
  readonly nodes: HubNode[] = [];
  readonly clients: MqttClient[] = [];
  /** The secret of each handheld `addWorker` made, by device id. */
  readonly secrets = new Map<string, string>();
  /** `wait`: the test's hang guard for the conditions its helpers wait for. */
  constructor(private readonly opts: { wait: number }) {}

  /** Starts Redis and creates the database; the environment every node of the cluster shares, with `extra`. */
  async open(extra: Record<string, string> = {}, redis: { appendonly?: boolean } = {}): Promise<Record<string, string>> {
    this.redis = await startRedis(redis);
    this.db = await createDatabase();
    return clusterEnv(this.redis.url, this.db.url, extra);
  }

  /** Starts node `id`; `stop` kills it. */
  async node(id: string, env: Record<string, string>): Promise<HubNode> {
    const n = await startNode(id, env);
    this.nodes.push(n);
    return n;
  }

  /** Logs in as admin on `node`: the token the helpers below use, and the test's. */
  async login(node: HubNode): Promise<string> {
    this.token = await login(node.http);
    return this.token;
  }

  /** Logs in as admin on `node` and gives the district its grids through it; the admin's token. */
  async district(node: HubNode): Promise<string> {
    await this.login(node);
    expectStatus(await api(node.http, 'PUT', '/grids', districtGrids(), this.token), 200, 'PUT /grids');
    return this.token;
  }

  /** Resolves once every node started counts all of them as owners. */
  async converged(): Promise<void> {
    await until(async () => (await Promise.all(this.nodes.map(health))).every((h) => h.cluster.owners.length === this.nodes.length), this.opts.wait, 100);
  }

  /** Every node's /healthz, once `ok` holds for each (one that does not answer does not count). */
  healthy(ok: (h: HealthBody) => boolean, timeoutMs: number, stepMs: number): Promise<HealthBody[]> {
    return until(async () => {
      const hs = await Promise.all(this.nodes.map(healthOrNull));
      return hs.every((h) => h !== null && ok(h)) ? (hs as HealthBody[]) : null;
    }, timeoutMs, stepMs);
  }

  /**
   * Worker `id` of grid G-A1, on duty, with handheld `hh-<id>`, made through
   * `via`. With `at`, a fix of the handheld there (time `ts()`, the clock by
   * default) is stored before the worker exists, so every node reads it back
   * with the worker; `poll` is how often that is looked for. Returns the
   * handheld's secret.
   */
  async addWorker(via: HubNode, id: string, opts: { name?: string; at?: { lat: number; lon: number }; ts?: () => number; poll?: number } = {}): Promise<string> {
    const deviceId = `hh-${id}`;
    const d = await api<{ secret: string }>(via.http, 'POST', '/devices', { type: 'handheld', id: deviceId }, this.token);
    expectStatus(d, 201, `POST /devices ${deviceId}`);
    this.secrets.set(deviceId, d.body.secret);
    if (opts.at) {
      const f = await ingestLocation(via, deviceId, d.body.secret, { ts: (opts.ts ?? Date.now)(), ...opts.at });
      if (f.status !== 202) throw new Error(`fix of ${deviceId}: ${f.status} ${f.text} (expected 202)`);
      await until(async () => (await this.db.query('select 1 from positions where device_id = $1', [deviceId])).length > 0, this.opts.wait, opts.poll ?? 100);
    }
    const w = await api(via.http, 'POST', '/workers', { id, name: opts.name ?? id, deviceId, gridIds: ['G-A1'], onDuty: true }, this.token);
    expectStatus(w, 201, `POST /workers ${id}`);
    return d.body.secret;
  }

  /** The node knows worker `id` (its roster has heard of the worker's creation), or null. */
  async knows(node: HubNode, id: string): Promise<true | null> {
    return (await api(node.http, 'GET', `/workers/${id}`, undefined, this.token)).status === 200 || null;
  }

  /** A case made through `node`, registered unless `register` is false; its id. */
  async newCase(node: HubNode, c: { category: string; lat: number; lon: number; description: string }, register = true): Promise<string> {
    const r = await api<{ id: string }>(node.http, 'POST', '/cases', c, this.token);
    expectStatus(r, 201, 'POST /cases');
    if (register) expectStatus(await this.act(node, r.body.id, 'register'), 200, `register ${r.body.id}`);
    return r.body.id;
  }

  /** A case action through `node`, as the admin. */
  act<T = any>(node: HubNode, caseId: string, action: string, extra: Record<string, unknown> = {}): Promise<{ status: number; body: T }> {
    return api<T>(node.http, 'POST', `/cases/${caseId}/actions`, { action, ...extra }, this.token);
  }

  /** A client connected to the node's broker as device `id` (no reconnect by default); `stop` ends it. */
  connect(node: HubNode, id: string, secret: string, opts: IClientOptions = {}): Promise<MqttClient> {
    return new Promise<MqttClient>((resolve, reject) => {
      const m = mqtt.connect(`mqtt://127.0.0.1:${node.mqttPort}`, { clientId: id, username: id, password: secret, reconnectPeriod: 0, connectTimeout: 30_000, ...opts });
      this.clients.push(m);
      m.once('connect', () => resolve(m));
      m.once('error', reject);
      m.once('close', () => reject(new Error(`${id}: connection to ${node.id} closed before CONNACK`)));
    });
  }

  /** Handheld `deviceId` on the node's broker with a persistent session, keeping the commands it receives. */
  async handheld(node: HubNode, deviceId: string, secret: string): Promise<{ m: MqttClient; got: Command[] }> {
    const m = await this.connect(node, deviceId, secret, { clean: false });
    return { m, got: await collectCommands(m, deviceId) };
  }

  /** Tears down what was started; prints the nodes' logs first for a failed test or with GRIDLINK_CLUSTER_LOGS=1. */
  async stop(failed = false): Promise<void> {
    if (failed || process.env.GRIDLINK_CLUSTER_LOGS === '1') for (const n of this.nodes) process.stderr.write(`--- ${n.id}\n${n.output()}\n`);
    await Promise.all(this.clients.map((m) => m.endAsync(true).catch(() => undefined)));
    await Promise.all(this.nodes.map((n) => n.kill('SIGKILL')));
    await this.redis?.stop();
    await this.db?.drop();
  }
}
