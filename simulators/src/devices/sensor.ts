/**
 * Simulated NB-IoT / LoRa sensors: report on a schedule with noise, drain
 * their battery, now and then miss a report or drop off the network, and
 * raise anomalies on demand (scenarios) or at a random rate (the demo).
 */
import type { DeviceType, Severity, TelemetryItem } from '@gridlink/devices';
import type { Clock } from '../clock.js';
import type { SimDevice } from '../district/generate.js';
import { Rng } from '../util/rng.js';
import { DeviceLink } from './link.js';

export interface DeviceContext {
  mqttUrl: string;
  clock: Clock;
  rng: Rng;
  log?: (msg: string) => void;
}

export interface SensorBehaviour {
  /** Mean simulated ms between reports. */
  intervalMs?: number;
  /** Probability that a scheduled report is silently missed. */
  missRate?: number;
  /** Probability per report of a radio dropout (connection lost for dropoutMs). */
  dropoutRate?: number;
  dropoutMs?: number;
  /** Mean simulated ms between random anomalies; 0 disables them. */
  anomalyEveryMs?: number;
}

type Metrics = Record<string, number | boolean>;

interface Profile {
  intervalMs: number;
  base: () => Metrics;
  noise: (m: Metrics, rng: Rng) => Metrics;
}

const clamp = (v: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, v));
const r1 = (v: number) => Math.round(v * 10) / 10;

const PROFILES: Partial<Record<DeviceType, Profile>> = {
  'sensor.smoke': {
    intervalMs: 300_000,
    base: () => ({ smoke_obscuration_pct_per_m: 0.2, temperature_c: 24, alarm: false }),
    noise: (m, rng) => ({ ...m, smoke_obscuration_pct_per_m: r1(clamp(Number(m.smoke_obscuration_pct_per_m) + rng.gauss(0, 0.05), 0, 100)), temperature_c: r1(clamp(Number(m.temperature_c) + rng.gauss(0, 0.3), -40, 125)) }),
  },
  'sensor.water_level': {
    intervalMs: 60_000,
    base: () => ({ water_level_cm: -35 }),
    noise: (m, rng) => ({ ...m, water_level_cm: r1(clamp(Number(m.water_level_cm) + rng.gauss(0, 0.8), -50, 1000)) }),
  },
  'sensor.manhole_cover': {
    intervalMs: 300_000,
    base: () => ({ tilt_deg: 1, open: false, water_level_cm: -45 }),
    noise: (m, rng) => ({ ...m, tilt_deg: r1(clamp(Number(m.tilt_deg) + rng.gauss(0, 0.2), 0, 180)), water_level_cm: r1(clamp(Number(m.water_level_cm) + rng.gauss(0, 0.5), -50, 1000)) }),
  },
  'sensor.gas': {
    intervalMs: 60_000,
    base: () => ({ ch4_pct_lel: 0.5, co_ppm: 2, h2s_ppm: 0.1, temperature_c: 22 }),
    noise: (m, rng) => ({
      ...m,
      ch4_pct_lel: r1(clamp(Number(m.ch4_pct_lel) + rng.gauss(0, 0.2), 0, 100)),
      co_ppm: r1(clamp(Number(m.co_ppm) + rng.gauss(0, 0.5), 0, 1000)),
      h2s_ppm: r1(clamp(Number(m.h2s_ppm) + rng.gauss(0, 0.05), 0, 200)),
      temperature_c: r1(clamp(Number(m.temperature_c) + rng.gauss(0, 0.3), -40, 125)),
    }),
  },
  'sensor.air_quality': {
    intervalMs: 60_000,
    base: () => ({ pm25_ugm3: 35, pm10_ugm3: 60, no2_ugm3: 30, o3_ugm3: 60, aqi: 50, temperature_c: 22, humidity_pct: 60 }),
    noise: (m, rng) => {
      const pm25 = clamp(Number(m.pm25_ugm3) + rng.gauss(0, 2), 0, 1000);
      return { ...m, pm25_ugm3: r1(pm25), pm10_ugm3: r1(pm25 * 1.7), aqi: Math.round(clamp(pm25 * 1.4, 0, 500)) };
    },
  },
};

