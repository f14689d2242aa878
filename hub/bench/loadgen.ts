/**
 * Load generator process: many MQTT.js device connections, QoS 1, a window of
 * in-flight messages per connection, for a fixed duration. Prints JSON:
 * acked messages per second and ack latency percentiles.
 */
import mqtt, { type MqttClient } from 'mqtt';

interface Input {
  mqtt: number;
  devices: Array<{ id: string; secret: string }>;
  seconds: number;
  window: number;
  warmupS: number;
}

const input = JSON.parse(process.argv[2]!) as Input;

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function main() {
  const clients: MqttClient[] = await Promise.all(
    input.devices.map(
      (d) =>
        new Promise<MqttClient>((resolve, reject) => {
          const c = mqtt.connect(`mqtt://127.0.0.1:${input.mqtt}`, { clientId: d.id, username: d.id, password: d.secret, reconnectPeriod: 0, keepalive: 60 });
          c.once('connect', () => resolve(c));
          c.once('error', reject);
        }),
    ),
  );
  const latencies: number[] = [];
  let acked = 0;
  let errors = 0;
  let measuring = false;
  let running = true;
  const t0 = Date.now() - 3_600_000;
  let seq = 0;
  const sendOne = (c: MqttClient, id: string) => {
    if (!running) return;
    const sent = performance.now();
    const i = seq++;
    c.publish(`gridlink/v1/${id}/telemetry`, JSON.stringify({ ts: t0 + i, seq: i, values: { water_level_cm: i % 100 } }), { qos: 1 }, (err) => {
      if (err) errors++;
      else if (measuring) {
        acked++;
        latencies.push(performance.now() - sent);
      }
      sendOne(c, id);
    });
  };
  clients.forEach((c, k) => {
    for (let w = 0; w < input.window; w++) sendOne(c, input.devices[k]!.id);
  });
  await new Promise((r) => setTimeout(r, input.warmupS * 1000));
  measuring = true;
  const start = performance.now();
  await new Promise((r) => setTimeout(r, input.seconds * 1000));
  measuring = false;
  const elapsed = (performance.now() - start) / 1000;
  running = false;
  // Let every in-flight message finish so the database count can be compared with what was acked.
  await new Promise((r) => setTimeout(r, 1500));
  const sorted = Float64Array.from(latencies).sort();
  process.stdout.write(
    `${JSON.stringify({
      ackedPerSec: Math.round(acked / elapsed),
      acked,
      errors,
      totalSent: seq,
      p50Ms: +percentile(sorted, 50).toFixed(2),
      p99Ms: +percentile(sorted, 99).toFixed(2),
      maxMs: +(sorted[sorted.length - 1] ?? 0).toFixed(2),
    })}\n`,
  );
  await Promise.all(clients.map((c) => c.endAsync()));
  process.exit(0);
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack}\n`);
  process.exit(1);
});
