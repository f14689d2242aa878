/**
 * Two hub nodes: worker positions ingested on node A reach the regional
 * consoles whose sockets sit on node C, though no socket of that region is
 * on A; an officer of another street gets none of them, and no socket gets
 * a batch twice.
 */
import mqtt, { type MqttClient } from 'mqtt';
import { io as ioc, type Socket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PositionEvent } from '../../src/realtime/index.js';
import { AT, districtGrids } from '../cases/fixtures.js';
import { until } from '../helpers.js';
import { api, clusterEnv, createDatabase, login, RUN_CLUSTER, startNode, startRedis, type HubNode, type RedisServer, type TestDatabase } from './harness.js';

describe.runIf(RUN_CLUSTER)('positions to regional consoles across nodes', () => {
  let redis: RedisServer;
  let db: TestDatabase;
  const nodes: HubNode[] = [];
  const clients: MqttClient[] = [];
  const sockets: Socket[] = [];
  let a: HubNode, c: HubNode;
  let token = '';
  const secrets: Record<string, string> = {};

  beforeAll(async () => {
    redis = await startRedis();
    db = await createDatabase();
    const env = clusterEnv(redis.url, db.url, { GRIDLINK_DISPATCH_POSITIONS_MS: '200' });
    a = await startNode('node-a', env);
    nodes.push(a);
    token = await login(a.http);
    // Grids, officers and workers exist before node C starts, so C knows them from the database.
    const g = await api(a.http, 'PUT', '/grids', districtGrids(), token);
    expect(g.status, JSON.stringify(g.body)).toBe(200);
    for (const [username, regionId] of [['officer-sa', 'S-A'], ['officer-sb', 'S-B']] as const) {
      const r = await api(a.http, 'POST', '/users', { username, password: 'officer-pass-123', role: 'officer', regionId }, token);
      expect(r.status, JSON.stringify(r.body)).toBe(201);
    }
    for (const id of ['w-a', 'w-b']) {
      const d = await api<{ secret: string }>(a.http, 'POST', '/devices', { type: 'handheld', id: `hh-${id}` }, token);
      expect(d.status, JSON.stringify(d.body)).toBe(201);
      secrets[id] = d.body.secret;
      const w = await api(a.http, 'POST', '/workers', { id, name: id, deviceId: `hh-${id}`, gridIds: [] }, token);
      expect(w.status, JSON.stringify(w.body)).toBe(201);
      expect((await api(a.http, 'POST', `/workers/${id}/duty`, { onDuty: true }, token)).status).toBe(200);
    }
    c = await startNode('node-c', env);
    nodes.push(c);
  }, 180_000);

  afterAll(async () => {
    if (process.env.GRIDLINK_CLUSTER_LOGS === '1') for (const n of nodes) process.stderr.write(`--- ${n.id}\n${n.output()}\n`);
    for (const s of sockets) s.disconnect();
    await Promise.all(clients.map((m) => m.endAsync(true).catch(() => undefined)));
    await Promise.all(nodes.map((n) => n.kill('SIGKILL')));
    await redis?.stop();
    await db?.drop();
  }, 60_000);

  function listen(node: HubNode, t: string): Promise<PositionEvent[][]> {
    const s = ioc(node.http, { path: '/socket.io', auth: { token: t }, transports: ['websocket'], reconnection: false });
    sockets.push(s);
    const got: PositionEvent[][] = [];
    s.on('positions', (p: PositionEvent[]) => got.push(p));
    return new Promise((resolve, reject) => {
      s.once('connect', () => resolve(got));
      s.once('connect_error', reject);
    });
  }

  const connect = (node: HubNode, id: string, secret: string) =>
    new Promise<MqttClient>((resolve, reject) => {
      const m = mqtt.connect(`mqtt://127.0.0.1:${node.mqttPort}`, { clientId: id, username: id, password: secret, reconnectPeriod: 0, connectTimeout: 10_000 });
      clients.push(m);
      m.once('connect', () => resolve(m));
      m.once('error', reject);
      m.once('close', () => reject(new Error(`${id}: connection to ${node.id} closed before CONNACK`)));
    });

  it('sends a position ingested on node A to the officer of its street on node C, and not to another street', async () => {
    const [sa, sb] = [await login(c.http, 'officer-sa', 'officer-pass-123'), await login(c.http, 'officer-sb', 'officer-pass-123')];
    // Street A's officer on C (no socket of street A on node A), street B's on C, an unscoped admin on A.
    const [onC, otherStreet, adminOnA] = await Promise.all([listen(c, sa), listen(c, sb), listen(a, token)]);
    const [ha, hb] = await Promise.all([connect(a, 'hh-w-a', secrets['w-a']!), connect(a, 'hh-w-b', secrets['w-b']!)]);
    const items = (got: PositionEvent[][]) => got.flat();
    let n = 0;
    // A fix every 300 ms until each console has what it is owed (the push follows the dispatch beat).
    const fix = async () => {
      n += 1;
      const ts = Date.now();
      await Promise.all([
        ha.publishAsync('gridlink/v1/hh-w-a/location', JSON.stringify({ ts, lat: AT.A1.lat, lon: AT.A1.lon + n * 1e-6 }), { qos: 1 }),
        hb.publishAsync('gridlink/v1/hh-w-b/location', JSON.stringify({ ts, lat: AT.B1.lat, lon: AT.B1.lon + n * 1e-6 }), { qos: 1 }),
      ]);
    };
    await until(async () => {
      const done = items(onC).some((p) => p.workerId === 'w-a') && items(otherStreet).some((p) => p.workerId === 'w-b')
        && items(adminOnA).some((p) => p.workerId === 'w-a') && items(adminOnA).some((p) => p.workerId === 'w-b');
      if (!done) await fix();
      return done;
    }, 90_000, 300);
    // Street B's officer has had positions from node A's pushes, and none of street A's worker; and the reverse.
    expect(items(otherStreet).filter((p) => p.workerId === 'w-a')).toEqual([]);
    expect(items(onC).filter((p) => p.workerId === 'w-b')).toEqual([]);
    expect(items(onC).find((p) => p.workerId === 'w-a')!.gridId).toBe('G-A1');
    // Each socket gets each push once: no position (worker, ts) twice.
    for (const got of [onC, otherStreet, adminOnA]) {
      const keys = items(got).map((p) => `${p.workerId}@${p.ts}`);
      expect(new Set(keys).size).toBe(keys.length);
    }
  }, 180_000);
});
