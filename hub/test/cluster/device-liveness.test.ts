/**
 * Two hub nodes: a device's online flag is the cluster's, not one node's.
 * Every node's REST shows a device online wherever it is connected; a
 * takeover keeps it online (the last connect wins, not the last writer);
 * the devices of a SIGKILLed node go offline on the survivor, except one
 * that reconnected to the survivor meanwhile.
 */
import mqtt, { type MqttClient } from 'mqtt';
import { io as ioc, type Socket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { until } from '../helpers.js';
import { api, clusterEnv, createDatabase, login, RUN_CLUSTER, startNode, startRedis, type HubNode, type RedisServer, type TestDatabase } from './harness.js';

describe.runIf(RUN_CLUSTER)('device online flag across nodes', () => {
  let redis: RedisServer;
  let db: TestDatabase;
  const nodes: HubNode[] = [];
  const clients: MqttClient[] = [];
  const sockets: Socket[] = [];
  let a: HubNode, b: HubNode;
  let token = '';

  beforeAll(async () => {
    redis = await startRedis();
    db = await createDatabase();
    const env = clusterEnv(redis.url, db.url);
    a = await startNode('node-a', env);
    b = await startNode('node-b', env);
    nodes.push(a, b);
    token = await login(a.http);
  }, 180_000);

  afterAll(async () => {
    if (process.env.GRIDLINK_CLUSTER_LOGS === '1') for (const n of nodes) process.stderr.write(`--- ${n.id}\n${n.output()}\n`);
    for (const s of sockets) s.disconnect();
    await Promise.all(clients.map((m) => m.endAsync(true).catch(() => undefined)));
    await Promise.all(nodes.map((n) => n.kill('SIGKILL')));
    await redis?.stop();
    await db?.drop();
  }, 60_000);

  const connect = (node: HubNode, id: string, secret: string) =>
    new Promise<MqttClient>((resolve, reject) => {
      const m = mqtt.connect(`mqtt://127.0.0.1:${node.mqttPort}`, { clientId: id, username: id, password: secret, reconnectPeriod: 0, connectTimeout: 10_000 });
      clients.push(m);
      m.once('connect', () => resolve(m));
      m.once('error', reject);
      m.once('close', () => reject(new Error(`${id}: connection to ${node.id} closed before CONNACK`)));
    });

  const online = async (node: HubNode, id: string) => {
    const r = await api<{ online: boolean }>(node.http, 'GET', `/devices/${id}`, undefined, token);
    expect(r.status).toBe(200);
    return r.body.online;
  };
  const rows = (ids: string[]) =>
    db.query<{ id: string; online: boolean; holder_node: string | null }>('select id, online, holder_node from devices where id = any($1) order by id', [ids]);

  it('shows devices online on every node, keeps a taken-over device online, and marks the devices of a killed node offline', async () => {
    const ids = ['lv-stay', 'lv-move', 'lv-take'];
    const secrets: Record<string, string> = {};
    for (const id of ids) {
      const r = await api<{ secret: string }>(a.http, 'POST', '/devices', { type: 'sensor.water_level', id }, token);
      expect(r.status, JSON.stringify(r.body)).toBe(201);
      secrets[id] = r.body.secret;
    }
    // A console on the survivor-to-be sees the device events of both nodes.
    const s = ioc(a.http, { path: '/socket.io', auth: { token }, transports: ['websocket'], reconnection: false });
    sockets.push(s);
    const events: Array<{ deviceId: string; online: boolean }> = [];
    s.on('device', (e: { deviceId: string; online: boolean }) => events.push(e));
    await new Promise<void>((resolve, reject) => {
      s.once('connect', () => resolve());
      s.once('connect_error', reject);
    });

    await connect(b, 'lv-stay', secrets['lv-stay']!);
    const move = await connect(b, 'lv-move', secrets['lv-move']!);
    // lv-take connects to A, then to B with the same clientId: B takes it over and A closes its connection.
    const first = await connect(a, 'lv-take', secrets['lv-take']!);
    const closed = new Promise<void>((r) => first.once('close', () => r()));
    await connect(b, 'lv-take', secrets['lv-take']!);
    await closed;

    // Node A's REST shows what B holds; the table names B as the holder of all three.
    await until(async () => (await Promise.all(ids.map((id) => online(a, id)))).every(Boolean), 60_000, 100);
    for (const id of ids) expect(await online(b, id), id).toBe(true);
    await until(async () => (await rows(ids)).every((r) => r.online && r.holder_node === 'node-b'), 60_000, 200);

    // B dies; lv-move comes back through A at once, lv-stay and lv-take do not come back.
    await b.kill('SIGKILL');
    const killedAt = events.length;
    move.end(true);
    await connect(a, 'lv-move', secrets['lv-move']!);
    await until(async () => !(await online(a, 'lv-stay')) && !(await online(a, 'lv-take')), 120_000, 200);
    expect(await online(a, 'lv-move')).toBe(true);
    await until(async () => {
      const r = await rows(ids);
      return r.find((x) => x.id === 'lv-stay')!.online === false && r.find((x) => x.id === 'lv-take')!.online === false;
    }, 60_000, 200);
    expect(await rows(ids)).toEqual([
      { id: 'lv-move', online: true, holder_node: 'node-a' },
      { id: 'lv-stay', online: false, holder_node: null },
      { id: 'lv-take', online: false, holder_node: null },
    ]);
    // The console heard that they went offline.
    const after = () => events.slice(killedAt);
    await until(() => after().some((e) => e.deviceId === 'lv-stay' && !e.online) && after().some((e) => e.deviceId === 'lv-take' && !e.online), 30_000, 100);
    expect(after().filter((e) => e.deviceId === 'lv-move' && !e.online)).toEqual([]);
  }, 300_000);
});
