/**
 * The hub's PUBLISH reading against mqtt-packet's own parser: the same byte
 * streams, cut in every way, must give the same packets and the same errors.
 */
import { describe, expect, it } from 'vitest';
import mqttPacket from 'mqtt-packet';
import { fastPublishes, type ParserLike } from '../../src/broker/fast-publish.js';

type Event = ['packet', Record<string, unknown>] | ['error', string];

/**
 * Parses the chunks with a stock parser or the hub's; returns what it emitted
 * and how many calls reached mqtt-packet's own parse. `reenter` makes the
 * first packet's handler parse the next chunk at once, as aedes does when a
 * packet is handled synchronously.
 */
function run(chunks: Buffer[], fast: boolean, opts: { settings?: { protocolVersion: number }; maxBody?: number; reenter?: boolean } = {}): { events: Event[]; slowCalls: number } {
  const parser = mqttPacket.parser(opts.settings);
  const events: Event[] = [];
  let slowCalls = 0;
  if (fast) {
    const own = parser.parse;
    parser.parse = function (this: typeof parser, buf: Buffer) {
      slowCalls++;
      return own.call(this, buf);
    };
    fastPublishes(parser as unknown as ParserLike, opts.maxBody ?? 1 << 20);
  }
  const queue = [...chunks];
  let reentered = false;
  parser.on('packet', (packet) => {
    const plain: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(packet)) plain[k] = Buffer.isBuffer(v) ? `hex:${v.toString('hex')}` : v;
    events.push(['packet', plain]);
    if (opts.reenter && !reentered && queue.length > 0) {
      reentered = true;
      parser.parse(queue.shift()!);
    }
  });
  parser.on('error', (err) => events.push(['error', err.message]));
  while (queue.length > 0) {
    parser.parse(queue.shift()!);
    if (events.some((e) => e[0] === 'error')) break; // aedes closes the connection on a parse error
  }
  return { events, slowCalls };
}

const publish = (topic: string, payload: string | Buffer, qos: 0 | 1 | 2, extra: { dup?: boolean; retain?: boolean; messageId?: number } = {}) =>
  mqttPacket.generate({ cmd: 'publish', topic, payload, qos, messageId: qos > 0 ? (extra.messageId ?? 1) : undefined, dup: extra.dup ?? false, retain: extra.retain ?? false } as mqttPacket.IPublishPacket);

/** 11 packets, 8 of them PUBLISH. */
const wellFormed = Buffer.concat([
  publish('gridlink/v1/wl-0001/telemetry', '{"values":{"water_level_cm":37}}', 1, { messageId: 513 }),
  publish('gridlink/v1/wl-0001/status', '{"online":true}', 0, { retain: true }),
  publish('gridlink/v1/网格-01/event', '{"type":"smoke"}', 2, { dup: true, messageId: 65535 }),
  publish('', 'empty topic', 1, { messageId: 7 }),
  publish('a/b', '', 1, { messageId: 8 }),
  publish('a/b', '', 0),
  mqttPacket.generate({ cmd: 'pingreq' }),
  mqttPacket.generate({ cmd: 'puback', messageId: 9 }),
  publish('owntracks/hh-0001/phone', Buffer.alloc(70_000, 0x41), 1, { messageId: 10 }),
  mqttPacket.generate({ cmd: 'subscribe', messageId: 11, subscriptions: [{ topic: 'gridlink/v1/wl-0001/cmd', qos: 1 }] } as mqttPacket.ISubscribePacket),
  publish('x'.repeat(300), '{"ts":1764600000000,"seq":1,"values":{"water_level_cm":1}}', 1, { messageId: 12 }),
]);

/** Deterministic pseudo-random cut points. */
function cuts(buf: Buffer, seed: number, maxChunk: number): Buffer[] {
  const out: Buffer[] = [];
  let s = seed;
  for (let o = 0; o < buf.length; ) {
    s = (s * 1103515245 + 12345) & 0x7fffffff;
    const n = 1 + (s % maxChunk);
    out.push(buf.subarray(o, o + n));
    o += n;
  }
  return out;
}

