/**
 * Two hub nodes, auto-dispatch on for category E0101: node A creates a case
 * that is owed an automatic dispatch and dies before making it (the testing
 * option GRIDLINK_TEST_HOLD_AUTO_DISPATCH=1 keeps A from ever dispatching
 * automatically, as if it died between the case's commit and its dispatch;
 * the test waits until A has heard the case, then SIGKILLs it). Node B, the
 * `dispatch.timers` holder once A is gone, dispatches it exactly once to the
 * nearest available worker: one `case_dispatches` row, one `dispatch`
 * command received by the worker's real MQTT handheld connected to B, one
 * settled claim. A case a dispatcher dispatched by hand meanwhile is left
 * alone: its one `case_dispatches` row stays the only one and no claim is
 * ever taken for it.
 */
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { commandTopic, decodeCommand, type Command } from '@gridlink/devices';
import { AT, districtGrids } from '../cases/fixtures.js';
import { until } from '../helpers.js';
import { api, clusterEnv, createDatabase, health, login, RUN_CLUSTER, startNode, startRedis, type HubNode, type RedisServer, type TestDatabase } from './harness.js';

/** Guards a hang on a busy machine; nothing here is a latency assertion. */
const WAIT = 120_000;

interface Case { id: string; status: string; workerId: string | null }

