/**
 * Rate limiting as back-pressure: a device over its budget gets its PUBACKs
 * late, never lost. The hub runs on an injected clock so the budget's
 * refill is driven by the test, not by how fast this machine happens to be.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { MqttClient } from 'mqtt';
import { uplinkTopic } from '@gridlink/devices';
import { osmandRoutes } from '../../src/dispatch/osmand.routes.js';
import type { ModuleFactory } from '../../src/hub.js';
import type { Db } from '../../src/store/db.js';
import { publishAck, startHub, until, type TestHub } from '../helpers.js';

/** Counts rows committed into `readings` as the database reports them. */
function countingDb() {
  const c = {
    rows: 0,
    wrap(db: Db): Db {
      return {
        ...db,
        kind: db.kind,
        timescale: db.timescale,
        query: async (sql, params) => {
          const r = await db.query(sql, params);
          if (/^insert into readings .* from unnest\(/.test(sql)) c.rows += (params![0] as unknown[]).length;
          return r as never;
        },
      };
    },
  };
  return c;
}

function clock(start = Date.now()) {
  const c = { t: start, now: () => c.t, advance: (ms: number) => (c.t += ms) };
  return c;
}

const count = async (t: TestHub, id: string) =>
  (await t.hub.ctx.db.query<{ n: number }>('select count(*)::int as n from readings where device_id = $1', [id]))[0]!.n;

describe('per-device budget as back-pressure', { timeout: 300_000 }, () => {
  let t: TestHub | null = null;
  afterEach(async () => {
    await t?.stop();
    t = null;
  });

  it('should store all 300 readings of a burst after an outage and acknowledge none before its commit, holding the acks over budget until it refills', async () => {
    const clk = clock();
    const db = countingDb();
    t = await startHub({ deviceRate: 50, deviceBurst: 200 }, { modules: [], now: clk.now, wrapDb: (d) => db.wrap(d) });
    const d = await t.registerDevice('sensor.water_level', 'wl-burst');
    const c = await t.connect(d.id, d.secret);
    const t0 = Date.now() - 3_600_000;
    const committedAtAck: number[] = [];
    const acks = Array.from({ length: 300 }, (_, i) =>
      publishAck(c, uplinkTopic(d.id, 'telemetry'), { ts: t0 + i * 1000, seq: i, values: { water_level_cm: i % 100 } }).then(() => committedAtAck.push(db.rows)),
    );
    // The clock stands still: 200 fit the bucket, the rest wait for it.
    const writer = t.hub.ctx.store.writer;
    await until(() => db.rows > 200 && writer.pending === 0 && committedAtAck.length === 200);
    expect(committedAtAck).toHaveLength(200);
    expect(t.hub.ctx.ingest.budget.tokens(d.id)).toBeLessThan(0);
    // 100 messages of debt at 50/s: two seconds of budget time release every held ack.
    clk.advance(2_000);
    await Promise.all(acks);
    expect(await count(t, d.id)).toBe(300);
    // The k-th PUBACK came after at least k rows were committed: none ran ahead of its commit.
    committedAtAck.forEach((rows, k) => expect(rows).toBeGreaterThanOrEqual(k + 1));
    expect(t.hub.ctx.ingest.rejectedFor(d.id).rate_limited).toBeUndefined();
  });

  it('should keep the budget across reconnects and clientId takeovers, and disconnect a device flooding far past it without acknowledging', async () => {
    const clk = clock();
    t = await startHub({ deviceRate: 1, deviceBurst: 10, floodDisconnect: 20 }, { modules: [], now: clk.now });
    const d = await t.registerDevice('sensor.water_level', 'wl-reconnect');
    const t0 = Date.now() - 3_600_000;
    let i = 0;
    const msg = () => ({ ts: t0 + i++ * 1000, values: { water_level_cm: 5 } });
    const first = await t.connect(d.id, d.secret);
    for (let k = 0; k < 10; k++) await publishAck(first, uplinkTopic(d.id, 'telemetry'), msg());
    await first.endAsync();

    // A new connection does not refill the bucket: its first message waits for budget time.
    const second = await t.connect(d.id, d.secret);
    let acked = false;
    const pending = publishAck(second, uplinkTopic(d.id, 'telemetry'), msg()).then(() => (acked = true));
    await until(() => t!.hub.ctx.store.writer.pending === 0 && t!.hub.ctx.ingest.budget.tokens(d.id) < 0);
    await until(async () => (await count(t!, d.id)) === 11);
    expect(acked).toBe(false);
    clk.advance(1_000);
    await pending;

    // Takeover by a second connection with the same clientId: still the same bucket.
    const third = await t.connect(d.id, d.secret);
    expect(t.hub.ctx.ingest.budget.tokens(d.id)).toBeLessThan(1);

    // Flooding: 40 at once with 20 of debt allowed; the connection is closed and the flood is not acknowledged.
    const closed = new Promise<void>((r) => third.once('close', () => r()));
    let floodAcks = 0;
    for (let k = 0; k < 40; k++) third.publish(uplinkTopic(d.id, 'telemetry'), JSON.stringify(msg()), { qos: 1 }, (err) => (err ? undefined : floodAcks++));
    await closed;
    expect(floodAcks).toBe(0);
    expect(t.hub.ctx.ingest.rejectedFor(d.id).rate_limited).toBeGreaterThanOrEqual(1);
    // Reconnecting at once does not help: the debt is still there.
    expect(t.hub.ctx.ingest.budget.tokens(d.id)).toBeLessThan(-10);
    second.end(true);
  });

  it('should answer HTTP ingest and OsmAnd floods with 429 and Retry-After from the same per-device budget as MQTT', async () => {
    const clk = clock();
    const osmand: ModuleFactory = (ctx) => ({ name: 'osmand', rootRoutes: (app) => osmandRoutes(app, { registry: ctx.registry, ingest: ctx.ingest }) });
    t = await startHub({ deviceRate: 1, deviceBurst: 3 }, { modules: [osmand], now: clk.now });
    const d = await t.registerDevice('handheld', 'hh-flood');
    const basic = `Basic ${Buffer.from(`${d.id}:${d.secret}`).toString('base64')}`;
    const ingest = (lat: number) =>
      fetch(`${t!.http}/api/v1/ingest/${d.id}/location`, { method: 'POST', headers: { authorization: basic, 'content-type': 'application/json' }, body: JSON.stringify({ lat, lon: 104.06 }) });
    const osmandFix = (lat: number) => fetch(`${t!.http}/osmand?id=${d.id}&lat=${lat}&lon=104.06&timestamp=${Math.floor(Date.now() / 1000) - 60}`, { headers: { authorization: basic } });

    expect((await ingest(30.61)).status).toBe(202);
    expect((await ingest(30.62)).status).toBe(202);
    expect((await osmandFix(30.63)).status).toBe(200);
    const overHttp = await ingest(30.64);
    expect(overHttp.status).toBe(429);
    expect(overHttp.headers.get('retry-after')).toBe('1');
    expect(((await overHttp.json()) as { code: string }).code).toBe('RATE_LIMITED');
    const overOsmand = await osmandFix(30.65);
    expect(overOsmand.status).toBe(429);
    expect(Number(overOsmand.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);

    // The MQTT connection of the same device shares the bucket: its QoS 1 publish is stored, its PUBACK waits.
    const c: MqttClient = await t.connect(d.id, d.secret);
    let acked = false;
    const p = publishAck(c, uplinkTopic(d.id, 'location'), { lat: 30.66, lon: 104.06 }).then(() => (acked = true));
    await until(async () => (await t!.hub.ctx.db.query<{ n: number }>('select count(*)::int as n from positions where device_id = $1', [d.id]))[0]!.n === 4);
    expect(acked).toBe(false);
    clk.advance(1_000);
    await p;
    clk.advance(1_000);
    expect((await ingest(30.67)).status).toBe(202);
    expect(t.hub.ctx.ingest.rejectedFor(d.id).rate_limited).toBe(2);
  });
});
