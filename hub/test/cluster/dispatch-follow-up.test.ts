/**
 * Three hub nodes; a dispatch followed on nodes that did not make it.
 *
 * - GPS arrival on any node: a worker dispatched through node C (and accepted
 *   there), whose handheld talks to node A, walks to the case: A, which only
 *   heard of the assignment, reads the case's place and detects the arrival.
 *   With fixes reaching A and C at once, the arrival is recorded once.
 * - Node B is started with GRIDLINK_TEST_KILL_AFTER_DISPATCH_COMMIT=1: it
 *   SIGKILLs itself right after a dispatch's commit, before it announces the
 *   worker's assignment. The survivor that sends the command also announces
 *   it: A and C both show the worker dispatched and stop offering them, so
 *   the next automatic dispatch goes to another worker without a refusal;
 *   the worker's arrival is still detected on A.
 */
import { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type Command } from '@gridlink/devices';
import { AT } from '../cases/fixtures.js';
import { publishAck, until } from '../helpers.js';
import { api, dispatchOf, fixClock, hasExited, ingestLocation, RUN_CLUSTER, TestCluster, type HubNode } from './harness.js';

/** Guards a hang on a busy machine; nothing here is a latency assertion. */
const WAIT = 120_000;
const REFUSED = 'automatic dispatch refused, worker taken meanwhile';

interface Case { id: string; status: string; workerId: string | null }
interface Worker { id: string; status: string; caseId: string | null }
interface Candidate { workerId: string }

/** About 111 m of latitude per 0.001°. */
const north = (p: { lat: number; lon: number }, m: number) => ({ lat: p.lat + m / 111_000, lon: p.lon });

