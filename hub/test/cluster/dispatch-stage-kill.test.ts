/**
 * A worker's row follows each case action in the action's own commit.
 * Node A lives throughout and makes the dispatches; each later action
 * (accept, arrive, resolve, decline, cancel) goes through a node of its own
 * started with the testing option GRIDLINK_TEST_KILL_AFTER_CASE_COMMIT=<action>,
 * which SIGKILLs itself as soon as it hears that action committed, before
 * anything it does after the commit. The worker's row is one stage on (or
 * released) all the same, and node A, which made the dispatch and never
 * heard of the action, offers the worker again once the row is free (its
 * candidates read the rows) and dispatches them, also without ranking first
 * (the row, not its roster, decides a dispatch); its roster shows the
 * stage the row holds within its 5 s read-back of the rows, though nobody
 * announced it. A `rework` back to a
 * worker whose row holds another open case is refused with 409, whichever
 * node's roster is behind; a caller of another street cannot rework the
 * case, and an action's body cannot move another worker's row.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { AT } from '../cases/fixtures.js';
import { until } from '../helpers.js';
import { api, login, RUN_CLUSTER, TestCluster, type HubNode } from './harness.js';

/** Guards a hang on a busy machine; nothing here is a latency assertion. */
const WAIT = 120_000;
const OFFICER_PASSWORD = 'officer-pass-123';

interface Case { id: string; status: string; workerId: string | null; code?: string }
interface Worker { id: string; status: string; caseId: string | null }
interface Candidate { workerId: string }

