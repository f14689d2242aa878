/**
 * A device's rule owner SIGKILLed right after a breaching reading was
 * acknowledged: the node that takes the device over raises the alarm at the
 * reading that completes the run — the third of "3 in a row" — not later and
 * not earlier, once (docs/cluster.md, "When the owner dies").
 *
 * Node A writes its pending runs never during the test
 * (GRIDLINK_RULES_STATE_FLUSH_MS=3600000): whatever it counted is lost with
 * it, as the last second before each flush is. The readings of one device go
 * through A itself (A acknowledges and counts), those of the other through B
 * (B acknowledges and forwards to A, whose count may be in flight when it
 * dies). Which reading raised is read from the alarm (its value and its
 * "3 in a row"), never from the clock.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rendezvousOwner } from '../../src/cluster/owners.js';
import { until } from '../helpers.js';
import { api, clusterEnv, createDatabase, health, login, RUN_CLUSTER, startNode, startRedis, type HubNode, type RedisServer, type TestDatabase } from './harness.js';

const RULE = {
  id: 'gas-run', name: '燃气 3 次连续超限', enabled: true, kind: 'threshold', metric: 'ch4_pct_lel', op: '>=', value: 20, count: 3,
  clear: { op: '<', value: 10 }, severity: 'major', case: { category: 'E0402' }, scope: { deviceTypes: ['sensor.gas'] },
};
/** Guards against a hang on a busy machine; nothing here is a latency assertion. */
const WAIT = 60_000;

describe.runIf(RUN_CLUSTER)('rules: the owner killed right after a breaching reading was acknowledged', () => {
  let redis: RedisServer;
  let db: TestDatabase;
  let a: HubNode, b: HubNode;
  let token = '';
  const secrets = new Map<string, string>();

  beforeAll(async () => {
    redis = await startRedis();
    db = await createDatabase();
    const env = clusterEnv(redis.url, db.url, { GRIDLINK_DEVICE_RATE: '5000', GRIDLINK_DEVICE_BURST: '5000' });
    a = await startNode('node-a', { ...env, GRIDLINK_RULES_STATE_FLUSH_MS: '3600000' });
    token = await login(a.http);
    const r = await api(a.http, 'POST', '/rules', RULE, token);
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    b = await startNode('node-b', env);
    await until(async () => (await Promise.all([a, b].map(health))).every((h) => h.cluster.owners.length === 2), WAIT, 100);
  }, 180_000);

  afterAll(async () => {
    if (process.env.GRIDLINK_CLUSTER_LOGS === '1') for (const n of [a, b]) if (n) process.stderr.write(`--- ${n.id}\n${n.output()}\n`);
    await Promise.all([a, b].map((n) => n?.kill('SIGKILL')));
    await redis?.stop();
    await db?.drop();
  }, 60_000);

  async function device(id: string): Promise<void> {
    const r = await api<{ secret: string }>(b.http, 'POST', '/devices', { type: 'sensor.gas', id, lat: 30.6, lon: 104.0 }, token);
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    secrets.set(id, r.body.secret);
  }

  /** One reading through a node's HTTP ingest; 202 = committed, the acknowledgement. */
  async function gas(node: HubNode, id: string, ts: number, v: number): Promise<void> {
    const auth = Buffer.from(`${id}:${secrets.get(id)}`).toString('base64');
    const r = await fetch(`${node.http}/api/v1/ingest/${id}/telemetry`, {
      method: 'POST', headers: { authorization: `Basic ${auth}`, 'content-type': 'application/json' }, body: JSON.stringify({ ts, values: { ch4_pct_lel: v } }),
    });
    expect(r.status, `${id} via ${node.id}: ${await r.text()}`).toBe(202);
  }

  const alarms = (id: string) =>
    db.query<{ status: string; count: number; value: unknown; message: string; case_id: string | null }>(
      'select status, count, value, message, case_id from alarms where rule_id = $1 and device_id = $2 order by created_at', [RULE.id, id]);
  const state = async (id: string) =>
    (await db.query<{ state: { count: number; active: boolean; ts?: number } }>('select state from rule_state where rule_id = $1 and device_id = $2', [RULE.id, id]))[0]?.state ?? null;

  it('raises at the third reading on the node that takes the device over, once, whether the first two went through the owner or through the other node', async () => {
    const owned = (prefix: string) => {
      for (let i = 0; ; i++) if (rendezvousOwner(`${prefix}-${i}`, ['node-a', 'node-b']) === 'node-a') return `${prefix}-${i}`;
    };
    const viaOwner = owned('gas-via-owner');
    const viaOther = owned('gas-via-other');
    await device(viaOwner);
    await device(viaOther);
    const t0 = Date.now() - 60_000;
    const ts = (i: number) => t0 + i * 1_000;

    // Two of three, acknowledged: through A for one device, through B (forwarded to A) for the other.
    await gas(a, viaOwner, ts(1), 30);
    await gas(b, viaOther, ts(1), 30);
    await gas(a, viaOwner, ts(2), 31);
    await gas(b, viaOther, ts(2), 31);
    await a.kill('SIGKILL');
    expect(await state(viaOwner)).toBeNull();

    // The third reading of each, through the survivor.
    await gas(b, viaOwner, ts(3), 33);
    await gas(b, viaOther, ts(3), 33);
    for (const id of [viaOwner, viaOther]) {
      // Decided once B has raised, or has stored a state that holds the third reading without raising (the code
      // before this stored no reading time and counted 1).
      await until(async () => {
        if ((await alarms(id)).length) return true;
        const s = await state(id);
        return s !== null && !s.active && (s.ts === undefined || s.ts === ts(3));
      }, WAIT, 50);
      const rows = await alarms(id);
      expect(rows.map((r) => [r.status, r.count, r.value]), id).toEqual([['active', 1, 33]]);
      expect(rows[0]!.message, id).toContain('(3 in a row)');
      await until(async () => (await alarms(id))[0]?.case_id, WAIT, 50);
    }

    // The fourth is a repeat: the readings B replayed are not counted again.
    await gas(b, viaOwner, ts(4), 34);
    await gas(b, viaOther, ts(4), 34);
    for (const id of [viaOwner, viaOther]) {
      await until(async () => (await state(id))?.ts === ts(4), WAIT, 50);
      await until(async () => (await alarms(id))[0]?.count === 2, WAIT, 50);
      expect((await alarms(id)).map((r) => [r.status, r.count])).toEqual([['active', 2]]);
      const [c] = await db.query<{ n: number }>('select count(distinct case_id)::int as n from case_links where device_id = $1', [id]);
      expect(c!.n, id).toBe(1);
    }
  }, 240_000);
});
