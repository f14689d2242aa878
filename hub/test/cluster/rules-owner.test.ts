/**
 * Rules on two hub processes: a device's messages reach either node (HTTP
 * ingest behind a balancer, an MQTT reconnect elsewhere), yet its "3 readings
 * in a row", its hysteresis and its alarm are one: the device's owner node
 * evaluates, the other forwards (docs/cluster.md, "Rules: one owner per
 * device"). And when the owner is SIGKILLed half-way through a run, the
 * survivor finishes it: one alarm, one case, one `raised`, never two.
 */
import { io as ioc, type Socket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rendezvousOwner } from '../../src/cluster/owners.js';
import { until } from '../helpers.js';
import { api, clusterEnv, createDatabase, health, login, RUN_CLUSTER, startNode, startRedis, type HubNode, type RedisServer, type TestDatabase } from './harness.js';

const RULE = {
  id: 'gas-3', name: '燃气 3 次连续超限', enabled: true, kind: 'threshold', metric: 'ch4_pct_lel', op: '>=', value: 20, count: 3,
  clear: { op: '<', value: 10 }, severity: 'major', case: { category: 'E0402' }, scope: { deviceTypes: ['sensor.gas'] },
};
/** Generous guards against a hang on a busy machine; nothing here is a latency assertion. */
const WAIT = 60_000;

interface AlarmSeen { deviceId: string; rule: string; change?: string }

