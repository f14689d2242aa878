import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import mqtt from 'mqtt';
import { commandTopic, uplinkTopic } from '@gridlink/devices';
import { publishAck, startHub, type TestHub, tryConnect, until } from '../helpers.js';

describe('broker security', () => {
  let t: TestHub;
  let a: { id: string; secret: string };
  let b: { id: string; secret: string };

  beforeAll(async () => {
    t = await startHub({ deviceRate: 20, deviceBurst: 20, floodDisconnect: 30, maxPayload: 64 * 1024 }, { modules: [] });
    a = await t.registerDevice('sensor.smoke', 'smoke-a');
    b = await t.registerDevice('handheld', 'hh-b');
  });
  afterAll(() => t?.stop());

  it('should refuse anonymous, wrong-password and wrong-clientId connections with CONNACK 5', async () => {
    expect(await tryConnect(t.mqttUrl, { clientId: a.id })).toEqual({ ok: false, code: 5 });
    expect(await tryConnect(t.mqttUrl, { clientId: a.id, username: a.id, password: 'wrong' })).toEqual({ ok: false, code: 5 });
    expect(await tryConnect(t.mqttUrl, { clientId: 'someone-else', username: a.id, password: a.secret })).toEqual({ ok: false, code: 5 });
    expect(await tryConnect(t.mqttUrl, { clientId: 'ghost', username: 'ghost', password: 'x' })).toEqual({ ok: false, code: 5 });
    expect(await tryConnect(t.mqttUrl, { clientId: a.id, username: a.id, password: a.secret })).toEqual({ ok: true });
  });

  it('should drop and count a publish to another device topic and to $SYS, keeping the connection', async () => {
    const c = await t.connect(a.id, a.secret);
    const before = t.hub.ctx.ingest.rejectedFor(a.id).topic ?? 0;
    await publishAck(c, uplinkTopic(b.id, 'location'), { lat: 30.1, lon: 104.1 });
    await publishAck(c, commandTopic(b.id), { cmdId: 'x', type: 'cancel', ts: Date.now(), caseId: 'c' });
    await publishAck(c, '$SYS/broker/hack', 'x');
    await publishAck(c, 'random/topic', 'x');
    expect((t.hub.ctx.ingest.rejectedFor(a.id).topic ?? 0) - before).toBe(4);
    expect(c.connected).toBe(true);
    const rows = await t.hub.ctx.db.query<{ n: number }>('select count(*)::int as n from positions where device_id = $1', [b.id]);
    expect(rows[0]!.n).toBe(0);
  });

  it("should let a device subscribe only to its own cmd topic and never deliver another device's publishes", async () => {
    const cb = await t.connect(b.id, b.secret);
    const sub = (topic: string) =>
      new Promise<number>((resolve) => cb.subscribe(topic, { qos: 1 }, (err, granted) => resolve(err ? 128 : (granted?.[0]?.qos ?? -1))));
    const granted = [];
    for (const topic of [commandTopic(b.id), commandTopic(a.id), 'gridlink/v1/#', '$SYS/#']) granted.push(await sub(topic));
    expect(granted).toEqual([1, 128, 128, 128]);
    expect(cb.connected).toBe(true);
    const got: string[] = [];
    cb.on('message', (topic) => got.push(topic));
    const ca = await t.connect(a.id, a.secret);
    await publishAck(ca, commandTopic(b.id), { cmdId: 'forged', type: 'cancel', ts: Date.now(), caseId: 'c' });
    await t.hub.ctx.broker.sendCommand(b.id, { cmdId: 'real', type: 'cancel', ts: Date.now(), caseId: 'c-9' });
    await until(() => got.length >= 1);
    await new Promise((r) => setTimeout(r, 100));
    expect(got).toEqual([commandTopic(b.id)]);
  });

  it('should close a connection that sends a payload over the limit and stay up for others', async () => {
    const c = await t.connect(a.id, a.secret);
    const closed = new Promise<void>((r) => c.once('close', () => r()));
    c.publish(uplinkTopic(a.id, 'telemetry'), Buffer.alloc(2 * 1024 * 1024, 0x20), { qos: 1 });
    await closed;
    const c2 = await t.connect(b.id, b.secret);
    await publishAck(c2, uplinkTopic(b.id, 'location'), { lat: 30.2, lon: 104.2 });
    expect((await fetch(`${t.http}/healthz`)).status).toBe(200);
  });

  it('should drop QoS 0 messages over the rate limit and disconnect a device that keeps flooding', async () => {
    const c = await t.connect(a.id, a.secret);
    const closed = new Promise<void>((r) => c.once('close', () => r()));
    const before = t.hub.ctx.ingest.rejectedFor(a.id).rate_limited ?? 0;
    for (let i = 0; i < 200; i++) c.publish(uplinkTopic(a.id, 'telemetry'), JSON.stringify({ ts: Date.now() - i, values: { battery_pct: 50 } }), { qos: 0 });
    await closed;
    // The drop window belongs to the device, so the topic violations of the test above count towards the 30 too.
    expect((t.hub.ctx.ingest.rejectedFor(a.id).rate_limited ?? 0) - before).toBeGreaterThan(20);
  });

  it('should disconnect a device at once when it is disabled, and refuse it afterwards', async () => {
    const c = await t.connect(b.id, b.secret);
    const closed = new Promise<void>((r) => c.once('close', () => r()));
    const r = await t.api('POST', `/devices/${b.id}/disable`);
    expect(r.status).toBe(200);
    await closed;
    expect(await tryConnect(t.mqttUrl, { clientId: b.id, username: b.id, password: b.secret })).toEqual({ ok: false, code: 5 });
    await t.api('POST', `/devices/${b.id}/enable`);
    expect(await tryConnect(t.mqttUrl, { clientId: b.id, username: b.id, password: b.secret })).toEqual({ ok: true });
  });

  it('should disconnect a deleted device and an old secret after rotation', async () => {
    const d = await t.registerDevice('sensor.gas', 'gas-del');
    const c = await t.connect(d.id, d.secret);
    const closed = new Promise<void>((r) => c.once('close', () => r()));
    const rot = await t.api<{ secret: string }>('POST', `/devices/${d.id}/rotate-secret`);
    await closed;
    expect(await tryConnect(t.mqttUrl, { clientId: d.id, username: d.id, password: d.secret })).toEqual({ ok: false, code: 5 });
    const c2 = await t.connect(d.id, rot.body.secret);
    const closed2 = new Promise<void>((r) => c2.once('close', () => r()));
    expect((await t.api('DELETE', `/devices/${d.id}`)).status).toBe(204);
    await closed2;
    expect(await tryConnect(t.mqttUrl, { clientId: d.id, username: d.id, password: rot.body.secret })).toEqual({ ok: false, code: 5 });
  });

  it('should store only a hash of the secret', async () => {
    const rows = await t.hub.ctx.db.query<{ secret_hash: string }>('select secret_hash from devices where id = $1', [a.id]);
    expect(rows[0]!.secret_hash).toMatch(/^scrypt\$/);
    expect(rows[0]!.secret_hash).not.toContain(a.secret);
  });

  it('should accept MQTT over WebSocket at /mqtt with the same rules', async () => {
    const c = mqtt.connect(`${t.http.replace('http', 'ws')}/mqtt`, { clientId: a.id, username: a.id, password: a.secret, reconnectPeriod: 0 });
    await new Promise<void>((resolve, reject) => {
      c.once('connect', () => resolve());
      c.once('error', reject);
    });
    await publishAck(c, uplinkTopic(a.id, 'event'), { type: 'tamper', ts: Date.now() - 10 });
    const rows = await t.hub.ctx.db.query<{ n: number }>("select count(*)::int as n from events where device_id = $1 and type = 'tamper'", [a.id]);
    expect(rows[0]!.n).toBe(1);
    await c.endAsync(true);
    expect(await tryConnect(`${t.http.replace('http', 'ws')}/mqtt`, { clientId: a.id })).toEqual({ ok: false, code: 5 });
  });

  it('should not expose internals in a 5xx body', async () => {
    const r = await t.api<{ code: string; message: string }>('GET', '/devices/x/telemetry?bucket=1m&from=0&to=1');
    expect(r.status).toBeLessThan(500);
    // Break the database under a route: a 5xx must say nothing about why.
    const db = t.hub.ctx.db;
    const orig = db.query;
    (db as { query: typeof db.query }).query = async () => {
      throw new Error('relation "secret_table" does not exist at /internal/path.ts:42');
    };
    try {
      const res = await t.api<{ code: string; message: string }>('GET', `/devices/${a.id}/telemetry`);
      expect(res.status).toBe(500);
      expect(res.body).toEqual({ code: 'INTERNAL', message: 'Internal error' });
    } finally {
      (db as { query: typeof db.query }).query = orig;
    }
  });

  it('should keep serving after a raw garbage TCP connection', async () => {
    await new Promise<void>((resolve) => {
      const s = net.connect(Number(new URL(t.mqttUrl).port), '127.0.0.1', () => s.write(Buffer.from('GET / HTTP/1.1\r\n\r\n')));
      s.on('close', () => resolve());
      s.on('error', () => resolve());
    });
    expect(await tryConnect(t.mqttUrl, { clientId: a.id, username: a.id, password: a.secret })).toEqual({ ok: true });
  });
});
