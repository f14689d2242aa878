/**
 * Device type catalogue: declarative entries composed from small metric pieces
 * (zigbee-herdsman-converters style). Validated once at module load; a bad entry
 * fails the import, not the first message.
 */
import { CHANNELS, type Channel } from './topics.js';

export type DeviceType =
  | 'sensor.smoke'
  | 'sensor.water_level'
  | 'sensor.manhole_cover'
  | 'sensor.gas'
  | 'sensor.air_quality'
  | 'camera'
  | 'handheld';

export const DEVICE_TYPES: readonly DeviceType[] = Object.freeze([
  'sensor.smoke',
  'sensor.water_level',
  'sensor.manhole_cover',
  'sensor.gas',
  'sensor.air_quality',
  'camera',
  'handheld',
] as const);

export interface Label {
  zh: string;
  en: string;
}

export interface MetricDef {
  name: string;
  unit: string;
  kind: 'number' | 'boolean' | 'string';
  min?: number;
  max?: number;
  label: Label;
}

export interface DeviceTypeDef {
  type: DeviceType;
  label: Label;
  channels: readonly Channel[];
  metrics: readonly MetricDef[];
  /** Known event types, for UIs and rules. Decoding accepts other event types too. */
  events: readonly string[];
}

const num = (name: string, unit: string, min: number, max: number, zh: string, en: string): MetricDef => ({
  name,
  unit,
  kind: 'number',
  min,
  max,
  label: { zh, en },
});

/** Metric builders. Each returns a fresh definition; pass a name to reuse a piece under another name. */
export const m = {
  number: (name: string, unit: string, range: { min?: number; max?: number }, label: Label): MetricDef => ({
    name,
    unit,
    kind: 'number',
    ...range,
    label,
  }),
  boolean: (name: string, label: Label): MetricDef => ({ name, unit: '', kind: 'boolean', label }),
  string: (name: string, label: Label): MetricDef => ({ name, unit: '', kind: 'string', label }),

  battery: (name = 'battery_pct') => num(name, '%', 0, 100, '电量', 'Battery'),
  rssi: (name = 'rssi_dbm') => num(name, 'dBm', -140, 0, '信号强度', 'Signal strength'),
  temperature: (name = 'temperature_c') => num(name, '°C', -40, 125, '温度', 'Temperature'),
  humidity: (name = 'humidity_pct') => num(name, '%', 0, 100, '湿度', 'Humidity'),
  /** Optical smoke density in percent obscuration per metre (EN 54-7 / UL 268 style). */
  smokeDensity: (name = 'smoke_obscuration_pct_per_m') => num(name, '%obs/m', 0, 100, '烟雾浓度', 'Smoke density'),
  /** Water level relative to the road surface; negative is below it (drain or well depth). */
  level: (name = 'water_level_cm') => num(name, 'cm', -50, 1000, '水位', 'Water level'),
  tilt: (name = 'tilt_deg') => num(name, '°', 0, 180, '倾角', 'Tilt'),
  /** Combustible gas as percent of the lower explosive limit. */
  lel: (name = 'ch4_pct_lel') => num(name, '%LEL', 0, 100, '甲烷浓度', 'Methane (LEL)'),
  ppm: (name: string, max: number, zh: string, en: string) => num(name, 'ppm', 0, max, zh, en),
  ugm3: (name: string, max: number, zh: string, en: string) => num(name, 'µg/m³', 0, max, zh, en),
  flag: (name: string, zh: string, en: string) => m.boolean(name, { zh, en }),
};

/** What every battery sensor has: NB-IoT / LoRa link, battery, status and event channels. */
const sensor = {
  channels: ['telemetry', 'event', 'status'] as const satisfies readonly Channel[],
  metrics: (): MetricDef[] => [m.battery(), m.rssi()],
  events: ['tamper', 'low_battery', 'fault'] as const,
};

