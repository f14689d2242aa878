/**
 * MQTT 5 in front of aedes, which speaks only 3.1 and 3.1.1 (CONTRACT 2 asks
 * for both 3.1.1 and 5).
 *
 * `acceptMqtt` peeks at the first CONNECT of a connection. A 3.1/3.1.1
 * connection gets its bytes put back and goes to aedes untouched, so those
 * devices pay nothing after the first packet. A v5 connection goes through
 * `bridgeMqtt5`: one in-process Duplex whose readable side carries the client's
 * packets re-encoded as 3.1.1 to aedes, and whose writable side takes what
 * aedes writes, parses it as 3.1.1 and re-encodes it as v5 to the client.
 * aedes' hooks (authenticate, ACL, ack after commit) apply unchanged.
 *
 * What a v5 client gets from the bridge: reason codes on CONNACK, SUBACK and
 * UNSUBACK; topic aliases towards the hub; Maximum Packet Size both ways.
 * What it does not: properties on messages (user properties, expiry, content
 * type, response topic are dropped), will properties (a will is sent at once),
 * session expiry (Clean Start maps to 3.1.1 Clean Session, so a session with
 * Clean Start 0 persists as a 3.1.1 one does), a Receive Maximum of its own
 * towards the client (downlink is one command at a time anyway), enhanced
 * authentication, subscription identifiers and shared subscriptions (CONNACK
 * says so).
 */
import { Duplex } from 'node:stream';
import mqtt, { type Packet } from 'mqtt-packet';

export interface MqttAcceptOptions {
  /** Largest packet (remaining length) accepted from a v5 client. */
  maxPacket: number;
  /** How long a connection may take to send the head of its CONNECT. */
  connectTimeoutMs: number;
  /**
   * Receive Maximum advertised in CONNACK: QoS 1/2 publishes a client should
   * have unacknowledged at once. Advisory: a client that sends more is not
   * cut off, it is slowed down like a 3.1.1 client (aedes stops reading while
   * acknowledgements are held).
   */
  receiveMaximum?: number;
  /** Called before a v5 connection is closed for sending a packet over `maxPacket`. */
  onTooLarge(bytes: number, clientId: string | undefined): void;
}

/** Topic aliases a v5 client may use towards the hub, advertised in CONNACK [MQTT-3.2.2-17]. */
export const TOPIC_ALIAS_MAXIMUM = 32;

/** 3.1.1 CONNACK return code → v5 CONNACK reason code [MQTT-3.2.2-8]. */
const CONNACK_REASON: Record<number, number> = {
  0: 0x00, // success
  1: 0x84, // unsupported protocol version
  2: 0x85, // client identifier not valid
  3: 0x88, // server unavailable
  4: 0x86, // bad user name or password
  5: 0x87, // not authorized
};
/** SUBACK: 3.1.1 failure 0x80 → v5 0x87 not authorized (the ACL is the only reason aedes refuses). */
const SUBACK_REFUSED = 0x87;

/**
 * Protocol level of the CONNECT at the head of `buf`, 'more' while the head is
 * incomplete, undefined when the bytes are no CONNECT the bridge can read
 * (aedes then refuses them as it always did).
 */
export function connectLevel(buf: Buffer): number | 'more' | undefined {
  if (buf.length === 0) return 'more';
  if (buf[0] !== 0x10) return undefined; // CONNECT, flags 0 [MQTT-2.2.2-1]
  // Remaining Length: a variable byte integer of at most four bytes (1.5.5).
  let i = 1;
  for (;;) {
    if (i >= buf.length) return 'more';
    if (i > 4) return undefined;
    if ((buf[i]! & 0x80) === 0) break;
    i++;
  }
  i++;
  if (buf.length < i + 2) return 'more';
  const nameLength = buf.readUInt16BE(i); // "MQTT" (4) or "MQIsdp" (6)
  if (nameLength > 6) return undefined;
  const at = i + 2 + nameLength;
  return buf.length > at ? buf[at] : 'more';
}

