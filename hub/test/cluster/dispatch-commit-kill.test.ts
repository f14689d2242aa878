/**
 * Two hub nodes. Node B is started with the testing option
 * GRIDLINK_TEST_KILL_AFTER_DISPATCH_COMMIT=1: it SIGKILLs itself as soon as
 * it hears a dispatch committed, before it publishes the command. The
 * worker's handheld stays connected to node A all along (it never
 * reconnects, and its re-send on connecting ran before: no re-send can
 * deliver anything). Node A, the
 * `dispatch.timers` holder, finds the command committed with the dispatch and
 * never sent, claims it and sends it once: the handheld receives the stored
 * command (its cmdId), the case has one dispatch record, the command one send.
 * A dispatch made through A meanwhile is sent once by A itself and never
 * again by the recovery round.
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

describe.runIf(RUN_CLUSTER)('a node killed right after a dispatch commit: its command is sent by the survivor', () => {
  let redis: RedisServer;
  let db: TestDatabase;
  const nodes: HubNode[] = [];
  const clients: MqttClient[] = [];
  let a: HubNode, b: HubNode;
  let token = '';

  let failed = false;
  beforeEach(({ onTestFailed }) => onTestFailed(() => void (failed = true)));

  beforeAll(async () => {
    redis = await startRedis();
    db = await createDatabase();
    // Re-sends on reconnect run at once (no delay): the handhelds' are over before any dispatch below, so what
    // reaches a handheld that stays connected can only come from the dispatching node or the recovery round.
    const env = clusterEnv(redis.url, db.url, { GRIDLINK_LOG_LEVEL: 'info', GRIDLINK_DISPATCH_ACCEPT_TIMEOUT_S: '3600', GRIDLINK_DISPATCH_RESEND_DELAY_MS: '0' });
    a = await startNode('node-a', env);
    nodes.push(a);
    token = await login(a.http);
    const g = await api(a.http, 'PUT', '/grids', districtGrids(), token);
    expect(g.status, JSON.stringify(g.body)).toBe(200);
    b = await startNode('node-b', { ...env, GRIDLINK_TEST_KILL_AFTER_DISPATCH_COMMIT: '1' });
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

  async function addWorker(id: string): Promise<string> {
    const d = await api<{ secret: string }>(a.http, 'POST', '/devices', { type: 'handheld', id: `hh-${id}` }, token);
    expect(d.status, JSON.stringify(d.body)).toBe(201);
    const w = await api(a.http, 'POST', '/workers', { id, name: id, deviceId: `hh-${id}`, gridIds: ['G-A1'], onDuty: true }, token);
    expect(w.status, JSON.stringify(w.body)).toBe(201);
    return d.body.secret;
  }

  async function handheld(node: HubNode, id: string, secret: string): Promise<{ m: MqttClient; got: Command[] }> {
    const m = await new Promise<MqttClient>((resolve, reject) => {
      const c = mqtt.connect(`mqtt://127.0.0.1:${node.mqttPort}`, { clientId: id, username: id, password: secret, reconnectPeriod: 0, connectTimeout: 30_000, clean: false });
      clients.push(c);
      c.once('connect', () => resolve(c));
      c.once('error', reject);
    });
    const got: Command[] = [];
    m.on('message', (topic, payload) => {
      const cmd = topic === commandTopic(id) ? decodeCommand(payload) : null;
      if (cmd) got.push(cmd);
    });
    await m.subscribeAsync(commandTopic(id), { qos: 1 });
    return { m, got };
  }

  async function registeredCase(node: HubNode): Promise<string> {
    const c = await api<Case>(node.http, 'POST', '/cases', { category: 'E0102', ...AT.A1, description: 'dispatch commit kill' }, token);
    expect(c.status, JSON.stringify(c.body)).toBe(201);
    expect((await api(node.http, 'POST', `/cases/${c.body.id}/actions`, { action: 'register' }, token)).status).toBe(200);
    return c.body.id;
  }

  const commands = (caseId: string) =>
    db.query<{ cmd_id: string; sends: number; sent: boolean }>("select cmd_id, sends, sent_at is not null as sent from dispatch_commands where case_id = $1 and type = 'dispatch'", [caseId]);
  const claimDone = async (cmdId: string) => (await db.query<{ done: boolean }>('select done from cluster_claims where key = $1', [`dispatch.send:${cmdId}`]))[0]?.done ?? null;

  it('sends once, from the survivor, the command of a dispatch whose node died right after committing it', { timeout: 300_000 }, async () => {
    const secretKilled = await addWorker('w-killed');
    const secretLive = await addWorker('w-live');
    // Both handhelds sit on A, the node that lives, for the whole test.
    const killed = await handheld(a, 'hh-w-killed', secretKilled);
    const live = await handheld(a, 'hh-w-live', secretLive);
    // B must know the worker before it may dispatch them (its roster hears A's creation).
    await until(async () => (await api<{ id: string }>(b.http, 'GET', '/workers/w-killed', undefined, token)).status === 200 || null, WAIT, 100);

    // A dispatch through A: sent by A, once.
    const onA = await registeredCase(a);
    expect((await api(a.http, 'POST', `/cases/${onA}/actions`, { action: 'dispatch', workerId: 'w-live' }, token)).status).toBe(200);
    const cmdA = await until(() => live.got.find((x) => x.type === 'dispatch' && x.case.id === onA), WAIT, 50);

    // A dispatch through B: B commits it and dies before anything else.
    const onB = await registeredCase(b);
    await api(b.http, 'POST', `/cases/${onB}/actions`, { action: 'dispatch', workerId: 'w-killed' }, token).catch(() => null);
    await until(() => b.child.exitCode !== null || b.child.signalCode !== null, WAIT, 20);
    expect(b.child.signalCode).toBe('SIGKILL');
    // Committed together: the case, the worker's row, the record, the command (not sent).
    expect(await db.query('select status, worker_id from cases where id = $1', [onB])).toEqual([{ status: 'dispatched', worker_id: 'w-killed' }]);
    expect(await db.query('select worker_id from case_dispatches where case_id = $1', [onB])).toEqual([{ worker_id: 'w-killed' }]);

    // A's recovery round sends it to the handheld that never left A, under the command's claim.
    const cmdB = await until(() => killed.got.find((x) => x.type === 'dispatch' && x.case.id === onB), WAIT, 50);
    await until(async () => (await claimDone(cmdB.cmdId)) || null, WAIT, 100);
    expect(await commands(onB)).toEqual([{ cmd_id: cmdB.cmdId, sends: 1, sent: true }]);
    await until(() => a.output().split('\n').some((l) => l.includes('"msg":"command committed and never sent: sent now"') && l.includes(cmdB.cmdId)) || null, WAIT, 50);
    // QoS 1 may deliver twice; it is one command.
    expect(new Set(killed.got.filter((x) => x.type === 'dispatch').map((x) => x.cmdId))).toEqual(new Set([cmdB.cmdId]));

    // A's own dispatch was sent once (claimed and settled by A) and not again by the recovery rounds since.
    expect(await commands(onA)).toEqual([{ cmd_id: cmdA.cmdId, sends: 1, sent: true }]);
    expect(await claimDone(cmdA.cmdId)).toBe(true);
    expect(new Set(live.got.filter((x) => x.type === 'dispatch').map((x) => x.cmdId))).toEqual(new Set([cmdA.cmdId]));
  });
});
