/**
 * Two hub nodes: a grid worker created, moved, put off duty or deleted
 * through one node is seen by the other without a restart (Redis
 * `gridlink:worker.changed`, then a read of the row): the dispatcher whose
 * console is on the other node lists the worker, gets it as a candidate for
 * a case in its grid and dispatches it; a worker moved away or off duty
 * through one node is no longer offered by the other. An officer of another
 * street can change the worker through neither node, and a forged message on
 * the channel changes nothing but a read of the database.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AT } from '../cases/fixtures.js';
import { until } from '../helpers.js';
import { api, login, RUN_CLUSTER, twoNodeDistrict, type HubNode, type RedisServer, type TestDatabase } from './harness.js';

/** Guards against a hang on a busy machine; nothing here is a latency assertion. */
const WAIT = 60_000;
const OFFICER_PASSWORD = 'officer-pass-123';

interface Worker { id: string; name: string; gridIds: string[]; onDuty: boolean; status: string; position: { lat: number; lon: number } | null }
interface Candidate { workerId: string; ownGrid: boolean; status: string }

describe.runIf(RUN_CLUSTER)('worker changes across two nodes', () => {
  let redis: RedisServer;
  let stop = async () => {};
  let db: TestDatabase;
  let a: HubNode, b: HubNode;
  let token = '';
  let caseId = '';
  const secrets: Record<string, string> = {};

  beforeAll(async () => {
    // B starts before any worker exists: every worker below is one it has to hear of.
    ({ redis, db, a, b, token, stop } = await twoNodeDistrict([{ username: 'officer-sa', regionId: 'S-A' }, { username: 'officer-sb', regionId: 'S-B' }], OFFICER_PASSWORD));
  }, 180_000);

  afterAll(() => stop(), 60_000);

  async function handheld(node: HubNode, id: string): Promise<void> {
    const r = await api<{ secret: string }>(node.http, 'POST', '/devices', { type: 'handheld', id }, token);
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    secrets[id] = r.body.secret;
  }

  /** A fix through a node's HTTP ingest; 202 = committed. */
  async function fix(node: HubNode, id: string, at: { lat: number; lon: number }): Promise<void> {
    const auth = Buffer.from(`${id}:${secrets[id]}`).toString('base64');
    const r = await fetch(`${node.http}/api/v1/ingest/${id}/location`, {
      method: 'POST', headers: { authorization: `Basic ${auth}`, 'content-type': 'application/json' },
      body: JSON.stringify({ ts: Date.now(), lat: at.lat, lon: at.lon }),
    });
    expect(r.status, `${id} via ${node.id}: ${await r.text()}`).toBe(202);
  }

  const worker = (node: HubNode, id: string, t = token) => api<Worker>(node.http, 'GET', `/workers/${id}`, undefined, t);
  const listed = async (node: HubNode, id: string) =>
    (await api<{ items: Worker[] }>(node.http, 'GET', '/workers', undefined, token)).body.items.some((w) => w.id === id);
  async function candidates(node: HubNode, t = token): Promise<Candidate[]> {
    const r = await api<{ items: Candidate[] }>(node.http, 'GET', `/cases/${caseId}/candidates?limit=20`, undefined, t);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    return r.body.items;
  }
  const offered = async (node: HubNode, id: string) => (await candidates(node)).find((c) => c.workerId === id);
  async function row(id: string) {
    const [r] = await db.query<{ name: string; grid_ids: string[]; on_duty: boolean; case_id: string | null }>('select name, grid_ids, on_duty, case_id from workers where id = $1', [id]);
    return r;
  }

  it('lists a worker created through node A on node B and offers it there for a case in its grid', async () => {
    await handheld(a, 'hh-1');
    // A last fix in G-A1, stored before the worker exists: B reads it back with the worker.
    await fix(a, 'hh-1', { lat: AT.A1.lat, lon: AT.A1.lon });
    await until(async () => (await db.query("select 1 from positions where device_id = 'hh-1'")).length > 0, WAIT, 100);
    const w = await api<Worker>(a.http, 'POST', '/workers', { id: 'w-1', name: '张三', deviceId: 'hh-1', gridIds: ['G-A1'], onDuty: true }, token);
    expect(w.status, JSON.stringify(w.body)).toBe(201);

    const created = await api<{ id: string; gridId: string }>(b.http, 'POST', '/cases', { category: 'E0101', lat: AT.A1.lat, lon: AT.A1.lon + 0.0005, description: 'worker changes' }, token);
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    expect(created.body.gridId).toBe('G-A1');
    caseId = created.body.id;
    expect((await api(b.http, 'POST', `/cases/${caseId}/actions`, { action: 'register' }, token)).status).toBe(200);

    const onB = await until(async () => {
      const r = await worker(b, 'w-1');
      return r.status === 200 ? r.body : null;
    }, WAIT, 100);
    expect(onB).toMatchObject({ name: '张三', gridIds: ['G-A1'], onDuty: true, status: 'available' });
    expect(onB!.position).toMatchObject({ lat: AT.A1.lat, lon: AT.A1.lon });
    expect(await listed(b, 'w-1')).toBe(true);
    const c = await until(() => offered(b, 'w-1'), WAIT, 100);
    expect(c).toMatchObject({ ownGrid: true, status: 'available' });
    // The street's officer on B sees and ranks the worker too (its region holds G-A1).
    const sa = await login(b.http, 'officer-sa', OFFICER_PASSWORD);
    expect((await worker(b, 'w-1', sa)).status).toBe(200);
    expect((await candidates(b, sa)).map((x) => x.workerId)).toContain('w-1');
  }, 180_000);

  it('moves the worker to another grid and off duty through node B, and node A stops offering it', async () => {
    // A ranks with the fixes it ingests itself (docs/cluster.md): the handheld reports through A now.
    await fix(a, 'hh-1', { lat: AT.A1.lat, lon: AT.A1.lon });
    expect((await until(() => offered(a, 'w-1'), WAIT, 100))?.ownGrid).toBe(true);
    const moved = await api<Worker>(b.http, 'PATCH', '/workers/w-1', { gridIds: ['G-A2'] }, token);
    expect(moved.status, JSON.stringify(moved.body)).toBe(200);
    await until(async () => (await worker(a, 'w-1')).body.gridIds?.[0] === 'G-A2', WAIT, 100);
    // Still near the case, no longer of its grid.
    expect(await offered(a, 'w-1')).toMatchObject({ ownGrid: false });
    expect((await api<{ items: Worker[] }>(a.http, 'GET', '/workers?gridId=G-A2', undefined, token)).body.items.map((x) => x.id)).toContain('w-1');

    expect((await api(b.http, 'POST', '/workers/w-1/duty', { onDuty: false }, token)).status).toBe(200);
    await until(async () => (await worker(a, 'w-1')).body.status === 'off_duty', WAIT, 100);
    expect(await offered(a, 'w-1')).toBeUndefined();
    // A dispatch through A is refused: A knows the worker is off duty.
    const d = await api<{ code: string }>(a.http, 'POST', `/cases/${caseId}/actions`, { action: 'dispatch', workerId: 'w-1' }, token);
    expect(d.status, JSON.stringify(d.body)).toBe(409);
  }, 180_000);

  it('puts the worker back on duty through node A, and node B dispatches it; A then refuses to delete the busy worker', async () => {
    expect((await api(a.http, 'POST', '/workers/w-1/duty', { onDuty: true }, token)).status).toBe(200);
    await until(() => offered(b, 'w-1'), WAIT, 100);
    const d = await api<{ status: string; workerId: string }>(b.http, 'POST', `/cases/${caseId}/actions`, { action: 'dispatch', workerId: 'w-1' }, token);
    expect(d.status, JSON.stringify(d.body)).toBe(200);
    expect(d.body).toMatchObject({ status: 'dispatched', workerId: 'w-1' });
    await until(async () => (await row('w-1'))?.case_id === caseId, WAIT, 100);
    // The row says busy, whichever node made the dispatch.
    const del = await api(a.http, 'DELETE', '/workers/w-1', undefined, token);
    expect(del.status, JSON.stringify(del.body)).toBe(409);
    expect(await row('w-1')).toBeDefined();
  }, 180_000);

  it('deletes through node A a worker created through node B, and B forgets it', async () => {
    await handheld(b, 'hh-2');
    // The handheld exists on A once A has read it back (device changes are bridged the same way).
    const created = await until(async () => {
      const r = await api<Worker>(b.http, 'POST', '/workers', { id: 'w-2', name: '李四', deviceId: 'hh-2', gridIds: ['G-A1'] }, token);
      return r.status === 201 ? r : null;
    }, WAIT, 100);
    expect(created!.body.status).toBe('off_duty');
    await until(async () => (await worker(a, 'w-2')).status === 200, WAIT, 100);
    expect((await api(a.http, 'DELETE', '/workers/w-2', undefined, token)).status).toBe(204);
    await until(async () => (await worker(b, 'w-2')).status === 404, WAIT, 100);
    expect(await listed(b, 'w-2')).toBe(false);
    // The handheld is free on B again: a new worker may be bound to it there.
    const again = await api(b.http, 'POST', '/workers', { id: 'w-3', name: '王五', deviceId: 'hh-2', gridIds: ['G-A1'] }, token);
    expect(again.status, JSON.stringify(again.body)).toBe(201);
    await until(async () => (await worker(a, 'w-3')).status === 200, WAIT, 100);
  }, 180_000);

  it('lets an officer of another street change the worker through neither node', async () => {
    const before = await row('w-3');
    for (const node of [a, b]) {
      const sb = await login(node.http, 'officer-sb', OFFICER_PASSWORD);
      expect((await worker(node, 'w-3', sb)).status).toBe(404);
      for (const [method, path, body] of [
        ['PATCH', '/workers/w-3', { gridIds: ['G-B1'] }],
        ['PATCH', '/workers/w-3', { name: 'taken' }],
        ['POST', '/workers/w-3/duty', { onDuty: true }],
        ['DELETE', '/workers/w-3', undefined],
      ] as const) {
        const r = await api(node.http, method, path, body, sb);
        expect(r.status, `${method} ${path} as officer-sb on ${node.id}: ${JSON.stringify(r.body)}`).toBe(404);
      }
      // Street A's officer may not move the worker out of the street either.
      const sa = await login(node.http, 'officer-sa', OFFICER_PASSWORD);
      const out = await api(node.http, 'PATCH', '/workers/w-3', { gridIds: ['G-B1'] }, sa);
      expect(out.status, JSON.stringify(out.body)).toBe(403);
    }
    expect(await row('w-3')).toEqual(before);
  }, 180_000);

  it('takes nothing from a message on the channel but the worker id: the worker is read from the database', async () => {
    const r = new Redis(redis.url);
    try {
      await r.publish('gridlink:worker.changed', JSON.stringify({ node: 'node-x', workerId: 'w-3', name: 'forged', gridIds: ['G-B1'], onDuty: true, remote: false }));
      await r.publish('gridlink:worker.changed', JSON.stringify({ node: 'node-x', workerId: 'w-forged', name: 'forged', deviceId: 'hh-1' }));
      await r.publish('gridlink:worker.changed', 'not json');
    } finally {
      r.disconnect();
    }
    // A real change after the forged ones: once both nodes show it, the forged messages have been read too.
    expect((await api(a.http, 'PATCH', '/workers/w-3', { name: '王五二' }, token)).status).toBe(200);
    await until(async () => (await worker(b, 'w-3')).body.name === '王五二', WAIT, 100);
    for (const node of [a, b]) {
      expect((await worker(node, 'w-3')).body).toMatchObject({ name: '王五二', gridIds: ['G-A1'], onDuty: false });
      expect((await worker(node, 'w-forged')).status).toBe(404);
      expect((await worker(node, 'w-1')).body.name).toBe('张三');
    }
  }, 180_000);

  it("judges a street officer's edit on the worker's stored grids, not on a node's view a moment behind", async () => {
    // Another node moved the worker to street B and died before announcing it: the row says so, neither node heard.
    await db.query("update workers set grid_ids = '{G-B1}' where id = 'w-3'");
    const before = await row('w-3');
    for (const node of [a, b]) {
      expect((await worker(node, 'w-3')).body.gridIds).toEqual(['G-A1']);
      const sa = await login(node.http, 'officer-sa', OFFICER_PASSWORD);
      for (const [method, path, body] of [
        ['PATCH', '/workers/w-3', { name: 'taken' }],
        ['PATCH', '/workers/w-3', { gridIds: ['G-A1'] }],
        ['POST', '/workers/w-3/duty', { onDuty: true }],
        ['DELETE', '/workers/w-3', undefined],
      ] as const) {
        const r = await api(node.http, method, path, body, sa);
        expect(r.status, `${method} ${path} as officer-sa on ${node.id}: ${JSON.stringify(r.body)}`).toBe(404);
      }
    }
    expect(await row('w-3')).toEqual(before);
    // The admin (no region) still edits it, and both nodes then hold the row's grids.
    expect((await api(a.http, 'PATCH', '/workers/w-3', { gridIds: ['G-A1'] }, token)).status).toBe(200);
    await until(async () => ((await worker(b, 'w-3')).body.gridIds?.[0] === 'G-A1' ? true : null), WAIT, 100);
  }, 180_000);
});