describe.runIf(RUN_CLUSTER)('a dispatch followed on the nodes that did not make it', () => {
  const cluster = new TestCluster({ wait: WAIT });
  let a: HubNode, b: HubNode, c: HubNode;
  let token = '';
  const ts = fixClock();

  let failed = false;
  beforeEach(({ onTestFailed }) => onTestFailed(() => void (failed = true)));

  beforeAll(async () => {
    // Dwell 0: the first fix within the radius is the arrival (no wait in the test); no accept timeout within the test;
    // no speed filter (the test's walk is faster than a person). Auto-dispatch for E0101 only (the other cases are by hand).
    const env = await cluster.open({
      GRIDLINK_LOG_LEVEL: 'info', GRIDLINK_DISPATCH_ACCEPT_TIMEOUT_S: '3600', GRIDLINK_DISPATCH_RESEND_DELAY_MS: '0',
      GRIDLINK_DISPATCH_ARRIVAL_DWELL_S: '0', GRIDLINK_DISPATCH_MAX_SPEED_MPS: '100000', GRIDLINK_DISPATCH_AUTO: 'E0101',
    });
    a = await cluster.node('node-a', env);
    token = await cluster.district(a);
    c = await cluster.node('node-c', env);
    b = await cluster.node('node-b', { ...env, GRIDLINK_TEST_KILL_AFTER_DISPATCH_COMMIT: '1' });
    await cluster.converged();
  }, 180_000);

  afterAll(() => cluster.stop(failed), 60_000);

  /** A fix through a node's HTTP ingest (the handheld's `location` channel). */
  async function fixVia(node: HubNode, deviceId: string, p: { lat: number; lon: number }, extra: Record<string, unknown> = {}): Promise<number> {
    return (await ingestLocation(node, deviceId, cluster.secrets.get(deviceId)!, { ts: ts(), ...p, ...extra })).status;
  }

  /** A worker on duty in G-A1 whose handheld's last fix (stored before the worker exists, as every node reads it) is at `at`. */
  const addWorker = (id: string, at: { lat: number; lon: number }) => cluster.addWorker(a, id, { at, ts, poll: 50 });

  /** The worker's handheld, connected to node A for the whole file. */
  async function handheld(id: string): Promise<{ m: MqttClient; got: Command[]; walk(p: { lat: number; lon: number }): Promise<void> }> {
    const deviceId = `hh-${id}`;
    const { m, got } = await cluster.handheld(a, deviceId, cluster.secrets.get(deviceId)!);
    // PUBACK: the fix is stored, and the node ingesting it has judged it.
    return { m, got, walk: (p) => publishAck(m, `gridlink/v1/${deviceId}/location`, { ts: ts(), ...p }) };
  }

  const newCase = (node: HubNode, category: string, at: { lat: number; lon: number }, register = true) =>
    cluster.newCase(node, { category, ...at, description: 'dispatch follow-up' }, register);
  const act = (node: HubNode, caseId: string, action: string, extra: Record<string, unknown> = {}) => cluster.act<Case>(node, caseId, action, extra);
  const workerOn = async (node: HubNode, id: string) => (await api<Worker>(node.http, 'GET', `/workers/${id}`, undefined, token)).body;
  const caseRow = async (id: string) => (await cluster.db.query<{ status: string; worker_id: string | null }>('select status, worker_id from cases where id = $1', [id]))[0]!;
  const arrivals = (caseId: string) => cluster.db.query<{ actor: { id: string } }>("select actor from case_history where case_id = $1 and action = 'arrive'", [caseId]);
  const record = async (caseId: string) =>
    (await cluster.db.query<{ worker_id: string; arrived: boolean; arrived_by: string | null }>('select worker_id, arrived_at is not null as arrived, arrived_by from case_dispatches where case_id = $1', [caseId]));
  async function offeredOn(node: HubNode, caseId: string, workerId: string): Promise<boolean> {
    const r = await api<{ items: Candidate[] }>(node.http, 'GET', `/cases/${caseId}/candidates?limit=20`, undefined, token);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    return r.body.items.some((x) => x.workerId === workerId);
  }

  it('detects the GPS arrival on the node the handheld talks to, not the one that dispatched it, once', { timeout: 300_000 }, async () => {
    const place = AT.A1;
    await addWorker('w-walk', north(place, 400));
    await addWorker('w-idle', north(place, 300));
    const walker = await handheld('w-walk');
    // C must know the worker before it may dispatch them.
    await until(() => cluster.knows(c, 'w-walk'), WAIT, 100);

    const first = await newCase(c, 'E0102', place);
    expect((await act(c, first, 'dispatch', { workerId: 'w-walk' })).status).toBe(200);
    await until(() => dispatchOf(walker.got, first), WAIT, 50);
    await until(async () => (await workerOn(a, 'w-walk')).status === 'dispatched' || null, WAIT, 50);

    // Attack: at the place before the case is accepted, the worker has not "arrived" (only an accepted case arrives).
    await walker.walk(north(place, 5));
    // Attack: another worker's handheld at the place, through A and C, arrives nothing.
    expect(await fixVia(a, 'hh-w-idle', north(place, 3))).toBe(202);
    expect(await fixVia(c, 'hh-w-idle', north(place, 2))).toBe(202);
    // Attack: a fix the ingest cannot store (latitude out of range) is refused and moves nothing.
    expect(await fixVia(a, 'hh-w-walk', { lat: 91, lon: place.lon })).toBe(400);
    expect(await caseRow(first)).toEqual({ status: 'dispatched', worker_id: 'w-walk' });

    // Accepted through C (the worker's app talks to C); A only hears of it.
    expect((await act(c, first, 'accept')).status).toBe(200);
    await until(async () => (await workerOn(a, 'w-walk')).status === 'en_route' || null, WAIT, 50);
    await walker.walk(north(place, 250));
    await walker.walk(north(place, 120));
    expect((await caseRow(first)).status).toBe('accepted');
    // Within the radius (60 m), on A: arrived, from GPS, once.
    await walker.walk(north(place, 20));
    await until(async () => (await caseRow(first)).status === 'on_scene' || null, WAIT, 50);
    await until(async () => (await workerOn(c, 'w-walk')).status === 'on_scene' || null, WAIT, 50);
    await until(async () => (await workerOn(a, 'w-walk')).status === 'on_scene' || null, WAIT, 50);
    await until(async () => (await record(first))[0]?.arrived || null, WAIT, 50);
    expect(await record(first)).toEqual([{ worker_id: 'w-walk', arrived: true, arrived_by: 'gps' }]);
    expect(await arrivals(first)).toEqual([{ actor: expect.objectContaining({ id: 'dispatch' }) }]);
    // The worker's other handheld position, w-idle's, never arrived anything.
    expect((await record(first)).map((r) => r.worker_id)).toEqual(['w-walk']);

    // Resolved through C: released on every node.
    expect((await act(c, first, 'resolve', { note: '已处置' })).status).toBe(200);
    await until(async () => (await workerOn(a, 'w-walk')).status === 'available' || null, WAIT, 50);

    // A second case, dispatched and accepted through C; the worker's fixes at the place reach A (MQTT) and C (HTTP)
    // at once, and both nodes know the place: the case's row decides, one arrival.
    const second = await newCase(c, 'E0102', north(place, -200));
    expect((await act(c, second, 'dispatch', { workerId: 'w-walk' })).status).toBe(200);
    expect((await act(c, second, 'accept')).status).toBe(200);
    await until(async () => (await workerOn(a, 'w-walk')).status === 'en_route' || null, WAIT, 50);
    const at = north(place, -195);
    await Promise.all([walker.walk(at), fixVia(c, 'hh-w-walk', at).then((s) => expect(s).toBe(202)), walker.walk(north(place, -198))]);
    await until(async () => (await caseRow(second)).status === 'on_scene' || null, WAIT, 50);
    await until(async () => (await workerOn(a, 'w-walk')).status === 'on_scene' && (await workerOn(c, 'w-walk')).status === 'on_scene' || null, WAIT, 50);
    expect(await arrivals(second)).toHaveLength(1);
    expect(await record(second)).toEqual([{ worker_id: 'w-walk', arrived: true, arrived_by: 'gps' }]);
    for (const n of [a, c]) expect(n.output(), n.id).not.toContain('dispatch handler failed');

    // Done: both off the next test's roster of candidates.
    expect((await act(c, second, 'resolve', { note: '已处置' })).status).toBe(200);
    for (const id of ['w-walk', 'w-idle']) expect((await api(a.http, 'POST', `/workers/${id}/duty`, { onDuty: false }, token)).status).toBe(200);
    await until(async () => (await workerOn(c, 'w-walk')).status === 'off_duty' && (await workerOn(c, 'w-idle')).status === 'off_duty' || null, WAIT, 50);
    await until(async () => (await workerOn(a, 'w-walk')).status === 'off_duty' || null, WAIT, 50);
  });

  it('a node killed right after a dispatch commit: the others stop offering the worker, and arrival still works', { timeout: 300_000 }, async () => {
    const place = north(AT.A1, 600);
    await addWorker('w-killed', north(place, 150));
    await addWorker('w-other', north(place, 350));
    const killed = await handheld('w-killed');
    // B must know the worker it dispatches, and B and C both workers (each is read back on its own).
    for (const n of [b, c]) for (const id of ['w-killed', 'w-other']) await until(() => cluster.knows(n, id), WAIT, 100);

    // Dispatched through B, which dies right after the commit: no announcement of the worker's assignment from B.
    const k = await newCase(b, 'E0102', place);
    await act(b, k, 'dispatch', { workerId: 'w-killed' }).catch(() => null);
    await until(() => hasExited(b), WAIT, 20);
    expect(b.child.signalCode).toBe('SIGKILL');
    expect(await caseRow(k)).toEqual({ status: 'dispatched', worker_id: 'w-killed' });

    // A survivor sends the command it owed, and with it the worker's assignment: both survivors show it.
    await until(() => dispatchOf(killed.got, k), WAIT, 50);
    for (const n of [a, c]) await until(async () => (await workerOn(n, 'w-killed')).status === 'dispatched' || null, WAIT, 50);
    expect((await workerOn(a, 'w-killed')).caseId).toBe(k);
    expect((await workerOn(c, 'w-killed')).caseId).toBe(k);

    // Not offered for the next case on either survivor; the next automatic dispatch (E0101, through A) goes to the
    // other worker at its first try: no refusal by the worker's row.
    const probe = await newCase(c, 'E0102', north(place, 140));
    expect(await offeredOn(a, probe, 'w-killed')).toBe(false);
    expect(await offeredOn(c, probe, 'w-killed')).toBe(false);
    expect(await offeredOn(a, probe, 'w-other')).toBe(true);
    const auto = await newCase(a, 'E0101', north(place, 140), false);
    await until(async () => (await caseRow(auto)).worker_id || null, WAIT, 50);
    expect(await caseRow(auto)).toEqual({ status: 'dispatched', worker_id: 'w-other' });
    expect(a.output()).not.toContain(REFUSED);
    expect(c.output()).not.toContain(REFUSED);

    // Accepted through C; the handheld on A walks to the place: A detects the arrival, once.
    expect((await act(c, k, 'accept')).status).toBe(200);
    await until(async () => (await workerOn(a, 'w-killed')).status === 'en_route' || null, WAIT, 50);
    await killed.walk(north(place, 80));
    expect((await caseRow(k)).status).toBe('accepted');
    await killed.walk(north(place, 10));
    await until(async () => (await caseRow(k)).status === 'on_scene' || null, WAIT, 50);
    await until(async () => (await record(k))[0]?.arrived || null, WAIT, 50);
    expect(await record(k)).toEqual([{ worker_id: 'w-killed', arrived: true, arrived_by: 'gps' }]);
    expect(await arrivals(k)).toHaveLength(1);
  });
});
