/**
 * Uplinks are stored, not routed (local-routes.ts): a real aedes on a real
 * socket with the hub's emitter, real MQTT.js clients. A subscriber that
 * aedes would otherwise serve (no ACL here) gets commands and nothing of the
 * devices' uplinks; aedes' `$SYS` traffic still reaches the inner emitter.
 */
import net, { type AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import mqtt, { type MqttClient } from 'mqtt';
import mqemitter from 'mqemitter';
import { Aedes } from 'aedes';
import { commandTopic, uplinkTopic, CHANNELS } from '@gridlink/devices';
import { LocalRoutes, unroutable } from '../../src/broker/local-routes.js';
import { DEAD_LETTER_TOPIC } from '../../src/broker/index.js';

describe('local routes', () => {
  const open: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    while (open.length) await open.pop()!();
  });

  it('should tell device uplinks and dropped publishes from what may be routed', () => {
    for (const channel of CHANNELS) expect(unroutable(uplinkTopic('wl-0001', channel), DEAD_LETTER_TOPIC)).toBe(true);
    expect(unroutable('owntracks/hh-0001/phone', DEAD_LETTER_TOPIC)).toBe(true);
    expect(unroutable(DEAD_LETTER_TOPIC, DEAD_LETTER_TOPIC)).toBe(true);
    expect(unroutable(commandTopic('wl-0001'), DEAD_LETTER_TOPIC)).toBe(false);
    expect(unroutable('$SYS/broker-1/new/clients', DEAD_LETTER_TOPIC)).toBe(false);
    expect(unroutable('$SYS/broker-1/heartbeat', DEAD_LETTER_TOPIC)).toBe(false);
    expect(unroutable('gridlink/v2/wl-0001/telemetry', DEAD_LETTER_TOPIC)).toBe(false);
  });

  it('should hand the inner emitter everything but uplinks, and answer an uplink at once', async () => {
    const inner = mqemitter({ concurrency: 10, matchEmptyLevels: true });
    const routes = new LocalRoutes(DEAD_LETTER_TOPIC, inner);
    const seen: string[] = [];
    await new Promise<void>((r) => routes.on('#', (m, done) => (seen.push(m.topic), done()), r));
    const emit = (topic: string) => new Promise<Error | undefined>((r) => routes.emit({ topic, payload: Buffer.from('{}') }, r));
    expect(await emit(uplinkTopic('wl-0001', 'telemetry'))).toBeUndefined();
    expect(await emit(DEAD_LETTER_TOPIC)).toBeUndefined();
    expect(await emit(commandTopic('wl-0001'))).toBeUndefined();
    expect(await emit('$SYS/broker-1/new/clients')).toBeUndefined();
    expect(seen).toEqual([commandTopic('wl-0001'), '$SYS/broker-1/new/clients']);
    expect(routes.skipped).toBe(2);
    await new Promise<void>((r) => routes.close(r));
    expect(await emit(commandTopic('wl-0001'))).toBeInstanceOf(Error);
  });

  it('should deliver commands through aedes and end every uplink before aedes routes it', async () => {
    const routes = new LocalRoutes(DEAD_LETTER_TOPIC);
    const aedes = new Aedes({ mq: routes });
    routes.attach(aedes);
    const published: string[] = [];
    aedes.on('publish', (packet, client) => client && published.push(packet.topic));
    await aedes.listen();
    const server = net.createServer(aedes.handle);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    open.push(() => new Promise<void>((r) => aedes.close(() => r())), () => new Promise((r) => server.close(r)));
    const port = (server.address() as AddressInfo).port;
    const connect = (clientId: string) =>
      new Promise<MqttClient>((resolve, reject) => {
        const c = mqtt.connect(`mqtt://127.0.0.1:${port}`, { clientId, reconnectPeriod: 0 });
        c.once('connect', () => resolve(c));
        c.once('error', reject);
        open.push(() => c.endAsync());
      });
    const watcher = await connect('watcher');
    const device = await connect('wl-0001');
    const got: string[] = [];
    watcher.on('message', (topic) => got.push(topic));
    device.on('message', (topic) => got.push(`device:${topic}`));
    await watcher.subscribeAsync(['gridlink/v1/#', 'owntracks/#'], { qos: 1 });
    await device.subscribeAsync(commandTopic('wl-0001'), { qos: 1 });
    // QoS 1 and 0 uplinks: acknowledged by aedes, routed to no one.
    await device.publishAsync(uplinkTopic('wl-0001', 'telemetry'), '{"values":{"water_level_cm":1}}', { qos: 1 });
    await device.publishAsync('owntracks/wl-0001/phone', '{"_type":"location"}', { qos: 1 });
    await device.publishAsync(uplinkTopic('wl-0001', 'status'), '{"online":true}', { qos: 0 });
    // A command is routed: the device and the wildcard subscriber both get it, after the uplinks.
    const delivered = new Promise<void>((r) => {
      let n = 0;
      const count = () => ++n === 2 && r();
      watcher.on('message', count);
      device.on('message', count);
    });
    await new Promise<void>((r, j) => aedes.publish({ cmd: 'publish', topic: commandTopic('wl-0001'), payload: Buffer.from('{}'), qos: 1, retain: false, dup: false }, (err) => (err ? j(err) : r())));
    await delivered;
    expect(got.sort()).toEqual([`device:${commandTopic('wl-0001')}`, commandTopic('wl-0001')]);
    expect(routes.skipped).toBe(3);
    // The uplinks ended before aedes' publish steps (no Packet copy, no emitter, no 'publish' event).
    expect(published).toEqual([]);
  });
});
