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
import { until } from '../helpers.js';
import { api, collectCommands, dispatchOf, HANG_GUARD_MS, logged, RUN_CLUSTER, TestCluster, type HubNode } from './harness.js';

/** Guards a hang on a busy machine; nothing here is a latency assertion. */
const WAIT = HANG_GUARD_MS;

describe.runIf(RUN_CLUSTER)('a dispatch command published while Redis is away', () => {
  const cluster = new TestCluster({ wait: WAIT });
  let token = '';
  let a: HubNode, b: HubNode;

  let failed = false;
  beforeEach(({ onTestFailed }) => onTestFailed(() => void (failed = true)));

  beforeAll(async () => {
    const env = await cluster.open({ GRIDLINK_LEASE_TTL_MS: '60000', GRIDLINK_LOG_LEVEL: 'info' }, { appendonly: true });
    a = await cluster.node('node-a', env);
    b = await cluster.node('node-b', env);
    token = await cluster.login(b);
  }, 180_000);

  afterAll(() => cluster.stop(failed), 60_000);

  it('reaches the handheld that stayed connected, once, after Redis is back', async () => {
    await cluster.healthy((h) => h.status === 'ok' && h.cluster.peers.length === 2, WAIT, 200);

    const d = await api<{ secret: string }>(b.http, 'POST', '/devices', { type: 'handheld', id: 'hh-ro' }, token);
    expect(d.status, JSON.stringify(d.body)).toBe(201);
    expect((await api(b.http, 'POST', '/workers', { id: 'w-ro', name: 'w-ro', deviceId: 'hh-ro', gridIds: [], onDuty: true }, token)).status).toBe(201);
    // The handheld on node A, for good: it never reconnects on its own.
    let connects = 0;
    let closes = 0;
    const hh = await new Promise<MqttClient>((resolve, reject) => {
      const m = mqtt.connect(`mqtt://127.0.0.1:${a.mqttPort}`, { clientId: 'hh-ro', username: 'hh-ro', password: d.body.secret, clean: false, reconnectPeriod: 0, connectTimeout: 30_000 });
      cluster.clients.push(m);
      m.on('connect', () => connects++);
      m.on('close', () => closes++);
      m.once('connect', () => resolve(m));
      m.once('error', reject);
    });
    const got = await collectCommands(hh, 'hh-ro');
    // A's handheld is online for the dispatch's re-send on connect to be over (nothing is open yet).
    await until(async () => (await api<{ online: boolean }>(b.http, 'GET', '/devices/hh-ro', undefined, token)).body.online === true || null, WAIT, 100);

    const caseId = await cluster.newCase(b, { category: 'E0101', lat: 30.6, lon: 104.0, description: 'dispatched while redis is away' });

    await cluster.redis.halt();
    await cluster.healthy((h) => h.status === 'degraded' && h.cluster.redis === false, WAIT, 100);
    // Dispatched through B while Redis is away: committed, and its publish fails once the Redis client gives up.
    const r = await cluster.act(b, caseId, 'dispatch', { workerId: 'w-ro' });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    const [row] = await until(async () => {
      const rows = await cluster.db.query<{ cmd_id: string }>("select cmd_id from dispatch_commands where case_id = $1 and type = 'dispatch'", [caseId]);
      return rows.length ? rows : null;
    }, WAIT, 100);
    await until(() => logged(b, 'command publish failed; stays pending', row!.cmd_id) || null, WAIT, 200);
    expect(got).toEqual([]);
    expect((await cluster.db.query<{ sent_at: Date | null }>('select sent_at from dispatch_commands where cmd_id = $1', [row!.cmd_id]))[0]!.sent_at).toBeNull();

    await cluster.redis.start();
    // The handheld gets it on the connection it had all along.
    const cmd = await until(() => dispatchOf(got, caseId), WAIT, 100);
    expect(cmd.cmdId).toBe(row!.cmd_id);
    // Nothing more comes once the nodes have had their passes (the re-send delay after Redis, a recovery round).
    await until(() => a.output().includes('"msg":"open commands sent again after the routing outage"') || null, WAIT, 100);
    expect(got.map((x) => x.cmdId)).toEqual([row!.cmd_id]);
    expect({ connects, closes, connected: hh.connected }).toEqual({ connects: 1, closes: 0, connected: true });
    const [sent] = await cluster.db.query<{ sends: number; done: boolean }>('select sends, done from dispatch_commands c join cluster_claims k on k.key = \'dispatch.send:\' || c.cmd_id where cmd_id = $1', [row!.cmd_id]);
    expect(sent).toMatchObject({ done: true });
  }, 400_000);
});