export class SimSensor {
  readonly link: DeviceLink;
  readonly rng: Rng;
  /** Current true state; `noise` is applied on top of it for each report. */
  readonly state: Metrics;
  battery: number;
  private readonly profile: Profile;
  private readonly behaviour: Required<SensorBehaviour>;
  private seq = 0;
  private cancelNext: (() => void) | null = null;
  private cancelAnomaly: (() => void) | null = null;
  private ramp: { metric: string; from: number; to: number; start: number; ms: number } | null = null;
  private anomalous = false;
  running = false;

  constructor(readonly def: SimDevice & { secret: string }, readonly ctx: DeviceContext, behaviour: SensorBehaviour = {}) {
    const profile = PROFILES[def.type];
    if (!profile) throw new Error(`${def.id}: no sensor profile for ${def.type}`);
    this.profile = profile;
    this.rng = ctx.rng.fork(def.id);
    this.state = profile.base();
    this.battery = Math.round(this.rng.range(60, 100));
    this.behaviour = {
      intervalMs: behaviour.intervalMs ?? profile.intervalMs,
      missRate: behaviour.missRate ?? 0.01,
      dropoutRate: behaviour.dropoutRate ?? 0.002,
      dropoutMs: behaviour.dropoutMs ?? 30_000,
      anomalyEveryMs: behaviour.anomalyEveryMs ?? 0,
    };
    this.link = new DeviceLink({ url: ctx.mqttUrl, deviceId: def.id, secret: def.secret, random: () => this.rng.next() });
  }

  get id(): string {
    return this.def.id;
  }

  async start(): Promise<void> {
    this.running = true;
    this.link.on('error', () => undefined);
    await this.link.connect();
    // A device reports once on power-up, then on its schedule (phase spread over the interval).
    void this.report();
    this.schedule(this.rng.range(0.1, 1) * this.behaviour.intervalMs);
    this.scheduleAnomaly();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.cancelNext?.();
    this.cancelAnomaly?.();
    await this.link.close();
  }

  private schedule(ms: number): void {
    this.cancelNext?.();
    this.cancelNext = this.ctx.clock.after(ms, () => {
      if (!this.running) return;
      const b = this.behaviour;
      if (this.rng.chance(b.dropoutRate)) this.link.dropFor(this.ctx.clock.toWall(b.dropoutMs));
      else if (!this.rng.chance(b.missRate)) void this.report();
      // Report faster while something is happening, like real level sensors do.
      const next = this.ramp ? Math.min(5_000, this.ramp.ms / 5) : this.anomalous ? Math.min(10_000, b.intervalMs) : b.intervalMs;
      this.schedule(next * this.rng.range(0.9, 1.1));
    });
  }

  private scheduleAnomaly(): void {
    const every = this.behaviour.anomalyEveryMs;
    if (!every) return;
    // Floods are common, fires rare: the mean scales by type.
    const factor: Partial<Record<DeviceType, number>> = { 'sensor.water_level': 0.5, 'sensor.manhole_cover': 2, 'sensor.gas': 3, 'sensor.smoke': 4 };
    this.cancelAnomaly = this.ctx.clock.after(this.rng.exp(every * (factor[this.def.type] ?? 1)), () => {
      if (!this.running) return;
      void this.randomAnomaly().finally(() => this.scheduleAnomaly());
    });
  }