describe.runIf(RUN_CLUSTER)('automatic dispatch owed by a node that died before making it', () => {
  let redis: RedisServer;
  let db: TestDatabase;
  const nodes: HubNode[] = [];
  const clients: MqttClient[] = [];
  let a: HubNode, b: HubNode;
  let token = '';
  const at = (dLon: number) => ({ lat: AT.A1.lat, lon: AT.A1.lon + dLon });

  let failed = false;
  beforeEach(({ onTestFailed }) => onTestFailed(() => void (failed = true)));

  beforeAll(async () => {
    redis = await startRedis();
    db = await createDatabase();
    const env = clusterEnv(redis.url, db.url, { GRIDLINK_DISPATCH_AUTO: 'E0101', GRIDLINK_LOG_LEVEL: 'info' });
    // A is the node that dies: it hears its cases but never dispatches them automatically.
    a = await startNode('node-a', { ...env, GRIDLINK_TEST_HOLD_AUTO_DISPATCH: '1' });
    nodes.push(a);
    token = await login(a.http);
    const g = await api(a.http, 'PUT', '/grids', districtGrids(), token);
    expect(g.status, JSON.stringify(g.body)).toBe(200);
    b = await startNode('node-b', env);
    nodes.push(b);
    await until(async () => (await Promise.all([a, b].map(health))).every((h) => h.cluster.owners.length === 2), WAIT, 100);
  }, 180_000);

  afterAll(async () => {
    if (failed || process.env.GRIDLINK_CLUSTER_LOGS === '1') for (const n of nodes) process.stderr.write(`--- ${n.id}\n${n.output()}\n`);
    await Promise.all(clients.map((m) => m.endAsync(true).catch(() => undefined)));
    await Promise.all(nodes.map((n) => n.kill('SIGKILL')));
    await redis?.stop();
    await db?.drop();
  }, 60_000);

  /** A worker of grid G-A1 at `fix`, its last fix stored before it exists (both nodes read it back); returns the handheld's secret. */
  async function addWorker(id: string, fix: { lat: number; lon: number }): Promise<string> {
    const d = await api<{ secret: string }>(a.http, 'POST', '/devices', { type: 'handheld', id: `hh-${id}` }, token);
    expect(d.status, JSON.stringify(d.body)).toBe(201);
    const f = await fetch(`${a.http}/api/v1/ingest/hh-${id}/location`, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(`hh-${id}:${d.body.secret}`).toString('base64')}`, 'content-type': 'application/json' },
      body: JSON.stringify({ ts: Date.now(), ...fix }),
    });
    expect(f.status, await f.text()).toBe(202);
    await until(async () => (await db.query('select 1 from positions where device_id = $1', [`hh-${id}`])).length > 0, WAIT, 100);
    const w = await api(a.http, 'POST', '/workers', { id, name: id, deviceId: `hh-${id}`, gridIds: ['G-A1'], onDuty: true }, token);
    expect(w.status, JSON.stringify(w.body)).toBe(201);
    return d.body.secret;
  }

  const connect = (node: HubNode, id: string, secret: string) =>
    new Promise<MqttClient>((resolve, reject) => {
      const m = mqtt.connect(`mqtt://127.0.0.1:${node.mqttPort}`, { clientId: id, username: id, password: secret, reconnectPeriod: 0, connectTimeout: 30_000, clean: false });
      clients.push(m);
      m.once('connect', () => resolve(m));
      m.once('error', reject);
      m.once('close', () => reject(new Error(`${id}: connection to ${node.id} closed before CONNACK`)));
    });

  async function newCase(node: HubNode, category: string, dLon: number): Promise<string> {
    const c = await api<Case>(node.http, 'POST', '/cases', { category, ...at(dLon), description: 'auto-dispatch adoption' }, token);
    expect(c.status, JSON.stringify(c.body)).toBe(201);
    return c.body.id;
  }
  const act = (node: HubNode, caseId: string, action: string, extra: Record<string, unknown> = {}) =>
    api<Case>(node.http, 'POST', `/cases/${caseId}/actions`, { action, ...extra }, token);
  /** The node printed `msg` about the case (one JSON log line). */
  const logged = (node: HubNode, caseId: string, msg: string) =>
    node.output().split('\n').some((l) => l.includes(`"msg":"${msg}"`) && l.includes(`"caseId":"${caseId}"`));
  const dispatchRows = (caseId: string) =>
    db.query<{ worker_id: string; actor: string }>('select worker_id, actor from case_dispatches where case_id = $1', [caseId]);

  it('dispatches once, on the survivor, the case whose node died before dispatching it; leaves a hand-dispatched one alone', async () => {
    // Nearest first: w-near, then w-hand, then w-far.
    const secret = await addWorker('w-near', at(0.0005));
    await addWorker('w-hand', at(0.0009));
    await addWorker('w-far', at(0.003));
    // w-near's handheld is on the node that survives.
    const hh = await connect(b, 'hh-w-near', secret);
    const got: Command[] = [];
    hh.on('message', (topic, payload) => {
      const cmd = topic === commandTopic('hh-w-near') ? decodeCommand(payload) : null;
      if (cmd) got.push(cmd);
    });
    await hh.subscribeAsync(commandTopic('hh-w-near'), { qos: 1 });

    // B ranks the three as above (a case of a category that is not auto-dispatched, so nobody dispatches it).
    const probe = await newCase(b, 'E0102', 0);
    let last = '';
    await until(async () => {
      const r = await api<{ items: Array<{ workerId: string }> }>(b.http, 'GET', `/cases/${probe}/candidates?limit=5`, undefined, token);
      last = JSON.stringify(r.body);
      return JSON.stringify(r.body.items?.map((c) => c.workerId)) === JSON.stringify(['w-near', 'w-hand', 'w-far']);
    }, WAIT, 100).catch((err: Error) => { throw new Error(`node-b candidates: ${last} (${err.message})`); });

    // A dispatcher dispatches one owed case by hand on A before anything automatic happens (A holds its automatic dispatches;
    // B hears nothing of the case but its rows).
    const byHand = await newCase(a, 'E0101', 0);
    expect((await act(a, byHand, 'register')).status).toBe(200);
    const d = await act(a, byHand, 'dispatch', { workerId: 'w-hand' });
    expect(d.status, JSON.stringify(d.body)).toBe(200);
    // A writes the dispatch record just after its answer: the hand dispatch is complete only then (a kill
    // before it leaves the case to the accept-timeout adoption, which is another test's subject).
    await until(async () => ((await dispatchRows(byHand)).length > 0) || null, WAIT, 50);

    // The owed case: A commits it, hears it, holds its dispatch, and dies.
    const owed = await newCase(a, 'E0101', 0);
    await until(() => logged(a, owed, 'automatic dispatch held (testing option)') || null, WAIT, 50);
    await a.kill('SIGKILL');
    expect(await dispatchRows(owed)).toEqual([]);

    // B dispatches it, once, to the nearest available worker (w-hand is busy with the hand-dispatched case).
    const cmd = await until(() => got.find((x) => x.type === 'dispatch' && x.case.id === owed), WAIT, 100);
    await until(async () => ((await db.query<{ done: boolean }>('select done from cluster_claims where key = $1', [`dispatch.auto:${owed}`]))[0]?.done) || null, WAIT, 100);
    const c = (await api<Case>(b.http, 'GET', `/cases/${owed}`, undefined, token)).body;
    expect(c).toMatchObject({ status: 'dispatched', workerId: 'w-near' });
    expect(await dispatchRows(owed)).toEqual([{ worker_id: 'w-near', actor: 'system:dispatch' }]);
    const commands = await db.query<{ cmd_id: string }>("select cmd_id from dispatch_commands where case_id = $1 and type = 'dispatch'", [owed]);
    expect(commands).toEqual([{ cmd_id: cmd.cmdId }]);
    // QoS 1 may deliver a command twice; it is one command (one cmdId).
    expect(new Set(got.filter((x) => x.type === 'dispatch' && x.case.id === owed).map((x) => x.cmdId))).toEqual(new Set([cmd.cmdId]));
    expect(logged(b, owed, 'automatic dispatch owed by another node adopted')).toBe(true);

    // The hand-dispatched case: still the dispatcher's one dispatch, and never claimed (claims are taken oldest first, so a
    // claim on it, older than the owed case, would be there by now).
    expect(await dispatchRows(byHand)).toEqual([{ worker_id: 'w-hand', actor: expect.stringMatching(/^user:/) }]);
    expect(await db.query('select key from cluster_claims where key = $1', [`dispatch.auto:${byHand}`])).toEqual([]);
    expect((await api<Case>(b.http, 'GET', `/cases/${byHand}`, undefined, token)).body).toMatchObject({ status: 'dispatched', workerId: 'w-hand' });
    // The probe case, of a category not auto-dispatched, is nobody's to dispatch.
    expect(await dispatchRows(probe)).toEqual([]);
  }, 400_000);
});
