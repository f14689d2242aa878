/**
 * Accept timeouts of dispatches on two nodes: a dispatch that is not accepted
 * times out exactly once, on the node that made it while it lives, and on
 * the other node when it was SIGKILLed before its timeout.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { until } from '../helpers.js';
import { api, clusterEnv, createDatabase, login, RUN_CLUSTER, startNode, startRedis, type HubNode, type RedisServer, type TestDatabase } from './harness.js';

describe.runIf(RUN_CLUSTER)('dispatch accept timeouts on two nodes', () => {
  let redis: RedisServer;
  let db: TestDatabase;
  const nodes: HubNode[] = [];
  let token = '';
  let a: HubNode, b: HubNode;

  beforeAll(async () => {
    redis = await startRedis();
    db = await createDatabase();
    // One automatic attempt: a timeout declines the dispatch and leaves the case to the dispatcher (no next candidate to rank).
    const env = clusterEnv(redis.url, db.url, { GRIDLINK_DISPATCH_ACCEPT_TIMEOUT_S: '4', GRIDLINK_DISPATCH_MAX_ATTEMPTS: '1', GRIDLINK_LOG_LEVEL: process.env.GRIDLINK_CLUSTER_LOG_LEVEL ?? 'warn' });
    a = await startNode('node-a', env);
    nodes.push(a);
    token = await login(a.http);
    // Workers exist before node B starts, so both nodes know them (docs/cluster.md: worker edits are not shared yet).
    for (const id of ['w1', 'w2']) {
      const d = await api(a.http, 'POST', '/devices', { type: 'handheld', id: `hh-${id}` }, token);
      expect(d.status, JSON.stringify(d.body)).toBe(201);
      expect((await api(a.http, 'POST', '/workers', { id, name: id, deviceId: `hh-${id}`, gridIds: [] }, token)).status).toBe(201);
      expect((await api(a.http, 'POST', `/workers/${id}/duty`, { onDuty: true }, token)).status).toBe(200);
    }
    b = await startNode('node-b', env);
    nodes.push(b);
  }, 180_000);

  afterAll(async () => {
    if (process.env.GRIDLINK_CLUSTER_LOGS === '1') for (const n of nodes) process.stderr.write(`--- ${n.id}\n${n.output()}\n`);
    await Promise.all(nodes.map((n) => n.kill('SIGKILL')));
    await redis?.stop();
    await db?.drop();
  }, 60_000);

  async function dispatchCase(node: HubNode, workerId: string): Promise<string> {
    const created = await api<{ id: string }>(node.http, 'POST', '/cases', { category: 'E0101', lat: 30.6, lon: 104.0, description: 'accept timeout' }, token);
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    expect((await api(node.http, 'POST', `/cases/${created.body.id}/actions`, { action: 'register' }, token)).status).toBe(200);
    const d = await api(node.http, 'POST', `/cases/${created.body.id}/actions`, { action: 'dispatch', workerId }, token);
    expect(d.status, JSON.stringify(d.body)).toBe(200);
    return created.body.id;
  }

  /** Waits until the dispatch of `caseId` has been withdrawn, then returns what the timeout left in the database. */
  async function afterTimeout(caseId: string) {
    await until(async () => {
      const r = await db.query<{ n: number }>("select count(*)::int as n from case_dispatches where case_id = $1 and ended_at is not null", [caseId]);
      return r[0]!.n > 0 ? true : null;
    }, 120_000, 200);
    // The case is back with the dispatcher.
    await until(async () => ((await api<{ status: string }>(a.http, 'GET', `/cases/${caseId}`, undefined, token)).body.status !== 'dispatched' ? true : null), 60_000, 200);
    const dispatches = await db.query<{ worker_id: string; outcome: string }>('select worker_id, outcome from case_dispatches where case_id = $1', [caseId]);
    const declines = await db.query<{ actor: string }>("select actor from case_history where case_id = $1 and action = 'decline'", [caseId]);
    return { dispatches, declines };
  }

  async function timeoutAlarms(deviceId: string) {
    return db.query<{ count: number }>("select count from alarms where rule_id = 'dispatch.dispatch_timeout' and device_id = $1", [deviceId]);
  }

  it('times out a dispatch once while both nodes live', async () => {
    const caseId = await dispatchCase(b, 'w1');
    const { dispatches, declines } = await afterTimeout(caseId);
    expect(dispatches).toEqual([{ worker_id: 'w1', outcome: 'timeout' }]);
    expect(declines).toHaveLength(1);
    const alarms = await until(async () => ((await timeoutAlarms('hh-w1')).length ? timeoutAlarms('hh-w1') : null), 60_000, 200);
    expect(alarms).toEqual([{ count: 1 }]);
  }, 300_000);

  it('times out, once, on the surviving node a dispatch whose node was SIGKILLed before its timeout', async () => {
    const caseId = await dispatchCase(b, 'w2');
    // Node B has written the dispatch (worker row and case_dispatches row) and dies well before the timeout.
    await until(async () => ((await db.query("select 1 from case_dispatches where case_id = $1", [caseId])).length ? true : null), 60_000, 50);
    await b.kill('SIGKILL');
    const { dispatches, declines } = await afterTimeout(caseId);
    expect(dispatches).toEqual([{ worker_id: 'w2', outcome: 'timeout' }]);
    expect(declines).toHaveLength(1);
    // The worker is free again in the database.
    const [w] = await db.query<{ case_id: string | null }>("select case_id from workers where id = 'w2'");
    expect(w!.case_id).toBeNull();
    // A later dispatch on the survivor times out too: the adoption scans that ran meanwhile added nothing to the first.
    const later = await dispatchCase(a, 'w1');
    expect((await afterTimeout(later)).dispatches).toEqual([{ worker_id: 'w1', outcome: 'timeout' }]);
    expect((await afterTimeout(caseId)).declines).toHaveLength(1);
    const alarms = await until(async () => ((await timeoutAlarms('hh-w2')).length ? timeoutAlarms('hh-w2') : null), 60_000, 200);
    expect(alarms).toEqual([{ count: 1 }]);
    const claims = await db.query<{ n: number }>("select count(*)::int as n from cluster_claims where key like 'dispatch.timeout:%' and done");
    expect(claims[0]!.n).toBe(3);
    // The claim is keyed by the worker row, the same on both nodes: one per dispatch.
    const keys = await db.query<{ key: string }>("select key from cluster_claims where key like $1", [`dispatch.timeout:${caseId}:%`]);
    expect(keys).toHaveLength(1);
  }, 300_000);
});
