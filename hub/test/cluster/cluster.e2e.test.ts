/**
 * Three hub processes on one Redis and one PostgreSQL: what a handheld, a
 * console and the singleton jobs see when the hub is a cluster.
 */
import mqtt, { type MqttClient } from 'mqtt';
import { io as ioc, type Socket } from 'socket.io-client';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { commandTopic, decodeCommand, type Command } from '@gridlink/devices';
import { until } from '../helpers.js';
import { api, clusterEnv, createDatabase, guard, health, login, RUN_CLUSTER, startNode, startRedis, type HubNode, type RedisServer, type TestDatabase } from './harness.js';

describe.runIf(RUN_CLUSTER)('hub cluster (3 nodes, Redis, PostgreSQL)', () => {
  let redis: RedisServer;
  let db: TestDatabase;
  let env: Record<string, string>;
  const nodes: HubNode[] = [];
  const clients: MqttClient[] = [];
  const sockets: Socket[] = [];
  let token = '';
  let a: HubNode, b: HubNode, c: HubNode;

  beforeAll(async () => {
    redis = await startRedis();
    db = await createDatabase();
    // Load below comes from a few devices: give each a budget that never pushes back.
    env = clusterEnv(redis.url, db.url, { GRIDLINK_DEVICE_RATE: '5000', GRIDLINK_DEVICE_BURST: '5000' });
    // The first node migrates the empty database; the others join it.
    nodes.push(await startNode('node-a', env));
    nodes.push(...(await Promise.all([startNode('node-b', env), startNode('node-c', env)])));
    [a, b, c] = nodes as [HubNode, HubNode, HubNode];
    token = await login(b.http);
  }, 180_000);

  let failed = false;
  beforeEach(({ onTestFailed }) => onTestFailed(() => void (failed = true)));

  afterAll(async () => {
    // What each node printed (warnings and errors), after a failing test or with GRIDLINK_CLUSTER_LOGS=1.
    if (failed || process.env.GRIDLINK_CLUSTER_LOGS === '1') for (const n of nodes) process.stderr.write(`--- ${n.id}\n${n.output()}\n`);
    for (const s of sockets) s.disconnect();
    await Promise.all(clients.map((m) => m.endAsync(true).catch(() => undefined)));
    await Promise.all(nodes.map((n) => n.kill('SIGKILL')));
    await redis?.stop();
    await db?.drop();
  }, 60_000);

  const connect = (node: HubNode, id: string, secret: string, opts: mqtt.IClientOptions = {}) =>
    new Promise<MqttClient>((resolve, reject) => {
      const m = mqtt.connect(`mqtt://127.0.0.1:${node.mqttPort}`, { clientId: id, username: id, password: secret, reconnectPeriod: 0, connectTimeout: 10_000, ...opts });
      clients.push(m);
      m.once('connect', () => resolve(m));
      m.once('error', reject);
      // A refused or timed-out connection closes without an error: fail instead of waiting forever.
      m.once('close', () => reject(new Error(`${id}: connection to ${node.id} closed before CONNACK`)));
    });

  async function device(node: HubNode, type: string, id: string): Promise<string> {
    const r = await api<{ secret: string }>(node.http, 'POST', '/devices', { type, id }, token);
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    return r.body.secret;
  }

  /** A handheld and its on-duty worker, both made through `node`'s API. */
  async function worker(node: HubNode, id: string): Promise<{ deviceId: string; secret: string }> {
    const deviceId = `hh-${id}`;
    const secret = await device(node, 'handheld', deviceId);
    const w = await api(node.http, 'POST', '/workers', { id, name: id, deviceId, gridIds: [] }, token);
    expect(w.status, JSON.stringify(w.body)).toBe(201);
    expect((await api(node.http, 'POST', `/workers/${id}/duty`, { onDuty: true }, token)).status).toBe(200);
    return { deviceId, secret };
  }

  async function dispatchCase(node: HubNode, workerId: string): Promise<string> {
    const created = await api<{ id: string }>(node.http, 'POST', '/cases', { category: 'E0101', lat: 30.6, lon: 104.0, description: 'cluster test' }, token);
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    expect((await api(node.http, 'POST', `/cases/${created.body.id}/actions`, { action: 'register' }, token)).status).toBe(200);
    const d = await api(node.http, 'POST', `/cases/${created.body.id}/actions`, { action: 'dispatch', workerId }, token);
    expect(d.status, JSON.stringify(d.body)).toBe(200);
    return created.body.id;
  }

  function commandsOf(m: MqttClient, deviceId: string): Command[] {
    const got: Command[] = [];
    m.on('message', (topic, payload) => {
      if (topic !== commandTopic(deviceId)) return;
      const cmd = decodeCommand(payload);
      if (cmd) got.push(cmd);
    });
    return got;
  }

  it('reports its id, its peers and one holder per lease at /healthz and in /metrics', async () => {
    const views = await until(async () => {
      const hs = await Promise.all(nodes.map(health));
      return hs.every((h) => h.cluster.peers.length === 3) ? hs : null;
    }, 60_000, 200);
    expect(views.map((h) => h.cluster.nodeId)).toEqual(['node-a', 'node-b', 'node-c']);
    for (const h of views) expect(h.cluster.peers.map((p) => p.id)).toEqual(['node-a', 'node-b', 'node-c']);
    for (const lease of ['retention', 'rules.timers', 'cases.overdue']) {
      const holders = new Set(views.map((h) => h.cluster.leases[lease]!.holder));
      expect(holders.size, lease).toBe(1);
      expect(views.filter((h) => h.cluster.leases[lease]!.mine)).toHaveLength(1);
    }
    const metrics = await (await fetch(`${c.http}/metrics`)).text();
    expect(metrics).toMatch(/gridlink_cluster_peers 3/);
    expect(metrics).toMatch(/gridlink_cluster_node_info\{node_id="node-c",mode="cluster"\} 1/);
    expect(metrics).toMatch(/gridlink_cluster_lease_held\{lease="retention"\} [01]/);
  });

  it('delivers a command published on node B to a handheld connected to node A', async () => {
    const w = await worker(b, 'w-cross');
    const hh = await connect(a, w.deviceId, w.secret, { clean: false });
    const got = commandsOf(hh, w.deviceId);
    await hh.subscribeAsync(commandTopic(w.deviceId), { qos: 1 });
    const caseId = await dispatchCase(b, 'w-cross');
    const cmd = await until(() => got.find((x) => x.type === 'dispatch'), 30_000);
    expect(cmd.type === 'dispatch' && cmd.case.id).toBe(caseId);
  });

  it('closes the first connection when the same clientId connects to another node', async () => {
    const w = await worker(b, 'w-takeover');
    const first = await connect(a, w.deviceId, w.secret, { clean: false });
    await first.subscribeAsync(commandTopic(w.deviceId), { qos: 1 });
    const closed = new Promise<void>((r) => first.once('close', () => r()));
    const second = await connect(c, w.deviceId, w.secret, { clean: false });
    await closed;
    expect(first.connected).toBe(false);
    expect(second.connected).toBe(true);
    // The session (its subscription) moved with the device: a command from B reaches it on C.
    const got = commandsOf(second, w.deviceId);
    const caseId = await dispatchCase(b, 'w-takeover');
    const cmd = await until(() => got.find((x) => x.type === 'dispatch'), 30_000);
    expect(cmd.type === 'dispatch' && cmd.case.id).toBe(caseId);
  });

  it('resumes a persistent session on another node with the QoS 1 command queued while it was away', async () => {
    const w = await worker(b, 'w-resume');
    const before = await connect(a, w.deviceId, w.secret, { clean: false });
    await before.subscribeAsync(commandTopic(w.deviceId), { qos: 1 });
    await before.endAsync();
    const caseId = await dispatchCase(b, 'w-resume');
    // Reconnect elsewhere without subscribing again: only the stored session can deliver.
    const after = await connect(c, w.deviceId, w.secret, { clean: false });
    const got = commandsOf(after, w.deviceId);
    const cmd = await until(() => got.find((x) => x.type === 'dispatch'), 30_000);
    expect(cmd.type === 'dispatch' && cmd.case.id).toBe(caseId);
  });

  it('shows an alarm raised from a message ingested on node A to an officer on node C, and not to another region', async () => {
    const mk = async (username: string, regionId: string | null) => {
      const r = await api(b.http, 'POST', '/users', { username, password: 'officer-pass-123', role: 'officer', regionId }, token);
      expect(r.status, JSON.stringify(r.body)).toBe(201);
      return login(c.http, username, 'officer-pass-123');
    };
    const [officer, outsider] = [await mk('officer-c', null), await mk('officer-x', 'S-ELSEWHERE')];
    const listen = (t: string) => {
      const s = ioc(c.http, { path: '/socket.io', auth: { token: t }, transports: ['websocket'], reconnection: false });
      sockets.push(s);
      const alarms: Array<{ deviceId: string; rule: string; change?: string }> = [];
      s.on('alarm', (x: { deviceId: string; rule: string; change?: string }) => alarms.push(x));
      return new Promise<{ alarms: typeof alarms }>((resolve, reject) => {
        s.once('connect', () => resolve({ alarms }));
        s.once('connect_error', reject);
      });
    };
    const [seen, unseen] = await Promise.all([listen(officer), listen(outsider)]);
    const secret = await device(b, 'sensor.smoke', 'smoke-cross');
    const sensor = await connect(a, 'smoke-cross', secret);
    await sensor.publishAsync('gridlink/v1/smoke-cross/event', JSON.stringify({ type: 'smoke_alarm', severity: 'critical' }), { qos: 1 });
    const alarm = await until(() => seen.alarms.find((x) => x.deviceId === 'smoke-cross' && x.change === 'raised'), 30_000);
    expect(alarm.rule).toBe('smoke-alarm');
    // One alarm and one case, wherever they were looked at.
    const rows = await db.query<{ n: number }>("select count(*)::int as n from alarms where device_id = 'smoke-cross'");
    expect(rows[0]!.n).toBe(1);
    // The outsider's socket is connected on the same node and got nothing of it.
    const ping = await api(c.http, 'GET', '/healthz');
    expect(ping.status).toBe(200);
    expect(unseen.alarms.filter((x) => x.deviceId === 'smoke-cross')).toEqual([]);
  });
  /** Publishes `total` QoS 1 readings (ts = t0 + seq); a lost connection moves to a live node and re-sends what was not acked. */
  async function publishLoad(id: string, secret: string, first: HubNode, total: number, acked: Set<number>, alive: () => HubNode[], t0: number): Promise<void> {
    let node = first;
    let m = await connect(node, id, secret);
    const todo = Array.from({ length: total }, (_, i) => i + 1);
    let failed = false;
    while (todo.length) {
      if (failed || !m.connected) {
        m.end(true);
        // After a timer: a client still `connected` but disconnecting rejects publishes at once, and
        // retrying on it would spin on microtasks and starve the event loop.
        if (failed) await new Promise((r) => setTimeout(r, 100));
        node = alive().find((n) => n !== node) ?? alive()[0]!;
        m = await connect(node, id, secret);
      }
      const batch = todo.splice(0, 20);
      let onClose = () => {};
      const closed = new Promise<'closed'>((r) => (onClose = () => r('closed')));
      m.once('close', onClose);
      const outstanding = new Set(batch);
      const sent = Promise.all(batch.map((seq) =>
        Promise.race([m.publishAsync(`gridlink/v1/${id}/telemetry`, JSON.stringify({ ts: t0 + seq, seq, values: { water_level_cm: seq % 20 } }), { qos: 1 }).then(() => 'ok' as const, () => 'failed' as const), closed])
          .finally(() => outstanding.delete(seq))));
      // A live connection that never acknowledges is a hang: name the device, its node and what is stuck (read when it fails).
      const results = await guard(sent, `${id}: a batch on ${node.id}`).catch(async (err: Error) => {
        const views = await Promise.all(alive().map((n) => fetch(`${n.http}/metrics`).then((r) => r.text())
          .then((t) => `${n.id}: ${t.split('\n').filter((l) => /^gridlink_(pending|messages_|acks_held|db_)/.test(l)).join('; ')}`, (e: Error) => `${n.id}: ${e.message}`)));
        throw new Error(`${err.message}; connected ${m.connected}, no PUBACK or close for seq ${[...outstanding].join(',')}, acked ${acked.size}/${total}\n${views.join('\n')}`);
      });
      m.off('close', onClose);
      results.forEach((r, i) => (r === 'ok' ? acked.add(batch[i]!) : todo.push(batch[i]!)));
      failed = results.some((r) => r !== 'ok');
    }
    await guard(m.endAsync(), `${id}: DISCONNECT on ${node.id}`);
  }

  it('stores every acknowledged QoS 1 message when a node is SIGKILLed under load; its devices go on through the others', async () => {
    // An hour back: inside retention, never in the future, one distinct ts per message.
    const t0 = Date.now() - 3_600_000;
    const per = 400;
    const devices = await Promise.all(['ld-a1', 'ld-a2', 'ld-b1', 'ld-c1', 'ld-c2', 'ld-c3'].map(async (id) => ({ id, secret: await device(b, 'sensor.water_level', id) })));
    const home = (id: string) => (id.startsWith('ld-a') ? a : id.startsWith('ld-b') ? b : c);
    let dead: HubNode | null = null;
    const alive = () => nodes.filter((n) => n !== dead && n.child.exitCode === null && n.child.signalCode === null);
    const acked = new Map(devices.map((d) => [d.id, new Set<number>()]));
    const runs = devices.map((d) => publishLoad(d.id, d.secret, home(d.id), per, acked.get(d.id)!, alive, t0));
    // Node C dies with three devices on it, a third of the way in.
    await until(() => [...acked.values()].reduce((n, s) => n + s.size, 0) >= per * devices.length / 3, 120_000, 20);
    dead = c;
    await c.kill('SIGKILL');
    await Promise.all(runs);
    for (const d of devices) expect(acked.get(d.id)!.size, d.id).toBe(per);
    // Every acknowledged message is in the database, once.
    const stored = await db.query<{ device_id: string; n: number; distinct_seq: number }>(
      "select device_id, count(*)::int as n, count(distinct seq)::int as distinct_seq from readings where metric = 'water_level_cm' and device_id like 'ld-%' group by device_id order by device_id");
    expect(stored).toEqual(devices.map((d) => ({ device_id: d.id, n: per, distinct_seq: per })).sort((x, y) => x.device_id.localeCompare(y.device_id)));
  }, 300_000);

  it('hands every lease to a live node when the holder is SIGKILLed, and the absence timer fires once', async () => {
    const live = nodes.filter((n) => n.child.exitCode === null && n.child.signalCode === null);
    expect(live.length).toBeGreaterThanOrEqual(2);
    const before = (await health(live[0]!)).cluster.leases;
    const holder = live.find((n) => n.id === before['rules.timers']!.holder)!;
    expect(holder).toBeDefined();
    const survivors = live.filter((n) => n !== holder);
    const rule = { id: 'cluster-quiet', name: 'quiet device', enabled: true, kind: 'absence', offlineAfterS: 20, severity: 'warning', case: null, scope: { deviceIds: ['quiet-1', 'quiet-2', 'chatty-1'] } };
    const created = await api(survivors[0]!.http, 'POST', '/rules', rule, token);
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    // An officer watches from a survivor: every node's alarm events reach this socket.
    const s = ioc(survivors[0]!.http, { path: '/socket.io', auth: { token }, transports: ['websocket'], reconnection: false });
    sockets.push(s);
    const raised: string[] = [];
    s.on('alarm', (x: { deviceId: string; rule: string; change?: string }) => {
      if (x.rule === 'cluster-quiet' && x.change === 'raised') raised.push(x.deviceId);
    });
    await new Promise<void>((resolve, reject) => {
      s.once('connect', () => resolve());
      s.once('connect_error', reject);
    });
    const dev = async (id: string) => ({ id, secret: await device(survivors[0]!, 'sensor.water_level', id) });
    const [quiet1, quiet2, chatty] = await Promise.all([dev('quiet-1'), dev('quiet-2'), dev('chatty-1')]);
    // chatty-1 talks to a node that does not hold the lease, all along; quiet-1 says one thing, quiet-2 a little later.
    const chattyClient = await connect(survivors[survivors.length - 1]!, chatty.id, chatty.secret);
    let n = 0;
    const talk = setInterval(() => void chattyClient.publishAsync('gridlink/v1/chatty-1/telemetry', JSON.stringify({ values: { water_level_cm: ++n % 20 } }), { qos: 1 }).catch(() => undefined), 500);
    try {
      const q1 = await connect(survivors[0]!, quiet1.id, quiet1.secret);
      await guard(q1.publishAsync('gridlink/v1/quiet-1/telemetry', JSON.stringify({ values: { water_level_cm: 10 } }), { qos: 1 }), 'PUBACK of quiet-1');
      await guard(holder.kill('SIGKILL'), `exit of ${holder.id}`);
      const after = await until(async () => {
        const h = (await health(survivors[0]!)).cluster.leases;
        return Object.values(h).every((r) => r.holder !== null && r.holder !== holder.id) ? h : null;
      }, 60_000, 100);
      for (const [name, r] of Object.entries(after)) {
        expect(survivors.map((x) => x.id), name).toContain(r.holder);
        expect(r.token, name).toBeGreaterThan(before[name]!.token);
      }
      const q2 = await connect(survivors[0]!, quiet2.id, quiet2.secret);
      await guard(q2.publishAsync('gridlink/v1/quiet-2/telemetry', JSON.stringify({ values: { water_level_cm: 10 } }), { qos: 1 }), 'PUBACK of quiet-2');
      // quiet-2 is due at least one tick after quiet-1: once it shows, every duplicate of quiet-1 would have too.
      await until(() => raised.includes('quiet-2'), 120_000, 100);
      expect(raised.filter((d) => d === 'quiet-1')).toEqual(['quiet-1']);
      expect(raised).not.toContain('chatty-1');
      const rows = await db.query<{ device_id: string; count: number }>("select device_id, count from alarms where rule_id = 'cluster-quiet' order by device_id");
      expect(rows).toEqual([{ device_id: 'quiet-1', count: 1 }, { device_id: 'quiet-2', count: 1 }]);
    } finally {
      clearInterval(talk);
    }
  }, 300_000);
});