describe.runIf(RUN_CLUSTER)('the worker row follows a case action whose node dies right after its commit', () => {
  const cl = new TestCluster({ wait: WAIT });
  let a: HubNode;
  let env: Record<string, string>;
  let token = '';
  let officerB = '';
  /** Cases in G-A1, the workers' grid. */
  const cases: string[] = [];

  let failed = false;
  beforeEach(({ onTestFailed }) => onTestFailed(() => void (failed = true)));

  beforeAll(async () => {
    env = await cl.open({ GRIDLINK_LOG_LEVEL: 'info', GRIDLINK_DISPATCH_ACCEPT_TIMEOUT_S: '3600' });
    a = await cl.node('node-a', env);
    token = await cl.district(a);
    const u = await api(a.http, 'POST', '/users', { username: 'officer-sb', password: OFFICER_PASSWORD, role: 'officer', regionId: 'S-B' }, token);
    expect(u.status, JSON.stringify(u.body)).toBe(201);
    officerB = await login(a.http, 'officer-sb', OFFICER_PASSWORD);
    for (const [i, id] of ['w-1', 'w-2', 'w-3'].entries()) await cl.addWorker(a, id, { at: { lat: AT.A1.lat, lon: AT.A1.lon + 0.0003 * i } });
    for (let i = 0; i < 8; i++) cases.push(await cl.newCase(a, { category: 'E0102', lat: AT.A1.lat, lon: AT.A1.lon + 0.0002 * (i + 1), description: `stage kill ${i + 1}` }));
    for (const w of ['w-1', 'w-2', 'w-3']) await until(() => offered(a, cases[7]!, w), WAIT, 100);
  }, 180_000);

  afterAll(() => cl.stop(failed), 60_000);

  const act = (node: HubNode, caseId: string, action: string, extra: Record<string, unknown> = {}, t = token) =>
    api<Case & { code?: string }>(node.http, 'POST', `/cases/${caseId}/actions`, { action, ...extra }, t);
  async function offered(node: HubNode, caseId: string, workerId: string): Promise<Candidate | undefined> {
    const r = await api<{ items: Candidate[] }>(node.http, 'GET', `/cases/${caseId}/candidates?limit=20`, undefined, token);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    return r.body.items.find((c) => c.workerId === workerId);
  }
  const row = async (id: string) =>
    (await cl.db.query<{ case_id: string | null; stage: string | null }>('select case_id, stage from workers where id = $1', [id]))[0]!;
  /** The dispatch records of a case, and the close of each one's `dispatch` command, oldest first. */
  const records = async (caseId: string) => cl.db.query<{ worker_id: string; accepted: boolean; arrived: boolean; arrived_by: string | null; ended: boolean; resolved: boolean; outcome: string | null; command: string | null }>(
    `select d.worker_id, d.accepted_at is not null as accepted, d.arrived_at is not null as arrived, d.arrived_by, d.ended_at is not null as ended,
            d.resolved_at is not null as resolved, d.outcome,
            (select coalesce(c.done_reason, 'open') from dispatch_commands c where c.case_id = d.case_id and c.worker_id = d.worker_id and c.type = 'dispatch'
              order by c.created_at desc limit 1) as command
       from case_dispatches d where d.case_id = $1 order by d.dispatched_at, d.attempt`, [caseId]);
  const caseRow = async (id: string) => (await cl.db.query<{ status: string; worker_id: string | null }>('select status, worker_id from cases where id = $1', [id]))[0]!;

  /** `action` on the case through a node of its own, which dies right after the action's commit. */
  async function actAndDie(caseId: string, action: string, extra: Record<string, unknown> = {}): Promise<void> {
    const k = await cl.node(`kill-${action}-${cl.nodes.length}`, { ...env, GRIDLINK_TEST_KILL_AFTER_CASE_COMMIT: action });
    const t = await login(k.http);
    await api(k.http, 'POST', `/cases/${caseId}/actions`, { action, ...extra }, t).catch(() => null);
    await until(() => k.child.exitCode !== null || k.child.signalCode !== null, WAIT, 20);
    expect(k.child.signalCode).toBe('SIGKILL');
  }

  it('moves the row to en route and on scene, and releases it on resolve, with each node killed after its commit', { timeout: 300_000 }, async () => {
    const d = await act(a, cases[0]!, 'dispatch', { workerId: 'w-1' });
    expect(d.status, JSON.stringify(d.body)).toBe(200);
    expect(await row('w-1')).toEqual({ case_id: cases[0], stage: 'dispatched' });

    // Attack on the way: the accept's body names another worker and carries data that speaks of a stage and a case;
    // only the case's own worker's row moves, one stage.
    await actAndDie(cases[0]!, 'accept', { workerId: 'w-2', data: { stage: 'on_scene', caseId: cases[1] } });
    expect(await caseRow(cases[0]!)).toEqual({ status: 'accepted', worker_id: 'w-1' });
    expect(await row('w-1')).toEqual({ case_id: cases[0], stage: 'en_route' });
    expect(await row('w-2')).toEqual({ case_id: null, stage: null });
    // The record's accept and the command's answer committed with it too.
    expect(await records(cases[0]!)).toEqual([{ worker_id: 'w-1', accepted: true, arrived: false, arrived_by: null, ended: false, resolved: false, outcome: null, command: 'accepted' }]);
    // Nobody announced the stage (its node died): node A's roster follows the row all the same, by its own
    // read-back of the rows, without a ranking or a dispatch through it.
    await until(async () => ((await api<Worker>(a.http, 'GET', '/workers/w-1', undefined, token)).body.status === 'en_route' ? true : null), WAIT, 100);

    await actAndDie(cases[0]!, 'arrive');
    expect(await caseRow(cases[0]!)).toEqual({ status: 'on_scene', worker_id: 'w-1' });
    expect(await row('w-1')).toEqual({ case_id: cases[0], stage: 'on_scene' });
    expect(await records(cases[0]!)).toEqual([{ worker_id: 'w-1', accepted: true, arrived: true, arrived_by: 'user', ended: false, resolved: false, outcome: null, command: 'accepted' }]);

    await actAndDie(cases[0]!, 'resolve', { note: 'done' });
    expect(await caseRow(cases[0]!)).toEqual({ status: 'resolved', worker_id: 'w-1' });
    expect(await row('w-1')).toEqual({ case_id: null, stage: null });
    expect(await records(cases[0]!)).toEqual([{ worker_id: 'w-1', accepted: true, arrived: true, arrived_by: 'user', ended: true, resolved: true, outcome: 'resolved', command: 'accepted' }]);

    // Node A made the dispatch and never heard of the three actions: its ranking reads the rows, so it offers
    // the worker again and a dispatch through it takes them.
    expect(await offered(a, cases[1]!, 'w-1')).toBeDefined();
    expect((await api<Worker>(a.http, 'GET', '/workers/w-1', undefined, token)).body.status).toBe('available');
    const again = await act(a, cases[1]!, 'dispatch', { workerId: 'w-1' });
    expect(again.status, JSON.stringify(again.body)).toBe(200);
    expect(await row('w-1')).toEqual({ case_id: cases[1], stage: 'dispatched' });
  });

  it('releases the row on a decline and on a cancel whose nodes die right after the commit', { timeout: 300_000 }, async () => {
    const first = await act(a, cases[2]!, 'dispatch', { workerId: 'w-2' });
    expect(first.status, JSON.stringify(first.body)).toBe(200);
    // Attack on the way: a caller's decline whose data says `timeout` is a decline all the same (only dispatch's own
    // withdrawal of an unanswered dispatch is a timeout).
    await actAndDie(cases[2]!, 'decline', { note: 'busy', data: { reason: 'timeout' } });
    expect(await caseRow(cases[2]!)).toEqual({ status: 'registered', worker_id: null });
    expect(await row('w-2')).toEqual({ case_id: null, stage: null });
    expect(await records(cases[2]!)).toEqual([{ worker_id: 'w-2', accepted: false, arrived: false, arrived_by: null, ended: true, resolved: false, outcome: 'declined', command: 'declined' }]);

    // Straight away, without a ranking first: node A's roster still has the worker on the declined case, and the row,
    // not the roster, decides the dispatch.
    expect((await api<Worker>(a.http, 'GET', '/workers/w-2', undefined, token)).body).toMatchObject({ status: 'dispatched', caseId: cases[2] });
    const d = await act(a, cases[2]!, 'dispatch', { workerId: 'w-2' });
    expect(d.status, JSON.stringify(d.body)).toBe(200);
    expect(await row('w-2')).toEqual({ case_id: cases[2], stage: 'dispatched' });

    // The cancel's body names another worker (busy with their own case): that row stays as it is.
    await actAndDie(cases[2]!, 'cancel', { note: 'withdrawn', workerId: 'w-1' });
    expect(await caseRow(cases[2]!)).toEqual({ status: 'rejected', worker_id: 'w-2' });
    expect(await row('w-2')).toEqual({ case_id: null, stage: null });
    expect(await row('w-1')).toEqual({ case_id: cases[1], stage: 'dispatched' });
    expect((await records(cases[2]!)).map((r) => [r.worker_id, r.outcome])).toEqual([['w-2', 'declined'], ['w-2', 'cancelled']]);
    // The `cancel` to the handheld is committed and open (this handheld is not connected: it gets it when it is).
    expect((await cl.db.query<{ type: string; reason: string | null }>("select type, done_reason as reason from dispatch_commands where case_id = $1 order by created_at", [cases[2]]))
      .map((r) => [r.type, r.reason])).toEqual([['dispatch', 'declined'], ['dispatch', 'cancelled'], ['cancel', null]]);
    expect((await records(cases[1]!)).map((r) => [r.worker_id, r.ended, r.command])).toEqual([['w-1', false, 'open']]);
    expect(await offered(a, cases[3]!, 'w-2')).toBeDefined();
  });

  it('refuses a rework back to a worker whose row holds another open case, and takes one to a free worker', { timeout: 300_000 }, async () => {
    // w-3 resolves cases[4], then is sent to cases[5].
    for (const [action, extra] of [['dispatch', { workerId: 'w-3' }], ['accept', {}], ['arrive', {}], ['resolve', { note: 'done' }]] as const) {
      const r = await act(a, cases[4]!, action, extra);
      expect(r.status, JSON.stringify(r.body)).toBe(200);
    }
    const d = await act(a, cases[5]!, 'dispatch', { workerId: 'w-3' });
    expect(d.status, JSON.stringify(d.body)).toBe(200);
    expect(await row('w-3')).toEqual({ case_id: cases[5], stage: 'dispatched' });

    const back = await act(a, cases[4]!, 'rework', { note: 'not fixed' });
    expect(back.status, JSON.stringify(back.body)).toBe(409);
    expect((back.body as unknown as { code: string }).code).toBe('WORKER_UNAVAILABLE');
    expect(await caseRow(cases[4]!)).toEqual({ status: 'resolved', worker_id: 'w-3' });
    expect(await row('w-3')).toEqual({ case_id: cases[5], stage: 'dispatched' });
    expect(await cl.db.query("select 1 from case_history where case_id = $1 and action = 'rework'", [cases[4]])).toEqual([]);

    // Attack: an officer of another street cannot rework the case (nor see it), to any worker.
    for (const extra of [{}, { workerId: 'w-2' }]) {
      const r = await act(a, cases[4]!, 'rework', { note: 'from another street', ...extra }, officerB);
      expect(r.status, JSON.stringify(r.body)).toBe(404);
    }
    expect(await caseRow(cases[4]!)).toEqual({ status: 'resolved', worker_id: 'w-3' });
    expect(await row('w-2')).toEqual({ case_id: null, stage: null });

    // A rework to a free worker takes their row in its commit; the busy worker's row stays.
    const other = await act(a, cases[4]!, 'rework', { note: 'not fixed', workerId: 'w-2' });
    expect(other.status, JSON.stringify(other.body)).toBe(200);
    expect(await row('w-2')).toEqual({ case_id: cases[4], stage: 'dispatched' });
    expect(await row('w-3')).toEqual({ case_id: cases[5], stage: 'dispatched' });
  });
});