const definitions: readonly DeviceTypeDef[] = [
  {
    type: 'sensor.smoke',
    label: { zh: '独立式烟感', en: 'Smoke detector' },
    channels: sensor.channels,
    metrics: [...sensor.metrics(), m.smokeDensity(), m.temperature(), m.flag('alarm', '报警', 'Alarm')],
    events: ['smoke_alarm', 'smoke_alarm_clear', ...sensor.events],
  },
  {
    type: 'sensor.water_level',
    label: { zh: '积水监测仪', en: 'Water level sensor' },
    channels: sensor.channels,
    metrics: [...sensor.metrics(), m.level()],
    events: ['water_level_high', 'water_level_normal', ...sensor.events],
  },
  {
    type: 'sensor.manhole_cover',
    label: { zh: '智能井盖', en: 'Manhole cover sensor' },
    channels: sensor.channels,
    metrics: [...sensor.metrics(), m.tilt(), m.flag('open', '开启', 'Open'), m.level('water_level_cm')],
    events: ['cover_open', 'cover_closed', 'cover_displaced', 'water_overflow', ...sensor.events],
  },
  {
    type: 'sensor.gas',
    label: { zh: '燃气监测仪', en: 'Gas detector' },
    channels: sensor.channels,
    metrics: [
      ...sensor.metrics(),
      m.lel(),
      m.ppm('co_ppm', 1000, '一氧化碳', 'Carbon monoxide'),
      m.ppm('h2s_ppm', 200, '硫化氢', 'Hydrogen sulphide'),
      m.temperature(),
    ],
    events: ['gas_leak', 'gas_leak_clear', ...sensor.events],
  },
  {
    type: 'sensor.air_quality',
    label: { zh: '空气质量监测站', en: 'Air quality monitor' },
    channels: sensor.channels,
    metrics: [
      ...sensor.metrics(),
      m.ugm3('pm25_ugm3', 1000, 'PM2.5', 'PM2.5'),
      m.ugm3('pm10_ugm3', 2000, 'PM10', 'PM10'),
      m.ugm3('no2_ugm3', 2000, '二氧化氮', 'Nitrogen dioxide'),
      m.ugm3('o3_ugm3', 1200, '臭氧', 'Ozone'),
      m.number('aqi', '', { min: 0, max: 500 }, { zh: '空气质量指数', en: 'AQI' }),
      m.temperature(),
      m.humidity(),
    ],
    events: ['aqi_high', ...sensor.events],
  },
  {
    type: 'camera',
    label: { zh: '视频监控(天网)', en: 'AI camera' },
    channels: ['alert', 'status', 'event', 'telemetry'],
    metrics: [
      m.number('fps', 'fps', { min: 0, max: 120 }, { zh: '帧率', en: 'Frame rate' }),
      m.number('bitrate_kbps', 'kbit/s', { min: 0, max: 100_000 }, { zh: '码率', en: 'Bitrate' }),
      m.number('storage_free_pct', '%', { min: 0, max: 100 }, { zh: '存储剩余', en: 'Free storage' }),
    ],
    events: ['video_loss', 'video_restored', 'lens_covered', 'storage_fault', 'tamper'],
  },
  {
    type: 'handheld',
    label: { zh: '网格员手持终端', en: 'Grid worker handheld' },
    channels: ['location', 'report', 'case', 'status', 'telemetry'],
    metrics: [m.battery()],
    events: [],
  },
];

/** Problems with one entry, empty when valid. Exported so tests and add-on catalogues can reuse it. */
export function validateDeviceTypeDef(def: DeviceTypeDef): string[] {
  const problems: string[] = [];
  const where = def.type;
  if (!DEVICE_TYPES.includes(def.type)) problems.push(`${where}: not in DEVICE_TYPES`);
  const channels = new Set<string>();
  for (const ch of def.channels) {
    if (!CHANNELS.includes(ch)) problems.push(`${where}: unknown channel ${ch}`);
    if (channels.has(ch)) problems.push(`${where}: duplicate channel ${ch}`);
    channels.add(ch);
  }
  if (def.metrics.length > 0 && !channels.has('telemetry')) problems.push(`${where}: metrics without a telemetry channel`);
  const names = new Set<string>();
  for (const metric of def.metrics) {
    if (names.has(metric.name)) problems.push(`${where}: duplicate metric ${metric.name}`);
    names.add(metric.name);
    if (!/^[a-z][a-z0-9_]*$/.test(metric.name)) problems.push(`${where}: metric name ${metric.name} is not snake_case`);
    if (metric.kind !== 'number' && (metric.min !== undefined || metric.max !== undefined)) {
      problems.push(`${where}: ${metric.kind} metric ${metric.name} has a range`);
    }
    for (const bound of [metric.min, metric.max]) {
      if (bound !== undefined && !Number.isFinite(bound)) problems.push(`${where}: metric ${metric.name} has a non-finite bound`);
    }
    if (metric.min !== undefined && metric.max !== undefined && !(metric.min < metric.max)) {
      problems.push(`${where}: metric ${metric.name} min ${metric.min} is not below max ${metric.max}`);
    }
  }
  const events = new Set<string>();
  for (const ev of def.events) {
    if (events.has(ev)) problems.push(`${where}: duplicate event ${ev}`);
    events.add(ev);
  }
  if (def.events.length > 0 && !channels.has('event')) problems.push(`${where}: events without an event channel`);
  return problems;
}

function buildCatalogue(defs: readonly DeviceTypeDef[]): Record<DeviceType, DeviceTypeDef> {
  const problems = defs.flatMap(validateDeviceTypeDef);
  const out = {} as Record<DeviceType, DeviceTypeDef>;
  for (const def of defs) {
    if (out[def.type]) problems.push(`${def.type}: defined twice`);
    out[def.type] = deepFreeze(def);
  }
  for (const type of DEVICE_TYPES) if (!out[type]) problems.push(`${type}: missing from the catalogue`);
  if (problems.length > 0) throw new Error(`invalid device catalogue:\n  ${problems.join('\n  ')}`);
  return Object.freeze(out);
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

export const catalogue: Record<DeviceType, DeviceTypeDef> = buildCatalogue(definitions);

const TYPE_SET: ReadonlySet<string> = new Set(DEVICE_TYPES);

export function isDeviceType(s: string): s is DeviceType {
  return TYPE_SET.has(s);
}
