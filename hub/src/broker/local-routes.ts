/**
 * aedes' message emitter, minus what no one may receive. Every device uplink
 * is stored and acknowledged by the hub itself (authorize-publish.ts); a device
 * may subscribe only to its own command topic (authorize-subscribe.ts), and
 * aedes forwards nothing but commands. Routing an uplink through the emitter
 * therefore found no one: on one node it cost qlobber's topic match and aedes'
 * delivery steps (about 1.5 µs of the hub's ~20 µs a message,
 * docs/benchmarks.md), and in a cluster a msgpack-encoded Redis PUBLISH of
 * every device message to every node.
 *
 * So uplinks (`gridlink/v1/{id}/{channel}`, `owntracks/…`) and dropped
 * publishes (DEAD_LETTER_TOPIC) end here; everything else goes to the real
 * emitter as before: commands, aedes' `$SYS/…` traffic (the cluster's
 * client takeover among them) and anything the hub subscribes to.
 */
import type { Aedes } from 'aedes';
import mqemitter from 'mqemitter';
import { TOPIC_PREFIX } from '@gridlink/devices';

/** The part of MQEmitter that aedes uses. */
export interface Emitter {
  on(topic: string, listener: (message: mqemitter.Message, done: () => void) => void, callback?: () => void): unknown;
  emit(message: mqemitter.Message, callback?: (error?: Error) => void): void;
  removeListener(topic: string, listener: (message: mqemitter.Message, done: () => void) => void, callback?: () => void): void;
  close(callback: () => void): void;
}

const UPLINK_HEAD = `${TOPIC_PREFIX}/`;
const COMMAND_TAIL = '/cmd';

/** True for a topic that only ever carries device uplinks or dropped publishes. */
export function unroutable(topic: string, deadLetterTopic: string): boolean {
  if (topic.startsWith(UPLINK_HEAD)) return !topic.endsWith(COMMAND_TAIL);
  return topic.startsWith('owntracks/') || topic === deadLetterTopic;
}

export class LocalRoutes implements Emitter {
  /** Uplinks not routed since start (for tests and diagnostics). */
  skipped = 0;

  /** `inner`: the cluster's Redis emitter, or aedes' own in-memory one (same options as aedes would give it). */
  constructor(private readonly deadLetterTopic: string, readonly inner: Emitter = mqemitter({ concurrency: 1000, matchEmptyLevels: true })) {}

  emit(message: mqemitter.Message, callback?: (error?: Error) => void): void {
    if (unroutable(message.topic, this.deadLetterTopic)) {
      this.skipped++;
      callback?.();
      return;
    }
    this.inner.emit(message, callback);
  }

  /**
   * Ends an uplink's publish in aedes before its steps begin. Past the hub's
   * authorizePublish, aedes copied every uplink into a Packet and ran the
   * retained store, this emitter and its `published` hook in series: 2.9 % of
   * the hub's busy time under load (docs/benchmarks.md) to reach no one. The
   * skipped steps do nothing for an uplink: the hub clears `retain`, nothing
   * is routed, and the hub sets no `published` hook and does not listen for
   * aedes' 'publish' event, which uplinks therefore no longer raise. Commands,
   * `$SYS` traffic and a client's will still take aedes' own path.
   */
  attach(aedes: Aedes): void {
    type Publish = (packet: mqemitter.Message, client: unknown, done?: (err?: Error | null) => void) => void;
    const target = aedes as unknown as { publish: Publish };
    const publish = target.publish.bind(aedes);
    const dead = this.deadLetterTopic;
    target.publish = (packet, client, done) => {
      // From a client's PUBLISH aedes passes (packet, client, done); its own API (packet, done).
      if (typeof done === 'function' && client && unroutable(packet.topic, dead)) {
        this.skipped++;
        done(null);
        return;
      }
      publish(packet, client, done);
    };
  }

  on(topic: string, listener: (message: mqemitter.Message, done: () => void) => void, callback?: () => void): this {
    this.inner.on(topic, listener, callback);
    return this;
  }

  removeListener(topic: string, listener: (message: mqemitter.Message, done: () => void) => void, callback?: () => void): void {
    this.inner.removeListener(topic, listener, callback);
  }

  close(callback: () => void): void {
    this.inner.close(callback);
  }
}
