/**
 * The database away under load: the hub holds acknowledgements, refuses what
 * would pass GRIDLINK_PENDING_MAX_BYTES (closing the connection, never
 * acking), keeps its heap under the documented bound, and stores everything
 * once the database is back while the devices re-send.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterEach, describe, expect, it } from 'vitest';
import mqtt, { type MqttClient } from 'mqtt';
import { uplinkTopic } from '@gridlink/devices';
import type { Db } from '../../src/store/db.js';
import { freshPostgresUrl, PG_URL, REQUIRE_ALL, startHub, until, type TestHub } from '../helpers.js';
import { cuttableProxy, type CuttableProxy } from '../proxy.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
/** JS heap plus Buffers (payloads live outside the heap). */
const heap = () => {
  gc();
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.external;
};

function failingDb() {
  let failing = false;
  return {
    set: (f: boolean) => (failing = f),
    wrap(db: Db): Db {
      return {
        ...db,
        kind: db.kind,
        timescale: db.timescale,
        query: async (sql, params) => {
          if (failing && /^(insert|with w0)/.test(sql) && sql.includes('from unnest(')) throw new Error('connect ECONNREFUSED 127.0.0.1:5432');
          return db.query(sql, params);
        },
      };
    },
  };
}

const CAP = 2 * 1024 * 1024;
// Each connection has at most GRIDLINK_DEVICE_BURST (≤ 1,000) messages unacknowledged before the hub stops
// reading it; the byte cap is what bounds many connections with large payloads.
const DEVICES = 40;
const PER_DEVICE = 10;
const BLOB = 'x'.repeat(48 * 1024);

describe('database away under load', { timeout: 180_000 }, () => {
  let t: TestHub | null = null;
  let proxy: CuttableProxy | null = null;
  const clients: MqttClient[] = [];
  afterEach(async () => {
    proxy?.up();
    await Promise.all(clients.splice(0).map((c) => c.endAsync(true).catch(() => undefined)));
    await t?.stop();
    await proxy?.close();
    t = null;
    proxy = null;
  });

  async function run(away: () => void, back: () => void) {
    const devices = [];
    for (let k = 0; k < DEVICES; k++) devices.push(await t!.registerDevice('sensor.smoke', `smoke-away-${k}`));
    const writer = t!.hub.ctx.store.writer;
    away();
    // Real devices: they reconnect when refused and re-send what was not acknowledged.
    const acked = new Map<string, Set<number>>();
    let closes = 0;
    const t0 = Date.now() - 3_600_000;
    const sends = devices.map((d) => {
      const c = mqtt.connect(t!.mqttUrl, { clientId: d.id, username: d.id, password: d.secret, reconnectPeriod: 50 });
      clients.push(c);
      c.on('close', () => closes++);
      const got = new Set<number>();
      acked.set(d.id, got);
      return Promise.all(
        Array.from({ length: PER_DEVICE }, (_, i) =>
          new Promise<void>((resolve) =>
            c.publish(uplinkTopic(d.id, 'event'), JSON.stringify({ ts: t0 + i * 1000, seq: i, type: 'tamper', data: { blob: BLOB } }), { qos: 1 }, (err) => {
              if (!err) got.add(i);
              resolve();
            }),
          ),
        ),
      );
    });
    // The devices run in this process: their queued payloads exist from here on and are not the hub's.
    const heap0 = heap();
    let maxPendingBytes = 0;
    try {
      await until(() => {
        maxPendingBytes = Math.max(maxPendingBytes, writer.pendingBytes);
        return writer.full && closes >= 2 * DEVICES;
      }, 120_000);
      const ackedWhileAway = [...acked.values()].reduce((n, s) => n + s.size, 0);
      const grown = heap() - heap0;
      // Offered: 40 × 10 × 48 KiB ≈ 19 MiB, re-sent on every reconnect. Held: at most the cap plus one message.
      expect(maxPendingBytes).toBeLessThanOrEqual(CAP + 3 * 49 * 1024 + 1024);
      expect(grown).toBeLessThan(4 * CAP + 8 * 1024 * 1024);
      expect(ackedWhileAway).toBe(0);
    } finally {
      back();
    }
    await Promise.all(sends);
    const rows = await t!.hub.ctx.db.query<{ device_id: string; n: number }>("select device_id, count(*)::int as n from events where device_id like 'smoke-away-%' group by 1");
    expect(rows).toHaveLength(DEVICES);
    for (const r of rows) expect(r.n).toBe(PER_DEVICE);
    for (const s of acked.values()) expect(s.size).toBe(PER_DEVICE);
    expect(writer.pending).toBe(0);
  }

  it('should keep memory under GRIDLINK_PENDING_MAX_BYTES, ack nothing, and recover fully on the embedded database', async () => {
    const db = failingDb();
    t = await startHub({ pendingMaxBytes: CAP, deviceRate: 100_000, deviceBurst: 100_000, batchMs: 2 }, { modules: [], wrapDb: (d) => db.wrap(d) });
    await run(() => db.set(true), () => db.set(false));
  });

  it.runIf(PG_URL || REQUIRE_ALL)('should do the same when PostgreSQL goes away behind a cut TCP proxy', async () => {
    if (!PG_URL) throw new Error('TEST_DATABASE_URL is required');
    proxy = await cuttableProxy(await freshPostgresUrl(PG_URL));
    t = await startHub({ databaseUrl: proxy.url, pendingMaxBytes: CAP, deviceRate: 100_000, deviceBurst: 100_000, batchMs: 2 }, { modules: [] });
    const p = proxy;
    await run(() => p.down(), () => p.up());
  });
});
