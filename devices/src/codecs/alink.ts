/**
 * Alibaba Cloud IoT Alink JSON (物联网平台 Alink 协议), as a device posts it:
 *
 *   {"id":"123","version":"1.0","method":"thing.event.property.post",
 *    "params":{"WaterLevel":12.5,"BatteryPercentage":{"value":80,"time":1524448722000}}}
 *   {"id":"124","version":"1.0","method":"thing.event.SmokeAlarm.post",
 *    "params":{"value":{"Level":2},"time":1524448722000}}
 *
 * Property identifiers map through an alias table (TSL identifiers are vendor-chosen);
 * identifiers already named like a catalogue metric pass through. Event identifiers are
 * turned into snake_case (SmokeAlarm -> smoke_alarm) unless aliased.
 */
import { Type } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { decodeValue, readJson, type DecodeContext, type DecodeResult } from '../decode.js';
import { isPlainObject, type Codec } from './codec.js';

export interface AlinkOptions {
  /** TSL property identifier -> catalogue metric name */
  metrics?: Record<string, string>;
  /** TSL event identifier -> GridLink event type */
  events?: Record<string, string>;
}

/** Common identifiers from Alibaba's standard TSL categories. */
export const ALINK_METRIC_ALIASES: Readonly<Record<string, string>> = Object.freeze({
  BatteryPercentage: 'battery_pct',
  RSSI: 'rssi_dbm',
  CurrentTemperature: 'temperature_c',
  CurrentHumidity: 'humidity_pct',
  WaterLevel: 'water_level_cm',
  PM25: 'pm25_ugm3',
  PM10: 'pm10_ugm3',
  SmokeSensorState: 'alarm',
  TiltAngle: 'tilt_deg',
  CH4Concentration: 'ch4_pct_lel',
  COConcentration: 'co_ppm',
});

const PROPERTY_POST = 'thing.event.property.post';
const EVENT_HEAD = 'thing.event.';
const EVENT_TAIL = '.post';

const Message = TypeCompiler.Compile(
  Type.Object({
    id: Type.Optional(Type.String({ maxLength: 64 })),
    version: Type.Optional(Type.String({ maxLength: 16 })),
    method: Type.String({ minLength: 1, maxLength: 128 }),
    params: Type.Record(Type.String(), Type.Unknown()),
  }),
);

function snakeCase(identifier: string): string {
  return identifier
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replace(/([A-Z]+)([A-Z][a-z])/g, '$1_$2')
    .toLowerCase();
}

export function createAlink(options: AlinkOptions = {}): Codec {
  const metricAlias = new Map(Object.entries({ ...ALINK_METRIC_ALIASES, ...options.metrics }));
  const eventAlias = new Map(Object.entries(options.events ?? {}));

  function properties(params: Record<string, unknown>, ctx: DecodeContext): DecodeResult {
    // {value, time} entries carry their own sample time; group values by time, one item per time.
    const byTime = new Map<number | undefined, Record<string, unknown>>();
    for (const [identifier, raw] of Object.entries(params)) {
      const metric = metricAlias.get(identifier) ?? identifier;
      let value = raw;
      let time: number | undefined;
      if (isPlainObject(raw) && 'value' in raw) {
        value = raw.value;
        if (raw.time !== undefined) {
          if (typeof raw.time !== 'number') return { ok: false, reason: 'ts_invalid', detail: `/params/${identifier}/time: not epoch ms` };
          time = raw.time;
        }
      }
      let values = byTime.get(time);
      if (!values) byTime.set(time, (values = {}));
      values[metric] = value;
    }
    const items: object[] = [];
    for (const [time, values] of byTime) items.push(time === undefined ? { values } : { ts: time, values });
    return decodeValue('telemetry', items, ctx);
  }

  function event(identifier: string, params: Record<string, unknown>, ctx: DecodeContext): DecodeResult {
    const body: Record<string, unknown> = { type: eventAlias.get(identifier) ?? snakeCase(identifier) };
    if (params.time !== undefined) body.ts = params.time;
    if (params.value !== undefined) body.data = params.value;
    return decodeValue('event', body, ctx);
  }

  return {
    name: 'alink',
    decode(payload, ctx) {
      const parsed = readJson(payload);
      if (!parsed.ok) return parsed;
      const msg = parsed.value;
      if (!Message.Check(msg)) {
        const e = Message.Errors(msg).First();
        return { ok: false, reason: 'schema', detail: `alink ${e ? `${e.path || '/'}: ${e.message}` : 'invalid'}` };
      }
      if (msg.method === PROPERTY_POST) return properties(msg.params, ctx);
      if (msg.method.startsWith(EVENT_HEAD) && msg.method.endsWith(EVENT_TAIL)) {
        const identifier = msg.method.slice(EVENT_HEAD.length, -EVENT_TAIL.length);
        if (identifier.length > 0 && !identifier.includes('.')) return event(identifier, msg.params, ctx);
      }
      return { ok: false, reason: 'schema', detail: `alink /method: unsupported method ${JSON.stringify(msg.method)}` };
    },
  };
}

export const alink: Codec = createAlink();
