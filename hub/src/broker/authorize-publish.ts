import type { AedesOptions, Client } from 'aedes';
import { Counter } from 'prom-client';
import { parseTopic } from '@gridlink/devices';
import type { Config } from '../core/config.js';
import type { Metrics } from '../core/metrics.js';
import type { Ingest, IngestFormat, IngestOutcome, IngestRejectReason } from '../ingest/index.js';
import type { DeviceRegistry } from '../registry/index.js';
import type { HeldAcks } from './held-acks.js';
import { Pubacks } from './pubacks.js';

type AuthorizePublishHandler = NonNullable<AedesOptions['authorizePublish']>;

/** Dropped publishes are renamed here before aedes routes them; no client may subscribe to it. */
export const DEAD_LETTER_TOPIC = '$GRIDLINK/dropped';

/**
 * The durable-ack hook. For an accepted publish the callback is held until the
 * message's batch has committed, so the PUBACK aedes writes after it means "in
 * the database". A message that cannot be stored yet (database down past the
 * memory cap, hub stopping) closes the connection without a PUBACK, so the
 * device keeps it and re-sends [MQTT-4.4.0-1]. A message that is invalid or
 * not allowed is acknowledged and dropped (MQTT 3.1.1 has no negative PUBACK;
 * [MQTT-3.3.5-2] lets the server ack and discard), counted with its reason.
 *
 * Rate limiting is back-pressure, not loss: a QoS 1/2 message over its
 * device's budget is stored as usual but its PUBACK is held until the budget
 * has room again (HeldAcks), which also stops aedes reading that socket. QoS 0
 * over budget is dropped and counted. A device whose debt would pass
 * GRIDLINK_FLOOD_DISCONNECT is disconnected; what it has pending is then
 * never acknowledged.
 *
 * Reading on while acknowledgements are pending: aedes reads a connection's
 * next socket chunk only once every packet of the previous one is handled,
 * which would leave one chunk per connection in the hub and batches of about
 * one message per device. So a QoS 1 publish is handed back to aedes as QoS 0
 * at once (aedes then writes no PUBACK) and the hub writes the PUBACK itself
 * after the commit. The hand-back waits (pausing the socket) only while the
 * connection is over its budget or has `window` acknowledgements outstanding.
 */
