/**
 * Redis restarts under a two-node cluster in the middle of QoS 1 load:
 * nothing acknowledged is lost, /healthz says "degraded" while Redis is
 * away, both nodes come back to cluster health, and commands cross nodes
 * again afterwards.
 */
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { until } from '../helpers.js';
import { api, collectCommands, dispatchOf, RUN_CLUSTER, TestCluster, type HealthBody, type HubNode } from './harness.js';

describe.runIf(RUN_CLUSTER)('hub cluster through a Redis restart (2 nodes)', () => {
  const cluster = new TestCluster({ wait: 60_000 });
  let token = '';
  let a: HubNode, b: HubNode;

  beforeAll(async () => {
    const env = await cluster.open({ GRIDLINK_DEVICE_RATE: '5000', GRIDLINK_DEVICE_BURST: '5000' }, { appendonly: true });
    a = await cluster.node('node-a', env);
    b = await cluster.node('node-b', env);
    token = await cluster.login(b);
  }, 180_000);

  afterAll(() => cluster.stop(), 60_000);

  const connect = (node: HubNode, id: string, secret: string, opts: mqtt.IClientOptions = {}) =>
    cluster.connect(node, id, secret, { connectTimeout: 10_000, ...opts });

  async function device(type: string, id: string): Promise<string> {
    const r = await api<{ secret: string }>(b.http, 'POST', '/devices', { type, id }, token);
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    return r.body.secret;
  }

  /**
   * Publishes `total` QoS 1 readings (ts = t0 + seq) to `node`; a publish
   * that fails or a connection that closes is retried on a new connection,
   * so only what was acknowledged counts as sent.
   */
  async function publishLoad(id: string, secret: string, node: HubNode, total: number, acked: Set<number>, t0: number): Promise<void> {
    const todo = Array.from({ length: total }, (_, i) => i + 1);
    let m: MqttClient | null = null;
    while (todo.length) {
      if (!m?.connected) {
        m?.end(true);
        m = await connect(node, id, secret).catch(() => null);
        if (!m) {
          await new Promise((r) => setTimeout(r, 200));
          continue;
        }
      }
      const c = m;
      const batch = todo.splice(0, 10);
      let onClose = () => {};
      const closed = new Promise<'closed'>((r) => (onClose = () => r('closed')));
      c.once('close', onClose);
      const results = await Promise.all(batch.map((seq) =>
        Promise.race([c.publishAsync(`gridlink/v1/${id}/telemetry`, JSON.stringify({ ts: t0 + seq, seq, values: { water_level_cm: seq % 20 } }), { qos: 1 }).then(() => 'ok' as const, () => 'failed' as const), closed])));
      c.off('close', onClose);
      results.forEach((r, i) => (r === 'ok' ? acked.add(batch[i]!) : todo.push(batch[i]!)));
      // A client that is still `connected` but refuses publishes (disconnecting) rejects them at once:
      // retried on a new connection after a timer, or this loop would spin on microtasks and starve the event loop.
      if (results.some((r) => r !== 'ok')) {
        c.end(true);
        m = null;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    await m?.endAsync();
  }

  it('loses nothing acknowledged, reports degraded while Redis is away, and routes commands across nodes after it is back', async () => {
    // Both nodes see each other before anything starts.
    await cluster.healthy((h) => h.status === 'ok' && h.cluster.redis === true && h.cluster.peers.length === 2, 60_000, 200);

    // A handheld on node A with a persistent session; its worker and the cases are made through node B.
    const secretHh = await device('handheld', 'hh-rr');
    expect((await api(b.http, 'POST', '/workers', { id: 'w-rr', name: 'w-rr', deviceId: 'hh-rr', gridIds: [] }, token)).status).toBe(201);
    expect((await api(b.http, 'POST', '/workers/w-rr/duty', { onDuty: true }, token)).status).toBe(200);
    const hh = await connect(a, 'hh-rr', secretHh, { clean: false, reconnectPeriod: 500 });
    const got = await collectCommands(hh, 'hh-rr');

    // QoS 1 load on both nodes.
    const t0 = Date.now() - 3_600_000;
    const per = 300;
    const ids = ['rr-a1', 'rr-a2', 'rr-b1', 'rr-b2'];
    const devices = await Promise.all(ids.map(async (id) => ({ id, secret: await device('sensor.water_level', id) })));
    const acked = new Map(ids.map((id) => [id, new Set<number>()]));
    const runs = devices.map((d) => publishLoad(d.id, d.secret, d.id.startsWith('rr-a') ? a : b, per, acked.get(d.id)!, t0));
    const total = () => [...acked.values()].reduce((n, s) => n + s.size, 0);

    // A third of the way in, Redis goes away.
    await until(() => total() >= (per * ids.length) / 3, 120_000, 20);
    await cluster.redis.halt();
    // While it is away every node says so.
    const down = await cluster.healthy((h) => h.status === 'degraded' && h.cluster.redis === false, 60_000, 100);
    expect(down).toHaveLength(2);
    // Away for longer than a Redis client's default retry budget (20 reconnects, about 10 s): a
    // connection that gives up fails the PUBACKs and session writes queued behind it.
    await new Promise((r) => setTimeout(r, 15_000));
    await cluster.redis.start();

    await Promise.all(runs);
    for (const id of ids) expect(acked.get(id)!.size, id).toBe(per);
    const stored = await cluster.db.query<{ device_id: string; n: number; distinct_seq: number }>(
      "select device_id, count(*)::int as n, count(distinct seq)::int as distinct_seq from readings where metric = 'water_level_cm' and device_id like 'rr-%' group by device_id order by device_id");
    expect(stored).toEqual(ids.map((id) => ({ device_id: id, n: per, distinct_seq: per })));

    // Both nodes are back: healthy, each other's peer, one holder per lease.
    const back: HealthBody[] = await cluster.healthy((h) => h.status === 'ok' && h.cluster.redis === true && h.cluster.peers.length === 2, 120_000, 200);
    for (const lease of Object.keys(back[0]!.cluster.leases)) expect(new Set(back.map((h) => h.cluster.leases[lease]!.holder)).size, lease).toBe(1);

    // A command published on node B after the restart reaches the handheld on node A.
    await until(() => (hh.connected ? true : null), 60_000, 100);
    const caseId = await cluster.newCase(b, { category: 'E0101', lat: 30.6, lon: 104.0, description: 'after redis restart' });
    const d = await cluster.act(b, caseId, 'dispatch', { workerId: 'w-rr' });
    expect(d.status, JSON.stringify(d.body)).toBe(200);
    const cmd = await until(() => dispatchOf(got, caseId), 60_000);
    expect(cmd.type).toBe('dispatch');

    // The handheld on node A is online in node B's view and in the table, held by A: a node whose
    // presence key Redis lost tells the others again what it holds, and nobody swept it meanwhile.
    await until(async () => (await api<{ online: boolean }>(b.http, 'GET', '/devices/hh-rr', undefined, token)).body.online === true, 60_000, 200);
    await until(async () => {
      const [r] = await cluster.db.query<{ online: boolean; holder_node: string | null }>("select online, holder_node from devices where id = 'hh-rr'");
      return r?.online === true && r.holder_node === 'node-a';
    }, 60_000, 200);
  }, 400_000);
});
