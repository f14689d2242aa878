import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { testConfig, type Config } from '../../src/core/config.js';
import { casesModule, createHub, realtimeModule, rulesModule, type Hub } from '../../src/hub.js';
import type { Alarm, RulesModule } from '../../src/rules/index.js';
import { engines, freshPostgresUrl, until } from '../helpers.js';
import { AT, Clock } from '../cases/fixtures.js';

const S = 1000;

for (const engine of engines()) {
  describe(`rule state across a restart (${engine.name})`, () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'gridlink-restart-'));
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    async function boot(config: Config, clock: Clock): Promise<{ hub: Hub; rules: RulesModule; api: <T>(m: string, p: string, b?: unknown) => Promise<{ status: number; body: T }> }> {
      const hub = await createHub(config, { now: clock.now, modules: [realtimeModule(), casesModule({ overdueEveryMs: 0 }), rulesModule({ tickMs: 0, stateFlushMs: 0 })] });
      const rules = hub.ctx.domains.rules!;
      await hub.start();
      const token = hub.ctx.auth.sign({ id: 'root', username: 'root', role: 'admin', regionId: null, displayName: 'root' });
      const api = async <T>(method: string, p: string, body?: unknown) => {
        const r = await hub.ctx.app.inject({ method: method as 'GET', url: `/api/v1${p}`, headers: { authorization: `Bearer ${token}` }, ...(body ? { payload: body as object } : {}) });
        return { status: r.statusCode, body: r.json() as T };
      };
      return { hub, rules, api };
    }

    it('should keep a pending duration and an active alarm through stop and start on the same database', { timeout: 180_000 }, async () => {
      const url = engine.url.startsWith('postgres') ? await freshPostgresUrl(engine.url) : undefined;
      const config = testConfig({ databaseUrl: url, dataDir: dir });
      const clock = new Clock();
      const send = async (hub: Hub, rules: RulesModule, id: string, channel: 'telemetry' | 'event', body: unknown) => {
        const r = await hub.ctx.ingest.handleAsync(id, channel, Buffer.from(JSON.stringify(body)), clock.now());
        expect(r.ok).toBe(true);
        await rules.idle();
      };

      const a = await boot(config, clock);
      expect((await a.api('POST', '/devices', { id: 'water-r', type: 'sensor.water_level', ...AT.A1 })).status).toBe(201);
      expect((await a.api('POST', '/devices', { id: 'smoke-r', type: 'sensor.smoke', ...AT.A1 })).status).toBe(201);
      expect((await a.api('POST', '/rules', { id: 'slow-water', name: 'slow', kind: 'threshold', metric: 'water_level_cm', op: '>=', value: 10, forS: 120, severity: 'minor' })).status).toBe(201);
      const t = clock.t;
      await send(a.hub, a.rules, 'water-r', 'telemetry', { ts: t, values: { water_level_cm: 12 } });
      await send(a.hub, a.rules, 'smoke-r', 'event', { ts: t, type: 'smoke_alarm' });
      expect(a.rules.evaluator.get('slow-water', 'water-r')).toMatchObject({ pendingSince: t, count: 1, active: false });
      await a.hub.stop();

      clock.advance(60 * S);
      const b = await boot(config, clock);
      try {
        expect(b.rules.evaluator.get('slow-water', 'water-r')).toMatchObject({ pendingSince: t, count: 1, active: false });
        await send(b.hub, b.rules, 'water-r', 'telemetry', { ts: t + 130 * S, values: { water_level_cm: 13 } });
        const slow = (await b.api<{ items: Alarm[] }>('GET', '/alarms?rule=slow-water')).body.items;
        expect(slow).toMatchObject([{ status: 'active', ts: t + 130 * S, deviceId: 'water-r' }]);
        await send(b.hub, b.rules, 'smoke-r', 'event', { ts: t + 140 * S, type: 'smoke_alarm' });
        const smoke = (await b.api<{ items: Alarm[] }>('GET', '/alarms?rule=smoke-alarm')).body.items;
        expect(smoke).toMatchObject([{ status: 'active', count: 2, lastTs: t + 140 * S }]);
        const cases = (await b.api<{ items: unknown[] }>('GET', '/cases')).body.items;
        expect(cases).toHaveLength(1);
      } finally {
        await b.hub.stop();
      }
    });

    it('should store the newest rule state when a flush fails or a slow one is still in flight', { timeout: 180_000 }, async () => {
      const url = engine.url.startsWith('postgres') ? await freshPostgresUrl(engine.url) : undefined;
      const clock = new Clock();
      const a = await boot(testConfig({ databaseUrl: url, dataDir: mkdtempSync(path.join(dir, 'flush-')) }), clock);
      try {
        expect((await a.api('POST', '/devices', { id: 'gas-f', type: 'sensor.gas', ...AT.A1 })).status).toBe(201);
        expect((await a.api('POST', '/rules', { id: 'gas-5', name: 'gas', kind: 'threshold', metric: 'ch4_pct_lel', op: '>=', value: 20, count: 5, severity: 'major' })).status).toBe(201);
        const db = a.hub.ctx.db;
        const query = db.query.bind(db);
        const stored = async () => (await query<{ count: number }>("select (state->>'count')::int as count from rule_state where rule_id = 'gas-5' and device_id = 'gas-f'"))[0]?.count ?? null;
        const reading = async () => {
          const r = await a.hub.ctx.ingest.handleAsync('gas-f', 'telemetry', Buffer.from(JSON.stringify({ ts: clock.now(), values: { ch4_pct_lel: 30 } })), clock.now());
          expect(r.ok).toBe(true);
          await a.rules.idle();
          clock.advance(S);
        };
        let writes: Array<{ sql: string; release: () => void }> = [];
        let mode: 'fail' | 'hold' | 'pass' = 'fail';
        db.query = (async (sql: string, params?: unknown[]) => {
          if (!sql.includes('insert into rule_state') || mode === 'pass') return query(sql, params);
          if (mode === 'fail') throw new Error('connection terminated');
          await new Promise<void>((release) => writes.push({ sql, release }));
          return query(sql, params);
        }) as typeof db.query;

        // A flush that fails leaves the key to the next flush, which stores what the device has counted by then.
        await reading();
        await a.rules.flushState();
        expect(await stored()).toBe(null);
        mode = 'pass';
        await a.rules.flushState();
        expect(await stored()).toBe(1);

        // A slow flush of count 2 and a later flush of count 3: the later one is written after it, never overtaken by it.
        mode = 'hold';
        await reading();
        const slow = a.rules.flushState();
        await until(() => writes.length === 1, 10_000, 5);
        mode = 'pass';
        await reading();
        const later = a.rules.flushState();
        const first = writes[0]!;
        writes = [];
        first.release();
        await Promise.all([slow, later]);
        expect(await stored()).toBe(3);
      } finally {
        await a.hub.stop();
      }
    });
  });
}
