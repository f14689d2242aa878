/**
 * Two hub nodes, accept timeout 3 s. Node B is started with
 * GRIDLINK_TEST_KILL_AFTER_DISPATCH_COMMIT=1. A worker's handheld moved close
 * to a case while its fixes went to node B only; node A last heard of it far
 * away. B dispatches the case to a worker who never answers and dies right
 * after the commit; A takes the dispatch over (it sends the command and reads
 * the worker back, or adopts it), times it out and escalates it: the
 * next candidate is ranked by the positions stored in the database, so the
 * case goes to the worker who is near now, not to the one A last saw nearer.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { AT } from '../cases/fixtures.js';
import { until } from '../helpers.js';
import { api, fixClock, hasExited, ingestLocation, RUN_CLUSTER, TestCluster, type HubNode } from './harness.js';

/** Guards a hang on a busy machine; nothing here is a latency assertion. */
const WAIT = 120_000;

interface Candidate { workerId: string; distanceM: number }

/** About 111 m of latitude per 0.001°. */
const north = (p: { lat: number; lon: number }, m: number) => ({ lat: p.lat + m / 111_000, lon: p.lon });

describe.runIf(RUN_CLUSTER)('an adopted accept timeout ranks the next candidate by stored positions', () => {
  const cluster = new TestCluster({ wait: WAIT });
  let a: HubNode, b: HubNode;
  let token = '';
  const ts = fixClock();

  let failed = false;
  beforeEach(({ onTestFailed }) => onTestFailed(() => void (failed = true)));

  beforeAll(async () => {
    const env = await cluster.open({
      GRIDLINK_LOG_LEVEL: 'info', GRIDLINK_DISPATCH_ACCEPT_TIMEOUT_S: '3', GRIDLINK_DISPATCH_MAX_ATTEMPTS: '3',
      GRIDLINK_DISPATCH_MAX_SPEED_MPS: '100000',
    });
    a = await cluster.node('node-a', env);
    token = await cluster.district(a);
    b = await cluster.node('node-b', { ...env, GRIDLINK_TEST_KILL_AFTER_DISPATCH_COMMIT: '1' });
    await cluster.converged();
  }, 180_000);

  afterAll(() => cluster.stop(failed), 60_000);

  async function fixVia(node: HubNode, deviceId: string, p: { lat: number; lon: number }): Promise<void> {
    const r = await ingestLocation(node, deviceId, cluster.secrets.get(deviceId)!, { ts: ts(), ...p });
    expect(r.status, r.text).toBe(202);
  }

  const addWorker = (id: string, at: { lat: number; lon: number }) => cluster.addWorker(a, id, { at, ts, poll: 50 });

  async function candidatesOn(node: HubNode, caseId: string): Promise<Candidate[]> {
    const r = await api<{ items: Candidate[] }>(node.http, 'GET', `/cases/${caseId}/candidates?limit=20`, undefined, token);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    return r.body.items;
  }

  it('goes to the worker near the case now, whose fixes only the dead node ingested', { timeout: 300_000 }, async () => {
    const place = AT.A1;
    // Nobody answers: no handheld is connected. w-first is at the case; w-far 600 m away; w-near was 1.2 km away
    // when both nodes last read it, then walked to 100 m of the case with its fixes going to B alone.
    await addWorker('w-first', north(place, 5));
    await addWorker('w-far', north(place, 600));
    await addWorker('w-near', north(place, 1200));
    const caseId = await cluster.newCase(b, { category: 'E0102', ...place, description: 'rank with stored positions' });
    for (const id of ['w-first', 'w-far', 'w-near']) await until(() => cluster.knows(b, id), WAIT, 50);
    await fixVia(b, 'hh-w-near', north(place, 700));
    await fixVia(b, 'hh-w-near', north(place, 100));
    // B ranks by what it ingested; A's roster is not asked (a candidates request would read the stored positions).
    await until(async () => (await candidatesOn(b, caseId)).find((x) => x.workerId === 'w-near' && x.distanceM < 150) || null, WAIT, 50);

    // Dispatched through B to w-first; B dies right after the commit.
    await cluster.act(b, caseId, 'dispatch', { workerId: 'w-first' }).catch(() => null);
    await until(() => hasExited(b), WAIT, 20);
    expect(b.child.signalCode).toBe('SIGKILL');

    // A takes the dispatch over, times it out once and sends the case on: to w-near (100 m), not w-far (600 m).
    const dispatched = async () => cluster.db.query<{ worker_id: string; outcome: string | null }>('select worker_id, outcome from case_dispatches where case_id = $1 order by dispatched_at', [caseId]);
    // The re-dispatch is written before the decline's follow-up records the first one's outcome: wait for both.
    await until(async () => { const d = await dispatched(); return (d.length >= 2 && d[0]!.outcome !== null) || null; }, WAIT, 100);
    expect(await dispatched()).toEqual([{ worker_id: 'w-first', outcome: 'timeout' }, { worker_id: 'w-near', outcome: null }]);
    expect((await cluster.db.query('select worker_id from cases where id = $1', [caseId]))[0]).toEqual({ worker_id: 'w-near' });
  });
});
