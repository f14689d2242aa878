import type { AedesOptions, Client } from 'aedes';
import { parseTopic } from '@gridlink/devices';
import type { Config } from '../core/config.js';
import type { Metrics } from '../core/metrics.js';
import type { Ingest, IngestFormat, IngestRejectReason } from '../ingest/index.js';
import type { DeviceRegistry } from '../registry/index.js';
import type { BatchWriter } from '../store/index.js';
import { TokenBucket } from './rate-limit.js';

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
 */
export function createAuthorizePublish(deps: {
  config: Config;
  registry: DeviceRegistry;
  ingest: Ingest;
  writer: BatchWriter;
  metrics: Metrics;
  buckets: Map<string, TokenBucket>;
  now?: () => number;
}): AuthorizePublishHandler {
  const { config, registry, ingest, writer, metrics, buckets } = deps;
  const now = deps.now ?? Date.now;
  // A device that keeps publishing where it may not is disconnected after this many drops a minute.
  const violationLimit = Math.max(20, Math.ceil(config.floodDisconnect / 10));

  function bucketFor(id: string, t: number): TokenBucket {
    let b = buckets.get(id);
    if (!b) buckets.set(id, (b = new TokenBucket(config.deviceRate, config.deviceBurst, t)));
    return b;
  }

  return (client: Client | null, packet, callback) => {
    const t = now();
    const deviceId = client?.id;
    // Will messages of a client that is gone still arrive with the client object; a null client has no device.
    if (!deviceId) return callback(new Error('publish without a client'));
    packet.retain = false; // devices never leave retained state in the broker

    const drop = (reason: IngestRejectReason, detail: string, limit: number) => {
      ingest.reject(deviceId, reason, detail);
      packet.topic = DEAD_LETTER_TOPIC;
      if (bucketFor(deviceId, t).drop(t) > limit) return callback(new Error(`disconnecting ${deviceId}: ${reason}`));
      callback(null);
    };

    const parsed = parseTopic(packet.topic);
    let format: IngestFormat;
    if (parsed.kind === 'uplink' && parsed.deviceId === deviceId) format = parsed.channel;
    else if (parsed.kind === 'owntracks' && parsed.deviceId === deviceId && registry.get(deviceId)?.type === 'handheld') format = 'owntracks';
    else return drop('topic', `${deviceId} may not publish to ${packet.topic.slice(0, 200)}`, violationLimit);

    if (!bucketFor(deviceId, t).take(t)) return drop('rate_limited', `over ${config.deviceRate} msg/s`, config.floodDisconnect);
    if (writer.full) {
      metrics.messagesRejected.inc({ reason: 'backpressure' });
      return callback(new Error('hub is holding too many unstored messages'));
    }
    const payload = typeof packet.payload === 'string' ? Buffer.from(packet.payload) : packet.payload;
    ingest.handle(deviceId, format, payload, t, (outcome) => {
      if (outcome.ok) {
        if (packet.qos > 0) metrics.ackLatency.observe(now() - t);
        return callback(null);
      }
      if (outcome.retryable) return callback(new Error(outcome.detail));
      packet.topic = DEAD_LETTER_TOPIC;
      callback(null);
    });
  };
}
