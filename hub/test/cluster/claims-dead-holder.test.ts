/**
 * A claim of a dead node is free as soon as the node's heartbeat in the
 * nodes table has run out, not when the claim's own time (30 s here) does;
 * a live node's claim is honoured.
 *
 * Three hub nodes, auto-dispatch on for category E0101. Node B starts first
 * and holds `dispatch.timers`. Nodes A and C run with the testing option
 * GRIDLINK_TEST_HOLD_AUTO_DISPATCH=claimed: each claims the automatic
 * dispatch of the cases it creates and then holds it, as a node that died
 * between claiming and dispatching. C creates a case and stays alive; A
 * creates a newer one and is SIGKILLed. B dispatches A's case under a claim
 * it took after A's heartbeat ran out and before A's claim would have run
 * out (the database's own timestamps, compared: an order of events, not a
 * duration); C's older case, scanned first, keeps C's claim.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { AT } from '../cases/fixtures.js';
import { until } from '../helpers.js';
import { health, logged, RUN_CLUSTER, TestCluster, type HubNode } from './harness.js';

/** Guards a hang on a busy machine; nothing here is a latency assertion. */
const WAIT = 120_000;

interface Claim { holder: string; done: boolean; until: Date; claimed_at: Date }

describe.runIf(RUN_CLUSTER)('claims of a dead node', () => {
  const cluster = new TestCluster({ wait: WAIT });
  let a: HubNode, b: HubNode, c: HubNode;
  const at = (dLon: number) => ({ lat: AT.A1.lat, lon: AT.A1.lon + dLon });

  let failed = false;
  beforeEach(({ onTestFailed }) => onTestFailed(() => void (failed = true)));

  beforeAll(async () => {
    const env = await cluster.open({ GRIDLINK_DISPATCH_AUTO: 'E0101', GRIDLINK_LOG_LEVEL: 'info' });
    // B first: it takes every lease, `dispatch.timers` among them, and keeps it (it lives throughout).
    b = await cluster.node('node-b', env);
    await cluster.district(b);
    a = await cluster.node('node-a', { ...env, GRIDLINK_TEST_HOLD_AUTO_DISPATCH: 'claimed' });
    c = await cluster.node('node-c', { ...env, GRIDLINK_TEST_HOLD_AUTO_DISPATCH: 'claimed' });
    await cluster.converged();
    expect((await health(b)).cluster.leases['dispatch.timers']).toMatchObject({ holder: 'node-b', mine: true });
  }, 180_000);

  afterAll(() => cluster.stop(failed), 60_000);

  const claim = async (caseId: string) => (await cluster.db.query<Claim>('select holder, done, until, claimed_at from cluster_claims where key = $1', [`dispatch.auto:${caseId}`]))[0];
  const dispatchRows = (caseId: string) => cluster.db.query<{ worker_id: string; actor: string }>('select worker_id, actor from case_dispatches where case_id = $1', [caseId]);
  const loggedAbout = (node: HubNode, caseId: string, msg: string) => logged(node, msg, `"caseId":"${caseId}"`);
  const newCase = (node: HubNode) => cluster.newCase(node, { category: 'E0101', ...at(0), description: 'claim of a dead node' }, false);

  it('takes over the claim of a SIGKILLed node once its heartbeat ran out, and leaves a live node\'s claim alone', async () => {
    // Two free workers near the cases, their fixes stored (every node reads them back before ranking).
    for (const [id, dLon] of [['w-1', 0.0005], ['w-2', 0.0009]] as const) await cluster.addWorker(b, id, { at: at(dLon) });

    // C's case first (older: the adoption scan reaches it before A's), claimed by C, which lives on.
    const live = await newCase(c);
    await until(() => loggedAbout(c, live, 'automatic dispatch claimed and held (testing option)') || null, WAIT, 50);
    const liveHeld = (await claim(live))!;
    expect(liveHeld).toMatchObject({ holder: 'node-c', done: false });
    // A's case, claimed by A; then A dies holding the claim.
    const dead = await newCase(a);
    await until(() => loggedAbout(a, dead, 'automatic dispatch claimed and held (testing option)') || null, WAIT, 50);
    const held = await claim(dead);
    expect(held).toMatchObject({ holder: 'node-a', done: false });
    await a.kill('SIGKILL');

    // B dispatches A's case, once, under a claim of its own.
    await until(async () => ((await claim(dead))?.done) || null, WAIT, 100);
    const taken = (await claim(dead))!;
    expect(taken.holder).toBe('node-b');
    const [heartbeat] = await cluster.db.query<{ alive_until: Date }>("select alive_until from video_nodes where node = 'node-a'");
    // The order of events on the database clock: A's heartbeat ran out, then B took the claim, before A's claim would have run out.
    expect(taken.claimed_at.getTime()).toBeGreaterThanOrEqual(heartbeat!.alive_until.getTime());
    expect(taken.claimed_at.getTime()).toBeLessThan(held!.until.getTime());
    expect(await dispatchRows(dead)).toEqual([{ worker_id: 'w-1', actor: 'system:dispatch' }]);
    expect(loggedAbout(b, dead, 'automatic dispatch owed by another node adopted')).toBe(true);

    // C's case: C is alive, so its claim stood while B adopted A's newer case. Were it ever taken, it would be only once
    // the claim's own time had run out (the rule for a live holder), and never before.
    const kept = (await claim(live))!;
    if (kept.holder === 'node-c') {
      expect(kept.done).toBe(false);
      expect(await dispatchRows(live)).toEqual([]);
      expect(loggedAbout(b, live, 'automatic dispatch owed by another node adopted')).toBe(false);
    } else {
      expect(kept.claimed_at.getTime()).toBeGreaterThanOrEqual(liveHeld.until.getTime());
    }
  }, 400_000);
});
