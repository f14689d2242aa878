/**
 * Load mode: provisions (or reuses) N devices, holds N MQTT connections,
 * publishes QoS 1 telemetry at a target aggregate rate spread round-robin
 * over the devices, and measures what the hub acknowledges. A PUBACK means
 * the message is committed (CONTRACT 3), so acked/s is stored/s.
 *
 * Pacing is open-loop (a fixed schedule, not "send when the last one is
 * acked"), so a slow hub shows up as latency and a growing in-flight count
 * rather than as a politely lower send rate; in-flight is capped so the
 * generator never runs away with memory.
 */
import { readFileSync } from 'node:fs';
import cliProgress from 'cli-progress';
import mqtt, { type MqttClient } from 'mqtt';
import { uplinkTopic } from '@gridlink/devices';
import type { HubClient } from '../hub-client.js';
import type { SimState } from '../state.js';
import { mapPool } from '../util/pool.js';

export interface LoadOptions {
  hub: HubClient;
  state: SimState;
  mqttUrl: string;
  devices: number;
  /** messages per second, all devices together */
  rate: number;
  durationMs: number;
  qos?: 0 | 1;
  /** new connections per second while ramping up */
  connectRate?: number;
  prefix?: string;
  /** metrics per message (each is one stored row); default 1, like the hub's own ingest bench */
  metrics?: number;
  /** cap on unacknowledged messages (all devices) */
  maxInflight?: number;
  progress?: boolean;
  log?: (m: string) => void;
}

export interface LoadSummary {
  hub: string;
  mqtt: string;
  devices: number;
  connected: number;
  provision: { created: number; reused: number; rotated: number; ms: number };
  connectMs: number;
  qos: 0 | 1;
  targetRate: number;
  durationS: number;
  sent: number;
  acked: number;
  errors: number;
  /** publishes skipped because the in-flight cap was reached */
  throttled: number;
  disconnects: number;
  metricsPerMessage: number;
  achievedRate: number;
  sendRate: number;
  latencyMs: { p50: number; p90: number; p99: number; max: number; mean: number };
  /** acked/s per second of the run */
  timeline: number[];
}

/** "5000/s", "300/m", "5000" → messages per second. */
export function parseRate(s: string): number {
  const m = /^(\d+(?:\.\d+)?)(?:\/(s|m|min|h))?$/.exec(s.trim());
  if (!m) throw new RangeError(`not a rate: ${s} (use e.g. 5000/s)`);
  const per = { s: 1, m: 60, min: 60, h: 3600 }[(m[2] ?? 's') as 's' | 'm' | 'min' | 'h'];
  return Number(m[1]) / per;
}

/** The soft limit on open files of this process, when the platform tells. */
export function openFileLimit(): number | null {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max open files'));
    const n = Number(line?.split(/\s{2,}/)[1]);
    return Number.isFinite(n) ? n : null;
  } catch {
    return null;
  }
}

/** A progress bar on stderr; without a terminal (CI, a log file) it prints a line every 5 s instead. */
function progressBar(format: string): InstanceType<typeof cliProgress.SingleBar> {
  return new cliProgress.SingleBar({ format, hideCursor: true, stream: process.stderr, noTTYOutput: true, notTTYSchedule: 5000 }, cliProgress.Presets.shades_classic);
}

function percentile(sorted: Float64Array, p: number): number {
  if (!sorted.length) return 0;
  return Math.round(sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]! * 10) / 10;
}

class Samples {
  private buf = new Float64Array(1 << 16);
  n = 0;
  add(v: number): void {
    if (this.n === this.buf.length) {
      const next = new Float64Array(this.buf.length * 2);
      next.set(this.buf);
      this.buf = next;
    }
    this.buf[this.n++] = v;
  }
  sorted(from = 0): Float64Array {
    return this.buf.slice(from, this.n).sort();
  }
}

