/**
 * Two hub nodes. Node A lives and ranks; nodes of their own, started with
 * the testing option GRIDLINK_TEST_KILL_AFTER_DISPATCH_COMMIT=1, each make a
 * dispatch and SIGKILL themselves right after its commit, before they
 * announce it. Node A runs with a positions beat of 60 s, so its recovery
 * round (which sends the dead node's command and then announces the worker)
 * waits five minutes: within the test, only the worker's row tells A the
 * worker is busy. A's automatic dispatch goes to the next worker without
 * trying the busy one (no refusal by the row), and A's candidate list for a
 * dispatcher no longer offers them. A caller of another street gets no
 * candidates of the street's case.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { AT } from '../cases/fixtures.js';
import { until } from '../helpers.js';
import { api, login, RUN_CLUSTER, TestCluster, type HubNode } from './harness.js';

/** Guards a hang on a busy machine; nothing here is a latency assertion. */
const WAIT = 120_000;
const OFFICER_PASSWORD = 'officer-pass-123';

interface Case { id: string; status: string; workerId: string | null }
interface Worker { id: string; status: string; caseId: string | null }
interface Candidate { workerId: string }

describe.runIf(RUN_CLUSTER)('ranking reads the rows of a dead node\'s dispatch before its announcement', () => {
  const cl = new TestCluster({ wait: WAIT });
  let a: HubNode;
  let env: Record<string, string>;
  let token = '';
  let officerB = '';

  let failed = false;
  beforeEach(({ onTestFailed }) => onTestFailed(() => void (failed = true)));

  beforeAll(async () => {
    env = await cl.open({ GRIDLINK_LOG_LEVEL: 'info', GRIDLINK_DISPATCH_ACCEPT_TIMEOUT_S: '3600', GRIDLINK_DISPATCH_AUTO: 'E0101' });
    a = await cl.node('node-a', { ...env, GRIDLINK_DISPATCH_POSITIONS_MS: '60000' });
    token = await cl.district(a);
    const u = await api(a.http, 'POST', '/users', { username: 'officer-sb', password: OFFICER_PASSWORD, role: 'officer', regionId: 'S-B' }, token);
    expect(u.status, JSON.stringify(u.body)).toBe(201);
    officerB = await login(a.http, 'officer-sb', OFFICER_PASSWORD);
    // Nearest first: w-near, then w-mid, then w-far.
    for (const [id, dLon] of [['w-near', 0.0005], ['w-mid', 0.0015], ['w-far', 0.0030]] as const) await cl.addWorker(a, id, { at: { lat: AT.A1.lat, lon: AT.A1.lon + dLon } });
  }, 180_000);

  afterAll(() => cl.stop(failed), 60_000);

  async function newCase(node: HubNode, category: string, description: string): Promise<string> {
    const c = await api<Case>(node.http, 'POST', '/cases', { category, ...AT.A1, description }, token);
    expect(c.status, JSON.stringify(c.body)).toBe(201);
    return c.body.id;
  }
  async function candidates(node: HubNode, caseId: string, t = token): Promise<{ status: number; ids: string[] }> {
    const r = await api<{ items: Candidate[] }>(node.http, 'GET', `/cases/${caseId}/candidates?limit=20`, undefined, t);
    return { status: r.status, ids: r.status === 200 ? r.body.items.map((c) => c.workerId) : [] };
  }
  const row = async (id: string) =>
    (await cl.db.query<{ case_id: string | null; stage: string | null }>('select case_id, stage from workers where id = $1', [id]))[0]!;
  const unsent = async (caseId: string) =>
    (await cl.db.query<{ n: number }>("select count(*)::int as n from dispatch_commands where case_id = $1 and type = 'dispatch' and sent_at is null", [caseId]))[0]!.n;

  /** A dispatch of `workerId` through a node of its own, which dies right after the commit. */
  async function dispatchAndDie(name: string, caseId: string, workerId: string): Promise<void> {
    const k = await cl.node(name, { ...env, GRIDLINK_TEST_KILL_AFTER_DISPATCH_COMMIT: '1' });
    const t = await login(k.http);
    await api(k.http, 'POST', `/cases/${caseId}/actions`, { action: 'dispatch', workerId }, t).catch(() => null);
    await until(() => k.child.exitCode !== null || k.child.signalCode !== null, WAIT, 20);
    expect(k.child.signalCode).toBe('SIGKILL');
    expect(await row(workerId)).toEqual({ case_id: caseId, stage: 'dispatched' });
  }

  it('sends an automatic dispatch past a worker a dead node took, without a refusal by the row', { timeout: 300_000 }, async () => {
    await until(async () => (await candidates(a, await newCase(a, 'E0102', 'probe'))).ids.length === 3 || null, WAIT, 100);
    const manual = await newCase(a, 'E0102', 'dispatched by a node that dies');
    expect((await api(a.http, 'POST', `/cases/${manual}/actions`, { action: 'register' }, token)).status).toBe(200);
    await dispatchAndDie('kill-1', manual, 'w-near');
    // A never heard of it: its roster still shows the worker free.
    expect((await api<Worker>(a.http, 'GET', '/workers/w-near', undefined, token)).body.status).toBe('available');

    const auto = await newCase(a, 'E0101', 'auto-dispatched by A');
    await until(async () => (await api<Case>(a.http, 'GET', `/cases/${auto}`, undefined, token)).body.status === 'dispatched' || null, WAIT, 100);
    expect((await api<Case>(a.http, 'GET', `/cases/${auto}`, undefined, token)).body.workerId).toBe('w-mid');
    // The dead node's command was not sent yet: nothing but the row told A.
    expect(await unsent(manual)).toBe(1);
    const refused = a.output().split('\n').filter((l) => l.includes('automatic dispatch refused') && l.includes(auto));
    expect(refused).toEqual([]);
    expect(await cl.db.query('select worker_id from case_dispatches where case_id = $1', [auto])).toEqual([{ worker_id: 'w-mid' }]);
    // A's roster took the row: the worker shows dispatched to the dead node's case.
    expect((await api<Worker>(a.http, 'GET', '/workers/w-near', undefined, token)).body).toMatchObject({ status: 'dispatched', caseId: manual });
  });

  it('no longer offers a dispatcher a worker a dead node took, and offers a caller of another street nothing', { timeout: 300_000 }, async () => {
    const target = await newCase(a, 'E0102', 'candidates asked on A');
    expect((await candidates(a, target)).ids).toContain('w-far');
    const manual = await newCase(a, 'E0102', 'dispatched by a second node that dies');
    expect((await api(a.http, 'POST', `/cases/${manual}/actions`, { action: 'register' }, token)).status).toBe(200);
    await dispatchAndDie('kill-2', manual, 'w-far');
    expect((await api<Worker>(a.http, 'GET', '/workers/w-far', undefined, token)).body.status).toBe('available');

    const after = await candidates(a, target);
    expect(after.status).toBe(200);
    expect(after.ids).not.toContain('w-far');
    expect(await unsent(manual)).toBe(1);
    expect((await api<Worker>(a.http, 'GET', '/workers/w-far', undefined, token)).body).toMatchObject({ status: 'dispatched', caseId: manual });

    // Attack: an officer of another street sees neither the case nor its candidates.
    const foreign = await candidates(a, target, officerB);
    expect(foreign.status).toBe(404);
    expect(foreign.ids).toEqual([]);
  });
});
