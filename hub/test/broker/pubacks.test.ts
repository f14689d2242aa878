/**
 * The hub's PUBACKs leave as one write a connection a tick, in release order,
 * and parse back as the PUBACKs they are; a closed connection gets none.
 */
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import mqttPacket from 'mqtt-packet';
import type { Client } from 'aedes';
import { Pubacks } from '../../src/broker/pubacks.js';

function fakeClient() {
  const conn = new PassThrough();
  const writes: Buffer[] = [];
  const write = conn.write.bind(conn);
  conn.write = ((chunk: Buffer) => (writes.push(Buffer.from(chunk)), write(chunk))) as typeof conn.write;
  return { client: { closed: false, conn } as unknown as Client & { closed: boolean }, writes };
}

function parse(bytes: Buffer): Array<{ cmd: string; messageId?: number }> {
  const parser = mqttPacket.parser({ protocolVersion: 4 });
  const out: Array<{ cmd: string; messageId?: number }> = [];
  parser.on('packet', (p) => out.push({ cmd: p.cmd, messageId: p.messageId }));
  parser.parse(bytes);
  return out;
}

describe('Pubacks', () => {
  it('should write one buffer a connection a tick, the PUBACKs in release order', async () => {
    const acks = new Pubacks();
    const a = fakeClient();
    const b = fakeClient();
    acks.add(a.client, 7);
    acks.add(b.client, 65535);
    acks.add(a.client, 1);
    acks.add(a.client, 300);
    expect(a.writes).toHaveLength(0);
    await new Promise((r) => process.nextTick(r));
    expect(a.writes).toHaveLength(1);
    expect(parse(a.writes[0]!)).toEqual([
      { cmd: 'puback', messageId: 7 },
      { cmd: 'puback', messageId: 1 },
      { cmd: 'puback', messageId: 300 },
    ]);
    // The same bytes mqtt-packet generates for each.
    expect(a.writes[0]!.subarray(0, 4)).toEqual(mqttPacket.generate({ cmd: 'puback', messageId: 7 }));
    expect(parse(b.writes[0]!)).toEqual([{ cmd: 'puback', messageId: 65535 }]);
    // The next tick's PUBACKs are a write of their own.
    acks.add(a.client, 8);
    await new Promise((r) => process.nextTick(r));
    expect(a.writes.map((w) => w.length)).toEqual([12, 4]);
  });

  it('should write nothing to a connection that closed before the end of the tick', async () => {
    const acks = new Pubacks();
    const a = fakeClient();
    acks.add(a.client, 1);
    a.client.closed = true;
    await new Promise((r) => process.nextTick(r));
    expect(a.writes).toHaveLength(0);
  });
});
