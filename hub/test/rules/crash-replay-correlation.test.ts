/**
 * A single hub process (hub/src/main.ts, embedded PGlite in a data directory,
 * no Redis) and the shipped correlation rule `fire-correlation` (a smoke
 * sensor's smoke_alarm and a camera's fire alert within 200 m and 2 minutes →
 * one critical alarm and case). The smoke event is evaluated, the camera's
 * fire alert is committed and the process SIGKILLed before its rules ran
 * (GRIDLINK_TEST_KILL_BEFORE_RULES=fire): restarted on the same data, it
 * rebuilds the rule's window from the stored events and alerts and raises the
 * joined alarm, once, in the case the smoke alarm opened. A process killed
 * after it had raised the joined alarm raises nothing again at its restart.
 * Each process is stopped with SIGTERM (which waits for its alarm writes)
 * before the database is read.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { openDb } from '../../src/store/db.js';
import { until } from '../helpers.js';
import { ADMIN_PASSWORD, api, hasExited, login, startNode, type HubNode } from '../cluster/harness.js';

const SMOKE = 'smoke-corr-crash-1';
const CAM = 'cam-corr-crash-1';

describe('rules: a correlation whose second signal was committed by a single hub killed before its rules ran', { timeout: 300_000 }, () => {
  const nodes: HubNode[] = [];
  const dirs: string[] = [];
  afterEach(async () => {
    await Promise.all(nodes.splice(0).map((n) => n.kill('SIGKILL')));
  }, 60_000);
  afterAll(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  function settings(): Record<string, string> {
    const dir = mkdtempSync(path.join(tmpdir(), 'gridlink-crash-corr-'));
    dirs.push(dir);
    return {
      GRIDLINK_DATA_DIR: dir, DATABASE_URL: '', GRIDLINK_REDIS_URL: '', GRIDLINK_JWT_SECRET: 'r'.repeat(64),
      GRIDLINK_ADMIN_PASSWORD: ADMIN_PASSWORD, GRIDLINK_HOST: '127.0.0.1', GRIDLINK_HTTP_PORT: '0', GRIDLINK_MQTT_PORT: '0',
      GRIDLINK_LOG_LEVEL: 'info', GRIDLINK_RULES_STATE_FLUSH_MS: '3600000',
    };
  }

  async function start(id: string, env: Record<string, string>): Promise<{ node: HubNode; token: string }> {
    const node = await startNode(id, env);
    nodes.push(node);
    return { node, token: await login(node.http) };
  }

  async function startAndStop(id: string, env: Record<string, string>): Promise<void> {
    const n = await start(id, env);
    await n.node.kill('SIGTERM');
  }

  /** The smoke sensor and, 100 m north, the camera: their secrets. */
  async function devices(node: HubNode, token: string): Promise<{ smoke: string; cam: string }> {
    const s = await api<{ secret: string }>(node.http, 'POST', '/devices', { type: 'sensor.smoke', id: SMOKE, lat: 30.65, lon: 104.05 }, token);
    expect(s.status, JSON.stringify(s.body)).toBe(201);
    const c = await api<{ secret: string }>(node.http, 'POST', '/devices', { type: 'camera', id: CAM, lat: 30.6509, lon: 104.05 }, token);
    expect(c.status, JSON.stringify(c.body)).toBe(201);
    return { smoke: s.body.secret, cam: c.body.secret };
  }

  /** One message through HTTP ingest: the status (202 = committed). */
  async function send(node: HubNode, id: string, secret: string, channel: 'event' | 'alert', body: object): Promise<number> {
    const auth = Buffer.from(`${id}:${secret}`).toString('base64');
    const r = await fetch(`${node.http}/api/v1/ingest/${id}/${channel}`, {
      method: 'POST', headers: { authorization: `Basic ${auth}`, 'content-type': 'application/json' }, body: JSON.stringify(body),
    });
    return r.status;
  }

  /** Polled through the API while the process holds the data: the device's alarm of `rule` has its case. */
  async function linked(node: HubNode, token: string, deviceId: string, rule: string): Promise<void> {
    await until(async () => {
      const r = await api<{ items: Array<{ rule: string; caseId: string | null }> }>(node.http, 'GET', `/alarms?deviceId=${deviceId}`, undefined, token);
      return r.body.items.some((x) => x.rule === rule && x.caseId !== null);
    }, 60_000, 50);
  }

  /** What the data directory holds once no process does: the joined alarms, the cases of each device. */
  async function stored(env: Record<string, string>) {
    const db = await openDb({ url: undefined, dataDir: env.GRIDLINK_DATA_DIR! });
    try {
      const corr = await db.query<{ status: string; count: number; severity: string; related: string[] | null; case_id: string | null }>(
        "select status, count, severity, related, case_id from alarms where rule_id = 'fire-correlation' and device_id = $1 order by created_at", [SMOKE]);
      const own = await db.query<{ rule_id: string; case_id: string | null }>(
        "select rule_id, case_id from alarms where rule_id in ('smoke-alarm', 'camera-fire') order by rule_id");
      const [c] = await db.query<{ n: number }>('select count(distinct case_id)::int as n from case_links where device_id = any($1::text[])', [[SMOKE, CAM]]);
      return {
        corr: corr.map((a) => [a.status, a.count, a.severity, a.related]),
        own: own.map((a) => a.rule_id),
        // Every alarm of the incident in one case.
        oneCase: new Set([...corr, ...own].map((a) => a.case_id)).size === 1 && [...corr, ...own].every((a) => a.case_id !== null),
        cases: c!.n,
      };
    } finally {
      await db.close();
    }
  }

  it('raises the joined alarm at the restart, once, in the smoke alarm\'s case', async () => {
    const env = settings();
    const a = await start('hub-a', { ...env, GRIDLINK_TEST_KILL_BEFORE_RULES: 'fire' });
    const secrets = await devices(a.node, a.token);
    const now = Date.now();
    expect(await send(a.node, SMOKE, secrets.smoke, 'event', { ts: now - 2_000, type: 'smoke_alarm' })).toBe(202);
    await linked(a.node, a.token, SMOKE, 'smoke-alarm');
    // Committed; the process kills itself after the acknowledgement, the alert's rules never run.
    expect(await send(a.node, CAM, secrets.cam, 'alert', { ts: now - 1_000, type: 'fire', confidence: 0.9 })).toBe(202);
    await until(() => hasExited(a.node), 60_000, 50);
    expect(await stored(env)).toMatchObject({ corr: [], own: ['smoke-alarm'], cases: 1 });

    // The code before started the window over at the restart: the camera's own alarm came back, the joined one never.
    await startAndStop('hub-b', env);
    const after = await stored(env);
    expect(after).toEqual({ corr: [['active', 1, 'critical', [CAM]]], own: ['camera-fire', 'smoke-alarm'], oneCase: true, cases: 1 });

    // Started again: the join is at the joined alarm's last trigger; nothing raised, repeated or opened twice.
    await startAndStop('hub-c', env);
    expect(await stored(env)).toEqual(after);
  });

  it('raises nothing again after a SIGKILL that came after the joined alarm and its case', async () => {
    const env = settings();
    const a = await start('hub-a', env);
    const secrets = await devices(a.node, a.token);
    const now = Date.now();
    expect(await send(a.node, SMOKE, secrets.smoke, 'event', { ts: now - 2_000, type: 'smoke_alarm' })).toBe(202);
    expect(await send(a.node, CAM, secrets.cam, 'alert', { ts: now - 1_000, type: 'fire', confidence: 0.9 })).toBe(202);
    await linked(a.node, a.token, SMOKE, 'fire-correlation');
    await linked(a.node, a.token, CAM, 'camera-fire');
    await a.node.kill('SIGKILL');
    const before = await stored(env);
    expect(before).toEqual({ corr: [['active', 1, 'critical', [CAM]]], own: ['camera-fire', 'smoke-alarm'], oneCase: true, cases: 1 });

    // A window rebuilt without the alarm book would join the two again: a second count.
    await startAndStop('hub-b', env);
    expect(await stored(env)).toEqual(before);
  });
});
