/**
 * The hub's PUBLISH parse against mqtt-packet's own: the same byte streams,
 * cut in every way, must give the same packets and the same errors.
 */
import { describe, expect, it } from 'vitest';
import mqttPacket from 'mqtt-packet';
import { fastPublishParse, type PublishParser } from '../../src/broker/fast-publish.js';

type Event = ['packet', Record<string, unknown>] | ['error', string];

/** Parses the chunks with a stock parser or the hub's; returns what it emitted and how often mqtt-packet's own PUBLISH path ran. */
function run(chunks: Buffer[], fast: boolean, settings?: { protocolVersion: number }): { events: Event[]; fallbacks: number } {
  const parser = mqttPacket.parser(settings);
  const events: Event[] = [];
  let fallbacks = 0;
  if (fast) {
    const p = parser as unknown as PublishParser;
    const own = p._parsePublish;
    p._parsePublish = function (this: PublishParser) {
      fallbacks++;
      return own.call(this);
    };
    fastPublishParse(p);
  }
  parser.on('packet', (packet) => {
    const plain: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(packet)) plain[k] = Buffer.isBuffer(v) ? `hex:${v.toString('hex')}` : v;
    events.push(['packet', plain]);
  });
  parser.on('error', (err) => events.push(['error', err.message]));
  for (const c of chunks) {
    parser.parse(c);
    if (events.some((e) => e[0] === 'error')) break; // aedes closes the connection on a parse error
  }
  return { events, fallbacks };
}

const publish = (topic: string, payload: string | Buffer, qos: 0 | 1 | 2, extra: { dup?: boolean; retain?: boolean; messageId?: number } = {}) =>
  mqttPacket.generate({ cmd: 'publish', topic, payload, qos, messageId: qos > 0 ? (extra.messageId ?? 1) : undefined, dup: extra.dup ?? false, retain: extra.retain ?? false } as mqttPacket.IPublishPacket);

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

describe('fastPublishParse', () => {
  it('should emit what mqtt-packet emits for a stream read whole, and take its own path for none of it', () => {
    const stock = run([wellFormed], false);
    const fast = run([wellFormed], true);
    expect(stock.events.filter((e) => e[0] === 'packet')).toHaveLength(11);
    expect(fast.events).toEqual(stock.events);
    expect(fast.fallbacks).toBe(0);
  });

  it('should emit the same packets however the stream is cut', () => {
    const byByte = [...wellFormed.subarray(0, 400)].map((b) => Buffer.from([b]));
    expect(run(byByte, true).events).toEqual(run(byByte, false).events);
    for (const [seed, max] of [[1, 7], [2, 64], [3, 1500], [4, 40_000]] as const) {
      const chunks = cuts(wellFormed, seed, max);
      const fast = run(chunks, true);
      expect(fast.events).toEqual(run(chunks, false).events);
      // Split packets are left to mqtt-packet; whole ones are not.
      expect(fast.fallbacks).toBeLessThan(11);
    }
  });

  it('should raise the same errors for malformed publishes', () => {
    const topicTooLong = Buffer.from([0x30, 0x04, 0x00, 0x09, 0x61, 0x62]);
    const idPastPacket = Buffer.from([0x32, 0x04, 0x00, 0x01, 0x61, 0x00, 0x30, 0x00]);
    const qos3 = Buffer.from([0x36, 0x05, 0x00, 0x01, 0x61, 0x00, 0x01]);
    const afterGood = Buffer.concat([publish('a', 'ok', 1), topicTooLong]);
    for (const bytes of [topicTooLong, idPastPacket, qos3, afterGood]) {
      const stock = run([bytes], false);
      expect(run([bytes], true).events).toEqual(stock.events);
      expect(run(cuts(bytes, 5, 3), true).events).toEqual(run(cuts(bytes, 5, 3), false).events);
    }
    expect(run([topicTooLong], false).events.at(-1)?.[0]).toBe('error');
  });

  it('should leave MQTT 5 publishes to mqtt-packet', () => {
    const v5 = mqttPacket.generate(
      { cmd: 'publish', topic: 'a/b', payload: 'x', qos: 1, messageId: 3, dup: false, retain: false, properties: { contentType: 'application/json' } } as mqttPacket.IPublishPacket,
      { protocolVersion: 5 },
    );
    const fast = run([v5], true, { protocolVersion: 5 });
    expect(fast.events).toEqual(run([v5], false, { protocolVersion: 5 }).events);
    expect(fast.fallbacks).toBe(1);
  });
});