export function createAuthorizePublish(deps: {
  config: Config;
  registry: DeviceRegistry;
  ingest: Ingest;
  metrics: Metrics;
  held: HeldAcks;
  now?: () => number;
}): AuthorizePublishHandler {
  const { config, registry, ingest, metrics, held } = deps;
  const { budget } = ingest;
  const now = deps.now ?? Date.now;
  // A device that keeps publishing where it may not is disconnected after this many drops a minute.
  const violationLimit = Math.max(20, Math.ceil(config.floodDisconnect / 10));
  // Unacknowledged QoS 1 messages per connection before aedes stops reading it (the MQTT 5 Receive Maximum).
  const window = Math.max(1, Math.min(config.deviceBurst, 1000));
  const unacked = new WeakMap<Client, { n: number }>();
  const pubacks = new Pubacks();
  const heldTotal = new Counter({
    name: 'gridlink_acks_held_total',
    help: 'QoS 1 messages over their device budget whose PUBACK was held (back-pressure)',
    registers: [metrics.registry],
  });

  // Dropped: counted, renamed to the dead-letter topic and acknowledged, or the device disconnected past `limit`.
  const drop = (deviceId: string, packet: PublishPacket, callback: Callback, reason: IngestRejectReason, detail: string, limit: number): void => {
    ingest.reject(deviceId, reason, detail);
    packet.topic = DEAD_LETTER_TOPIC;
    if (budget.drop(deviceId) > limit) return callback(new Error(`disconnecting ${deviceId}: ${reason}`));
    callback(null);
  };

  // Committed (or refused for good): the PUBACK, then aedes reads on if it was still waiting.
  const settle = (m: Publish, outcome: IngestOutcome): void => {
    if (outcome.ok) {
      if (m.ownAck || m.packet.qos > 0) metrics.ackLatency.observe(now() - m.t);
    } else m.packet.topic = DEAD_LETTER_TOPIC;
    if (m.ownAck) {
      m.count!.n--;
      // Not `client.connected`: aedes sets it only once its connect steps are done (the session's queue read back,
      // a Redis round trip in a cluster), and it reads publishes from the CONNACK on. A message committed in
      // between was stored but never acknowledged, and the device waited for its PUBACK forever.
      if (!m.client.closed && !m.client.conn.destroyed) pubacks.add(m.client, m.messageId!);
    }
    m.resume(null);
  };

  // Per message: no closures named at run time (the hub runs through tsx, which names every named function it creates).
  return (client: Client | null, packet, callback) => {
    const t = now();
    const deviceId = client?.id;
    // Will messages of a client that is gone still arrive with the client object; a null client has no device.
    if (!client || !deviceId) return callback(new Error('publish without a client'));
    packet.retain = false; // devices never leave retained state in the broker

    const parsed = parseTopic(packet.topic);
    let format: IngestFormat;
    if (parsed.kind === 'uplink' && parsed.deviceId === deviceId) format = parsed.channel;
    else if (parsed.kind === 'owntracks' && parsed.deviceId === deviceId && registry.get(deviceId)?.type === 'handheld') format = 'owntracks';
    else return drop(deviceId, packet, callback, 'topic', `${deviceId} may not publish to ${packet.topic.slice(0, 200)}`, violationLimit);

    let at = 0;
    if (packet.qos === 0) {
      // At most once: over budget it may be lost, and is, counted.
      if (budget.tryTake(deviceId) > 0) return drop(deviceId, packet, callback, 'rate_limited', `QoS 0 over ${config.deviceRate} msg/s`, config.floodDisconnect);
    } else {
      at = budget.reserve(deviceId);
      if (at < 0) {
        ingest.reject(deviceId, 'rate_limited', `more than ${config.floodDisconnect} messages over budget; disconnected, pending messages not acknowledged`);
        return callback(new Error(`disconnecting ${deviceId}: flooding`));
      }
      if (at > budget.now()) heldTotal.inc();
    }
    // QoS 1: the hub writes the PUBACK itself (see above); QoS 2 keeps aedes' own flow, released at commit.
    const m = new Publish(client, packet, callback, t, packet.qos === 1);
    if (m.ownAck) {
      packet.qos = 0;
      let count = unacked.get(client);
      if (!count) unacked.set(client, (count = { n: 0 }));
      count.n++;
      m.count = count;
    }
    const payload = typeof packet.payload === 'string' ? Buffer.from(packet.payload) : packet.payload;
    ingest.handle(deviceId, format, payload, t, (outcome) => {
      // Not stored and not refused: close without PUBACK so the device keeps it.
      if (!outcome.ok && outcome.retryable) {
        if (m.resumed) client.close();
        else m.resume(new Error(outcome.detail));
        return;
      }
      if (!m.ownAck && packet.qos === 0) settle(m, outcome);
      else held.hold(deviceId, client, at, () => settle(m, outcome));
    });
    // Read on unless this connection is over its budget or its window.
    if (m.ownAck && !m.resumed && at <= budget.now() && m.count!.n <= window) m.resume(null);
  };
}

type PublishPacket = Parameters<AuthorizePublishHandler>[1];
type Callback = Parameters<AuthorizePublishHandler>[2];

/** One publish on its way: aedes' callback runs once, either to read on early or after the commit. */
class Publish {
  resumed = false;
  count: { n: number } | undefined;
  readonly messageId: number | undefined;

  constructor(
    readonly client: Client,
    readonly packet: PublishPacket,
    private readonly callback: Callback,
    readonly t: number,
    readonly ownAck: boolean,
  ) {
    this.messageId = packet.messageId;
  }

  resume(err: Error | null): void {
    if (this.resumed) return;
    this.resumed = true;
    this.callback(err);
  }
}
