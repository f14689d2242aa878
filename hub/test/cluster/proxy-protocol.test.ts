/**
 * MQTT behind a TCP balancer that sends the PROXY protocol
 * (GRIDLINK_MQTT_PROXY_PROTOCOL=1): real sockets write a v1 or v2 header and
 * then a real MQTT.js client's CONNECT; the connection guard counts each
 * device under the address in its header, not the balancer's.
 */
import net from 'node:net';
import mqtt, { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseProxyHeader } from '../../src/broker/proxy-protocol.js';
import { startHub, until, type TestHub } from '../helpers.js';

const SIG = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);

/** `PROXY TCP4|TCP6 src dst sport dport\r\n` (spec section 2.1). */
const v1 = (src: string, sport = 51000) => Buffer.from(`PROXY ${net.isIPv6(src) ? 'TCP6' : 'TCP4'} ${src} ${net.isIPv6(src) ? '::1' : '10.0.0.1'} ${sport} 1883\r\n`);

/** Binary header (spec section 2.2), written out byte by byte here rather than with the parser under test. */
function v2(src: string | null, opts: { local?: boolean; tlv?: Buffer } = {}): Buffer {
  const tlv = opts.tlv ?? Buffer.alloc(0);
  let fam = 0x00;
  let addrs = Buffer.alloc(0);
  if (src && net.isIPv4(src)) {
    fam = 0x11;
    addrs = Buffer.alloc(12);
    src.split('.').forEach((o, i) => addrs.writeUInt8(Number(o), i));
    [10, 0, 0, 1].forEach((o, i) => addrs.writeUInt8(o, 4 + i));
    addrs.writeUInt16BE(51000, 8);
    addrs.writeUInt16BE(1883, 10);
  } else if (src) {
    fam = 0x21;
    addrs = Buffer.alloc(36);
    const full = expand6(src);
    full.forEach((g, i) => addrs.writeUInt16BE(g, 2 * i));
    addrs.writeUInt16BE(1, 30); // destination ::1
    addrs.writeUInt16BE(51000, 32);
    addrs.writeUInt16BE(1883, 34);
  }
  const head = Buffer.alloc(4);
  head.writeUInt8(opts.local ? 0x20 : 0x21, 0);
  head.writeUInt8(fam, 1);
  head.writeUInt16BE(addrs.length + tlv.length, 2);
  return Buffer.concat([SIG, head, addrs, tlv]);
}

function expand6(a: string): number[] {
  const [l, r] = a.split('::') as [string, string | undefined];
  const left = l ? l.split(':') : [];
  const right = r ? r.split(':') : [];
  const mid = Array(8 - left.length - right.length).fill('0');
  return [...left, ...(r === undefined ? [] : mid), ...right].map((h) => Number.parseInt(h, 16));
}