export async function runLoad(o: LoadOptions): Promise<LoadSummary> {
  const log = o.log ?? (() => undefined);
  const qos = o.qos ?? 1;
  const prefix = o.prefix ?? 'load';
  const limit = openFileLimit();
  let n = o.devices;
  if (limit !== null && n + 64 > limit) {
    n = Math.max(1, limit - 64);
    log(`! this process may open ${limit} files; using ${n} connections instead of ${o.devices} (raise \`ulimit -n\` for more)`);
  }
  if (o.rate / n > 40) log(`! ${(o.rate / n).toFixed(0)} msg/s per device is close to the hub's per-device limit (GRIDLINK_DEVICE_RATE, default 50); use more devices`);

  // ---- provision -----------------------------------------------------------------------
  const t0 = Date.now();
  const hs = o.state.hub(o.hub.base);
  const ids = Array.from({ length: n }, (_, i) => `${prefix}-${String(i).padStart(6, '0')}`);
  const existing = new Set((await o.hub.listDevices({ type: 'sensor.gas' })).items.map((d) => d.id));
  const prov = { created: 0, reused: 0, rotated: 0, ms: 0 };
  const todo = ids.filter((id) => !(existing.has(id) && hs.devices[id]));
  prov.reused = ids.length - todo.length;
  if (todo.length) {
    const bar = o.progress ? progressBar('provision {bar} {value}/{total} devices | {eta}s left') : null;
    bar?.start(todo.length, 0);
    let done = 0;
    await mapPool(todo, 16, async (id) => {
      if (existing.has(id)) {
        hs.devices[id] = (await o.hub.rotateSecret(id)).secret;
        prov.rotated++;
      } else {
        hs.devices[id] = (await o.hub.registerDevice({ id, type: 'sensor.gas', name: `load ${id}`, meta: { load: true } })).secret;
        prov.created++;
      }
      if (++done % 500 === 0) await o.state.save();
      bar?.update(done);
    });
    bar?.stop();
    await o.state.save();
  }
  prov.ms = Date.now() - t0;
  log(`devices: ${prov.created} registered, ${prov.reused} reused, ${prov.rotated} rotated in ${(prov.ms / 1000).toFixed(1)} s`);

  // ---- connect -------------------------------------------------------------------------
  const clients: Array<MqttClient | null> = new Array(n).fill(null);
  const topics = ids.map((id) => uplinkTopic(id, 'telemetry'));
  let disconnects = 0;
  let connectErrors = 0;
  const tc = Date.now();
  const connectRate = o.connectRate ?? 1000;
  {
    const bar = o.progress ? progressBar('connect   {bar} {value}/{total} connections | errors {errors}') : null;
    bar?.start(n, 0, { errors: 0 });
    let connected = 0;
    const start = performance.now();
    await mapPool(ids, 256, async (id, i) => {
      // Ramp: connection i may start at i / connectRate seconds.
      const wait = (i / connectRate) * 1000 - (performance.now() - start);
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      await new Promise<void>((resolve) => {
        const c = mqtt.connect(o.mqttUrl, {
          clientId: id, username: id, password: hs.devices[id]!, protocolVersion: 4, clean: true, keepalive: 120,
          reconnectPeriod: 2000 + Math.floor(Math.random() * 3000), connectTimeout: 30_000,
          will: { topic: uplinkTopic(id, 'status'), payload: Buffer.from('{"online":false}'), qos: 1, retain: false },
        });
        const done = (ok: boolean) => {
          c.off('connect', onOk);
          c.off('error', onErr);
          if (ok) clients[i] = c;
          else {
            connectErrors++;
            c.end(true);
          }
          bar?.update(++connected, { errors: connectErrors });
          resolve();
        };
        const onOk = () => done(true);
        const onErr = () => done(false);
        c.once('connect', onOk);
        c.once('error', onErr);
        c.on('close', () => disconnects++);
      });
    });
    bar?.stop();
  }
  const live = clients.filter((c): c is MqttClient => c !== null);
  const connectMs = Date.now() - tc;
  log(`connected ${live.length}/${n} in ${(connectMs / 1000).toFixed(1)} s${connectErrors ? ` (${connectErrors} refused or timed out)` : ''}`);
  if (!live.length) throw new Error('no connection could be made');
  const liveTopics = clients.flatMap((c, i) => (c ? [topics[i]!] : []));
  disconnects = 0;

  // ---- publish -------------------------------------------------------------------------
  const maxInflight = o.maxInflight ?? Math.max(1000, Math.ceil(o.rate * 5));
  const lat = new Samples();
  let sent = 0, acked = 0, errors = 0, throttled = 0, inflight = 0, seq = 0, rr = 0;
  const timeline: number[] = [];
  let ackedAtLastSecond = 0;
  const tsBase = Date.now();
  const names = ['ch4_pct_lel', 'co_ppm', 'h2s_ppm', 'temperature_c', 'battery_pct', 'rssi_dbm'].slice(0, Math.max(1, Math.min(6, o.metrics ?? 1)));
  const valuesFor = (s: number) => names.map((m, i) => `"${m}":${m === 'rssi_dbm' ? -80 - (s % 9) : ((s + i) % 50) / 10}`).join(',');
  const publishOne = () => {
    if (inflight >= maxInflight) {
      throttled++;
      return;
    }
    const k = rr++ % live.length;
    const s = seq++;
    const t = performance.now();
    inflight++;
    sent++;
    // ts is unique per message (tsBase + seq) so the hub's duplicate check never merges two.
    const payload = `{"ts":${tsBase + s},"seq":${s},"values":{${valuesFor(s)}}}`;
    live[k]!.publish(liveTopics[k]!, payload, { qos }, (err) => {
      inflight--;
      if (err) errors++;
      else {
        acked++;
        lat.add(performance.now() - t);
      }
    });
  };
  const bar = o.progress
    ? progressBar('load      {bar} {elapsed}s/{total}s | {rate} msg/s (target {target}) | acked {acked} | inflight {inflight} | errors {errors} | p50 {p50} p99 {p99} ms')
    : null;
  const durationS = Math.round(o.durationMs / 1000);
  bar?.start(durationS, 0, { rate: 0, target: o.rate, acked: 0, inflight: 0, errors: 0, p50: 0, p99: 0, elapsed: 0 });
  const start = performance.now();
  let lastWindowStart = 0;
  let lastAcked = 0;
  let lastT = start;
  await new Promise<void>((resolve) => {
    const tick = setInterval(() => {
      const now = performance.now();
      const due = Math.floor(((now - start) / 1000) * o.rate);
      const target = Math.min(due, sent + throttled + Math.ceil(o.rate)); // never burst more than 1 s of backlog
      while (sent + throttled < target) publishOne();
      if (now - start >= o.durationMs) {
        clearInterval(tick);
        clearInterval(ui);
        resolve();
      }
    }, 5);
    const ui = setInterval(() => {
      const now = performance.now();
      const windowRate = Math.round(((acked - lastAcked) * 1000) / (now - lastT));
      const w = lat.sorted(lastWindowStart);
      lastWindowStart = lat.n;
      lastAcked = acked;
      lastT = now;
      const sec = Math.floor((now - start) / 1000);
      while (timeline.length < sec) {
        timeline.push(acked - ackedAtLastSecond);
        ackedAtLastSecond = acked;
      }
      bar?.update(Math.min(durationS, Math.round((now - start) / 1000)), { rate: windowRate, target: o.rate, acked, inflight, errors, p50: percentile(w, 50), p99: percentile(w, 99), elapsed: Math.round((now - start) / 1000) });
    }, 500);
  });
  const elapsed = (performance.now() - start) / 1000;
  const ackedInWindow = acked;
  const disconnectsInWindow = disconnects;
  // Drain: give in-flight messages a moment to be acknowledged.
  const drainUntil = performance.now() + 10_000;
  while (inflight > 0 && performance.now() < drainUntil) await new Promise((r) => setTimeout(r, 50));
  bar?.stop();
  const all = lat.sorted();
  const mean = all.length ? all.reduce((s, v) => s + v, 0) / all.length : 0;
  // Forced: whatever is still unacknowledged after the drain is counted as lost, not waited for.
  await mapPool(live, 256, (c) => new Promise<void>((r) => c.end(true, {}, () => r())));
  return {
    hub: o.hub.base,
    mqtt: o.mqttUrl,
    devices: n,
    connected: live.length,
    provision: prov,
    connectMs,
    qos,
    targetRate: o.rate,
    durationS: Math.round(elapsed * 10) / 10,
    sent,
    acked,
    errors,
    throttled,
    disconnects: disconnectsInWindow,
    metricsPerMessage: names.length,
    achievedRate: Math.round(ackedInWindow / elapsed),
    sendRate: Math.round(sent / elapsed),
    latencyMs: { p50: percentile(all, 50), p90: percentile(all, 90), p99: percentile(all, 99), max: percentile(all, 100), mean: Math.round(mean * 10) / 10 },
    timeline,
  };
}
