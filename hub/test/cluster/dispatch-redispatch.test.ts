/**
 * Two hub nodes: an accept timeout's automatic re-dispatch whose first choice
 * is taken through the other path between the ranking and the worker's row
 * (a dispatcher's dispatch through node A, held on the row until the
 * escalation waits behind it) goes to the second candidate; when every
 * candidate is taken that way, the case goes back to the dispatcher with
 * exactly one `dispatch_no_candidate` alarm.
 *
 * The test holds the free workers' rows itself (`select … for update` on a
 * connection of its own), so the order is fixed by PostgreSQL's row locks,
 * not by timing: node A's dispatch queues on the row first, then the
 * escalation (whichever node claims the timeout) queues behind it; the test
 * lets go only once both wait.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AT } from '../cases/fixtures.js';
import { until } from '../helpers.js';
import { api, guard, ingestLocation, RUN_CLUSTER, TestCluster, type HubNode } from './harness.js';

/** Guards a hang on a busy machine; nothing here is a latency assertion. */
const WAIT = 120_000;
const REFUSED = 'automatic dispatch refused, worker taken meanwhile: trying the next candidate';

interface Case { id: string; status: string; workerId: string | null }

describe.runIf(RUN_CLUSTER)('automatic re-dispatch past a worker taken through another node', () => {
  const cluster = new TestCluster({ wait: WAIT });
  let a: HubNode, b: HubNode;
  let token = '';
  const at = (dLon: number) => ({ lat: AT.A1.lat, lon: AT.A1.lon + dLon });

  beforeAll(async () => {
    // Info: each refusal is one log line; a short accept timeout so the escalation comes soon.
    const env = await cluster.open({ GRIDLINK_DISPATCH_ACCEPT_TIMEOUT_S: '4', GRIDLINK_LOG_LEVEL: 'info' });
    a = await cluster.node('node-a', env);
    token = await cluster.district(a);
    b = await cluster.node('node-b', env);
    await cluster.converged();

    // The workers the escalations rank: w-spare nearest, w-spare2 next, with fixes both nodes read back.
    await addWorker('w-spare', '甲', at(0.0005));
    await addWorker('w-spare2', '乙', at(0.0009));
    // The first choices have no fix, so they are never anyone's candidate.
    await addWorker('w-first1', '一号');
    await addWorker('w-first2', '二号');
  }, 180_000);

  afterAll(() => cluster.stop(), 60_000);

  async function addWorker(id: string, name: string, fix?: { lat: number; lon: number }): Promise<void> {
    // A fix stored before the worker exists (B reads it back with the worker), and one A ingests for the worker.
    const secret = await cluster.addWorker(a, id, { name, at: fix });
    if (fix) {
      const f = await ingestLocation(a, `hh-${id}`, secret, { ts: Date.now(), ...fix });
      expect(f.status, f.text).toBe(202);
    }
  }

  const newCase = (dLon: number) => cluster.newCase(b, { category: 'E0101', ...at(dLon), description: 're-dispatch' });
  const act = (node: HubNode, caseId: string, action: string, extra: Record<string, unknown> = {}) =>
    cluster.act<Case & { code?: string }>(node, caseId, action, extra);
  const caseOf = async (id: string) => (await api<Case>(a.http, 'GET', `/cases/${id}`, undefined, token)).body;

  /** Both nodes rank the two spares first and second for a case. */
  async function bothRankSpares(caseId: string): Promise<void> {
    for (const n of [a, b]) {
      let last = '';
      await until(async () => {
        const r = await api<{ items: Array<{ workerId: string }> }>(n.http, 'GET', `/cases/${caseId}/candidates?limit=5`, undefined, token);
        last = JSON.stringify(r.body);
        return last.includes('"items"') && JSON.stringify(r.body.items.map((c) => c.workerId)) === JSON.stringify(['w-spare', 'w-spare2']);
      }, WAIT, 100).catch((err: Error) => { throw new Error(`${n.id} candidates of ${caseId}: ${last} (${err.message})`); });
    }
  }

  /** Dispatches (the row's claim, `select … for update` on workers) waiting for a row lock. */
  async function waitingClaims(): Promise<number> {
    const [r] = await cluster.db.query<{ n: number }>(
      `select count(*)::int as n from pg_stat_activity
        where datname = current_database() and wait_event_type = 'Lock' and query like 'select case_id, stage, on_duty from workers where id = $1 for update%'`);
    return r!.n;
  }

  /** The escalation of `caseId` is over: re-dispatched to someone else, or left with a no-candidate alarm. */
  async function settled(caseId: string, first: string): Promise<void> {
    await until(async () => {
      const c = await caseOf(caseId);
      if (c.status === 'dispatched' && c.workerId !== first) return true;
      return (await alarms('dispatch.dispatch_no_candidate', `case:${caseId}`)).length > 0;
    }, WAIT, 200);
  }

  const alarms = (rule: string, deviceId: string) =>
    cluster.db.query<{ count: number; message: string }>('select count, message from alarms where rule_id = $1 and device_id = $2', [rule, deviceId]);
  /** The refusal lines for a case, from both nodes' logs. */
  function refusals(caseId: string): Array<{ node: string; workerId: string }> {
    const out: Array<{ node: string; workerId: string }> = [];
    for (const n of cluster.nodes) {
      for (const line of n.output().split('\n')) {
        if (!line.startsWith('{') || !line.includes(REFUSED)) continue;
        const l = JSON.parse(line) as { msg: string; caseId: string; workerId: string };
        if (l.msg === REFUSED && l.caseId === caseId) out.push({ node: n.id, workerId: l.workerId });
      }
    }
    return out;
  }
  async function rows(): Promise<Record<string, string | null>> {
    const r = await cluster.db.query<{ id: string; case_id: string | null }>('select id, case_id from workers');
    return Object.fromEntries(r.map((x) => [x.id, x.case_id]));
  }
  async function openCases(): Promise<Record<string, string[]>> {
    const r = await cluster.db.query<{ id: string; worker_id: string }>("select id, worker_id from cases where worker_id is not null and status in ('dispatched', 'accepted', 'on_scene') order by id");
    const out: Record<string, string[]> = {};
    for (const x of r) (out[x.worker_id] ??= []).push(x.id);
    return out;
  }

  /**
   * Holds the rows of `taken` while node A dispatches each to its case and
   * `caseId` is dispatched through B to `first`; lets go once the
   * escalation of its accept timeout waits on the row of the first taken
   * worker behind A's dispatch.
   */
  async function takeWhileRanked(taken: Array<{ workerId: string; caseId: string }>, caseId: string, first: string): Promise<void> {
    const lock = new pg.Client({ connectionString: cluster.db.url });
    await lock.connect();
    try {
      await lock.query('begin');
      await lock.query('select id from workers where id = any($1) for update', [taken.map((t) => t.workerId)]);
      const dispatches = taken.map((t) => guard(act(a, t.caseId, 'dispatch', { workerId: t.workerId }), `dispatch of ${t.workerId} through node A`));
      await until(async () => (await waitingClaims()) === taken.length, WAIT, 50);
      const d = await act(b, caseId, 'dispatch', { workerId: first });
      expect(d.status, JSON.stringify(d.body)).toBe(200);
      // The accept timeout fires on a node, which ranks w-spare (still free in every roster) and queues on its row.
      await until(async () => (await waitingClaims()) === taken.length + 1, WAIT, 50);
      await lock.query('commit');
      for (const r of await Promise.all(dispatches)) expect(r.status, JSON.stringify(r.body)).toBe(200);
    } finally {
      await lock.end();
    }
  }

  it('gives the case to the second candidate when node A takes the first between the ranking and the row', async () => {
    const c = await newCase(0);
    const x = await newCase(0.0003);
    await bothRankSpares(c);

    await takeWhileRanked([{ workerId: 'w-spare', caseId: x }], c, 'w-first1');
    await settled(c, 'w-first1');

    expect(await caseOf(c)).toMatchObject({ status: 'dispatched', workerId: 'w-spare2' });
    expect(await caseOf(x)).toMatchObject({ status: 'dispatched', workerId: 'w-spare' });
    // One assignment per worker, in the rows and in the cases.
    expect(await rows()).toEqual({ 'w-spare': x, 'w-spare2': c, 'w-first1': null, 'w-first2': null });
    expect(await openCases()).toEqual({ 'w-spare': [x], 'w-spare2': [c] });
    // The refused worker is no attempt of the case; the timeout is one, the second candidate the next.
    const attempts = await cluster.db.query<{ worker_id: string; outcome: string | null; attempt: number }>('select worker_id, outcome, attempt from case_dispatches where case_id = $1 order by attempt', [c]);
    expect(attempts).toEqual([{ worker_id: 'w-first1', outcome: 'timeout', attempt: 1 }, { worker_id: 'w-spare2', outcome: null, attempt: 2 }]);
    // One refusal, logged once on the node that escalated; the timeout alarm names who the case went to; no one told there was no one.
    const refused = refusals(c);
    expect(refused.map((r) => r.workerId)).toEqual(['w-spare']);
    const timeout = await until(async () => ((await alarms('dispatch.dispatch_timeout', 'hh-w-first1')).length ? alarms('dispatch.dispatch_timeout', 'hh-w-first1') : null), WAIT, 200);
    expect(timeout).toHaveLength(1);
    expect(timeout[0]!.count).toBe(1);
    expect(timeout[0]!.message).toContain('已转派 乙');
    expect(await alarms('dispatch.dispatch_no_candidate', `case:${c}`)).toEqual([]);

    // Withdrawn through the other node: both spares are free again for the next test.
    for (const id of [c, x]) expect((await act(b, id, 'cancel', { note: 'done' })).status).toBe(200);
    await until(async () => Object.values(await rows()).every((v) => v === null), WAIT, 100);
  }, 300_000);

  it('leaves the case to the dispatcher with exactly one alarm when node A takes every candidate', async () => {
    const c = await newCase(0.0001);
    const x = await newCase(0.0004);
    const y = await newCase(0.0006);
    await bothRankSpares(c);

    await takeWhileRanked([{ workerId: 'w-spare', caseId: x }, { workerId: 'w-spare2', caseId: y }], c, 'w-first2');
    await settled(c, 'w-first2');

    expect(await caseOf(c)).toMatchObject({ status: 'registered', workerId: null });
    expect(await rows()).toEqual({ 'w-spare': x, 'w-spare2': y, 'w-first1': null, 'w-first2': null });
    expect(await openCases()).toEqual({ 'w-spare': [x], 'w-spare2': [y] });
    expect(await cluster.db.query('select 1 from case_dispatches where case_id = $1 and ended_at is null', [c])).toEqual([]);
    // w-spare was refused, then w-spare2 (refused too, or already known taken and not ranked): each refusal logged once.
    const refused = refusals(c).map((r) => r.workerId);
    expect(refused[0]).toBe('w-spare');
    expect(new Set(refused).size).toBe(refused.length);
    expect(refused.every((w) => w === 'w-spare' || w === 'w-spare2')).toBe(true);
    // Exactly one no-candidate alarm, and a timeout alarm that names no worker the case never went to.
    const none = await alarms('dispatch.dispatch_no_candidate', `case:${c}`);
    expect(none).toHaveLength(1);
    expect(none[0]!.count).toBe(1);
    expect(await cluster.db.query("select 1 from alarms where rule_id = 'dispatch.dispatch_exhausted'")).toEqual([]);
    const timeout = await until(async () => ((await alarms('dispatch.dispatch_timeout', 'hh-w-first2')).length ? alarms('dispatch.dispatch_timeout', 'hh-w-first2') : null), WAIT, 200);
    expect(timeout).toHaveLength(1);
    expect(timeout[0]!.count).toBe(1);
    expect(timeout[0]!.message).not.toContain('已转派');
  }, 300_000);
});