describe('MQTT behind a balancer sending the PROXY protocol', () => {
  let t: TestHub;
  let port = 0;
  const clients: MqttClient[] = [];
  const sockets: net.Socket[] = [];

  beforeAll(async () => {
    t = await startHub({ mqttProxyProtocol: true, maxPendingPerAddress: 2 }, { modules: [] });
    port = t.hub.ports.mqtt;
  }, 180_000);
  afterAll(async () => {
    for (const s of sockets) s.destroy();
    await Promise.all(clients.map((c) => c.endAsync(true).catch(() => undefined)));
    await t?.stop();
  }, 60_000);

  /** A real MQTT.js client whose socket first carries `header`, as HAProxy's `send-proxy` would write it. */
  function viaBalancer(header: Buffer | null, id: string, secret: string): Promise<MqttClient> {
    return new Promise((resolve, reject) => {
      const c = new MqttClient(() => {
        const s = net.connect(port, '127.0.0.1');
        if (header) s.write(header);
        return s;
      }, { clientId: id, username: id, password: secret, reconnectPeriod: 0, connectTimeout: 30_000, protocolVersion: 4 });
      clients.push(c);
      c.once('connect', () => resolve(c));
      c.once('error', reject);
      c.once('close', () => reject(new Error(`${id}: closed before CONNACK`)));
    });
  }

  /** A socket that sends its header and then nothing (no CONNECT). */
  function silent(header: Buffer): net.Socket {
    const s = net.connect(port, '127.0.0.1');
    s.on('error', () => undefined);
    s.write(header);
    sockets.push(s);
    return s;
  }
  const closed = (s: net.Socket) => new Promise<void>((r) => (s.destroyed ? r() : s.once('close', () => r())));

  it('takes devices whose CONNECT follows a v1 or v2 header (IPv4, IPv6, a TLV, LOCAL), and acknowledges their messages', async () => {
    const headers: Array<[string, Buffer]> = [
      ['pp-v1', v1('203.0.113.7')],
      ['pp-v1-6', v1('2001:db8::7')],
      ['pp-v2', v2('203.0.113.8')],
      ['pp-v2-6', v2('2001:db8::8')],
      ['pp-v2-tlv', v2('203.0.113.9', { tlv: Buffer.from([0x05, 0x00, 0x03, 0x61, 0x62, 0x63]) })],
      ['pp-v2-local', v2(null, { local: true })],
    ];
    for (const [id, header] of headers) {
      const d = await t.registerDevice('sensor.smoke', id);
      const c = await viaBalancer(header, d.id, d.secret);
      await c.publishAsync(`gridlink/v1/${id}/event`, JSON.stringify({ type: 'heartbeat' }), { qos: 1 });
      expect(t.hub.ctx.broker.isConnected(id), id).toBe(true);
      await c.endAsync();
    }
  });

  it('limits silent connections per address in the header, not per balancer', async () => {
    await until(() => t.hub.ctx.broker.admitted === 0, 60_000, 20);
    // Two silent sockets "from" 198.51.100.9 fill its pending cap (2)...
    const a = silent(v1('198.51.100.9', 40001));
    const b = silent(v2('198.51.100.9'));
    await until(() => t.hub.ctx.broker.admitted === 2, 60_000, 20);
    // ...so a third from that address is refused,
    const third = silent(v1('198.51.100.9', 40003));
    await closed(third);
    // while a device "from" another address, through the same balancer socket address, logs in.
    const d = await t.registerDevice('sensor.smoke', 'pp-other');
    const c = await viaBalancer(v1('203.0.113.50'), d.id, d.secret);
    expect(c.connected).toBe(true);
    await c.endAsync();
    expect(a.destroyed || b.destroyed).toBe(false);
    a.destroy();
    b.destroy();
  });

  it('closes connections without a valid header: plain MQTT, a forged or oversized header', async () => {
    const d = await t.registerDevice('sensor.smoke', 'pp-bad');
    // A device that reaches the port directly, without the balancer.
    await expect(viaBalancer(null, d.id, d.secret)).rejects.toThrow(/closed before CONNACK/);
    for (const bad of [
      Buffer.from('PROXY TCP4 999.0.0.1 10.0.0.1 1 1883\r\n'),
      Buffer.from('PROXY TCP4 203.0.113.7 10.0.0.1 70000 1883\r\n'),
      Buffer.from(`PROXY TCP4 ${'1'.repeat(120)}`),
      Buffer.concat([SIG, Buffer.from([0x21, 0x11, 0xff, 0xff])]),
      Buffer.concat([SIG, Buffer.from([0x31, 0x11, 0x00, 0x0c]), Buffer.alloc(12)]),
      Buffer.from('GET / HTTP/1.1\r\n\r\n'),
    ]) {
      const s = silent(bad);
      await closed(s);
    }
    expect(t.hub.ctx.broker.isConnected('pp-bad')).toBe(false);
  });

  it('parses headers split over several reads and keeps the bytes that follow', () => {
    const header = v2('2001:db8::8');
    expect(parseProxyHeader(header.subarray(0, 5))).toBe('more');
    expect(parseProxyHeader(header.subarray(0, 20))).toBe('more');
    expect(parseProxyHeader(Buffer.concat([header, Buffer.from([0x10, 0x00])]))).toEqual({ source: { address: '2001:db8::8', port: 51000 }, length: header.length });
    expect(parseProxyHeader(Buffer.from('PROXY TCP4 203.0.113.7'))).toBe('more');
    expect(parseProxyHeader(Buffer.from('PROXY UNKNOWN\r\n'))).toEqual({ source: null, length: 15 });
    expect(parseProxyHeader(v2('::ffff:c000:201'))).toMatchObject({ source: { address: '::ffff:192.0.2.1' } });
    expect(parseProxyHeader(Buffer.from([0x10, 0x0c]))).toBeInstanceOf(Error);
  });
});
