import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import mqtt, { type MqttClient } from 'mqtt';
import { commandTopic, uplinkTopic } from '@gridlink/devices';
import { TOPIC_ALIAS_MAXIMUM } from '../../src/broker/mqtt5-bridge.js';
import { publishAck, startHub, type TestHub, tryConnect, until } from '../helpers.js';

const V5 = { protocolVersion: 5 } as const;

/** Subscribes at QoS 1 and resolves with the code the SUBACK carries for it (granted QoS or refusal). */
function subscribe(c: MqttClient, topic: string): Promise<number> {
  return new Promise((resolve) => c.subscribe(topic, { qos: 1 }, (_err, _granted, suback) => resolve(Number(suback?.granted[0] ?? -1))));
}

describe('MQTT 5 through the bridge', () => {
  let t: TestHub;
  let water: { id: string; secret: string };
  let hh: { id: string; secret: string };
  let other: { id: string; secret: string };
  const readings = async (id: string, metric: string) =>
    (await t.hub.ctx.db.query<{ n: number }>('select count(*)::int as n from readings where device_id = $1 and metric = $2', [id, metric]))[0]!.n;

  beforeAll(async () => {
    t = await startHub({}, { modules: [] });
    water = await t.registerDevice('sensor.water_level', 'wl-v5');
    hh = await t.registerDevice('handheld', 'hh-v5');
    other = await t.registerDevice('handheld', 'hh-other');
  });
  afterAll(() => t?.stop());

  it('should connect a v5 client with the right credentials and announce its limits in CONNACK', async () => {
    const c = mqtt.connect(t.mqttUrl, { ...V5, clientId: water.id, username: water.id, password: water.secret, reconnectPeriod: 0 });
    const connack = await new Promise<{ reasonCode?: number; properties?: Record<string, unknown> }>((resolve, reject) => {
      c.once('connect', resolve);
      c.once('error', reject);
    });
    expect(connack.reasonCode).toBe(0);
    expect(connack.properties).toMatchObject({
      topicAliasMaximum: TOPIC_ALIAS_MAXIMUM,
      maximumPacketSize: t.config.maxPayload + 64 * 1024,
      // Receive Maximum: as many unacknowledged QoS 1 messages as the device's budget holds.
      receiveMaximum: t.config.deviceBurst,
      subscriptionIdentifiersAvailable: false,
      sharedSubscriptionAvailable: false,
    });
    await until(() => t.hub.ctx.broker.isConnected(water.id));
    await c.endAsync();
  });

  it('should refuse a wrong password, a wrong clientId and an anonymous v5 CONNECT with reason code 0x87', async () => {
    expect(await tryConnect(t.mqttUrl, { ...V5, clientId: water.id, username: water.id, password: 'wrong' })).toEqual({ ok: false, code: 0x87 });
    expect(await tryConnect(t.mqttUrl, { ...V5, clientId: 'someone-else', username: water.id, password: water.secret })).toEqual({ ok: false, code: 0x87 });
    expect(await tryConnect(t.mqttUrl, { ...V5, clientId: water.id })).toEqual({ ok: false, code: 0x87 });
    expect(await tryConnect(t.mqttUrl, { ...V5, clientId: water.id, username: water.id, password: water.secret })).toEqual({ ok: true });
  });

  it('should ack a QoS 1 telemetry publish once it is stored', async () => {
    const c = await t.connect(water.id, water.secret, V5);
    await publishAck(c, uplinkTopic(water.id, 'telemetry'), { ts: Date.now() - 1000, values: { water_level_cm: 7.5 } });
    // PUBACK comes after commit: the row is there without waiting.
    expect(await readings(water.id, 'water_level_cm')).toBe(1);
  });

  it("should grant a subscription to the device's own cmd topic, refuse another's with 0x87 and stay connected", async () => {
    const c = await t.connect(hh.id, hh.secret, V5);
    expect(await subscribe(c, commandTopic(hh.id))).toBe(1);
    expect(await subscribe(c, commandTopic(other.id))).toBe(0x87);
    expect(c.connected).toBe(true);
    // v5 UNSUBACK: one reason code per topic filter.
    const unsuback = await new Promise<unknown>((resolve, reject) =>
      c.unsubscribe([commandTopic(hh.id), commandTopic(other.id)], (err, packet) => (err ? reject(err) : resolve(packet))),
    );
    expect(unsuback).toMatchObject({ cmd: 'unsuback', granted: [0, 0] });
  });

  it('should deliver a command from sendCommand to a v5 client', async () => {
    const c = await t.connect(hh.id, hh.secret, V5);
    expect(await subscribe(c, commandTopic(hh.id))).toBe(1);
    const got: Array<{ topic: string; body: unknown; qos: number }> = [];
    c.on('message', (topic, payload, packet) => got.push({ topic, body: JSON.parse(payload.toString()), qos: packet.qos }));
    const ts = Date.now();
    await t.hub.ctx.broker.sendCommand(hh.id, { cmdId: 'cmd-v5', type: 'cancel', ts, caseId: 'c-v5' });
    await until(() => got.length >= 1);
    expect(got).toEqual([{ topic: commandTopic(hh.id), body: { cmdId: 'cmd-v5', type: 'cancel', ts, caseId: 'c-v5' }, qos: 1 }]);
  });

  it('should resolve topic aliases the client sets', async () => {
    const c = await t.connect(water.id, water.secret, V5);
    const topic = uplinkTopic(water.id, 'telemetry');
    const send = (tp: string, value: number) =>
      new Promise<void>((resolve, reject) =>
        c.publish(tp, JSON.stringify({ ts: Date.now() - 500 + value, values: { battery_pct: value } }), { qos: 1, properties: { topicAlias: 3 } }, (err) =>
          err ? reject(err) : resolve(),
        ),
      );
    await send(topic, 10); // sets alias 3
    await send('', 11); // uses it
    expect(await readings(water.id, 'battery_pct')).toBe(2);
  });

  it('should close a connection that uses a topic alias it never set, with DISCONNECT 0x82', async () => {
    const c = await t.connect(water.id, water.secret, V5);
    const disconnect = new Promise<number | undefined>((r) => c.once('disconnect', (p) => r(p.reasonCode)));
    const closed = new Promise<void>((r) => c.once('close', () => r()));
    c.publish('', '{}', { qos: 0, properties: { topicAlias: 9 } });
    expect(await disconnect).toBe(0x82);
    await closed;
  });

  it('should discard the will on a normal DISCONNECT and publish it on DISCONNECT 0x04', async () => {
    const d = await t.registerDevice('handheld', 'hh-will');
    const will = { topic: uplinkTopic(d.id, 'status'), payload: Buffer.from(JSON.stringify({ online: false })), qos: 1 as const, retain: false };
    const offline = async () =>
      (await t.hub.ctx.db.query<{ n: number }>('select count(*)::int as n from device_status where device_id = $1 and not online', [d.id]))[0]!.n;
    await (await t.connect(d.id, d.secret, { ...V5, will })).endAsync(false, { reasonCode: 0x00 });
    await (await t.connect(d.id, d.secret, { ...V5, will })).endAsync(false, { reasonCode: 0x04 });
    // A wrongly kept first will would have been stored before the second connection opened.
    await until(async () => (await offline()) >= 1);
    expect(await offline()).toBe(1);
  });

  it('should speak v5 over WebSocket at /mqtt', async () => {
    const ws = `${t.http.replace('http', 'ws')}/mqtt`;
    const c = mqtt.connect(ws, { ...V5, clientId: water.id, username: water.id, password: water.secret, reconnectPeriod: 0 });
    await new Promise<void>((resolve, reject) => {
      c.once('connect', () => resolve());
      c.once('error', reject);
    });
    const before = await readings(water.id, 'water_level_cm');
    await publishAck(c, uplinkTopic(water.id, 'telemetry'), { ts: Date.now() - 2000, values: { water_level_cm: 8 } });
    expect(await readings(water.id, 'water_level_cm')).toBe(before + 1);
    await c.endAsync(true);
    expect(await tryConnect(ws, { ...V5, clientId: water.id, username: water.id, password: 'wrong' })).toEqual({ ok: false, code: 0x87 });
  });

  it('should close a v5 connection that sends a packet over the limit and stay up for others', async () => {
    const c = await t.connect(water.id, water.secret, V5);
    const disconnect = new Promise<number | undefined>((r) => c.once('disconnect', (p) => r(p.reasonCode)));
    const closed = new Promise<void>((r) => c.once('close', () => r()));
    c.publish(uplinkTopic(water.id, 'telemetry'), Buffer.alloc(2 * 1024 * 1024, 0x20), { qos: 1 });
    await closed;
    expect(await disconnect).toBe(0x95); // packet too large
    const c2 = await t.connect(hh.id, hh.secret, V5);
    await publishAck(c2, uplinkTopic(hh.id, 'location'), { lat: 30.2, lon: 104.2 });
    expect((await fetch(`${t.http}/healthz`)).status).toBe(200);
  });

  it('should still serve a 3.1.1 client next to v5 ones', async () => {
    const c = await t.connect(other.id, other.secret, { protocolVersion: 4 });
    expect(await subscribe(c, commandTopic(other.id))).toBe(1);
    expect(await subscribe(c, commandTopic(hh.id))).toBe(128);
    await publishAck(c, uplinkTopic(other.id, 'location'), { ts: Date.now() - 100, lat: 30.3, lon: 104.3 });
    const rows = await t.hub.ctx.db.query<{ n: number }>('select count(*)::int as n from positions where device_id = $1', [other.id]);
    expect(rows[0]!.n).toBe(1);
    expect(await tryConnect(t.mqttUrl, { clientId: other.id, username: other.id, password: 'wrong' })).toEqual({ ok: false, code: 5 });
  });
});
