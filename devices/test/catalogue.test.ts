import { describe, expect, it } from 'vitest';
import {
  CHANNELS,
  DEVICE_TYPES,
  catalogue,
  decodeUplink,
  isDeviceType,
  m,
  validateDeviceTypeDef,
  type DeviceType,
  type DeviceTypeDef,
  type Normalised,
} from '../src/index.js';
import { NOW } from './fixtures.js';

/** One realistic reading per device type, as the field units send it. */
const readings: Record<DeviceType, Record<string, number | boolean | string>> = {
  'sensor.smoke': { smoke_obscuration_pct_per_m: 0.8, temperature_c: 24.5, alarm: false, battery_pct: 93, rssi_dbm: -87 },
  'sensor.water_level': { water_level_cm: 32.5, battery_pct: 71, rssi_dbm: -101 },
  'sensor.manhole_cover': { tilt_deg: 47.2, open: true, water_level_cm: -35, battery_pct: 64, rssi_dbm: -112 },
  'sensor.gas': { ch4_pct_lel: 12, co_ppm: 3, h2s_ppm: 0.4, temperature_c: 18.2, battery_pct: 88, rssi_dbm: -93 },
  'sensor.air_quality': { pm25_ugm3: 38, pm10_ugm3: 71, no2_ugm3: 42, o3_ugm3: 96, aqi: 54, temperature_c: 27.1, humidity_pct: 63, battery_pct: 100, rssi_dbm: -71 },
  camera: { fps: 25, bitrate_kbps: 4096, storage_free_pct: 37 },
  handheld: { battery_pct: 58 },
};

describe('catalogue', () => {
  it('should define every device type exactly once, keyed by its own type', () => {
    expect(Object.keys(catalogue).sort()).toEqual([...DEVICE_TYPES].sort());
    for (const type of DEVICE_TYPES) expect(catalogue[type].type).toBe(type);
  });

  it('should pass its own load-time validation', () => {
    for (const type of DEVICE_TYPES) expect(validateDeviceTypeDef(catalogue[type])).toEqual([]);
  });

  it('should be frozen', () => {
    expect(Object.isFrozen(catalogue)).toBe(true);
    expect(Object.isFrozen(catalogue['sensor.gas'].metrics[0])).toBe(true);
  });

  it('should give every sensor battery, rssi and the telemetry, event and status channels', () => {
    for (const type of DEVICE_TYPES.filter((t) => t.startsWith('sensor.'))) {
      const def = catalogue[type];
      expect(def.metrics.find((x) => x.name === 'battery_pct')).toMatchObject({ min: 0, max: 100, unit: '%' });
      expect(def.metrics.find((x) => x.name === 'rssi_dbm')).toMatchObject({ min: -140, max: 0, unit: 'dBm' });
      expect(def.channels).toEqual(expect.arrayContaining(['telemetry', 'event', 'status']));
      expect(def.events).toEqual(expect.arrayContaining(['tamper', 'low_battery']));
    }
  });

  it('should list the smoke, water, cover and gas events the rules rely on', () => {
    expect(catalogue['sensor.smoke'].events).toEqual(expect.arrayContaining(['smoke_alarm', 'smoke_alarm_clear', 'tamper', 'low_battery', 'fault']));
    expect(catalogue['sensor.water_level'].events).toContain('water_level_high');
    expect(catalogue['sensor.manhole_cover'].events).toEqual(expect.arrayContaining(['cover_open', 'cover_displaced']));
    expect(catalogue['sensor.gas'].events).toContain('gas_leak');
  });

  it('should give cameras and handhelds their channels', () => {
    expect([...catalogue.camera.channels].sort()).toEqual(['alert', 'event', 'status', 'telemetry']);
    expect([...catalogue.handheld.channels].sort()).toEqual(['case', 'location', 'report', 'status', 'telemetry']);
  });

  it('should label every type and metric in Chinese and English', () => {
    for (const type of DEVICE_TYPES) {
      const def = catalogue[type];
      expect(def.label.zh && def.label.en).toBeTruthy();
      for (const metric of def.metrics) expect(metric.label.zh && metric.label.en, metric.name).toBeTruthy();
    }
  });

  for (const type of DEVICE_TYPES) {
    it(`should decode a realistic ${type} telemetry message`, () => {
      const values = readings[type];
      const r = decodeUplink('telemetry', JSON.stringify({ ts: NOW - 30_000, seq: 1001, values }), { deviceType: type, receivedAt: NOW });
      expect(r).toStrictEqual({ ok: true, messages: [{ channel: 'telemetry', ts: NOW - 30_000, seq: 1001, values } satisfies Normalised] });
      // and the reading covers every metric of the type, so the fixture keeps up with the catalogue
      expect(Object.keys(values).sort()).toEqual(catalogue[type].metrics.map((x) => x.name).sort());
    });
  }
});

describe('isDeviceType', () => {
  it('should accept catalogue types only', () => {
    expect(isDeviceType('sensor.gas')).toBe(true);
    expect(isDeviceType('sensor')).toBe(false);
    expect(isDeviceType('toString')).toBe(false);
  });
});

describe('validateDeviceTypeDef', () => {
  const base: DeviceTypeDef = { type: 'sensor.gas', label: { zh: '燃气', en: 'Gas' }, channels: ['telemetry', 'event', 'status'], metrics: [m.battery()], events: ['gas_leak'] };

  it('should report duplicate metrics, inverted ranges and unknown channels', () => {
    const problems = validateDeviceTypeDef({
      ...base,
      channels: ['telemetry', 'event', 'video' as never],
      metrics: [m.battery(), m.battery(), m.number('x_pct', '%', { min: 5, max: 5 }, { zh: 'x', en: 'x' })],
    });
    expect(problems).toEqual([
      'sensor.gas: unknown channel video',
      'sensor.gas: duplicate metric battery_pct',
      'sensor.gas: metric x_pct min 5 is not below max 5',
    ]);
  });

  it('should report metrics without telemetry, events without event channel, and ranged booleans', () => {
    const problems = validateDeviceTypeDef({
      ...base,
      channels: ['status'],
      metrics: [{ ...m.flag('open', '开', 'Open'), min: 0 }],
    });
    expect(problems).toEqual([
      'sensor.gas: metrics without a telemetry channel',
      'sensor.gas: boolean metric open has a range',
      'sensor.gas: events without an event channel',
    ]);
  });

  it('should only use known channels in the shipped catalogue', () => {
    for (const type of DEVICE_TYPES) for (const ch of catalogue[type].channels) expect(CHANNELS).toContain(ch);
  });
});
