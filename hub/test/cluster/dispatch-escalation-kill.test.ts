/**
 * The re-dispatch a decline owes its case, when the node that committed the
 * decline dies right after the commit (the testing option
 * GRIDLINK_TEST_KILL_AFTER_CASE_COMMIT=decline SIGKILLs it as soon as it
 * hears the decline committed, before the re-dispatch). Node A lives and
 * holds `dispatch.timers` once the other node is gone: it finds the
 * declined record not marked escalated and makes the re-dispatch, once, to
 * the next worker, with the one `dispatch_declined` alarm naming them; the
 * handheld of that worker gets the command. A decline a dispatcher answers
 * with a dispatch of their own before the grace is over is owed nothing:
 * the dispatcher's dispatch stands and no second worker is sent.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { AT } from '../cases/fixtures.js';
import { until } from '../helpers.js';
import { api, logged, login, RUN_CLUSTER, TestCluster, type HubNode } from './harness.js';

/** Guards a hang on a busy machine; nothing here is a latency assertion. */
const WAIT = 120_000;

interface Case { id: string; status: string; workerId: string | null }

describe.runIf(RUN_CLUSTER)('a decline whose node dies right after its commit', () => {
  const cl = new TestCluster({ wait: WAIT });
  let a: HubNode;
  let env: Record<string, string>;
  const secrets = new Map<string, string>();

  let failed = false;
  beforeEach(({ onTestFailed }) => onTestFailed(() => void (failed = true)));

  beforeAll(async () => {
    env = await cl.open({ GRIDLINK_LOG_LEVEL: 'info', GRIDLINK_DISPATCH_ACCEPT_TIMEOUT_S: '3600' });
    a = await cl.node('node-a', env);
    await cl.district(a);
    // Nearest first: w-1, then w-2, w-3, w-4.
    for (const [i, id] of ['w-1', 'w-2', 'w-3', 'w-4'].entries()) secrets.set(id, await cl.addWorker(a, id, { at: { lat: AT.A1.lat, lon: AT.A1.lon + 0.0005 + 0.0015 * i } }));
  }, 180_000);

  afterAll(() => cl.stop(failed), 60_000);

  const caseOf = async (id: string) => (await cl.db.query<{ status: string; worker_id: string | null }>('select status, worker_id from cases where id = $1', [id]))[0]!;
  const records = async (caseId: string) =>
    (await cl.db.query<{ worker_id: string; outcome: string | null; escalated: boolean }>(
      'select worker_id, outcome, escalated_at is not null as escalated from case_dispatches where case_id = $1 order by attempt', [caseId])).map((r) => [r.worker_id, r.outcome, r.escalated]);
  const declinedAlarms = async (deviceId: string) =>
    cl.db.query<{ count: number; message: string }>("select count, message from alarms where rule_id = 'dispatch.dispatch_declined' and device_id = $1", [deviceId]);

  /** A decline through a node of its own, which dies right after the decline's commit. */
  async function declineAndDie(caseId: string): Promise<void> {
    const k = await cl.node(`kill-decline-${cl.nodes.length}`, { ...env, GRIDLINK_TEST_KILL_AFTER_CASE_COMMIT: 'decline' });
    const t = await login(k.http);
    await api(k.http, 'POST', `/cases/${caseId}/actions`, { action: 'decline', note: 'cannot go' }, t).catch(() => null);
    await until(() => k.child.exitCode !== null || k.child.signalCode !== null, WAIT, 20);
    expect(k.child.signalCode).toBe('SIGKILL');
  }

  it('makes the re-dispatch once on the surviving node, with one alarm naming the next worker', { timeout: 300_000 }, async () => {
    const caseId = await cl.newCase(a, { category: 'E0102', lat: AT.A1.lat, lon: AT.A1.lon, description: 'declined, node killed' });
    const hh = await cl.handheld(a, 'hh-w-2', secrets.get('w-2')!);
    expect((await cl.act(a, caseId, 'dispatch', { workerId: 'w-1' })).status).toBe(200);
    await declineAndDie(caseId);
    // The decline committed, with its record's end; the re-dispatch it owes was not made by its node.
    expect(await records(caseId)).toEqual([['w-1', 'declined', false]]);

    await until(async () => ((await caseOf(caseId)).worker_id === 'w-2' ? true : null), WAIT, 100);
    expect(await caseOf(caseId)).toEqual({ status: 'dispatched', worker_id: 'w-2' });
    await until(() => hh.got.find((c) => c.type === 'dispatch' && c.case.id === caseId), WAIT, 50);
    await until(async () => ((await declinedAlarms('hh-w-1')).length > 0 ? true : null), WAIT, 100);
    const alarms = await declinedAlarms('hh-w-1');
    expect(alarms.map((x) => x.count)).toEqual([1]);
    expect(alarms[0]!.message).toContain('已转派 w-2');
    expect(await records(caseId)).toEqual([['w-1', 'declined', true], ['w-2', null, false]]);
    expect(logged(a, 're-dispatch owed by another node made', caseId)).toBe(true);

    // The holder's later rounds (every 2 s) find nothing owed: still one re-dispatch, one alarm.
    await new Promise((r) => setTimeout(r, 5_000));
    expect(await records(caseId)).toEqual([['w-1', 'declined', true], ['w-2', null, false]]);
    expect((await declinedAlarms('hh-w-1')).map((x) => x.count)).toEqual([1]);
  });

  it('owes nothing when a dispatcher sent a worker before the grace was over', { timeout: 300_000 }, async () => {
    const caseId = await cl.newCase(a, { category: 'E0102', lat: AT.A1.lat + 0.0001, lon: AT.A1.lon, description: 'declined, dispatcher answered' });
    expect((await cl.act(a, caseId, 'dispatch', { workerId: 'w-3' })).status).toBe(200);
    await declineAndDie(caseId);
    const d = await cl.act<Case>(a, caseId, 'dispatch', { workerId: 'w-4' });
    expect(d.status, JSON.stringify(d.body)).toBe(200);
    // The holder's rounds past the grace (5 s, every 2 s) see the declined record is no longer the case's latest: nothing is owed.
    await new Promise((r) => setTimeout(r, 9_000));
    expect(await caseOf(caseId)).toEqual({ status: 'dispatched', worker_id: 'w-4' });
    expect((await records(caseId)).map((r) => r.slice(0, 2))).toEqual([['w-3', 'declined'], ['w-4', null]]);
    expect(await declinedAlarms('hh-w-3')).toEqual([]);
  });
});
