/**
 * aedes reads a connection's publishes from its CONNACK on, but marks the
 * client `connected` only after its last connect step: reading back the
 * session's queued messages from the persistence (in a cluster a Redis round
 * trip, slow on a loaded machine). A QoS 1 message committed in between must
 * still be acknowledged: the hub once checked `connected` before writing its
 * own PUBACK, so such a message was stored and never acknowledged, and the
 * device waited for it forever (seen as a hung device in the cluster's
 * SIGKILL-under-load test).
 *
 * The window is held open by a gate on the in-memory persistence's
 * `outgoingStream` (the step after the CONNACK), for one device only.
 */
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import memoryPersistence from 'aedes-persistence';
import { uplinkTopic } from '@gridlink/devices';
import { startHub, type TestHub, until } from '../helpers.js';

type OutgoingStream = (client: { id: string }) => Readable;

describe('PUBACK while aedes finishes the connect', () => {
  let t: TestHub;
  let dev: { id: string; secret: string };
  const proto = Object.getPrototypeOf(memoryPersistence()) as { outgoingStream: OutgoingStream };
  const original = proto.outgoingStream;
  let open: () => void = () => {};
  const gate = new Promise<void>((r) => (open = r));
  let held = 0;

  beforeAll(async () => {
    proto.outgoingStream = function (this: unknown, client) {
      const inner = original.call(this, client);
      if (client.id !== 'slow-connect-1') return inner;
      held++;
      return Readable.from((async function* () {
        await gate;
        for await (const packet of inner) yield packet;
      })());
    };
    t = await startHub({}, { modules: [] });
    dev = await t.registerDevice('sensor.water_level', 'slow-connect-1');
  });
  afterAll(async () => {
    open();
    proto.outgoingStream = original;
    await t?.stop();
  });

  it('acknowledges a QoS 1 message committed before aedes marks the client connected, and the ones after', async () => {
    const c = await t.connect(dev.id, dev.secret);
    // The CONNACK is out and the session read-back is held: aedes has not marked the client connected.
    expect(held).toBe(1);
    let acked = false;
    const first = c.publishAsync(uplinkTopic(dev.id, 'telemetry'), JSON.stringify({ seq: 1, values: { water_level_cm: 12 } }), { qos: 1 }).then(() => (acked = true));
    const stored = async () => (await t.hub.ctx.db.query<{ n: number }>('select count(*)::int as n from readings where device_id = $1', [dev.id]))[0]!.n;
    await until(async () => (await stored()) === 1);
    // Committed while the connect steps still run: acknowledged now, not never.
    await until(() => acked);
    open();
    await c.publishAsync(uplinkTopic(dev.id, 'telemetry'), JSON.stringify({ seq: 2, values: { water_level_cm: 13 } }), { qos: 1 });
    await first;
    expect(await stored()).toBe(2);
    expect(c.connected).toBe(true);
  });
});
