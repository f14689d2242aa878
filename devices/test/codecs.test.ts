import { describe, expect, it } from 'vitest';
import { alink, codecs, createAlink, createIotda, iotda, owntracks, type DecodeContext, type DecodeResult, type RejectReason } from '../src/index.js';
import { NOW } from './fixtures.js';

const handheld: DecodeContext = { deviceType: 'handheld', receivedAt: NOW };
const water: DecodeContext = { deviceType: 'sensor.water_level', receivedAt: NOW };
const smoke: DecodeContext = { deviceType: 'sensor.smoke', receivedAt: NOW };
const json = (v: unknown) => JSON.stringify(v);
const TST = NOW / 1000 - 20;

function rejected(result: DecodeResult, reason: RejectReason, detail?: RegExp) {
  expect(result.ok ? 'ok' : result.reason).toBe(reason);
  if (!result.ok && detail) expect(result.detail).toMatch(detail);
}

describe('codecs', () => {
  it('should register each codec under its name', () => {
    expect(Object.keys(codecs).sort()).toEqual(['alink', 'iotda', 'owntracks']);
    for (const [name, codec] of Object.entries(codecs)) expect(codec.name).toBe(name);
  });
});

describe('owntracks', () => {
  const android = { _type: 'location', acc: 12, alt: 18, batt: 64, bs: 1, conn: 'm', created_at: TST + 1, lat: 31.230416, lon: 121.473701, t: 'u', tid: 'w7', tst: TST, vac: 3, vel: 18, cog: 95 };

  it('should map an OwnTracks location to a normalised location', () => {
    expect(owntracks.decode(Buffer.from(json(android)), handheld)).toStrictEqual({
      ok: true,
      messages: [{ channel: 'location', ts: NOW - 20_000, lat: 31.230416, lon: 121.473701, acc: 12, alt: 18, batt: 64, spd: 5, hdg: 95 }],
    });
  });

  it('should drop an unknown course (cog -1) and keep the rest', () => {
    const r = owntracks.decode(json({ _type: 'location', lat: 31.2, lon: 121.4, tst: TST, cog: -1 }), handheld);
    expect(r).toStrictEqual({ ok: true, messages: [{ channel: 'location', ts: NOW - 20_000, lat: 31.2, lon: 121.4 }] });
  });

  it('should accept other message types with no messages', () => {
    for (const _type of ['transition', 'lwt', 'waypoint', 'waypoints', 'card', 'cmd', 'encrypted', 'status']) {
      expect(owntracks.decode(json({ _type, tst: TST }), handheld)).toEqual({ ok: true, messages: [] });
    }
  });

  it('should reject malformed locations with the contract reasons', () => {
    rejected(owntracks.decode('{"_type":', handheld), 'not_json');
    rejected(owntracks.decode(json({ lat: 1, lon: 2 }), handheld), 'schema', /_type/);
    rejected(owntracks.decode(json({ _type: 'location', lat: 31.2, lon: 121.4 }), handheld), 'schema', /tst/);
    rejected(owntracks.decode(json({ _type: 'location', lat: 0, lon: 0, tst: TST }), handheld), 'out_of_range');
    rejected(owntracks.decode(json({ _type: 'location', lat: 31.2, lon: 121.4, tst: TST + 2 * 86400 }), handheld), 'ts_future');
  });

  it('should refuse a device type without a location channel', () => {
    rejected(owntracks.decode(json(android), water), 'channel_not_allowed');
  });
});

