/**
 * `npm run cluster`: a local cluster of three hub nodes on this machine.
 *
 * Starts Debian's redis-server (append-only file under the data directory,
 * so sessions survive a restart of the script) and three hub processes on
 * the PostgreSQL of DATABASE_URL, each with its own ports and data
 * directory. The first node migrates the database before the others join.
 * Ctrl-C stops the nodes (each gives its leases back) and then Redis.
 *
 *   DATABASE_URL=postgres://... npm run cluster
 *
 * Settings: GRIDLINK_CLUSTER_NODES (3), GRIDLINK_CLUSTER_HTTP_BASE (8081),
 * GRIDLINK_CLUSTER_MQTT_BASE (1884), GRIDLINK_CLUSTER_REDIS_PORT (6380),
 * GRIDLINK_DATA_DIR (./data); every other GRIDLINK_* setting is passed to
 * every node.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { HUB_NODE_FLAGS } from '../src/node-flags.js';

const root = path.resolve(import.meta.dirname, '../..');
const env = process.env;
const fail = (msg: string): never => {
  process.stderr.write(`${msg}\n`);
  process.exit(2);
};

const dbUrl = env.DATABASE_URL ?? '';
if (!/^postgres(ql)?:\/\//.test(dbUrl)) fail('DATABASE_URL=postgres://... is required: the nodes share one PostgreSQL (or TimescaleDB)');
if (spawnSync('sh', ['-c', 'command -v redis-server']).status !== 0) fail('redis-server not found: apt-get install -y redis-server');
const count = Number(env.GRIDLINK_CLUSTER_NODES ?? 3);
const httpBase = Number(env.GRIDLINK_CLUSTER_HTTP_BASE ?? 8081);
const mqttBase = Number(env.GRIDLINK_CLUSTER_MQTT_BASE ?? 1884);
const redisPort = Number(env.GRIDLINK_CLUSTER_REDIS_PORT ?? 6380);
if (![count, httpBase, mqttBase, redisPort].every((n) => Number.isInteger(n) && n > 0)) fail('GRIDLINK_CLUSTER_* must be positive integers');
const dataDir = path.resolve(env.GRIDLINK_DATA_DIR ?? path.join(root, 'data'), 'cluster');
mkdirSync(path.join(dataDir, 'redis'), { recursive: true });

// Every node must check the tokens the others sign: one secret, kept with the cluster's data.
const secretFile = path.join(dataDir, 'jwt.secret');
let jwtSecret = env.GRIDLINK_JWT_SECRET;
if (!jwtSecret) {
  if (!existsSync(secretFile)) writeFileSync(secretFile, randomBytes(32).toString('hex'), { mode: 0o600 });
  jwtSecret = readFileSync(secretFile, 'utf8').trim();
}

const children: ChildProcess[] = [];
const prefix = (name: string, child: ChildProcess) => {
  for (const s of [child.stdout, child.stderr]) {
    let buf = '';
    s?.on('data', (b: Buffer) => {
      buf += b.toString();
      const lines = buf.split('\n');
      buf = lines.pop() ?? '';
      for (const l of lines) process.stdout.write(`[${name}] ${l}\n`);
    });
  }
};

function startRedis(): Promise<void> {
  const redis = spawn('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--dir', path.join(dataDir, 'redis'), '--appendonly', 'yes', '--save', ''], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(redis);
  prefix('redis', redis);
  return new Promise((resolve, reject) => {
    redis.stdout!.on('data', (b: Buffer) => b.toString().includes('Ready to accept connections') && resolve());
    redis.once('exit', (code) => reject(new Error(`redis-server exited ${code}`)));
  });
}

function startNode(i: number): Promise<{ id: string; http: number; mqtt: number }> {
  const id = `hub-${i + 1}`;
  const nodeEnv = {
    ...env,
    GRIDLINK_REDIS_URL: `redis://127.0.0.1:${redisPort}`,
    GRIDLINK_NODE_ID: id,
    GRIDLINK_JWT_SECRET: jwtSecret,
    GRIDLINK_HTTP_PORT: String(httpBase + i),
    GRIDLINK_MQTT_PORT: String(mqttBase + i),
    GRIDLINK_DATA_DIR: path.join(dataDir, id),
    // The other nodes proxy video viewers here (the node that pulls a camera).
    GRIDLINK_NODE_URL: `http://127.0.0.1:${httpBase + i}`,
  };
  const child = spawn(process.execPath, [...HUB_NODE_FLAGS, '--import', 'tsx', 'hub/src/main.ts'], { cwd: root, env: nodeEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  prefix(id, child);
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (b: Buffer) => {
      out += b.toString();
      const line = out.split('\n').find((l) => l.startsWith('{"msg":"listening"'));
      if (line) resolve({ id, ...(JSON.parse(line) as { http: number; mqtt: number }) });
    });
    child.once('exit', (code) => reject(new Error(`${id} exited ${code}`)));
  });
}

let stopping = false;
async function stop(code: number): Promise<void> {
  if (stopping) return;
  stopping = true;
  const [redis, ...nodes] = children;
  const exited = (c: ChildProcess) => (c.exitCode !== null || c.signalCode !== null ? Promise.resolve() : new Promise((r) => c.once('exit', r)));
  for (const c of nodes) c.kill('SIGTERM');
  await Promise.all(nodes.map(exited));
  redis?.kill('SIGTERM');
  if (redis) await exited(redis);
  process.exit(code);
}
process.on('SIGINT', () => void stop(0));
process.on('SIGTERM', () => void stop(0));

try {
  await startRedis();
  const first = await startNode(0);
  const rest = await Promise.all(Array.from({ length: count - 1 }, (_, i) => startNode(i + 1)));
  const all = [first, ...rest];
  process.stdout.write(`\nGridLink cluster: ${all.length} nodes, Redis on 127.0.0.1:${redisPort}\n`);
  for (const n of all) process.stdout.write(`  ${n.id}  http://127.0.0.1:${n.http}  mqtt://127.0.0.1:${n.mqtt}  (GET /healthz shows peers and leases)\n`);
  process.stdout.write('Ctrl-C stops the cluster.\n\n');
  // A node that dies is reported; the others carry on (that is the point).
  for (const c of children.slice(1)) c.once('exit', (code, signal) => !stopping && process.stdout.write(`[cluster] a node exited (${code ?? signal}); the others carry on\n`));
} catch (err) {
  process.stderr.write(`${(err as Error).message}\n`);
  await stop(1);
}
