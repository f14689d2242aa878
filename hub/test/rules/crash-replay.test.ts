/**
 * A single hub process (hub/src/main.ts, embedded PGlite in a data directory,
 * no Redis) SIGKILLed after two breaching readings of a "3 in a row" run were
 * acknowledged, its pending run never written (GRIDLINK_RULES_STATE_FLUSH_MS
 * of an hour): restarted on the same data it replays the stored readings
 * after its rule state, so the third reading raises, once. A process stopped
 * cleanly (state flushed) and started again counts nothing twice. A repeat
 * of a raised alarm whose reading was committed by a process killed before
 * its rules ran is counted at the restart, once.
 * Which reading raised is read from the stored alarm (value, count, "3 in a
 * row"), never from the clock; each process is stopped with SIGTERM (which
 * waits for its alarm writes) before the database is read.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { openDb } from '../../src/store/db.js';
import { until } from '../helpers.js';
import { ADMIN_PASSWORD, api, hasExited, login, startNode, type HubNode } from '../cluster/harness.js';

const RULE = {
  id: 'gas-run', name: '燃气 3 次连续超限', enabled: true, kind: 'threshold', metric: 'ch4_pct_lel', op: '>=', value: 20, count: 3,
  clear: { op: '<', value: 10 }, severity: 'major', scope: { deviceTypes: ['sensor.gas'] },
};
const DEVICE = 'gas-crash-1';

describe('rules: a single hub killed after breaching readings were acknowledged, restarted on the same data', { timeout: 300_000 }, () => {
  const nodes: HubNode[] = [];
  const dirs: string[] = [];
  afterEach(async () => {
    await Promise.all(nodes.splice(0).map((n) => n.kill('SIGKILL')));
  }, 60_000);
  afterAll(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  function settings(flushMs: string): Record<string, string> {
    const dir = mkdtempSync(path.join(tmpdir(), 'gridlink-crash-rules-'));
    dirs.push(dir);
    return {
      GRIDLINK_DATA_DIR: dir, DATABASE_URL: '', GRIDLINK_REDIS_URL: '', GRIDLINK_JWT_SECRET: 'r'.repeat(64),
      GRIDLINK_ADMIN_PASSWORD: ADMIN_PASSWORD, GRIDLINK_HOST: '127.0.0.1', GRIDLINK_HTTP_PORT: '0', GRIDLINK_MQTT_PORT: '0',
      GRIDLINK_LOG_LEVEL: 'info', GRIDLINK_RULES_STATE_FLUSH_MS: flushMs,
    };
  }

  async function start(id: string, env: Record<string, string>): Promise<{ node: HubNode; token: string }> {
    const node = await startNode(id, env);
    nodes.push(node);
    return { node, token: await login(node.http) };
  }

  /** One reading through HTTP ingest; 202 = committed and evaluated (the signal is handled before the answer leaves). */
  async function gas(node: HubNode, secret: string, ts: number, v: number): Promise<void> {
    const auth = Buffer.from(`${DEVICE}:${secret}`).toString('base64');
    const r = await fetch(`${node.http}/api/v1/ingest/${DEVICE}/telemetry`, {
      method: 'POST', headers: { authorization: `Basic ${auth}`, 'content-type': 'application/json' }, body: JSON.stringify({ ts, values: { ch4_pct_lel: v } }),
    });
    expect(r.status, await r.text()).toBe(202);
  }

  async function setup(node: HubNode, token: string): Promise<string> {
    expect((await api(node.http, 'POST', '/rules', RULE, token)).status).toBe(201);
    const d = await api<{ secret: string }>(node.http, 'POST', '/devices', { type: 'sensor.gas', id: DEVICE, lat: 30.6, lon: 104.0 }, token);
    expect(d.status, JSON.stringify(d.body)).toBe(201);
    return d.body.secret;
  }

  /** The stored alarms and rule state, read from the data directory once no process holds it. */
  async function stored(env: Record<string, string>) {
    const db = await openDb({ url: undefined, dataDir: env.GRIDLINK_DATA_DIR! });
    try {
      const alarms = await db.query<{ status: string; count: number; value: unknown; message: string }>(
        'select status, count, value, message from alarms where rule_id = $1 and device_id = $2 order by created_at', [RULE.id, DEVICE]);
      const [s] = await db.query<{ state: { count: number; active: boolean; ts?: number } }>('select state from rule_state where rule_id = $1 and device_id = $2', [RULE.id, DEVICE]);
      return { alarms: alarms.map((a) => [a.status, a.count, a.value]), messages: alarms.map((a) => a.message), state: s?.state ?? null };
    } finally {
      await db.close();
    }
  }

  const t0 = Date.now() - 60_000;
  const ts = (i: number) => t0 + i * 1_000;

  /** hub-a on `env`: the rule, the device and two breaching readings (30, 31), acknowledged; then stopped by `signal`. The device's secret. */
  async function twoBreachingThenStop(env: Record<string, string>, signal: NodeJS.Signals): Promise<string> {
    const a = await start('hub-a', env);
    const secret = await setup(a.node, a.token);
    await gas(a.node, secret, ts(1), 30);
    await gas(a.node, secret, ts(2), 31);
    await a.node.kill(signal);
    return secret;
  }

  /** Node `id` on `env` takes the third breaching reading (33) and stops cleanly: what is stored then. */
  async function thirdBreach(id: string, env: Record<string, string>, secret: string) {
    const n = await start(id, env);
    await gas(n.node, secret, ts(3), 33);
    await n.node.kill('SIGTERM');
    return stored(env);
  }

  /** Node `id` on `env` starts (replaying whatever it replays at start) and stops cleanly, taking nothing. */
  async function startAndStop(id: string, env: Record<string, string>): Promise<void> {
    const n = await start(id, env);
    await n.node.kill('SIGTERM');
  }

  it('raises at the third reading after a SIGKILL that took the two counted before it', async () => {
    const env = settings('3600000');
    const secret = await twoBreachingThenStop(env, 'SIGKILL');
    // The two steps were never written: only the readings hold them.
    expect((await stored(env)).state).toBeNull();

    const after = await thirdBreach('hub-b', env, secret);
    // The code before counted the third reading as the first of a run: no alarm, count 1.
    expect(after.alarms).toEqual([['active', 1, 33]]);
    expect(after.messages[0]).toContain('(3 in a row)');
    expect(after.state).toMatchObject({ active: true, count: 3, ts: ts(3) });

    // Started again (everything flushed by the clean stop): nothing raised or counted again.
    await startAndStop('hub-c', env);
    expect((await stored(env)).alarms).toEqual([['active', 1, 33]]);
  });

  it('counts nothing twice after a clean stop that flushed the pending run', async () => {
    const env = settings('3600000');
    const secret = await twoBreachingThenStop(env, 'SIGTERM');
    // Flushed at stop: 2 of 3, holding the second reading.
    expect((await stored(env)).state).toMatchObject({ active: false, count: 2, ts: ts(2) });

    // Replaying readings 1 and 2 over that state would count 4 and raise at start, at 31.
    await startAndStop('hub-b', env);
    expect(await stored(env)).toMatchObject({ alarms: [], state: { count: 2, ts: ts(2) } });

    const after = await thirdBreach('hub-c', env, secret);
    expect(after.alarms).toEqual([['active', 1, 33]]);
    expect(after.messages[0]).toContain('(3 in a row)');
  });
  it('counts the repeat of a reading acknowledged by a process killed before its rules ran', async () => {
    const env = settings('3600000');
    const a = await start('hub-a', { ...env, GRIDLINK_TEST_KILL_BEFORE_RULES: 'co_ppm' });
    const secret = await setup(a.node, a.token);
    await gas(a.node, secret, ts(1), 30);
    await gas(a.node, secret, ts(2), 31);
    await gas(a.node, secret, ts(3), 33);
    // Raised at the third, its row written (polled through the API: the process holds the data).
    await until(async () => {
      const r = await api<{ items: Array<{ rule: string; count: number }> }>(a.node.http, 'GET', `/alarms?deviceId=${DEVICE}`, undefined, a.token);
      return r.body.items.some((x) => x.rule === RULE.id && x.count === 1);
    }, 60_000, 50);
    // A fourth breaching reading, committed; it carries a second metric, and the process dies before its rules run.
    const auth = Buffer.from(`${DEVICE}:${secret}`).toString('base64');
    const r = await fetch(`${a.node.http}/api/v1/ingest/${DEVICE}/telemetry`, {
      method: 'POST', headers: { authorization: `Basic ${auth}`, 'content-type': 'application/json' }, body: JSON.stringify({ ts: ts(4), values: { ch4_pct_lel: 34, co_ppm: 5 } }),
    });
    expect(r.status, await r.text()).toBe(202);
    await until(() => hasExited(a.node), 60_000, 50);
    expect((await stored(env)).alarms).toEqual([['active', 1, 33]]);

    // The replay at the restart counts it: the code before returned only changes of state and left the count at 1.
    await startAndStop('hub-b', env);
    expect((await stored(env)).alarms).toEqual([['active', 2, 33]]);
    // Started again: the repeat is at the row's last trigger now, counted once.
    await startAndStop('hub-c', env);
    expect((await stored(env)).alarms).toEqual([['active', 2, 33]]);
  });

  describe('a smoke event (match rule smoke-alarm, case 火灾)', () => {
    const SMOKE = 'smoke-crash-1';

    async function smokeDevice(node: HubNode, token: string): Promise<string> {
      const d = await api<{ secret: string }>(node.http, 'POST', '/devices', { type: 'sensor.smoke', id: SMOKE, lat: 30.6, lon: 104.0 }, token);
      expect(d.status, JSON.stringify(d.body)).toBe(201);
      return d.body.secret;
    }

    /** One event through HTTP ingest: the status (202 = committed). */
    async function smoke(node: HubNode, secret: string, ts: number, type = 'smoke_alarm'): Promise<number> {
      const auth = Buffer.from(`${SMOKE}:${secret}`).toString('base64');
      const r = await fetch(`${node.http}/api/v1/ingest/${SMOKE}/event`, {
        method: 'POST', headers: { authorization: `Basic ${auth}`, 'content-type': 'application/json' }, body: JSON.stringify({ ts, type }),
      });
      return r.status;
    }

    async function smokeStored(env: Record<string, string>) {
      const db = await openDb({ url: undefined, dataDir: env.GRIDLINK_DATA_DIR! });
      try {
        const alarms = await db.query<{ status: string; count: number; case_id: string | null }>(
          "select status, count, case_id from alarms where rule_id = 'smoke-alarm' and device_id = $1 order by created_at", [SMOKE]);
        const [c] = await db.query<{ n: number }>('select count(distinct case_id)::int as n from case_links where device_id = $1', [SMOKE]);
        const [e] = await db.query<{ n: number }>('select count(*)::int as n from events where device_id = $1', [SMOKE]);
        return { alarms: alarms.map((a) => [a.status, a.count, a.case_id !== null]), cases: c!.n, events: e!.n };
      } finally {
        await db.close();
      }
    }

    it('raises the alarm and its case at the restart after a SIGKILL between the event\'s commit and its rules, once', async () => {
      const env = settings('3600000');
      const a = await start('hub-a', { ...env, GRIDLINK_TEST_KILL_BEFORE_RULES: 'smoke_alarm' });
      const secret = await smokeDevice(a.node, a.token);
      const now = Date.now();
      expect(await smoke(a.node, secret, now)).toBe(202);
      // The process kills itself after the acknowledgement, its rules never run.
      await until(() => hasExited(a.node), 60_000, 50);
      // Committed, and no alarm: the code before this lost it for good.
      expect(await smokeStored(env)).toEqual({ alarms: [], cases: 0, events: 1 });

      await startAndStop('hub-b', env);
      expect(await smokeStored(env)).toEqual({ alarms: [['active', 1, true]], cases: 1, events: 1 });

      // Started again: the event is at the alarm's last_ts, counted; nothing raised, repeated or opened twice.
      await startAndStop('hub-c', env);
      expect(await smokeStored(env)).toEqual({ alarms: [['active', 1, true]], cases: 1, events: 1 });
    });

    it('raises nothing again after a SIGKILL that came after the alarm, its repeat and its case', async () => {
      const env = settings('3600000');
      const a = await start('hub-a', env);
      const secret = await smokeDevice(a.node, a.token);
      const now = Date.now();
      expect(await smoke(a.node, secret, now - 2_000)).toBe(202);
      expect(await smoke(a.node, secret, now - 1_000)).toBe(202);
      // Killed once the row holds the repeat and the case is linked (polled through the API, the process holds the data).
      await until(async () => {
        const r = await api<{ items: Array<{ rule: string; count: number; caseId: string | null }> }>(a.node.http, 'GET', `/alarms?deviceId=${SMOKE}`, undefined, a.token);
        return r.body.items.some((x) => x.rule === 'smoke-alarm' && x.count === 2 && x.caseId !== null);
      }, 60_000, 50);
      await a.node.kill('SIGKILL');
      const before = await smokeStored(env);
      expect(before).toEqual({ alarms: [['active', 2, true]], cases: 1, events: 2 });

      await startAndStop('hub-b', env);
      expect(await smokeStored(env)).toEqual(before);

      // A clear and a new alarm after the restart still count as live ones do.
      const b = await start('hub-c', env);
      expect(await smoke(b.node, secret, now + 1_000, 'smoke_alarm_clear')).toBe(202);
      expect(await smoke(b.node, secret, now + 2_000)).toBe(202);
      await b.node.kill('SIGTERM');
      expect((await smokeStored(env)).alarms).toEqual([['cleared', 2, true], ['active', 1, true]]);
    });
  });
});
