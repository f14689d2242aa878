import { afterEach, describe, expect, it } from 'vitest';
import type { MqttClient } from 'mqtt';
import { uplinkTopic } from '@gridlink/devices';
import type { Db, Queryable } from '../../src/store/db.js';
import { freshPostgresUrl, PG_URL, publishAck, REQUIRE_ALL, startHub, until, type TestHub } from '../helpers.js';
import { cuttableProxy, type CuttableProxy } from '../proxy.js';

/** Wraps a database so a test can hold commits or make them fail, as if the server were gone. */
function controllableDb() {
  let gate: Promise<void> | null = null;
  let release: (() => void) | null = null;
  let failing = false;
  const ctl = {
    hold() {
      gate = new Promise((r) => (release = r));
    },
    release() {
      release?.();
      gate = null;
    },
    fail(f: boolean) {
      failing = f;
    },
    wrap(db: Db): Db {
      return {
        ...db,
        kind: db.kind,
        timescale: db.timescale,
        // Batch commits are single INSERT ... FROM unnest statements; gate and fail only those.
        query: async (sql, params) => {
          if (/^(insert|with w0)/.test(sql) && sql.includes('from unnest(')) {
            if (gate) await gate;
            if (failing) throw new Error('connect ECONNREFUSED 127.0.0.1:5432');
          }
          return db.query(sql, params);
        },
        exec: (sql) => db.exec(sql),
        close: () => db.close(),
        tx: async <T>(fn: (q: Queryable) => Promise<T>) => {
          if (gate) await gate;
          if (failing) throw new Error('connect ECONNREFUSED 127.0.0.1:5432');
          return db.tx(fn);
        },
      };
    },
  };
  return ctl;
}

/** Publishes `n` QoS 1 telemetry messages with a window of `window` in flight; records which were acknowledged. */
function pump(c: MqttClient, deviceId: string, n: number, window: number, t0: number) {
  const acked = new Set<number>();
  let next = 0;
  let inflight = 0;
  return {
    acked,
    done: new Promise<void>((resolve) => {
      const send = () => {
        while (inflight < window && next < n) {
          const i = next++;
          inflight++;
          c.publish(uplinkTopic(deviceId, 'telemetry'), JSON.stringify({ ts: t0 + i, seq: i, values: { water_level_cm: i % 100 } }), { qos: 1 }, (err) => {
            inflight--;
            if (!err) acked.add(i);
            if (acked.size === n) resolve();
            else send();
          });
        }
      };
      send();
    }),
  };
}

describe('durable QoS 1', { timeout: 300_000 }, () => {
  let t: TestHub | null = null;
  let proxy: CuttableProxy | null = null;
  afterEach(async () => {
    proxy?.up();
    await t?.stop();
    await proxy?.close();
    t = null;
    proxy = null;
  });

  it('should send PUBACK only after the message is committed', async () => {
    const ctl = controllableDb();
    t = await startHub({ batchMs: 1 }, { modules: [], wrapDb: (db) => ctl.wrap(db) });
    const d = await t.registerDevice('sensor.water_level', 'wl-gate');
    const c = await t.connect(d.id, d.secret);
    ctl.hold();
    let acked = false;
    const ts = Date.now() - 1000;
    const p = publishAck(c, uplinkTopic(d.id, 'telemetry'), { ts, values: { water_level_cm: 7 } }).then(() => (acked = true));
    await until(() => t!.hub.ctx.store.writer.pending === 1);
    await new Promise((r) => setTimeout(r, 200));
    expect(acked).toBe(false);
    const before = await t.hub.ctx.db.query<{ n: number }>('select count(*)::int as n from readings where device_id = $1', [d.id]);
    expect(before[0]!.n).toBe(0);
    ctl.release();
    await p;
    const after = await t.hub.ctx.db.query<{ n: number }>('select count(*)::int as n from readings where device_id = $1', [d.id]);
    expect(after[0]!.n).toBe(1);
  });

  it('should hold acknowledgements while the embedded database fails and store every acked message when it returns', async () => {
    const ctl = controllableDb();
    t = await startHub({ batchMs: 2, deviceRate: 100_000, deviceBurst: 100_000 }, { modules: [], wrapDb: (db) => ctl.wrap(db) });
    const d = await t.registerDevice('sensor.water_level', 'wl-fail');
    const c = await t.connect(d.id, d.secret);
    const t0 = Date.now() - 600_000;
    const run = pump(c, d.id, 600, 50, t0);
    await until(() => run.acked.size >= 100);
    ctl.fail(true);
    const ackedAtFailure = run.acked.size;
    await new Promise((r) => setTimeout(r, 700));
    // A batch may have been committing when the failure began; nothing after it is acknowledged.
    expect(run.acked.size - ackedAtFailure).toBeLessThanOrEqual(50);
    const frozen = run.acked.size;
    await new Promise((r) => setTimeout(r, 500));
    expect(run.acked.size).toBe(frozen);
    const health = (await fetch(`${t.http}/healthz`).then((r) => r.json())) as { status: string };
    expect(health.status).toBe('degraded');
    ctl.fail(false);
    await run.done;
    const rows = await t.hub.ctx.db.query<{ seq: number }>('select seq from readings where device_id = $1', [d.id]);
    const stored = new Set(rows.map((r) => Number(r.seq)));
    for (const i of run.acked) expect(stored.has(i)).toBe(true);
    expect(stored.size).toBe(600);
  });

  it('should close connections instead of acking once the unstored backlog reaches its cap', async () => {
    const ctl = controllableDb();
    t = await startHub({ batchMs: 2, pendingMax: 100, deviceRate: 100_000, deviceBurst: 100_000 }, { modules: [], wrapDb: (db) => ctl.wrap(db) });
    const d = await t.registerDevice('sensor.water_level', 'wl-cap');
    const c = await t.connect(d.id, d.secret);
    ctl.fail(true);
    const closed = new Promise<void>((r) => c.once('close', () => r()));
    const run = pump(c, d.id, 150, 150, Date.now() - 100_000);
    await closed;
    expect(run.acked.size).toBe(0);
    ctl.fail(false);
  });

  it.runIf(PG_URL || REQUIRE_ALL)('should survive PostgreSQL going away mid-stream: nothing acked unstored, ingest resumes by itself', async () => {
    if (!PG_URL) throw new Error('TEST_DATABASE_URL is required');
    proxy = await cuttableProxy(await freshPostgresUrl(PG_URL));
    t = await startHub({ databaseUrl: proxy.url, batchMs: 2, deviceRate: 100_000, deviceBurst: 100_000 }, { modules: [] });
    const d = await t.registerDevice('sensor.water_level', 'wl-pg');
    const c = await t.connect(d.id, d.secret);
    const run = pump(c, d.id, 2000, 100, Date.now() - 3_600_000);
    await until(() => run.acked.size >= 300);
    proxy.down();
    const atCut = run.acked.size;
    await new Promise((r) => setTimeout(r, 1500));
    expect(run.acked.size - atCut).toBeLessThanOrEqual(100);
    proxy.up();
    await until(() => run.acked.size === 2000, 120_000);
    const rows = await t.hub.ctx.db.query<{ seq: number }>('select seq from readings where device_id = $1', [d.id]);
    const stored = new Set(rows.map((r) => Number(r.seq)));
    for (const i of run.acked) expect(stored.has(i)).toBe(true);
    expect(stored.size).toBe(2000);
  }, 300_000);
});
