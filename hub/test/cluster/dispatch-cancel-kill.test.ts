/**
 * A case cancelled through a node that dies right after the cancel's commit.
 * Node A makes the dispatch and lives; node K is started with the testing
 * option GRIDLINK_TEST_KILL_AFTER_CASE_COMMIT=cancel and SIGKILLs itself as
 * soon as it hears the cancel committed, before anything it does after the
 * commit. The worker's handheld stays connected to node A all along (its
 * re-send on connecting ran before the dispatch: no reconnect delivers
 * anything). The cancel's commit holds the `cancel` command (not sent), the
 * dispatch record's end (`cancelled`) and the dispatch command's close, so
 * node A's recovery round sends the stored cancel once, with its cmdId. An
 * officer of another street cannot cancel a case of this one, and no cancel
 * is written or sent for it.
 */
import type { Command } from '@gridlink/devices';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { AT } from '../cases/fixtures.js';
import { until } from '../helpers.js';
import { api, dispatchOf, hasExited, logged, login, RUN_CLUSTER, TestCluster, type HubNode } from './harness.js';

/** Guards a hang on a busy machine; nothing here is a latency assertion. */
const WAIT = 120_000;
const OFFICER_PASSWORD = 'officer-pass-123';

const cancelsOf = (got: Command[], caseId: string) => got.filter((x) => x.type === 'cancel' && x.caseId === caseId);

describe.runIf(RUN_CLUSTER)('a node killed right after a cancel commit: the handheld is told once, by the survivor', () => {
  const cluster = new TestCluster({ wait: WAIT });
  let a: HubNode;
  let env: Record<string, string>;
  let officerB = '';

  let failed = false;
  beforeEach(({ onTestFailed }) => onTestFailed(() => void (failed = true)));

  beforeAll(async () => {
    env = await cluster.open({ GRIDLINK_LOG_LEVEL: 'info', GRIDLINK_DISPATCH_ACCEPT_TIMEOUT_S: '3600', GRIDLINK_DISPATCH_RESEND_DELAY_MS: '0' });
    a = await cluster.node('node-a', env);
    await cluster.district(a);
    const u = await api(a.http, 'POST', '/users', { username: 'officer-sb', password: OFFICER_PASSWORD, role: 'officer', regionId: 'S-B' }, cluster.token);
    expect(u.status, JSON.stringify(u.body)).toBe(201);
    officerB = await login(a.http, 'officer-sb', OFFICER_PASSWORD);
  }, 180_000);

  afterAll(() => cluster.stop(failed), 60_000);

  const registeredCase = () => cluster.newCase(a, { category: 'E0102', ...AT.A1, description: 'cancel commit kill' });
  const commandRows = (caseId: string, type: string) =>
    cluster.db.query<{ cmd_id: string; sends: number; done: boolean; reason: string | null }>(
      'select cmd_id, sends, done_at is not null as done, done_reason as reason from dispatch_commands where case_id = $1 and type = $2', [caseId, type]);
  const records = (caseId: string) =>
    cluster.db.query<{ worker_id: string; outcome: string | null; ended: boolean }>('select worker_id, outcome, ended_at is not null as ended from case_dispatches where case_id = $1', [caseId]);

  it('commits the cancel with the case, and the survivor sends it once with its cmdId', { timeout: 300_000 }, async () => {
    const secret = await cluster.addWorker(a, 'w-1');
    const hh = await cluster.handheld(a, 'hh-w-1', secret);
    const caseId = await registeredCase();
    expect((await cluster.act(a, caseId, 'dispatch', { workerId: 'w-1' })).status).toBe(200);
    await until(() => dispatchOf(hh.got, caseId), WAIT, 50);

    const k = await cluster.node('node-k', { ...env, GRIDLINK_TEST_KILL_AFTER_CASE_COMMIT: 'cancel' });
    const tk = await login(k.http);
    await api(k.http, 'POST', `/cases/${caseId}/actions`, { action: 'cancel', note: 'withdrawn' }, tk).catch(() => null);
    await until(() => hasExited(k), WAIT, 20);
    expect(k.child.signalCode).toBe('SIGKILL');

    // Committed with the case: the cancel (open, never sent), the record's end, the dispatch command closed.
    const [cancel] = await commandRows(caseId, 'cancel');
    expect(cancel).toMatchObject({ sends: 0, done: false });
    expect(await records(caseId)).toEqual([{ worker_id: 'w-1', outcome: 'cancelled', ended: true }]);
    expect(await commandRows(caseId, 'dispatch')).toMatchObject([{ done: true, reason: 'cancelled' }]);

    // A's recovery round sends the stored command to the handheld that never left A.
    const got = await until(() => cancelsOf(hh.got, caseId)[0], WAIT, 50);
    expect(got.cmdId).toBe(cancel!.cmd_id);
    await until(() => logged(a, 'command committed and never sent: sent now', cancel!.cmd_id) || null, WAIT, 50);
    // Handed to a live session: closed, one send. QoS 1 may deliver twice; it is one command.
    expect(await commandRows(caseId, 'cancel')).toEqual([{ cmd_id: cancel!.cmd_id, sends: 1, done: true, reason: 'sent' }]);
    expect(new Set(cancelsOf(hh.got, caseId).map((x) => x.cmdId))).toEqual(new Set([cancel!.cmd_id]));
    expect(await records(caseId)).toEqual([{ worker_id: 'w-1', outcome: 'cancelled', ended: true }]);
  });

  it('refuses a cancel from an officer of another street, and writes or sends no cancel for it', { timeout: 300_000 }, async () => {
    const secret = await cluster.addWorker(a, 'w-2');
    const hh = await cluster.handheld(a, 'hh-w-2', secret);
    const caseId = await registeredCase();
    expect((await cluster.act(a, caseId, 'dispatch', { workerId: 'w-2' })).status).toBe(200);
    await until(() => dispatchOf(hh.got, caseId), WAIT, 50);

    for (const extra of [{}, { workerId: 'w-2' }]) {
      const r = await api(a.http, 'POST', `/cases/${caseId}/actions`, { action: 'cancel', note: 'from another street', ...extra }, officerB);
      expect([403, 404], JSON.stringify(r.body)).toContain(r.status);
    }
    expect(await cluster.db.query('select status, worker_id from cases where id = $1', [caseId])).toEqual([{ status: 'dispatched', worker_id: 'w-2' }]);
    expect(await commandRows(caseId, 'cancel')).toEqual([]);
    expect(await records(caseId)).toEqual([{ worker_id: 'w-2', outcome: null, ended: false }]);
    expect(await commandRows(caseId, 'dispatch')).toMatchObject([{ done: false }]);
    expect(await cluster.db.query('select case_id, stage from workers where id = $1', ['w-2'])).toEqual([{ case_id: caseId, stage: 'dispatched' }]);

    // The admin's cancel through the same node is sent at once, one command: the handheld heard nothing before it.
    expect(cancelsOf(hh.got, caseId)).toEqual([]);
    expect((await cluster.act(a, caseId, 'cancel', { note: 'withdrawn' })).status).toBe(200);
    const got = await until(() => cancelsOf(hh.got, caseId)[0], WAIT, 50);
    expect(await commandRows(caseId, 'cancel')).toEqual([{ cmd_id: got.cmdId, sends: 1, done: true, reason: 'sent' }]);
  });
});