describe.runIf(RUN_CLUSTER)('rules across two nodes: one owner per device', () => {
  let redis: RedisServer;
  let db: TestDatabase;
  let a: HubNode, b: HubNode;
  /** node-a again, new processes, for the last tests. */
  let a2: HubNode | undefined;
  let a3: HubNode | undefined;
  let token = '';
  let env: Record<string, string> = {};
  let socket: Socket | null = null;
  const seen: AlarmSeen[] = [];
  const secrets = new Map<string, string>();

  beforeAll(async () => {
    redis = await startRedis();
    db = await createDatabase();
    // Bursts of readings from a few devices below: a budget that never pushes back.
    env = clusterEnv(redis.url, db.url, { GRIDLINK_DEVICE_RATE: '5000', GRIDLINK_DEVICE_BURST: '5000' });
    a = await startNode('node-a', env);
    token = await login(a.http);
    const r = await api(a.http, 'POST', '/rules', RULE, token);
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    // B starts with the rule in the database.
    b = await startNode('node-b', env);
    await until(async () => (await Promise.all([a, b].map(health))).every((h) => h.cluster.owners.length === 2), WAIT, 100);
    await watch();
  }, 180_000);

  /** An officer's console on B: every node's alarm events reach it. */
  async function watch(): Promise<void> {
    socket?.disconnect();
    const s = ioc(b.http, { path: '/socket.io', auth: { token }, transports: ['websocket'], reconnection: false });
    socket = s;
    s.on('alarm', (x: AlarmSeen) => seen.push(x));
    await new Promise<void>((resolve, reject) => {
      s.once('connect', () => resolve());
      s.once('connect_error', reject);
    });
  }

  afterAll(async () => {
    if (process.env.GRIDLINK_CLUSTER_LOGS === '1') for (const n of [a, b, a2, a3]) if (n) process.stderr.write(`--- ${n.id}\n${n.output()}\n`);
    socket?.disconnect();
    await Promise.all([a, b, a2, a3].map((n) => n?.kill('SIGKILL')));
    await redis?.stop();
    await db?.drop();
  }, 60_000);

  async function device(type: string, id: string, at = { lat: 30.6, lon: 104.0 }): Promise<void> {
    const r = await api<{ secret: string }>(b.http, 'POST', '/devices', { type, id, ...at }, token);
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    secrets.set(id, r.body.secret);
  }

  /** One message through a node's HTTP ingest, as a balancer would send it there; 202 = committed. */
  async function send(node: HubNode, id: string, channel: 'telemetry' | 'event' | 'alert', body: object): Promise<void> {
    const auth = Buffer.from(`${id}:${secrets.get(id)}`).toString('base64');
    const r = await fetch(`${node.http}/api/v1/ingest/${id}/${channel}`, { method: 'POST', headers: { authorization: `Basic ${auth}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    expect(r.status, `${id} via ${node.id}: ${await r.text()}`).toBe(202);
  }
  const gas = (node: HubNode, id: string, v: number) => send(node, id, 'telemetry', { values: { ch4_pct_lel: v } });

  /** The pending run the device's owner flushed (rule_state). */
  async function pending(id: string, rule = RULE.id): Promise<number | null> {
    const [r] = await db.query<{ count: number }>("select (state->>'count')::int as count from rule_state where rule_id = $1 and device_id = $2", [rule, id]);
    return r?.count ?? null;
  }
  async function alarms(id: string, rule = RULE.id) {
    return db.query<{ id: string; status: string; count: number; case_id: string | null }>('select id, status, count, case_id from alarms where rule_id = $1 and device_id = $2 order by created_at', [rule, id]);
  }
  async function cases(id: string): Promise<number> {
    const [r] = await db.query<{ n: number }>('select count(distinct case_id)::int as n from case_links where device_id = $1', [id]);
    return r!.n;
  }
  /** What a console saw of the device's alarm, case links left out. */
  const changes = (id: string, rule = RULE.id) => seen.filter((x) => x.deviceId === id && x.rule === rule && x.change !== 'case_linked').map((x) => x.change);

  it('counts readings that alternate between nodes as one run: raised at the third, once, cleared once', async () => {
    await device('sensor.gas', 'gas-alt');
    // Round robin, as an HTTP balancer sends them; each reading waits for the one before to be counted.
    await gas(a, 'gas-alt', 25);
    await until(async () => (await pending('gas-alt')) === 1, WAIT, 50);
    await gas(b, 'gas-alt', 25);
    await until(async () => (await pending('gas-alt')) === 2, WAIT, 50);
    await gas(a, 'gas-alt', 26);
    const [raised] = await until(async () => {
      const rows = await alarms('gas-alt');
      return rows[0]?.case_id ? rows : null;
    }, WAIT, 50);
    expect(raised!.count).toBe(1);
    await gas(b, 'gas-alt', 27);
    await until(async () => (await alarms('gas-alt'))[0]?.count === 2, WAIT, 50);
    // Hysteresis: 15 is below the breach and above the clear level, 5 clears.
    await gas(a, 'gas-alt', 15);
    await gas(b, 'gas-alt', 5);
    await until(async () => (await alarms('gas-alt'))[0]?.status === 'cleared', WAIT, 50);
    await until(() => changes('gas-alt').includes('cleared'), WAIT, 50);
    const rows = await alarms('gas-alt');
    expect(rows.map((r) => [r.status, r.count])).toEqual([['cleared', 2]]);
    expect(await cases('gas-alt')).toBe(1);
    expect(changes('gas-alt')).toEqual(['raised', 'repeated', 'cleared']);
  }, 240_000);

  it('keeps one alarm and one case when a device\'s triggers reach both nodes', async () => {
    await device('sensor.smoke', 'smoke-both');
    await send(a, 'smoke-both', 'event', { type: 'smoke_alarm', severity: 'critical' });
    await until(async () => (await alarms('smoke-both', 'smoke-alarm'))[0]?.case_id, WAIT, 50);
    // The device reconnected to the other node and reports again.
    await send(b, 'smoke-both', 'event', { type: 'smoke_alarm', severity: 'critical' });
    await until(() => changes('smoke-both', 'smoke-alarm').length >= 2, WAIT, 50);
    expect(changes('smoke-both', 'smoke-alarm')).toEqual(['raised', 'repeated']);
    await until(async () => (await alarms('smoke-both', 'smoke-alarm'))[0]?.count === 2, WAIT, 50);
    expect((await alarms('smoke-both', 'smoke-alarm')).length).toBe(1);
    expect(await cases('smoke-both')).toBe(1);
  }, 240_000);

  it('correlates a smoke alarm and a camera fire alert whose devices have different owners: one critical correlation alarm', async () => {
    // The smoke sensor is node A's, the camera node B's: each device's own rules run on its owner, the correlation on the rule's.
    const ownedBy = (prefix: string, node: string) => {
      for (let i = 0; ; i++) if (rendezvousOwner(`${prefix}-${i}`, ['node-a', 'node-b']) === node) return `${prefix}-${i}`;
    };
    const smoke = ownedBy('smoke-corr', 'node-a');
    const cam = ownedBy('cam-corr', 'node-b');
    // 100 m apart, away from the other tests' devices (a smoke alarm of theirs within 200 m would be the match).
    await device('sensor.smoke', smoke, { lat: 30.65, lon: 104.05 });
    await device('camera', cam, { lat: 30.6509, lon: 104.05 });
    // Each through a node that does not own it, as a balancer may send them.
    await send(b, smoke, 'event', { type: 'smoke_alarm', severity: 'critical' });
    await send(a, cam, 'alert', { type: 'fire', confidence: 0.9 });
    const [corr] = await until(async () => {
      const rows = await db.query<{ id: string; status: string; severity: string; related: string[] | null; case_id: string | null }>(
        "select id, status, severity, related, case_id from alarms where rule_id = 'fire-correlation' and device_id = $1", [smoke]);
      return rows[0]?.case_id ? rows : null;
    }, WAIT, 50);
    expect(corr).toMatchObject({ status: 'active', severity: 'critical', related: [cam] });
    await until(async () => (await alarms(cam, 'camera-fire'))[0]?.case_id, WAIT, 50);
    await until(() => changes(smoke, 'fire-correlation').length >= 1, WAIT, 50);
    expect(changes(smoke, 'fire-correlation')).toEqual(['raised']);
    expect((await alarms(smoke, 'smoke-alarm')).length).toBe(1);
    expect((await alarms(cam, 'camera-fire')).length).toBe(1);
  }, 240_000);

  it('finishes a run half-way through when its owner is SIGKILLed: raised once on the survivor, an alarm raised before goes on', async () => {
    // Two devices node A owns while both nodes live.
    const owned = (prefix: string) => {
      for (let i = 0; ; i++) if (rendezvousOwner(`${prefix}-${i}`, ['node-a', 'node-b']) === 'node-a') return `${prefix}-${i}`;
    };
    const mid = owned('gas-mid');
    const up = owned('gas-up');
    const orphan = owned('gas-orphan');
    await device('sensor.gas', mid);
    await device('sensor.gas', up);
    await device('sensor.gas', orphan);
    // What A leaves when it dies between an alarm's row and its case: the row alone.
    await db.query(
      `insert into alarms (id, rule_id, rule_name, device_id, type, severity, original_severity, status, message, ts, last_ts, created_at, updated_at, lat, lon)
       values ('00000000-0000-4000-8000-0000000000aa', $1, $2, $3, 'ch4_pct_lel', 'major', 'major', 'active', 'ch4_pct_lel 40 >= 20', now(), now(), now(), now(), 30.6, 104.0)`,
      [RULE.id, RULE.name, orphan]);
    // `mid`: 2 of 3, one reading through each node. `up`: raised (with its case) from readings B forwarded.
    await gas(a, mid, 30);
    await gas(b, mid, 30);
    for (const v of [30, 31, 32]) await gas(b, up, v);
    await until(async () => (await pending(mid)) === 2, WAIT, 50);
    await until(async () => (await alarms(up))[0]?.case_id, WAIT, 50);
    await a.kill('SIGKILL');
    // The devices go on through B, which takes them over.
    await gas(b, mid, 33);
    await gas(b, up, 34);
    await until(async () => (await alarms(mid))[0]?.case_id, WAIT, 50);
    await until(async () => (await alarms(up))[0]?.count === 2, WAIT, 50);
    await gas(b, mid, 35);
    await until(async () => (await alarms(mid))[0]?.count === 2, WAIT, 50);
    // B took A's devices over and gave the orphaned alarm its case.
    await until(async () => (await alarms(orphan))[0]?.case_id, WAIT, 50);
    expect(await cases(orphan)).toBe(1);
    expect((await alarms(mid)).map((r) => [r.status, r.count])).toEqual([['active', 2]]);
    expect((await alarms(up)).map((r) => [r.status, r.count])).toEqual([['active', 2]]);
    expect([await cases(mid), await cases(up)]).toEqual([1, 1]);
    expect(changes(mid)).toEqual(['raised', 'repeated']);
    expect(changes(up)).toEqual(['raised', 'repeated']);
  }, 240_000);

  it('keeps every alarm and case single when a node joins and is SIGKILLed at an arbitrary moment under load', async () => {
    // node-a comes back as a new process: it wins back its devices from B.
    a2 = await startNode('node-a', env);
    await until(async () => (await Promise.all([a2!, b].map(health))).every((h) => h.cluster.owners.length === 2), WAIT, 100);
    const ids = Array.from({ length: 6 }, (_, i) => `gas-load-${i}`);
    for (const id of ids) await device('sensor.gas', id);
    let dead = false;
    let sent = 0;
    /** Sends through a2 or b in turn; once a2 is dead (or a request to it dies with it), through b. */
    const put = async (i: number, id: string, v: number) => {
      const node = !dead && i % 2 === 0 ? a2! : b;
      try {
        await gas(node, id, v);
      } catch (err) {
        if (node === b) throw err;
        await gas(b, id, v);
      }
      sent++;
    };
    // Each cycle is one episode: raised at the third breach, repeated at the fourth, cleared by the fifth reading.
    const cycle = [25, 25, 25, 26, 5];
    const cycles = 8;
    const total = ids.length * cycles * cycle.length;
    const runs = ids.map(async (id) => {
      let i = 0;
      for (let c = 0; c < cycles; c++) for (const v of cycle) await put(i++, id, v);
      // The last run, through the survivor: every device ends with an alarm up.
      for (const v of [30, 30, 30, 30]) await put(i++, id, v);
    });
    await until(() => sent >= total / 3, WAIT * 2, 10);
    dead = true;
    await a2.kill('SIGKILL');
    await Promise.all(runs);
    for (const id of ids) await until(async () => (await alarms(id)).some((r) => r.status === 'active' && r.case_id), WAIT, 100);
    const rows = await db.query<{ id: string; device_id: string; status: string; case_id: string | null }>(
      'select id, device_id, status, case_id from alarms where rule_id = $1 and device_id = any($2::text[])', [RULE.id, ids]);
    const events = () => seen.filter((x) => x.rule === RULE.id && ids.includes(x.deviceId)) as Array<AlarmSeen & { id: string }>;
    // Nothing announced twice, nothing announced without its row. The kill can fall between a row and its
    // announcement or its case (docs/cluster.md): at most one such row, since one node died.
    const cleared = rows.filter((r) => r.status === 'cleared');
    await until(() => events().filter((e) => e.change === 'raised').length >= rows.length - 1 && events().filter((e) => e.change === 'cleared').length >= cleared.length - 1, WAIT, 100);
    const raisedIds = events().filter((e) => e.change === 'raised').map((e) => e.id);
    const clearedIds = events().filter((e) => e.change === 'cleared').map((e) => e.id);
    expect(new Set(raisedIds).size).toBe(raisedIds.length);
    expect(new Set(clearedIds).size).toBe(clearedIds.length);
    const rowIds = new Set(rows.map((r) => r.id));
    expect(raisedIds.filter((x) => !rowIds.has(x))).toEqual([]);
    expect(clearedIds.filter((x) => !cleared.some((r) => r.id === x))).toEqual([]);
    expect(rows.length - raisedIds.length).toBeLessThanOrEqual(1);
    expect(rows.filter((r) => r.case_id === null).length).toBeLessThanOrEqual(1);
    // Several episodes per device, one case per device: every later episode joins the open one, none opens a second.
    expect(rows.length).toBeGreaterThanOrEqual(ids.length * 2);
    for (const id of ids) expect(await cases(id), id).toBe(1);
  }, 300_000);

  it('hands a run over exactly when its owner stops cleanly (SIGTERM): raised at the third reading on the other node', async () => {
    await a.kill('SIGKILL');
    a3 = await startNode('node-a', env);
    await until(async () => (await Promise.all([a3!, b].map(health))).every((h) => h.cluster.owners.length === 2), WAIT, 100);
    const id = (() => {
      for (let i = 0; ; i++) if (rendezvousOwner(`gas-stop-${i}`, ['node-a', 'node-b']) === 'node-a') return `gas-stop-${i}`;
    })();
    await device('sensor.gas', id);
    // Both nodes must count this device to node-a before the run starts.
    await gas(b, id, 24);
    await until(async () => (await pending(id)) === 1, WAIT, 50);
    await gas(a3, id, 24);
    await until(async () => (await pending(id)) === 2, WAIT, 50);
    await a3.kill('SIGTERM');
    // A node's clean stop closes its own consoles only: the officer's console on B stays connected and sees the raise.
    await gas(b, id, 24);
    await until(async () => (await alarms(id))[0]?.case_id, WAIT, 50);
    expect((await alarms(id)).map((r) => [r.status, r.count])).toEqual([['active', 1]]);
    await until(() => changes(id).length >= 1, WAIT, 50);
    expect(changes(id)).toEqual(['raised']);
    expect(socket!.connected).toBe(true);
  }, 240_000);
});