describe('alink', () => {
  it('should map a property post to telemetry, grouping values by sample time', () => {
    const r = alink.decode(
      json({
        id: '1717200000',
        version: '1.0',
        sys: { ack: 0 },
        method: 'thing.event.property.post',
        params: {
          WaterLevel: 31.5,
          BatteryPercentage: { value: 82, time: NOW - 60_000 },
          RSSI: { value: -95, time: NOW - 60_000 },
          rssi_dbm: -96,
        },
      }),
      water,
    );
    expect(r).toStrictEqual({
      ok: true,
      messages: [
        { channel: 'telemetry', ts: NOW, values: { water_level_cm: 31.5, rssi_dbm: -96 } },
        { channel: 'telemetry', ts: NOW - 60_000, values: { battery_pct: 82, rssi_dbm: -95 } },
      ],
    });
  });

  it('should map an event post to a snake_case event with data', () => {
    const r = alink.decode(json({ id: '2', version: '1.0', method: 'thing.event.SmokeAlarm.post', params: { value: { Density: 14.2 }, time: NOW - 1000 } }), smoke);
    expect(r).toStrictEqual({ ok: true, messages: [{ channel: 'event', ts: NOW - 1000, type: 'smoke_alarm', data: { Density: 14.2 } }] });
  });

  it('should honour custom aliases', () => {
    const codec = createAlink({ metrics: { YanWu: 'smoke_obscuration_pct_per_m' }, events: { HuoJing: 'smoke_alarm' } });
    expect(codec.decode(json({ method: 'thing.event.property.post', params: { YanWu: 3.1 } }), smoke)).toStrictEqual({
      ok: true,
      messages: [{ channel: 'telemetry', ts: NOW, values: { smoke_obscuration_pct_per_m: 3.1 } }],
    });
    const r = codec.decode(json({ method: 'thing.event.HuoJing.post', params: { value: {} } }), smoke);
    expect(r.ok && r.messages[0]).toMatchObject({ channel: 'event', type: 'smoke_alarm' });
  });

  it('should reject unknown methods, unknown properties and bad values', () => {
    rejected(alink.decode(json({ method: 'thing.service.property.set', params: {} }), water), 'schema', /method/);
    rejected(alink.decode(json({ method: 'thing.event.property.post', params: { Foo: 1 } }), water), 'unknown_metric', /Foo/);
    rejected(alink.decode(json({ method: 'thing.event.property.post', params: { WaterLevel: 5000 } }), water), 'out_of_range');
    rejected(alink.decode(json({ method: 'thing.event.property.post', params: {} }), water), 'empty');
    rejected(alink.decode(json({ method: 'thing.event.property.post', params: { WaterLevel: { value: 1, time: 'x' } } }), water), 'ts_invalid');
    rejected(alink.decode(json({ id: '1', params: {} }), water), 'schema', /method/);
  });
});

describe('iotda', () => {
  it('should map each service to a telemetry item with its event_time', () => {
    const r = iotda.decode(
      json({
        services: [
          { service_id: 'WaterLevel', properties: { water_level_cm: 28.4 }, event_time: '20240531T235900Z' },
          { service_id: 'Battery', properties: { battery_pct: 77, rssi_dbm: -104 } },
        ],
      }),
      water,
    );
    expect(r).toStrictEqual({
      ok: true,
      messages: [
        { channel: 'telemetry', ts: NOW - 60_000, values: { water_level_cm: 28.4 } },
        { channel: 'telemetry', ts: NOW, values: { battery_pct: 77, rssi_dbm: -104 } },
      ],
    });
  });

  it('should rename properties through an alias table', () => {
    const codec = createIotda({ metrics: { waterLevel: 'water_level_cm', batteryLevel: 'battery_pct' } });
    const r = codec.decode(json({ services: [{ service_id: 'Sensor', properties: { waterLevel: 3, batteryLevel: 90 } }] }), water);
    expect(r).toStrictEqual({ ok: true, messages: [{ channel: 'telemetry', ts: NOW, values: { water_level_cm: 3, battery_pct: 90 } }] });
  });

  it('should reject malformed reports with the contract reasons', () => {
    rejected(iotda.decode(json({ services: [] }), water), 'schema', /services/);
    rejected(iotda.decode(json({ services: [{ properties: { water_level_cm: 1 } }] }), water), 'schema', /service_id/);
    rejected(iotda.decode(json({ services: [{ service_id: 'S', properties: { water_level_cm: 1 }, event_time: '2024-06-01 00:00' }] }), water), 'ts_invalid');
    rejected(iotda.decode(json({ services: [{ service_id: 'S', properties: { nitrogen: 1 } }] }), water), 'unknown_metric', /nitrogen/);
    rejected(iotda.decode(json({ services: [{ service_id: 'S', properties: { water_level_cm: [1] } }] }), water), 'schema');
    rejected(iotda.decode(json({ services: [{ service_id: 'S', properties: { water_level_cm: 1 } }] }), handheld), 'unknown_metric');
  });
});
