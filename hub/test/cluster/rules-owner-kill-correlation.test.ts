/**
 * The owner of the shipped correlation rule `fire-correlation` (a smoke
 * sensor's smoke_alarm and a camera's fire alert within 200 m and 2 minutes →
 * one critical alarm) SIGKILLed with the camera's fire alert in flight to it:
 * node A owns both devices and acknowledges both messages; B owns the rule,
 * has the smoke event in its window, receives the alert and dies before its
 * rules run (GRIDLINK_TEST_KILL_BEFORE_RULES=fire, B only). A takes the rule
 * over and rebuilds its window from the stored events and alerts: the joined
 * alarm is raised, once, in the smoke alarm's case. B started again wins the
 * rule back while A lives on: it fills the window and raises nothing again
 * (docs/cluster.md, "Correlation rules: one owner per rule").
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rendezvousOwner } from '../../src/cluster/owners.js';
import { until } from '../helpers.js';
import { api, hasExited, health, logged, RUN_CLUSTER, TestCluster, type HubNode } from './harness.js';

/** Guards against a hang on a busy machine; nothing here is a latency assertion. */
const WAIT = 60_000;
const REBUILT = 'correlation windows of the rules taken over rebuilt';
const NODES = ['node-a', 'node-b'];
/** The key a correlation rule's owner is hashed by (rules/index.ts). */
const RULE_KEY = '\u0000rule:fire-correlation';

describe.runIf(RUN_CLUSTER)('rules: the correlation rule\'s owner killed with the second signal in flight to it', () => {
  const tc = new TestCluster({ wait: WAIT });
  let env: Record<string, string>;
  let a: HubNode, b: HubNode;
  let failed = false;

  beforeAll(async () => {
    // The rule's owner among the two is fixed by their ids: it is the one started with the testing option.
    expect(rendezvousOwner(RULE_KEY, NODES)).toBe('node-b');
    env = await tc.open({ GRIDLINK_DEVICE_RATE: '5000', GRIDLINK_DEVICE_BURST: '5000' });
    a = await tc.node('node-a', { ...env, GRIDLINK_LOG_LEVEL: 'info' });
    await tc.login(a);
    b = await tc.node('node-b', { ...env, GRIDLINK_TEST_KILL_BEFORE_RULES: 'fire' });
    await tc.converged();
  }, 180_000);

  afterAll(async () => {
    await tc.stop(failed);
  }, 60_000);

  const ownedByA = (prefix: string) => {
    for (let i = 0; ; i++) if (rendezvousOwner(`${prefix}-${i}`, NODES) === 'node-a') return `${prefix}-${i}`;
  };
  const joined = async (smoke: string) =>
    (await tc.db.query<{ status: string; count: number; severity: string; related: string[] | null; case_id: string | null }>(
      "select status, count, severity, related, case_id from alarms where rule_id = 'fire-correlation' and device_id = $1 order by created_at", [smoke]))
      .map((r) => [r.status, r.count, r.severity, r.related, r.case_id]);
  const own = async (rule: string, id: string) =>
    (await tc.db.query<{ case_id: string | null }>('select case_id from alarms where rule_id = $1 and device_id = $2', [rule, id])).map((r) => r.case_id);

  async function device(type: string, id: string, at: { lat: number; lon: number }): Promise<string> {
    const d = await api<{ secret: string }>(a.http, 'POST', '/devices', { type, id, ...at }, tc.token);
    expect(d.status, JSON.stringify(d.body)).toBe(201);
    return d.body.secret;
  }
  async function send(id: string, secret: string, channel: 'event' | 'alert', body: object): Promise<void> {
    const auth = Buffer.from(`${id}:${secret}`).toString('base64');
    const r = await fetch(`${a.http}/api/v1/ingest/${id}/${channel}`, { method: 'POST', headers: { authorization: `Basic ${auth}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    expect(r.status, await r.text()).toBe(202);
  }

  it('raises the joined alarm once on the node that takes the rule over, and nothing again when the owner comes back', async () => {
    try {
      const smoke = ownedByA('smoke-corr-kill');
      const cam = ownedByA('cam-corr-kill');
      // 100 m apart.
      const smokeSecret = await device('sensor.smoke', smoke, { lat: 30.65, lon: 104.05 });
      const camSecret = await device('camera', cam, { lat: 30.6509, lon: 104.05 });
      const now = Date.now();
      // A evaluates the smoke sensor's own rule and sends the signal to B, the rule's owner.
      await send(smoke, smokeSecret, 'event', { ts: now - 2_000, type: 'smoke_alarm' });
      const [smokeCase] = await until(async () => {
        const c = await own('smoke-alarm', smoke);
        return c[0] ? c : null;
      }, WAIT, 50);
      // The fire alert: acknowledged and evaluated by A for the camera's own rule, in flight to B for the correlation.
      await send(cam, camSecret, 'alert', { ts: now - 1_000, type: 'fire', confidence: 0.9 });
      await until(() => hasExited(b), WAIT, 50);
      expect(logged(b, 'message committed, rules not run: killing this process (testing option)', cam)).toBe(true);

      // A takes the rule over once it finds B gone. The code before started the window over: no joined alarm ever.
      const [corr] = await until(async () => {
        const rows = await joined(smoke);
        return rows[0]?.[4] ? rows : null;
      }, WAIT, 50);
      expect(logged(a, REBUILT, '"raised":1')).toBe(true);
      expect(corr!.slice(0, 4)).toEqual(['active', 1, 'critical', [cam]]);
      expect(corr![4]).toBe(smokeCase);
      expect((await own('camera-fire', cam)).length).toBe(1);

      // B again (a new process, no testing option): it wins the rule back from A, which lives on, and only fills the window.
      const b2 = await tc.node('node-b', { ...env, GRIDLINK_LOG_LEVEL: 'info' });
      await until(async () => (await Promise.all([a, b2].map(health))).every((h) => h.cluster.owners.length === 2), WAIT, 100);
      await until(() => logged(b2, REBUILT, '"messages":2'), WAIT, 100);
      expect(logged(b2, REBUILT, '"raised":0')).toBe(true);
      expect((await joined(smoke)).map((r) => r.slice(0, 4))).toEqual([['active', 1, 'critical', [cam]]]);
    } catch (err) {
      failed = true;
      throw err;
    }
  }, 300_000);
});
