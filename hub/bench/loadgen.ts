/**
 * Load generator process: many device connections, QoS 1, a window of
 * in-flight messages per connection, for a fixed duration. Prints JSON:
 * acked messages per second, ack latency percentiles, and the generator's own
 * CPU and event-loop delay (its share of the latency it reports).
 *
 * Two clients:
 * - `raw` (the default): MQTT 3.1.1 over a plain socket, PUBLISH frames and
 *   the replies (CONNACK, PUBACK, PINGRESP) read and laid out by hand.
 *   5.4–5.8 µs of CPU a message (about half a core at 86–91k msg/s), so bare
 *   aedes' figure is aedes' own (97 % of its core).
 * - `mqttjs`: one MQTT.js client a device. 16–23 µs a message: at 52–62k
 *   msg/s it holds a whole core, and bare aedes' figure was the generator's
 *   (aedes at 84 %). docs/benchmarks.md has both.
 * Both put on the wire what MQTT.js does: the PUBLISHes sent while handling
 * one read leave in one write (mqtt-packet corks the socket until the next
 * tick), each in its own MQTT frame.
 */
import net from 'node:net';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import mqtt from 'mqtt';
import mqttPacket from 'mqtt-packet';

interface Input {
  mqtt: number;
  devices: Array<{ id: string; secret: string }>;
  seconds: number;
  window: number;
  warmupS: number;
  client?: 'raw' | 'mqttjs';
}

/** One device connection: publish a telemetry message and call back on its PUBACK. */
interface Connection {
  publish(payload: string, done: (err?: Error) => void): void;
  end(): Promise<void>;
}

const input = JSON.parse(process.argv[2]!) as Input;

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

function mqttjsConnection(d: { id: string; secret: string }): Promise<Connection> {
  return new Promise((resolve, reject) => {
    const c = mqtt.connect(`mqtt://127.0.0.1:${input.mqtt}`, { clientId: d.id, username: d.id, password: d.secret, reconnectPeriod: 0, keepalive: 60 });
    const topic = `gridlink/v1/${d.id}/telemetry`;
    c.once('connect', () =>
      resolve({
        publish: (payload, done) => c.publish(topic, payload, { qos: 1 }, (err) => done(err ?? undefined)),
        end: () => c.endAsync(),
      }),
    );
    c.once('error', reject);
  });
}

/** A PUBLISH frame, QoS 1: fixed header, remaining length, topic, packet id, payload. */
function publishFrame(topic: Buffer, id: number, payload: string): Buffer {
  const payloadBytes = Buffer.byteLength(payload);
  const remaining = 2 + topic.length + 2 + payloadBytes;
  let lenBytes = 1;
  for (let r = remaining; r >= 128; r >>= 7) lenBytes++;
  const b = Buffer.allocUnsafe(1 + lenBytes + remaining);
  b[0] = 0x32;
  let o = 1;
  let r = remaining;
  do {
    let byte = r & 0x7f;
    r >>= 7;
    if (r > 0) byte |= 0x80;
    b[o++] = byte;
  } while (r > 0);
  b.writeUInt16BE(topic.length, o);
  topic.copy(b, o + 2);
  o += 2 + topic.length;
  b.writeUInt16BE(id, o);
  b.write(payload, o + 2, payloadBytes);
  return b;
}

/**
 * What a broker sends a QoS 1 publisher: CONNACK, PUBACK and PINGRESP, each
 * four or two bytes (type, remaining length, two bytes). Read by hand: with
 * mqtt-packet, parsing the PUBACKs was a fifth of the generator's time.
 * A frame split over two reads is kept until the rest arrives.
 */
class Replies {
  private rest: Buffer | null = null;

  constructor(private readonly on: (type: number, a: number, b: number) => void) {}

  parse(chunk: Buffer): void {
    let b = chunk;
    if (this.rest) {
      b = Buffer.concat([this.rest, chunk]);
      this.rest = null;
    }
    let o = 0;
    while (o + 2 <= b.length) {
      const type = b[o]! & 0xf0;
      const len = b[o + 1]!;
      if (len !== 2 && !(type === 0xd0 && len === 0)) throw new Error(`unexpected MQTT frame 0x${b[o]!.toString(16)} of ${len} bytes`);
      if (o + 2 + len > b.length) break;
      this.on(type, len ? b[o + 2]! : 0, len ? b[o + 3]! : 0);
      o += 2 + len;
    }
    if (o < b.length) this.rest = Buffer.from(b.subarray(o));
  }
}

