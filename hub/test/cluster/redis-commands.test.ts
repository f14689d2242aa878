/**
 * A dispatch command whose publish fails while Redis is away reaches a
 * handheld that stays connected through the outage, once Redis is back,
 * without the handheld reconnecting.
 *
 * Two nodes; the worker's handheld is connected to node A (no automatic
 * reconnect: a dropped connection fails the test), the dispatch is made
 * through node B while Redis is stopped. B's publish fails (the Redis
 * client's retry budget runs out: B logs it). Redis comes back; A, whose
 * subscriptions are in effect again, sends the open command: the handheld
 * gets the stored cmdId once, on its first and only connection.
 *
 * The lease time is 60 s here, so a claim left by a failed send would be
 * honoured for 180 s, longer than the test's hang guard: before this change
 * the command waited for the failed send's claim to run out and the next
 * recovery round, and the test fails there.
 */
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { commandTopic, decodeCommand, type Command } from '@gridlink/devices';
import { until } from '../helpers.js';
import { api, clusterEnv, createDatabase, HANG_GUARD_MS, login, RUN_CLUSTER, startNode, startRedis, type HubNode, type RedisServer, type TestDatabase } from './harness.js';

/** Guards a hang on a busy machine; nothing here is a latency assertion. */
const WAIT = HANG_GUARD_MS;

interface HealthBody { status: string; cluster: { redis?: boolean; peers: Array<{ id: string }> } }

async function healthOf(node: HubNode): Promise<HealthBody | null> {
  try {
    return (await (await fetch(`${node.http}/healthz`)).json()) as HealthBody;
  } catch {
    return null;
  }
}

describe.runIf(RUN_CLUSTER)('a dispatch command published while Redis is away', () => {
  let redis: RedisServer;
  let db: TestDatabase;
  const nodes: HubNode[] = [];
  let hh: MqttClient | null = null;
  let token = '';
  let a: HubNode, b: HubNode;

  let failed = false;
  beforeEach(({ onTestFailed }) => onTestFailed(() => void (failed = true)));

  beforeAll(async () => {
    redis = await startRedis({ appendonly: true });
    db = await createDatabase();
    const env = clusterEnv(redis.url, db.url, { GRIDLINK_LEASE_TTL_MS: '60000', GRIDLINK_LOG_LEVEL: 'info' });
    a = await startNode('node-a', env);
    nodes.push(a);
    b = await startNode('node-b', env);
    nodes.push(b);
    token = await login(b.http);
  }, 180_000);

  afterAll(async () => {
    if (failed || process.env.GRIDLINK_CLUSTER_LOGS === '1') for (const n of nodes) process.stderr.write(`--- ${n.id}\n${n.output()}\n`);
    await hh?.endAsync(true).catch(() => undefined);
    await Promise.all(nodes.map((n) => n.kill('SIGKILL')));
    await redis?.stop();
    await db?.drop();
  }, 60_000);

  it('reaches the handheld that stayed connected, once, after Redis is back', async () => {
    await until(async () => {
      const hs = await Promise.all(nodes.map(healthOf));
      return hs.every((h) => h?.status === 'ok' && h.cluster.peers.length === 2) ? true : null;
    }, WAIT, 200);

    const d = await api<{ secret: string }>(b.http, 'POST', '/devices', { type: 'handheld', id: 'hh-ro' }, token);
    expect(d.status, JSON.stringify(d.body)).toBe(201);
    expect((await api(b.http, 'POST', '/workers', { id: 'w-ro', name: 'w-ro', deviceId: 'hh-ro', gridIds: [], onDuty: true }, token)).status).toBe(201);
    // The handheld on node A, for good: it never reconnects on its own.
    let connects = 0;
    let closes = 0;
    hh = await new Promise<MqttClient>((resolve, reject) => {
      const m = mqtt.connect(`mqtt://127.0.0.1:${a.mqttPort}`, { clientId: 'hh-ro', username: 'hh-ro', password: d.body.secret, clean: false, reconnectPeriod: 0, connectTimeout: 30_000 });
      m.on('connect', () => connects++);
      m.on('close', () => closes++);
      m.once('connect', () => resolve(m));
      m.once('error', reject);
    });
    const got: Command[] = [];
    hh.on('message', (topic, payload) => {
      const cmd = topic === commandTopic('hh-ro') ? decodeCommand(payload) : null;
      if (cmd) got.push(cmd);
    });
    await hh.subscribeAsync(commandTopic('hh-ro'), { qos: 1 });
    // A's handheld is online for the dispatch's re-send on connect to be over (nothing is open yet).
    await until(async () => (await api<{ online: boolean }>(b.http, 'GET', '/devices/hh-ro', undefined, token)).body.online === true || null, WAIT, 100);

    const created = await api<{ id: string }>(b.http, 'POST', '/cases', { category: 'E0101', lat: 30.6, lon: 104.0, description: 'dispatched while redis is away' }, token);
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const caseId = created.body.id;
    expect((await api(b.http, 'POST', `/cases/${caseId}/actions`, { action: 'register' }, token)).status).toBe(200);

    await redis.halt();
    await until(async () => {
      const hs = await Promise.all(nodes.map(healthOf));
      return hs.every((h) => h?.status === 'degraded' && h.cluster.redis === false) ? true : null;
    }, WAIT, 100);
    // Dispatched through B while Redis is away: committed, and its publish fails once the Redis client gives up.
    const r = await api(b.http, 'POST', `/cases/${caseId}/actions`, { action: 'dispatch', workerId: 'w-ro' }, token);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    const [row] = await until(async () => {
      const rows = await db.query<{ cmd_id: string }>("select cmd_id from dispatch_commands where case_id = $1 and type = 'dispatch'", [caseId]);
      return rows.length ? rows : null;
    }, WAIT, 100);
    const failedSend = (n: HubNode) => n.output().split('\n').some((l) => l.includes('"msg":"command publish failed; stays pending"') && l.includes(row!.cmd_id));
    await until(() => failedSend(b) || null, WAIT, 200);
    expect(got).toEqual([]);
    expect((await db.query<{ sent_at: Date | null }>('select sent_at from dispatch_commands where cmd_id = $1', [row!.cmd_id]))[0]!.sent_at).toBeNull();

    await redis.start();
    // The handheld gets it on the connection it had all along.
    const cmd = await until(() => got.find((x) => x.type === 'dispatch' && x.case.id === caseId), WAIT, 100);
    expect(cmd.cmdId).toBe(row!.cmd_id);
    // Nothing more comes once the nodes have had their passes (the re-send delay after Redis, a recovery round).
    await until(() => a.output().includes('"msg":"open commands sent again after the routing outage"') || null, WAIT, 100);
    expect(got.map((x) => x.cmdId)).toEqual([row!.cmd_id]);
    expect({ connects, closes, connected: hh.connected }).toEqual({ connects: 1, closes: 0, connected: true });
    const [sent] = await db.query<{ sends: number; done: boolean }>('select sends, done from dispatch_commands c join cluster_claims k on k.key = \'dispatch.send:\' || c.cmd_id where cmd_id = $1', [row!.cmd_id]);
    expect(sent).toMatchObject({ done: true });
  }, 400_000);
});
