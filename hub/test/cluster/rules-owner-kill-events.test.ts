/**
 * A smoke sensor's rule owner SIGKILLed with the sensor's smoke event in
 * flight to it: node B acknowledges the event and forwards it to A, the
 * owner, which receives it and dies before its rules run
 * (GRIDLINK_TEST_KILL_BEFORE_RULES=smoke_alarm, A only). B takes the sensor
 * over and replays its stored events: one alarm of the shipped `smoke-alarm`
 * rule, one case. A started again takes the sensor back and replays the same
 * event: it is at the alarm row's last trigger, so nothing is raised, counted
 * or opened twice (docs/cluster.md, "When the owner dies").
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rendezvousOwner } from '../../src/cluster/owners.js';
import { until } from '../helpers.js';
import { api, hasExited, health, logged, RUN_CLUSTER, TestCluster, type HubNode } from './harness.js';

/** Guards against a hang on a busy machine; nothing here is a latency assertion. */
const WAIT = 60_000;
const REPLAYED = 'events and alerts of the devices taken over replayed';

describe.runIf(RUN_CLUSTER)('rules: the owner killed with a smoke event in flight to it', () => {
  const tc = new TestCluster({ wait: WAIT });
  let env: Record<string, string>;
  let a: HubNode, b: HubNode;
  let failed = false;

  beforeAll(async () => {
    env = await tc.open({ GRIDLINK_DEVICE_RATE: '5000', GRIDLINK_DEVICE_BURST: '5000' });
    a = await tc.node('node-a', { ...env, GRIDLINK_TEST_KILL_BEFORE_RULES: 'smoke_alarm' });
    await tc.login(a);
    b = await tc.node('node-b', env);
    await tc.converged();
  }, 180_000);

  afterAll(async () => {
    await tc.stop(failed);
  }, 60_000);

  const alarms = async (id: string) =>
    (await tc.db.query<{ status: string; count: number; case_id: string | null }>(
      "select status, count, case_id from alarms where rule_id = 'smoke-alarm' and device_id = $1 order by created_at", [id])).map((r) => [r.status, r.count, r.case_id !== null]);
  const cases = async (id: string) =>
    (await tc.db.query<{ n: number }>('select count(distinct case_id)::int as n from case_links where device_id = $1', [id]))[0]!.n;

  it('raises one alarm and one case on the node that takes the sensor over, and nothing again when the owner comes back', async () => {
    try {
      let id = '';
      for (let i = 0; !id; i++) if (rendezvousOwner(`smoke-kill-${i}`, ['node-a', 'node-b']) === 'node-a') id = `smoke-kill-${i}`;
      const d = await api<{ secret: string }>(b.http, 'POST', '/devices', { type: 'sensor.smoke', id, lat: 30.6, lon: 104.0 }, tc.token);
      expect(d.status, JSON.stringify(d.body)).toBe(201);

      // Acknowledged by B, forwarded to A: A dies with it unevaluated.
      const auth = Buffer.from(`${id}:${d.body.secret}`).toString('base64');
      const r = await fetch(`${b.http}/api/v1/ingest/${id}/event`, {
        method: 'POST', headers: { authorization: `Basic ${auth}`, 'content-type': 'application/json' }, body: JSON.stringify({ ts: Date.now(), type: 'smoke_alarm' }),
      });
      expect(r.status, await r.text()).toBe(202);
      await until(() => hasExited(a), WAIT, 50);
      expect(logged(a, 'message committed, rules not run: killing this process (testing option)', id)).toBe(true);

      // The code before this never raised it: the wait below ran out.
      await until(async () => (await alarms(id))[0]?.[2] === true, WAIT, 100);
      expect(await alarms(id)).toEqual([['active', 1, true]]);
      expect(await cases(id)).toBe(1);

      // A again (a new process, no testing option): it wins the sensor back and replays the event over the alarm row.
      const a2 = await tc.node('node-a', { ...env, GRIDLINK_LOG_LEVEL: 'info' });
      await until(async () => (await Promise.all([a2, b].map(health))).every((h) => h.cluster.owners.length === 2), WAIT, 100);
      await until(() => logged(a2, REPLAYED, '"messages":1'), WAIT, 100);
      expect(logged(a2, REPLAYED, '"raised":0')).toBe(true);
      expect(await alarms(id)).toEqual([['active', 1, true]]);
      expect(await cases(id)).toBe(1);
    } catch (err) {
      failed = true;
      throw err;
    }
  }, 300_000);
});