/**
 * Hands `conn` to aedes (`toAedes`): the socket itself for 3.1/3.1.1 (or
 * anything that is not a CONNECT), the bridge for a v5 CONNECT.
 */
export function acceptMqtt(conn: Duplex, opts: MqttAcceptOptions, toAedes: (stream: Duplex) => void): void {
  let head: Buffer = Buffer.alloc(0);
  const timer = setTimeout(() => conn.destroy(), opts.connectTimeoutMs);
  const onError = () => conn.destroy();
  const stop = () => {
    clearTimeout(timer);
    conn.off('readable', onReadable);
    conn.off('error', onError);
    conn.off('close', stop);
  };
  function onReadable() {
    let chunk: Buffer | null;
    while ((chunk = conn.read() as Buffer | null) !== null) {
      head = head.length === 0 ? chunk : Buffer.concat([head, chunk]);
      const level = connectLevel(head);
      if (level === 'more') continue;
      stop();
      if (level === 5) return toAedes(bridgeMqtt5(conn, head, opts));
      // Put the bytes back: unshift flags the stream readable again, so aedes'
      // own 'readable' listener reads them.
      conn.unshift(head);
      return toAedes(conn);
    }
  }
  conn.on('error', onError);
  conn.on('close', stop);
  conn.on('readable', onReadable);
}

interface ParserInternals {
  packet: { length: number };
  _parseLength(): boolean;
}

