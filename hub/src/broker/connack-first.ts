/**
 * [MQTT-3.2.0-1]: the first packet the server sends to a client is CONNACK.
 *
 * aedes restores a persistent session's subscriptions before it stores the
 * will and writes the CONNACK. A message published in that window (in
 * cluster mode a command that arrives through Redis while the session
 * resumes on another node) was written to the socket before the CONNACK.
 * MQTT.js then holds the PUBACK it may not send yet and never reads the
 * CONNACK behind it: the handheld's connect times out and the command waits
 * for the next reconnect.
 *
 * Deliveries that reach a client before its CONNACK wait for it. Nothing is
 * lost if the connection closes first: a persistent session's QoS 1
 * messages are in its queue (aedes enqueues them for every persistent
 * subscriber) and go out with the queue on the next CONNECT.
 */
import type { Aedes, Client } from 'aedes';

type Deliver = (packet: unknown, cb: () => void) => void;
interface Held {
  run(): void;
  /** mqemitter's callback: the delivery is finished. */
  cb(): void;
}
interface Delivering {
  deliver0: Deliver;
  deliverQoS: Deliver;
  conn: { once(event: 'close', fn: () => void): unknown };
}

const waiting = new WeakMap<Client, Held[]>();

/** Installs the hold on a client just handed to aedes, before it has read a packet. */
export function deliverAfterConnack(client: Client): void {
  const c = client as unknown as Delivering;
  waiting.set(client, []);
  const hold = (deliver: Deliver): Deliver =>
    function (this: unknown, packet, cb) {
      const queue = waiting.get(client);
      if (queue) queue.push({ run: () => deliver.call(this, packet, cb), cb });
      else deliver.call(this, packet, cb);
    };
  c.deliver0 = hold(c.deliver0);
  c.deliverQoS = hold(c.deliverQoS);
  // Closed before its CONNACK: release mqemitter's callbacks without writing.
  c.conn.once('close', () => {
    const queue = waiting.get(client);
    if (!queue) return;
    waiting.delete(client);
    for (const h of queue) setImmediate(h.cb);
  });
}

/** Releases each client's held deliveries once its CONNACK is written. */
export function releaseOnConnack(aedes: Aedes): void {
  aedes.on('connackSent', (_packet, client) => {
    const queue = waiting.get(client);
    if (!queue) return;
    waiting.delete(client);
    for (const h of queue) h.run();
  });
}
