/**
 * A message that reaches a resuming persistent session before its CONNACK
 * (in cluster mode: a command arriving through Redis while the session is
 * restored) must not be written ahead of the CONNACK [MQTT-3.2.0-1].
 * A real aedes on a real socket, a real MQTT.js client; the window is held
 * open by a persistence whose will lookup publishes the command first.
 */
import net, { type AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import mqtt, { type MqttClient } from 'mqtt';
import { Aedes } from 'aedes';
import { deliverAfterConnack, releaseOnConnack } from '../../src/broker/connack-first.js';

const turns = async (n: number) => {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
};

describe('CONNACK first', () => {
  const open: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    while (open.length) await open.pop()!();
  });

  async function broker(hold: boolean) {
    const aedes = new Aedes();
    await aedes.listen();
    if (hold) releaseOnConnack(aedes);
    const server = net.createServer((conn) => {
      const client = aedes.handle(conn);
      if (hold) deliverAfterConnack(client);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    open.push(() => new Promise((r) => aedes.close(() => r(undefined))), () => new Promise((r) => server.close(r)));
    return { aedes, url: `mqtt://127.0.0.1:${(server.address() as AddressInfo).port}` };
  }

  function connect(url: string, seen?: string[]): Promise<MqttClient> {
    const c = mqtt.connect(url, { clientId: 'hh-1', clean: false, reconnectPeriod: 0, connectTimeout: 60_000 });
    open.push(() => c.endAsync(true));
    if (seen) c.on('packetreceive', (p) => seen.push(p.cmd));
    return new Promise((resolve, reject) => {
      c.once('connect', () => resolve(c));
      c.once('error', reject);
    });
  }

  /** The device subscribed earlier and went away; on its return a command is published while aedes stores its will. */
  async function resumeWithCommandInFlight(hold: boolean): Promise<{ seen: string[]; got: Promise<string[]>; client: Promise<MqttClient> }> {
    const { aedes, url } = await broker(hold);
    const first = await connect(url);
    await first.subscribeAsync('cmd/hh-1', { qos: 1 });
    await first.endAsync();
    const persistence = (aedes as unknown as { persistence: { delWill(c: { id: string }): Promise<unknown> } }).persistence;
    const delWill = persistence.delWill.bind(persistence);
    let armed = true;
    persistence.delWill = async (client) => {
      if (armed && client.id === 'hh-1') {
        armed = false;
        // Not awaited: the publish completes when every subscriber has taken it, and this one is connecting.
        aedes.publish({ cmd: 'publish', topic: 'cmd/hh-1', payload: Buffer.from('live'), qos: 1, retain: false, dup: false }, () => undefined);
        // Let the delivery to the restored subscription reach the socket.
        await turns(10);
      }
      return delWill(client);
    };
    const seen: string[] = [];
    const client = connect(url, seen);
    const got = client.then(async (c) => {
      const payloads: string[] = [];
      c.on('message', (_t, p) => payloads.push(p.toString()));
      while (payloads.length === 0) await turns(5);
      return payloads;
    });
    return { seen, got, client };
  }

  it('writes the CONNACK before a command that reached the restored session first, and then delivers the command', async () => {
    const { seen, got, client } = await resumeWithCommandInFlight(true);
    await client;
    expect(seen[0]).toBe('connack');
    expect(await got).toContain('live');
  });

  it('without the hold, aedes writes the command first (the behaviour this guards against)', async () => {
    const { seen } = await resumeWithCommandInFlight(false);
    // MQTT.js stalls on a PUBLISH before CONNACK and never connects: wait until something arrived.
    while (seen.length === 0) await turns(5);
    expect(seen[0]).toBe('publish');
  });
});