/** The aedes-facing stream of one v5 connection; `head` is what was already read from `conn`. */
export function bridgeMqtt5(conn: Duplex, head: Buffer, opts: MqttAcceptOptions): Duplex {
  const fromClient = mqtt.parser({ protocolVersion: 5 });
  const fromAedes = mqtt.parser({ protocolVersion: 4 });
  const aliases = new Map<number, string>();
  const unsubscribeCounts = new Map<number, number>();
  let clientId: string | undefined;
  let clientMaxPacket = 0;
  let connectSeen = false;
  let connackSent = false;
  let connected = false;
  let closed = false;
  let reading = true;
  let started = false;

  const closeClient = () => {
    if (conn.destroyed) return;
    // end() flushes a CONNACK or DISCONNECT already written; a peer that never
    // closes its side is cut off shortly after.
    conn.end();
    setTimeout(() => conn.destroy(), 1000).unref();
  };
  const closeAll = () => {
    if (closed) return;
    closed = true;
    closeClient();
    aedesSide.destroy();
  };

  const aedesSide = new Duplex({
    read() {
      reading = true;
      pump();
    },
    write(chunk: Buffer, _encoding, callback) {
      fromAedes.parse(chunk);
      if (conn.writableNeedDrain) conn.once('drain', () => callback());
      else callback();
    },
    final(callback) {
      closeAll();
      callback();
    },
    destroy(_err, callback) {
      closed = true;
      closeClient();
      callback(null);
    },
  });

  const toAedes = (packet: Packet) => {
    if (closed) return;
    if (!aedesSide.push(mqtt.generate(packet, { protocolVersion: 4 }))) reading = false;
  };
  const toClient = (packet: Packet) => {
    if (conn.writable) conn.write(mqtt.generate(packet, { protocolVersion: 5 }));
  };
  /**
   * A malformed packet or protocol error closes the connection [MQTT-4.13.1-1],
   * after a CONNACK (before the session starts) or a DISCONNECT (after) that
   * carries the reason [MQTT-3.2.2-6] [MQTT-3.14.2-1].
   */
  const fail = (reasonCode: number) => {
    if (closed) return;
    if (!connackSent) toClient({ cmd: 'connack', reasonCode, sessionPresent: false });
    else if (connected) toClient({ cmd: 'disconnect', reasonCode });
    closeAll();
  };

  const internals = fromClient as unknown as ParserInternals;
  const parseLength = internals._parseLength;
  internals._parseLength = function (this: ParserInternals) {
    const ok = parseLength.call(this);
    if (ok && this.packet.length > opts.maxPacket) {
      // The same limit aedes' parser enforces for 3.1.1; refused before the
      // body is buffered. 0x95 packet too large.
      opts.onTooLarge(this.packet.length, clientId);
      fail(0x95);
      return false;
    }
    return ok;
  };

  fromClient.on('error', () => fail(0x81)); // malformed packet
  fromClient.on('packet', (p: Packet) => {
    if (closed) return;
    try {
      fromClientPacket(p);
    } catch {
      fail(0x81);
    }
  });
  function fromClientPacket(p: Packet) {
    if (!connectSeen && p.cmd !== 'connect') return fail(0x82); // CONNECT comes first [MQTT-3.1.0-1]
    switch (p.cmd) {
      case 'connect': {
        if (connectSeen) return fail(0x82); // a second CONNECT [MQTT-3.1.0-2]
        connectSeen = true;
        clientId = p.clientId;
        // Enhanced authentication is not offered [MQTT-4.12.0-1]: 0x8C bad authentication method.
        if (p.properties?.authenticationMethod) return fail(0x8c);
        clientMaxPacket = p.properties?.maximumPacketSize ?? 0;
        const will = p.will && { topic: p.will.topic, payload: p.will.payload, qos: p.will.qos ?? 0, retain: p.will.retain ?? false };
        return toAedes({
          cmd: 'connect',
          protocolId: 'MQTT',
          protocolVersion: 4,
          clientId: p.clientId,
          clean: p.clean ?? true,
          keepalive: p.keepalive ?? 0,
          ...(p.username !== undefined ? { username: p.username } : {}),
          ...(p.password !== undefined ? { password: p.password } : {}),
          ...(will ? { will } : {}),
        });
      }
      case 'publish': {
        let topic = p.topic;
        const alias = p.properties?.topicAlias;
        if (alias !== undefined) {
          // 0x94 topic alias invalid: 0 or above the advertised maximum [MQTT-3.3.2-8] [MQTT-3.3.2-9].
          if (alias === 0 || alias > TOPIC_ALIAS_MAXIMUM) return fail(0x94);
          if (topic) aliases.set(alias, topic);
          else {
            const known = aliases.get(alias);
            if (known === undefined) return fail(0x82); // an alias never set is a protocol error (3.3.2.3.4)
            topic = known;
          }
        } else if (!topic) return fail(0x82);
        const out = { cmd: 'publish' as const, topic, payload: p.payload, qos: p.qos, retain: p.retain, dup: p.dup };
        return toAedes(p.qos > 0 ? { ...out, messageId: p.messageId! } : out);
      }
      case 'puback':
      case 'pubrec':
      case 'pubrel':
      case 'pubcomp':
        return toAedes({ cmd: p.cmd, messageId: p.messageId! });
      case 'subscribe':
        // 0xA1: CONNACK said Subscription Identifiers are not available (3.2.2.3.12).
        if (p.properties?.subscriptionIdentifier !== undefined) return fail(0xa1);
        // No Local, Retain As Published and Retain Handling have no 3.1.1 form; aedes applies its defaults.
        return toAedes({ cmd: 'subscribe', messageId: p.messageId!, subscriptions: p.subscriptions.map((s) => ({ topic: s.topic, qos: s.qos })) });
      case 'unsubscribe':
        unsubscribeCounts.set(p.messageId!, p.unsubscriptions.length);
        return toAedes({ cmd: 'unsubscribe', messageId: p.messageId!, unsubscriptions: p.unsubscriptions });
      case 'pingreq':
        return toAedes({ cmd: 'pingreq' });
      case 'disconnect':
        // 0x04 "disconnect with will message": close without a DISCONNECT so
        // aedes publishes the will (3.14.2.1). Otherwise a normal DISCONNECT,
        // which discards the will [MQTT-3.14.4-3]; aedes then closes.
        if (p.reasonCode === 0x04) return closeAll();
        return toAedes({ cmd: 'disconnect' });
      case 'auth':
        return fail(0x82); // no enhanced authentication was started (4.12)
      default:
        return fail(0x82); // a server-to-client packet from the client
    }
  }

  fromAedes.on('error', () => closeAll());
  fromAedes.on('packet', (p: Packet) => {
    try {
      fromAedesPacket(p);
    } catch {
      closeAll();
    }
  });
  function fromAedesPacket(p: Packet) {
    switch (p.cmd) {
      case 'connack': {
        const rc = p.returnCode ?? 0;
        connackSent = true;
        connected = rc === 0;
        return toClient({
          cmd: 'connack',
          reasonCode: CONNACK_REASON[rc] ?? 0x80, // [MQTT-3.2.2-8]
          sessionPresent: connected && p.sessionPresent, // 0 with a refusal [MQTT-3.2.2-6]
          ...(connected
            ? {
                properties: {
                  topicAliasMaximum: TOPIC_ALIAS_MAXIMUM,
                  maximumPacketSize: opts.maxPacket,
                  ...(opts.receiveMaximum ? { receiveMaximum: opts.receiveMaximum } : {}),
                  subscriptionIdentifiersAvailable: false,
                  sharedSubscriptionAvailable: false,
                },
              }
            : {}),
        });
      }
      case 'publish': {
        const out = { cmd: 'publish' as const, topic: p.topic, payload: p.payload, qos: p.qos, retain: p.retain, dup: p.dup };
        const buf = mqtt.generate(p.qos > 0 ? { ...out, messageId: p.messageId! } : out, { protocolVersion: 5 });
        if (clientMaxPacket > 0 && buf.length > clientMaxPacket) {
          // Too large for the client: discard it and behave as if it was sent
          // [MQTT-3.1.2-24] [MQTT-3.1.2-25], so aedes does not wait for an ack.
          if (p.qos === 1) toAedes({ cmd: 'puback', messageId: p.messageId! });
          else if (p.qos === 2) toAedes({ cmd: 'pubrec', messageId: p.messageId! });
          return;
        }
        if (conn.writable) conn.write(buf);
        return;
      }
      case 'puback':
      case 'pubrec':
      case 'pubrel':
      case 'pubcomp':
        return toClient({ cmd: p.cmd, messageId: p.messageId!, reasonCode: 0 });
      case 'suback':
        return toClient({
          cmd: 'suback',
          messageId: p.messageId!,
          granted: (p.granted as number[]).map((g) => (g === 0x80 ? SUBACK_REFUSED : g)),
        });
      case 'unsuback': {
        // v5 UNSUBACK carries one reason code per topic filter, in order [MQTT-3.11.3-1] [MQTT-3.11.3-2]; aedes' has none.
        const n = unsubscribeCounts.get(p.messageId!) ?? 1;
        unsubscribeCounts.delete(p.messageId!);
        return toClient({ cmd: 'unsuback', messageId: p.messageId!, granted: new Array<number>(n).fill(0x00) });
      }
      case 'pingresp':
        return toClient({ cmd: 'pingresp' });
      default:
        return undefined;
    }
  }

  function pump() {
    let chunk: Buffer | null;
    while (started && reading && !closed && (chunk = conn.read() as Buffer | null) !== null) fromClient.parse(chunk);
  }
  conn.on('readable', pump);
  conn.on('error', () => aedesSide.destroy());
  conn.on('close', () => aedesSide.destroy());
  // Parse the CONNECT head once aedes has attached to the stream.
  process.nextTick(() => {
    started = true;
    if (!closed) fromClient.parse(head);
    pump();
  });
  return aedesSide;
}