function rawConnection(d: { id: string; secret: string }): Promise<Connection> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(input.mqtt, '127.0.0.1');
    socket.setNoDelay(true);
    const topic = Buffer.from(`gridlink/v1/${d.id}/telemetry`);
    const waiting = new Map<number, (err?: Error) => void>();
    let nextId = 1;
    let closed: Error | null = null;
    const ping = setInterval(() => socket.write(Buffer.from([0xc0, 0x00])), 20_000);
    const conn: Connection = {
      publish(payload, done) {
        if (closed) return done(closed);
        const id = nextId;
        nextId = nextId === 0xffff ? 1 : nextId + 1;
        waiting.set(id, done);
        socket.write(publishFrame(topic, id, payload));
      },
      end: () =>
        new Promise<void>((r) => {
          clearInterval(ping);
          socket.end(Buffer.from([0xe0, 0x00]), () => r());
        }),
    };
    const reply = new Replies((type, a, b) => {
      if (type === 0x20) {
        // CONNACK: a = flags, b = return code
        if (b === 0) resolve(conn);
        else reject(new Error(`${d.id}: CONNACK ${b}`));
      } else if (type === 0x40) {
        const id = (a << 8) | b;
        const done = waiting.get(id);
        waiting.delete(id);
        done?.();
      } else if (type !== 0xd0) socket.destroy(new Error(`${d.id}: unexpected packet type 0x${type.toString(16)}`));
    });
    socket.on('data', (chunk) => {
      // As MQTT.js does: what is published while this read is handled leaves in one write.
      socket.cork();
      try {
        reply.parse(chunk);
      } catch (err) {
        socket.destroy(err as Error);
      }
      process.nextTick(() => socket.uncork());
    });
    socket.on('error', reject);
    socket.on('close', () => {
      clearInterval(ping);
      closed = new Error(`${d.id}: connection closed`);
      for (const done of waiting.values()) done(closed);
      waiting.clear();
    });
    socket.write(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: d.id, username: d.id, password: Buffer.from(d.secret), keepalive: 60 }));
  });
}

async function main() {
  const began = performance.now();
  const client = input.client ?? 'raw';
  const connect = client === 'mqttjs' ? mqttjsConnection : rawConnection;
  const conns = await Promise.all(input.devices.map((d) => connect(d)));
  const latencies: number[] = [];
  let acked = 0;
  let ackedAll = 0;
  let errors = 0;
  let measuring = false;
  let running = true;
  let pending = 0;
  const t0 = Date.now() - 3_600_000;
  let seq = 0;
  const sendOne = (c: Connection) => {
    if (!running) return;
    const sent = performance.now();
    const i = seq++;
    pending++;
    c.publish(`{"ts":${t0 + i},"seq":${i},"values":{"water_level_cm":${i % 100}}}`, (err) => {
      pending--;
      if (err) errors++;
      else ackedAll++;
      if (!err && measuring) {
        acked++;
        latencies.push(performance.now() - sent);
      }
      sendOne(c);
    });
  };
  for (const c of conns) for (let w = 0; w < input.window; w++) sendOne(c);
  await new Promise((r) => setTimeout(r, input.warmupS * 1000));
  measuring = true;
  const start = performance.now();
  // The generator's own share of the latency it reports: its CPU and how long its event loop waited.
  const cpu0 = process.cpuUsage();
  const loop = monitorEventLoopDelay({ resolution: 1 });
  loop.enable();
  await new Promise((r) => setTimeout(r, input.seconds * 1000));
  measuring = false;
  const elapsed = (performance.now() - start) / 1000;
  loop.disable();
  const cpu = process.cpuUsage(cpu0);
  running = false;
  // Let every in-flight message finish so the database count can be compared with what was acked.
  for (let waited = 0; pending > 0 && waited < 10_000; waited += 100) await new Promise((r) => setTimeout(r, 100));
  await new Promise((r) => setTimeout(r, 200));
  const sorted = Float64Array.from(latencies).sort();
  process.stdout.write(
    `${JSON.stringify({
      client,
      ackedPerSec: Math.round(acked / elapsed),
      acked,
      errors,
      unanswered: pending,
      totalSent: seq,
      totalAcked: ackedAll,
      runS: +((performance.now() - began) / 1000).toFixed(2),
      p50Ms: +percentile(sorted, 50).toFixed(2),
      p99Ms: +percentile(sorted, 99).toFixed(2),
      maxMs: +(sorted[sorted.length - 1] ?? 0).toFixed(2),
      loadgenCpuPct: Math.round((cpu.user + cpu.system) / 1e4 / elapsed),
      loadgenEventLoopDelayP99Ms: +(loop.percentile(99) / 1e6).toFixed(1),
    })}\n`,
  );
  await Promise.all(conns.map((c) => c.end()));
  process.exit(0);
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack}\n`);
  process.exit(1);
});