  /** Publishes one telemetry reading now. */
  async report(): Promise<void> {
    this.applyRamp();
    this.battery = Math.max(0, this.battery - 0.01);
    const noisy = this.profile.noise(this.state, this.rng);
    // Noise must not hide a level the scenario set on purpose.
    if (this.anomalous) Object.assign(noisy, this.pinned);
    const item: TelemetryItem = {
      ts: this.ctx.clock.wallNow(),
      seq: this.seq++,
      values: { ...noisy, battery_pct: Math.round(this.battery * 10) / 10, rssi_dbm: Math.round(this.rng.gauss(-85, 4)) },
    };
    await this.link.publish('telemetry', item).catch(() => undefined);
    if (this.battery < 10 && this.rng.chance(0.05)) await this.event('low_battery', 'warning', { battery_pct: this.battery });
  }

  private pinned: Metrics = {};

  private applyRamp(): void {
    const r = this.ramp;
    if (!r) return;
    const t = Math.min(1, (this.ctx.clock.elapsed() - r.start) / r.ms);
    this.state[r.metric] = r1(r.from + (r.to - r.from) * t);
    this.pinned[r.metric] = this.state[r.metric]!;
    if (t >= 1) this.ramp = null;
  }

  async event(type: string, severity: Severity, data?: Record<string, unknown>): Promise<void> {
    await this.link.publish('event', { ts: this.ctx.clock.wallNow(), seq: this.seq++, type, severity, ...(data ? { data } : {}) }).catch(() => undefined);
  }

  /**
   * Sets a metric (e.g. water_level_cm to 35), optionally ramping over
   * `rampMs` simulated ms, and reports at once; the value holds until changed.
   */
  async set(metric: string, value: number | boolean, rampMs = 0): Promise<void> {
    this.anomalous = true;
    if (typeof value === 'number' && rampMs > 0) {
      const from = Number(this.state[metric] ?? 0);
      this.ramp = { metric, from, to: value, start: this.ctx.clock.elapsed(), ms: rampMs };
      // Follow the ramp closely instead of waiting for the next scheduled report.
      if (this.running) this.schedule(Math.min(5_000, rampMs / 5));
    } else {
      this.state[metric] = value;
      this.pinned[metric] = value;
    }
    await this.report();
  }

  /** Returns to normal readings (and sends the matching clear event where the type has one). */
  async normal(): Promise<void> {
    const base = this.profile.base();
    Object.assign(this.state, base);
    this.pinned = {};
    this.ramp = null;
    this.anomalous = false;
    const clear: Partial<Record<DeviceType, string>> = { 'sensor.smoke': 'smoke_alarm_clear', 'sensor.gas': 'gas_leak_clear', 'sensor.water_level': 'water_level_normal', 'sensor.manhole_cover': 'cover_closed' };
    await this.report();
    const ev = clear[this.def.type];
    if (ev) await this.event(ev, 'info');
  }

  /** The type's characteristic incident: smoke alarm, flooding, gas leak, open cover. */
  async anomaly(): Promise<void> {
    switch (this.def.type) {
      case 'sensor.smoke':
        await this.set('smoke_obscuration_pct_per_m', 12);
        this.state.alarm = true;
        this.pinned.alarm = true;
        await this.event('smoke_alarm', 'critical', { obscuration: 12 });
        return;
      case 'sensor.water_level':
        await this.set('water_level_cm', 35 + Math.round(this.rng.range(0, 15)), 30_000);
        return;
      case 'sensor.gas':
        await this.set('ch4_pct_lel', 25);
        await this.event('gas_leak', 'critical', { ch4_pct_lel: 25 });
        return;
      case 'sensor.manhole_cover':
        await this.set('tilt_deg', 35);
        this.state.open = true;
        this.pinned.open = true;
        await this.event('cover_open', 'major', { tilt_deg: 35 });
        return;
      default:
        await this.event('fault', 'minor');
    }
  }

  private async randomAnomaly(): Promise<void> {
    await this.anomaly();
    // Incidents pass: the level drains, the smoke clears.
    await this.ctx.clock.sleep(this.rng.range(120_000, 600_000)).catch(() => undefined);
    if (this.running) await this.normal();
  }
}