describe('fastPublishes', () => {
  it('should emit what mqtt-packet emits for a stream read whole, handing it only the packets that are not PUBLISH', () => {
    const stock = run([wellFormed], false);
    const fast = run([wellFormed], true);
    expect(stock.events.filter((e) => e[0] === 'packet')).toHaveLength(11);
    expect(fast.events).toEqual(stock.events);
    expect(fast.slowCalls).toBe(3);
  });

  it('should emit the same packets however the stream is cut, keeping a cut packet until it is whole', () => {
    const byByte = [...wellFormed.subarray(0, 400)].map((b) => Buffer.from([b]));
    const fastByByte = run(byByte, true);
    expect(fastByByte.events).toEqual(run(byByte, false).events);
    expect(fastByByte.events.length).toBeGreaterThan(3);
    for (const [seed, max] of [[1, 7], [2, 64], [3, 1500], [4, 40_000]] as const) {
      const chunks = cuts(wellFormed, seed, max);
      const fast = run(chunks, true);
      expect(fast.events).toEqual(run(chunks, false).events);
      expect(fast.slowCalls).toBe(3);
    }
  });

  it('should keep packet order when a handler parses the next read before the current one is done', () => {
    for (const [seed, max] of [[6, 5], [7, 90], [8, 700]] as const) {
      const chunks = cuts(wellFormed, seed, max);
      // mqtt-packet itself is not safe to re-enter (it emits a packet twice), so the judge is the stream read in order.
      const fast = run(chunks, true, { reenter: true });
      expect(fast.events).toEqual(run(chunks, false).events);
      expect(fast.events).toHaveLength(11);
    }
  });

  it('should raise the same errors for malformed packets', () => {
    const topicTooLong = Buffer.from([0x30, 0x04, 0x00, 0x09, 0x61, 0x62]);
    const idPastPacket = Buffer.from([0x32, 0x04, 0x00, 0x01, 0x61, 0x00, 0x30, 0x00]);
    const qos3 = Buffer.from([0x36, 0x05, 0x00, 0x01, 0x61, 0x00, 0x01]);
    const badLength = Buffer.from([0x32, 0xff, 0xff, 0xff, 0xff, 0x01]);
    const badFlags = Buffer.from([0x80, 0x02, 0x00, 0x01]);
    const tooShort = Buffer.from([0x30, 0x01, 0x00]);
    for (const bad of [topicTooLong, idPastPacket, qos3, badLength, badFlags, tooShort]) {
      for (const bytes of [bad, Buffer.concat([publish('a', 'ok', 1), bad, publish('b', 'after', 1)])]) {
        const stock = run([bytes], false);
        expect(stock.events.some((e) => e[0] === 'error')).toBe(true);
        expect(run([bytes], true).events).toEqual(stock.events);
        expect(run(cuts(bytes, 5, 3), true).events).toEqual(run(cuts(bytes, 5, 3), false).events);
      }
    }
  });

  it('should leave MQTT 5 publishes to mqtt-packet', () => {
    const v5 = mqttPacket.generate(
      { cmd: 'publish', topic: 'a/b', payload: 'x', qos: 1, messageId: 3, dup: false, retain: false, properties: { contentType: 'application/json' } } as mqttPacket.IPublishPacket,
      { protocolVersion: 5 },
    );
    const fast = run([v5, v5], true, { settings: { protocolVersion: 5 } });
    expect(fast.events).toEqual(run([v5, v5], false, { settings: { protocolVersion: 5 } }).events);
    expect(fast.events).toHaveLength(2);
    expect(fast.slowCalls).toBe(2);
  });

  it('should hand a body over the limit to mqtt-packet as soon as its length is read', () => {
    const big = publish('a/b', Buffer.alloc(5000, 0x42), 1, { messageId: 4 });
    const fast = run([big.subarray(0, 10)], true, { maxBody: 1000 });
    expect(fast.slowCalls).toBe(1);
    expect(run([big.subarray(0, 10)], true, { maxBody: 10_000 }).slowCalls).toBe(0);
  });

  it('should read a whole session after its CONNECT as mqtt-packet does', () => {
    const connect = mqttPacket.generate({ cmd: 'connect', clientId: 'wl-0001', protocolId: 'MQTT', protocolVersion: 4, clean: true, keepalive: 30, username: 'wl-0001', password: Buffer.from('secret') } as mqttPacket.IConnectPacket);
    const session = Buffer.concat([connect, wellFormed, mqttPacket.generate({ cmd: 'disconnect' })]);
    for (const chunks of [[session], cuts(session, 9, 33)]) {
      const got = run(chunks, true);
      expect(got.events).toEqual(run(chunks, false).events);
      expect(got.events).toHaveLength(13);
      expect(got.slowCalls).toBe(5);
    }
  });
});
