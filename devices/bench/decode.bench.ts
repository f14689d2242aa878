/**
 * Decode throughput on the ingest hot path. Prints one JSON line:
 *   {"telemetry":{"decodesPerSec":N},"telemetryBatch10":{...},"location":{...},"reject":{...}}
 * Run: node --import tsx devices/bench/decode.bench.ts
 */
import { decodeUplink, type Channel, type DecodeContext } from '../src/index.js';

const receivedAt = Date.now();
const sensor: DecodeContext = { deviceType: 'sensor.air_quality', receivedAt };
const handheld: DecodeContext = { deviceType: 'handheld', receivedAt };

// Buffers, as aedes hands them over.
const enc = (v: unknown) => Buffer.from(JSON.stringify(v));
const telemetry = enc({ ts: receivedAt - 1000, seq: 1, values: { pm25_ugm3: 38, pm10_ugm3: 71, temperature_c: 27.1, humidity_pct: 63, battery_pct: 99, rssi_dbm: -71 } });
const batch = enc(Array.from({ length: 10 }, (_, i) => ({ ts: receivedAt - i * 1000, values: { pm25_ugm3: 30 + i, battery_pct: 99 } })));
const location = enc({ ts: receivedAt - 1000, seq: 1, lat: 31.2304, lon: 121.4737, acc: 8, spd: 1.4, hdg: 270, batt: 76 });
const reject = enc({ values: { pm25_ugm3: 38, nope: 1 } });

function measure(channel: Channel, payload: Buffer, ctx: DecodeContext, expectOk: boolean): number {
  const run = (n: number) => {
    let ok = 0;
    for (let i = 0; i < n; i++) if (decodeUplink(channel, payload, ctx).ok) ok++;
    if (ok !== (expectOk ? n : 0)) throw new Error(`${channel}: unexpected result`);
  };
  run(20_000); // warm up the JIT
  let n = 0;
  const start = process.hrtime.bigint();
  const budget = 1_000_000_000n; // 1 s
  while (process.hrtime.bigint() - start < budget) {
    run(5_000);
    n += 5_000;
  }
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  return Math.round(n / seconds);
}

const result = {
  telemetry: { decodesPerSec: measure('telemetry', telemetry, sensor, true) },
  telemetryBatch10: { decodesPerSec: measure('telemetry', batch, sensor, true) },
  location: { decodesPerSec: measure('location', location, handheld, true) },
  reject: { decodesPerSec: measure('telemetry', reject, sensor, false) },
};
console.log(JSON.stringify(result));
