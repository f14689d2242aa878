/**
 * Huawei Cloud IoTDA property report (设备属性上报), as a device publishes it to
 * $oc/devices/{device_id}/sys/properties/report:
 *
 *   {"services":[{"service_id":"WaterLevel","properties":{"water_level_cm":12.5},"event_time":"20151212T121212Z"}]}
 *
 * Each service becomes one telemetry item; event_time is ISO-8601 basic format (UTC).
 * Property names map through an optional alias table, else pass through unchanged.
 */
import { Type } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { decodeValue, readJson, type DecodeContext, type DecodeResult } from '../decode.js';
import type { Codec } from './codec.js';

export interface IotdaOptions {
  /** IoTDA property name -> catalogue metric name */
  metrics?: Record<string, string>;
}

const Report = TypeCompiler.Compile(
  Type.Object({
    services: Type.Array(
      Type.Object({
        service_id: Type.String({ minLength: 1, maxLength: 64 }),
        properties: Type.Record(Type.String(), Type.Unknown()),
        event_time: Type.Optional(Type.String({ maxLength: 40 })),
      }),
      { minItems: 1, maxItems: 256 },
    ),
  }),
);

export function createIotda(options: IotdaOptions = {}): Codec {
  const alias = new Map(Object.entries(options.metrics ?? {}));
  return {
    name: 'iotda',
    decode(payload: Uint8Array | string, ctx: DecodeContext): DecodeResult {
      const parsed = readJson(payload);
      if (!parsed.ok) return parsed;
      const report = parsed.value;
      if (!Report.Check(report)) {
        const e = Report.Errors(report).First();
        return { ok: false, reason: 'schema', detail: `iotda ${e ? `${e.path || '/'}: ${e.message}` : 'invalid'}` };
      }
      const items: Record<string, unknown>[] = [];
      for (const service of report.services) {
        let values = service.properties;
        if (alias.size > 0) {
          values = {};
          for (const [name, v] of Object.entries(service.properties)) values[alias.get(name) ?? name] = v;
        }
        items.push(service.event_time === undefined ? { values } : { ts: service.event_time, values });
      }
      // decodeValue re-validates every value against the device type's metrics.
      return decodeValue('telemetry', items, ctx);
    },
  };
}

export const iotda: Codec = createIotda();
