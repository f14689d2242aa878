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
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { AT } from '../cases/fixtures.js';
import { until } from '../helpers.js';
import { api, dispatchOf, logged, RUN_CLUSTER, TestCluster, type HubNode } from './harness.js';

/** Guards a hang on a busy machine; nothing here is a latency assertion. */
const WAIT = 120_000;

interface Case { id: string; status: string; workerId: string | null }

describe.runIf(RUN_CLUSTER)('automatic dispatch owed by a node that died before making it', () => {
  const cluster = new TestCluster({ wait: WAIT });
  let a: HubNode, b: HubNode;
  let token = '';
  const at = (dLon: number) => ({ lat: AT.A1.lat, lon: AT.A1.lon + dLon });

  let failed = false;
  beforeEach(({ onTestFailed }) => onTestFailed(() => void (failed = true)));

  beforeAll(async () => {
    const env = await cluster.open({ GRIDLINK_DISPATCH_AUTO: 'E0101', GRIDLINK_LOG_LEVEL: 'info' });
    // A is the node that dies: it hears its cases but never dispatches them automatically.
    a = await cluster.node('node-a', { ...env, GRIDLINK_TEST_HOLD_AUTO_DISPATCH: '1' });
    token = await cluster.district(a);
    b = await cluster.node('node-b', env);
    await cluster.converged();
  }, 180_000);

  afterAll(() => cluster.stop(failed), 60_000);

  /** A worker of grid G-A1 at `fix`, its last fix stored before it exists (both nodes read it back); returns the handheld's secret. */
  const addWorker = (id: string, fix: { lat: number; lon: number }) => cluster.addWorker(a, id, { at: fix });
  const newCase = (node: HubNode, category: string, dLon: number) =>
    cluster.newCase(node, { category, ...at(dLon), description: 'auto-dispatch adoption' }, false);
  const act = (node: HubNode, caseId: string, action: string, extra: Record<string, unknown> = {}) => cluster.act<Case>(node, caseId, action, extra);
  /** The node printed `msg` about the case (one JSON log line). */
  const loggedAbout = (node: HubNode, caseId: string, msg: string) => logged(node, msg, `"caseId":"${caseId}"`);
  const dispatchRows = (caseId: string) =>
    cluster.db.query<{ worker_id: string; actor: string }>('select worker_id, actor from case_dispatches where case_id = $1', [caseId]);

  it('dispatches once, on the survivor, the case whose node died before dispatching it; leaves a hand-dispatched one alone', async () => {
    // Nearest first: w-near, then w-hand, then w-far.
    const secret = await addWorker('w-near', at(0.0005));
    await addWorker('w-hand', at(0.0009));
    await addWorker('w-far', at(0.003));
    // w-near's handheld is on the node that survives.
    const { got } = await cluster.handheld(b, 'hh-w-near', secret);

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
    await until(() => loggedAbout(a, owed, 'automatic dispatch held (testing option)') || null, WAIT, 50);
    await a.kill('SIGKILL');
    expect(await dispatchRows(owed)).toEqual([]);

    // B dispatches it, once, to the nearest available worker (w-hand is busy with the hand-dispatched case).
    const cmd = await until(() => dispatchOf(got, owed), WAIT, 100);
    await until(async () => ((await cluster.db.query<{ done: boolean }>('select done from cluster_claims where key = $1', [`dispatch.auto:${owed}`]))[0]?.done) || null, WAIT, 100);
    const c = (await api<Case>(b.http, 'GET', `/cases/${owed}`, undefined, token)).body;
    expect(c).toMatchObject({ status: 'dispatched', workerId: 'w-near' });
    expect(await dispatchRows(owed)).toEqual([{ worker_id: 'w-near', actor: 'system:dispatch' }]);
    const commands = await cluster.db.query<{ cmd_id: string }>("select cmd_id from dispatch_commands where case_id = $1 and type = 'dispatch'", [owed]);
    expect(commands).toEqual([{ cmd_id: cmd.cmdId }]);
    // QoS 1 may deliver a command twice; it is one command (one cmdId).
    expect(new Set(got.filter((x) => x.type === 'dispatch' && x.case.id === owed).map((x) => x.cmdId))).toEqual(new Set([cmd.cmdId]));
    expect(loggedAbout(b, owed, 'automatic dispatch owed by another node adopted')).toBe(true);

    // The hand-dispatched case: still the dispatcher's one dispatch, and never claimed (claims are taken oldest first, so a
    // claim on it, older than the owed case, would be there by now).
    expect(await dispatchRows(byHand)).toEqual([{ worker_id: 'w-hand', actor: expect.stringMatching(/^user:/) }]);
    expect(await cluster.db.query('select key from cluster_claims where key = $1', [`dispatch.auto:${byHand}`])).toEqual([]);
    expect((await api<Case>(b.http, 'GET', `/cases/${byHand}`, undefined, token)).body).toMatchObject({ status: 'dispatched', workerId: 'w-hand' });
    // The probe case, of a category not auto-dispatched, is nobody's to dispatch.
    expect(await dispatchRows(probe)).toEqual([]);
  }, 400_000);
});
