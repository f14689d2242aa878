/**
 * Two hub nodes, one grid worker: a dispatch made through one node is known
 * to the other (the worker's row, then `gridlink:worker.changed`), which no
 * longer offers the worker and refuses to dispatch them; two dispatchers on
 * two nodes sending the worker to two cases at once get one assignment and
 * one 409, decided by the worker's row; a stage moved on or a dispatch
 * ended through the node that did not make it is written there and the
 * worker is offered again on both. A dispatcher of another street can send
 * the worker through neither node.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AT } from '../cases/fixtures.js';
import { until } from '../helpers.js';
import { api, login, RUN_CLUSTER, twoNodeDistrict, type HubNode, type TestDatabase } from './harness.js';

/** Guards against a hang on a busy machine; nothing here is a latency assertion. */
const WAIT = 60_000;
const OFFICER_PASSWORD = 'officer-pass-123';

interface Worker { id: string; status: string; caseId: string | null }
interface Candidate { workerId: string; status: string }
interface Case { id: string; status: string; workerId: string | null; gridId: string | null }

describe.runIf(RUN_CLUSTER)('dispatch assignments across two nodes', () => {
  let stop = async () => {};
  let db: TestDatabase;
  let a: HubNode, b: HubNode;
  let token = '';
  /** Cases in G-A1, the worker's grid. */
  const cases: string[] = [];

  beforeAll(async () => {
    ({ db, a, b, token, stop } = await twoNodeDistrict([{ username: 'officer-sb', regionId: 'S-B' }], OFFICER_PASSWORD));

    const d = await api<{ secret: string }>(a.http, 'POST', '/devices', { type: 'handheld', id: 'hh-1' }, token);
    expect(d.status, JSON.stringify(d.body)).toBe(201);
    const auth = Buffer.from(`hh-1:${d.body.secret}`).toString('base64');
    const fix = async () => {
      const f = await fetch(`${a.http}/api/v1/ingest/hh-1/location`, {
        method: 'POST', headers: { authorization: `Basic ${auth}`, 'content-type': 'application/json' },
        body: JSON.stringify({ ts: Date.now(), lat: AT.A1.lat, lon: AT.A1.lon }),
      });
      expect(f.status, await f.text()).toBe(202);
    };
    // A fix stored before the worker exists (B reads it back with the worker), and one A ingests for the worker.
    await fix();
    await until(async () => (await db.query("select 1 from positions where device_id = 'hh-1'")).length > 0, WAIT, 100);
    const w = await api(a.http, 'POST', '/workers', { id: 'w-1', name: '张三', deviceId: 'hh-1', gridIds: ['G-A1'], onDuty: true }, token);
    expect(w.status, JSON.stringify(w.body)).toBe(201);
    await fix();
    for (let i = 0; i < 4; i++) {
      const c = await api<Case>(b.http, 'POST', '/cases', { category: 'E0101', lat: AT.A1.lat, lon: AT.A1.lon + 0.0002 * (i + 1), description: `assignment ${i + 1}` }, token);
      expect(c.status, JSON.stringify(c.body)).toBe(201);
      expect(c.body.gridId).toBe('G-A1');
      expect((await api(b.http, 'POST', `/cases/${c.body.id}/actions`, { action: 'register' }, token)).status).toBe(200);
      cases.push(c.body.id);
    }
    // Both nodes know the worker, its handheld and its fix before anything is dispatched.
    for (const n of [a, b]) await until(() => offered(n, cases[1]!), WAIT, 100);
  }, 180_000);

  afterAll(() => stop(), 60_000);

  const worker = async (node: HubNode) => (await api<Worker>(node.http, 'GET', '/workers/w-1', undefined, token)).body;
  async function offered(node: HubNode, caseId: string): Promise<Candidate | undefined> {
    const r = await api<{ items: Candidate[] }>(node.http, 'GET', `/cases/${caseId}/candidates?limit=20`, undefined, token);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    return r.body.items.find((c) => c.workerId === 'w-1');
  }
  const act = (node: HubNode, caseId: string, action: string, extra: Record<string, unknown> = {}, t = token) =>
    api<Case & { code?: string }>(node.http, 'POST', `/cases/${caseId}/actions`, { action, ...extra }, t);
  const dispatch = (node: HubNode, caseId: string, t = token) => act(node, caseId, 'dispatch', { workerId: 'w-1' }, t);
  async function row() {
    const [r] = await db.query<{ case_id: string | null; stage: string | null }>("select case_id, stage from workers where id = 'w-1'");
    return r!;
  }
  /** Both nodes show the worker free and offer them for a case. */
  async function freeOnBoth(): Promise<void> {
    for (const n of [a, b]) {
      await until(async () => (await worker(n)).status === 'available', WAIT, 100);
      await until(() => offered(n, cases[3]!), WAIT, 100);
    }
  }

  it('stops offering on node B a worker dispatched through node A, and B refuses to dispatch them', async () => {
    const d = await dispatch(a, cases[0]!);
    expect(d.status, JSON.stringify(d.body)).toBe(200);
    expect(await row()).toEqual({ case_id: cases[0], stage: 'dispatched' });
    await until(async () => (await worker(b)).status === 'dispatched', WAIT, 100);
    expect((await worker(b)).caseId).toBe(cases[0]);
    expect(await offered(b, cases[1]!)).toBeUndefined();
    const again = await dispatch(b, cases[1]!);
    expect(again.status, JSON.stringify(again.body)).toBe(409);
    expect(again.body.code).toBe('WORKER_UNAVAILABLE');
    expect(await row()).toEqual({ case_id: cases[0], stage: 'dispatched' });
    expect((await api<Case>(b.http, 'GET', `/cases/${cases[1]}`, undefined, token)).body).toMatchObject({ status: 'registered', workerId: null });
  }, 180_000);

  it('moves the dispatch on through node B, which did not make it, and both nodes follow; resolved, the worker is offered again', async () => {
    // The handheld's accept (here the admin's) reaches the other node: it writes the stage there.
    const acc = await act(b, cases[0]!, 'accept');
    expect(acc.status, JSON.stringify(acc.body)).toBe(200);
    await until(async () => (await row()).stage === 'en_route', WAIT, 100);
    await until(async () => (await worker(a)).status === 'en_route', WAIT, 100);
    expect(await offered(a, cases[1]!)).toBeUndefined();
    expect((await act(a, cases[0]!, 'arrive')).status).toBe(200);
    await until(async () => (await row()).stage === 'on_scene', WAIT, 100);
    await until(async () => (await worker(b)).status === 'on_scene', WAIT, 100);
    expect((await dispatch(a, cases[1]!)).status).toBe(409);
    const res = await act(b, cases[0]!, 'resolve', { note: 'done' });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    await until(async () => (await row()).case_id === null, WAIT, 100);
    await freeOnBoth();
  }, 180_000);

  it('gives one of two dispatches racing through node A and node B the worker, and the other a 409', async () => {
    const [ra, rb] = await Promise.all([dispatch(a, cases[1]!), dispatch(b, cases[2]!)]);
    expect([ra.status, rb.status].sort(), JSON.stringify([ra.body, rb.body])).toEqual([200, 409]);
    const [winner, loser] = ra.status === 200 ? [cases[1]!, cases[2]!] : [cases[2]!, cases[1]!];
    const made = ra.status === 200 ? a : b;
    const other = made === a ? b : a;
    expect((ra.status === 409 ? ra : rb).body.code).toBe('WORKER_UNAVAILABLE');
    expect(await row()).toEqual({ case_id: winner, stage: 'dispatched' });
    const open = await db.query<{ id: string }>("select id from cases where worker_id = 'w-1' and status in ('dispatched', 'accepted', 'on_scene')");
    expect(open.map((r) => r.id)).toEqual([winner]);
    expect((await api<Case>(a.http, 'GET', `/cases/${loser}`, undefined, token)).body).toMatchObject({ status: 'registered', workerId: null });
    for (const n of [a, b]) await until(async () => (await worker(n)).caseId === winner, WAIT, 100);

    // Cancelled through the node that did not make the dispatch: the row is released there, and both offer the worker again.
    const cancel = await act(other, winner, 'cancel', { note: 'withdrawn' });
    expect(cancel.status, JSON.stringify(cancel.body)).toBe(200);
    await until(async () => (await row()).case_id === null, WAIT, 100);
    await freeOnBoth();
    const d = await dispatch(other, loser);
    expect(d.status, JSON.stringify(d.body)).toBe(200);
    await until(async () => (await worker(made)).caseId === loser, WAIT, 100);
    // Declined through the node that did not make this one: released again.
    expect((await act(made, loser, 'decline', { note: 'busy' })).status).toBe(200);
    await until(async () => (await row()).case_id === null, WAIT, 100);
    await freeOnBoth();
  }, 180_000);

  it('lets a dispatcher of another street send the worker through neither node', async () => {
    const own = await api<Case>(a.http, 'POST', '/cases', { category: 'E0101', lat: AT.B1.lat, lon: AT.B1.lon, description: 'street B' }, token);
    expect(own.status, JSON.stringify(own.body)).toBe(201);
    expect((await act(a, own.body.id, 'register')).status).toBe(200);
    for (const n of [a, b]) {
      const sb = await login(n.http, 'officer-sb', OFFICER_PASSWORD);
      // To a case of their own street: the worker of street A does not exist for them.
      const mine = await dispatch(n, own.body.id, sb);
      expect(mine.status, `${n.id}: ${JSON.stringify(mine.body)}`).toBe(404);
      // To a case of street A: the case does not exist for them.
      const theirs = await dispatch(n, cases[3]!, sb);
      expect(theirs.status, `${n.id}: ${JSON.stringify(theirs.body)}`).toBe(404);
      // A worker that exists nowhere, by the admin.
      expect((await act(n, cases[3]!, 'dispatch', { workerId: 'w-missing' })).status).toBe(404);
    }
    expect(await row()).toEqual({ case_id: null, stage: null });
    for (const id of [own.body.id, cases[3]!]) {
      expect((await api<Case>(a.http, 'GET', `/cases/${id}`, undefined, token)).body).toMatchObject({ status: 'registered', workerId: null });
    }
  }, 180_000);
});
