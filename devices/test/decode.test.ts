import { describe, expect, it } from 'vitest';
import { decodeCommand, decodeUplink, decodeValue, parseTs, type DecodeContext, type DecodeResult, type RejectReason } from '../src/index.js';
import { GIF_BYTES, JPEG_B64, JPEG_BYTES, NOW, PNG_B64, PNG_BYTES, b64 } from './fixtures.js';

const water: DecodeContext = { deviceType: 'sensor.water_level', receivedAt: NOW };
const smoke: DecodeContext = { deviceType: 'sensor.smoke', receivedAt: NOW };
const camera: DecodeContext = { deviceType: 'camera', receivedAt: NOW };
const handheld: DecodeContext = { deviceType: 'handheld', receivedAt: NOW };

const json = (v: unknown) => JSON.stringify(v);
const bytes = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));

function rejected(result: DecodeResult, reason: RejectReason, detail?: RegExp) {
  expect(result.ok).toBe(false);
  if (result.ok) return;
  expect(result.reason).toBe(reason);
  if (detail) expect(result.detail).toMatch(detail);
}

function messages(result: DecodeResult) {
  if (!result.ok) throw new Error(`rejected: ${result.reason} ${result.detail}`);
  return result.messages;
}

describe('decodeUplink', () => {
  describe('telemetry', () => {
    it('should decode one object into one message', () => {
      const r = decodeUplink('telemetry', bytes({ ts: NOW - 5000, seq: 42, values: { water_level_cm: 12.5, battery_pct: 87 } }), water);
      expect(r).toEqual({ ok: true, messages: [{ channel: 'telemetry', ts: NOW - 5000, seq: 42, values: { water_level_cm: 12.5, battery_pct: 87 } }] });
    });

    it('should flatten an array into one message per item, in order', () => {
      const r = decodeUplink(
        'telemetry',
        json([
          { ts: NOW - 120_000, values: { water_level_cm: 10 } },
          { ts: NOW - 60_000, seq: 7, values: { water_level_cm: 31, rssi_dbm: -97 } },
        ]),
        water,
      );
      expect(messages(r)).toStrictEqual([
        { channel: 'telemetry', ts: NOW - 120_000, values: { water_level_cm: 10 } },
        { channel: 'telemetry', ts: NOW - 60_000, seq: 7, values: { water_level_cm: 31, rssi_dbm: -97 } },
      ]);
    });

    it('should reject an unknown metric and name it', () => {
      rejected(decodeUplink('telemetry', json({ values: { water_level_cm: 1, pm25_ugm3: 3 } }), water), 'unknown_metric', /pm25_ugm3/);
    });

    it('should not mistake Object.prototype keys for metrics', () => {
      rejected(decodeUplink('telemetry', '{"values":{"constructor":1}}', water), 'unknown_metric', /constructor/);
      rejected(decodeUplink('telemetry', '{"values":{"__proto__":1}}', water), 'unknown_metric', /__proto__/);
    });

    it('should reject a value of the wrong kind as schema', () => {
      rejected(decodeUplink('telemetry', json({ values: { water_level_cm: '12' } }), water), 'schema', /water_level_cm: expected number, got string/);
      rejected(decodeUplink('telemetry', json({ values: { alarm: 1 } }), smoke), 'schema', /alarm: expected boolean/);
      rejected(decodeUplink('telemetry', json({ values: { water_level_cm: { v: 1 } } }), water), 'schema', /\/values\/water_level_cm/);
    });

    it('should reject a value outside the metric range', () => {
      rejected(decodeUplink('telemetry', json({ values: { water_level_cm: 1000.5 } }), water), 'out_of_range', /water_level_cm: 1000.5 cm is outside -50..1000/);
      rejected(decodeUplink('telemetry', json({ values: { battery_pct: -1 } }), water), 'out_of_range', /battery_pct/);
    });

    it('should accept the range bounds themselves', () => {
      expect(messages(decodeUplink('telemetry', json({ values: { water_level_cm: -50, rssi_dbm: -140 } }), water))).toHaveLength(1);
      expect(messages(decodeUplink('telemetry', json({ values: { water_level_cm: 1000, rssi_dbm: 0 } }), water))).toHaveLength(1);
    });

    it('should reject empty arrays and empty values', () => {
      rejected(decodeUplink('telemetry', '[]', water), 'empty');
      rejected(decodeUplink('telemetry', json({ values: {} }), water), 'empty', /\/values/);
      rejected(decodeUplink('telemetry', json([{ values: { water_level_cm: 1 } }, { values: {} }]), water), 'empty', /^\/1\/values/);
    });

    it('should reject the whole array when one item is bad, naming its index', () => {
      rejected(
        decodeUplink('telemetry', json([{ values: { water_level_cm: 1 } }, { values: { water_level_cm: 2 } }, { values: { water_level_cm: 9999 } }]), water),
        'out_of_range',
        /^\/2\/values\/water_level_cm/,
      );
    });

    it('should reject a negative or fractional seq', () => {
      rejected(decodeUplink('telemetry', json({ seq: -1, values: { water_level_cm: 1 } }), water), 'out_of_range', /\/seq/);
      rejected(decodeUplink('telemetry', json({ seq: 1.5, values: { water_level_cm: 1 } }), water), 'schema', /\/seq/);
    });

    it('should accept unknown top-level fields (the contract grows additively)', () => {
      expect(messages(decodeUplink('telemetry', json({ fw: '2.1.0', values: { water_level_cm: 1 } }), water))).toEqual([
        { channel: 'telemetry', ts: NOW, values: { water_level_cm: 1 } },
      ]);
    });
  });

  describe('ts', () => {
    const at = (ts: unknown) => decodeUplink('event', json({ ts, type: 'tamper' }), water);

    it('should use receivedAt when ts is absent', () => {
      expect(messages(decodeUplink('event', json({ type: 'tamper' }), water))[0]?.ts).toBe(NOW);
    });

    it('should take epoch milliseconds', () => {
      expect(messages(at(NOW - 1234))[0]?.ts).toBe(NOW - 1234);
    });

    it('should take ISO-8601 with Z or an offset', () => {
      expect(messages(at('2024-05-31T23:59:30Z'))[0]?.ts).toBe(NOW - 30_000);
      expect(messages(at('2024-06-01T07:59:30.250+08:00'))[0]?.ts).toBe(NOW - 29_750);
    });

    it('should reject a ts too far in the future', () => {
      rejected(at(NOW + 24 * 3600_000 + 1), 'ts_future', /\/ts/);
      expect(messages(at(NOW + 24 * 3600_000))[0]?.ts).toBe(NOW + 24 * 3600_000);
      rejected(decodeUplink('event', json({ ts: NOW + 60_001, type: 'tamper' }), { ...water, maxFutureMs: 60_000 }), 'ts_future');
    });

    it('should reject invalid timestamps', () => {
      for (const ts of ['yesterday', '2024-06-01T08:00:00', '2024-02-30T00:00:00Z', 1717200000, true, null, 'Sat, 01 Jun 2024 00:00:00 GMT']) {
        rejected(at(ts), ts === true || ts === null ? 'schema' : 'ts_invalid');
      }
    });
  });

  describe('parseTs', () => {
    it('should resolve absent, epoch ms and ISO-8601 (extended and basic)', () => {
      expect(parseTs(undefined, NOW)).toBe(NOW);
      expect(parseTs(NOW + 0.9, 0)).toBe(NOW);
      expect(parseTs('2024-06-01T00:00:00Z', 0)).toBe(NOW);
      expect(parseTs('2024-06-01 08:00:00+0800', 0)).toBe(NOW);
      expect(parseTs('20240601T000000Z', 0)).toBe(NOW);
      expect(parseTs('2024-06-01T00:00:00.123456789Z', 0)).toBe(NOW + 123);
    });

    it('should return null for what is not a timestamp', () => {
      for (const ts of [null, '', 'now', Number.NaN, Infinity, -1, 1717200000, '2024-13-01T00:00:00Z', '2024-06-01T24:00:00Z', '2024-06-01', {}]) {
        expect(parseTs(ts, NOW)).toBeNull();
      }
    });
  });

  describe('event', () => {
    it('should decode type, severity and data', () => {
      const r = decodeUplink('event', json({ ts: NOW - 1000, seq: 3, type: 'smoke_alarm', severity: 'critical', data: { smoke_obscuration_pct_per_m: 12.4 } }), smoke);
      expect(r).toStrictEqual({
        ok: true,
        messages: [{ channel: 'event', ts: NOW - 1000, seq: 3, type: 'smoke_alarm', severity: 'critical', data: { smoke_obscuration_pct_per_m: 12.4 } }],
      });
    });

    it('should reject an unknown severity and list the allowed ones', () => {
      rejected(decodeUplink('event', json({ type: 'fault', severity: 'fatal' }), smoke), 'schema', /\/severity: .*one of critical, major, minor, warning, info/);
    });

    it('should reject a missing type and a non-object data', () => {
      rejected(decodeUplink('event', json({ severity: 'info' }), smoke), 'schema', /\/type/);
      rejected(decodeUplink('event', json({ type: 'fault', data: [1, 2] }), smoke), 'schema', /\/data/);
      rejected(decodeUplink('event', json({ type: 'x'.repeat(65) }), smoke), 'schema', /\/type/);
    });
  });

  describe('alert', () => {
    it('should decode a camera alert with a base64 JPEG snapshot', () => {
      const objects = [{ label: 'person', score: 0.91, box: [120, 80, 260, 400] }];
      const r = decodeUplink(
        'alert',
        json({ ts: NOW - 2000, seq: 9, type: 'street_vending', confidence: 0.83, snapshot: JPEG_B64, snapshotUrl: 'https://nvr.local/snap/9.jpg', objects }),
        camera,
      );
      const [msg] = messages(r);
      expect(msg).toEqual({
        channel: 'alert',
        ts: NOW - 2000,
        seq: 9,
        type: 'street_vending',
        confidence: 0.83,
        snapshot: expect.any(Uint8Array),
        snapshotUrl: 'https://nvr.local/snap/9.jpg',
        objects,
      });
      expect(msg?.channel === 'alert' && Array.from(msg.snapshot!)).toEqual(Array.from(JPEG_BYTES));
    });

    it('should accept a data: URL snapshot and unknown alert types', () => {
      const [msg] = messages(decodeUplink('alert', json({ type: 'dog_off_leash', snapshot: `data:image/jpeg;base64,${JPEG_B64}` }), camera));
      expect(msg?.channel === 'alert' && msg.type).toBe('dog_off_leash');
      expect(msg?.channel === 'alert' && Array.from(msg.snapshot!)).toEqual(Array.from(JPEG_BYTES));
    });

    it('should reject a snapshot that is not a JPEG', () => {
      rejected(decodeUplink('alert', json({ type: 'fire', snapshot: PNG_B64 }), camera), 'bad_image', /\/snapshot: not a JPEG/);
      rejected(decodeUplink('alert', json({ type: 'fire', snapshot: b64(GIF_BYTES) }), camera), 'bad_image');
      rejected(decodeUplink('alert', json({ type: 'fire', snapshot: '/9j/4AAQ!!!*' }), camera), 'bad_image', /base64/);
    });

    it('should reject a confidence outside 0..1 and a non-http snapshotUrl', () => {
      rejected(decodeUplink('alert', json({ type: 'fire', confidence: 83 }), camera), 'out_of_range', /\/confidence/);
      rejected(decodeUplink('alert', json({ type: 'fire', snapshotUrl: 'javascript:alert(1)' }), camera), 'schema', /\/snapshotUrl/);
    });
  });

  describe('location', () => {
    it('should decode a handheld fix', () => {
      const r = decodeUplink('location', json({ ts: '2024-05-31T23:59:55Z', seq: 100, lat: 31.2304, lon: 121.4737, acc: 8, alt: 12, spd: 1.4, hdg: 270, batt: 76, duty: true }), handheld);
      expect(r).toStrictEqual({
        ok: true,
        messages: [{ channel: 'location', ts: NOW - 5000, seq: 100, lat: 31.2304, lon: 121.4737, acc: 8, alt: 12, spd: 1.4, hdg: 270, batt: 76, duty: true }],
      });
    });

    it('should flatten a batch of buffered fixes', () => {
      const r = decodeUplink('location', bytes([{ ts: NOW - 10_000, lat: 31.23, lon: 121.47 }, { ts: NOW - 5000, lat: 31.2301, lon: 121.4702, acc: 5 }]), handheld);
      expect(messages(r)).toStrictEqual([
        { channel: 'location', ts: NOW - 10_000, lat: 31.23, lon: 121.47 },
        { channel: 'location', ts: NOW - 5000, lat: 31.2301, lon: 121.4702, acc: 5 },
      ]);
    });

    it('should reject out-of-range coordinates and null island', () => {
      rejected(decodeUplink('location', json({ lat: 91, lon: 121 }), handheld), 'out_of_range', /\/lat/);
      rejected(decodeUplink('location', json({ lat: 31, lon: -180.1 }), handheld), 'out_of_range', /\/lon/);
      rejected(decodeUplink('location', json({ lat: 0, lon: 0 }), handheld), 'out_of_range', /\(0, 0\)/);
      rejected(decodeUplink('location', json([{ lat: 31.2, lon: 121.4 }, { lat: 0, lon: 0 }]), handheld), 'out_of_range', /^\/1/);
    });

    it('should reject missing coordinates and an empty batch', () => {
      rejected(decodeUplink('location', json({ lat: 31.2 }), handheld), 'schema', /\/lon/);
      rejected(decodeUplink('location', '[]', handheld), 'empty');
    });
  });

  describe('report', () => {
    it('should decode a worker report with JPEG and PNG photos', () => {
      const body = { reportId: 'R-HH07-0001', ts: NOW - 60_000, category: '0101', description: '人行道井盖破损', lat: 31.2304, lon: 121.4737, photos: [JPEG_B64, PNG_B64] };
      const [msg] = messages(decodeUplink('report', json(body), handheld));
      expect(msg).toEqual({ ...body, channel: 'report', photos: [expect.any(Uint8Array), expect.any(Uint8Array)] });
      expect(msg?.channel === 'report' && msg.photos!.map((p) => Array.from(p))).toEqual([Array.from(JPEG_BYTES), Array.from(PNG_BYTES)]);
    });

    it('should reject a photo that is not an image', () => {
      rejected(decodeUplink('report', json({ reportId: 'R1', category: '0101', lat: 31.2, lon: 121.4, photos: [JPEG_B64, b64(GIF_BYTES)] }), handheld), 'bad_image', /\/photos\/1/);
    });

    it('should reject a missing reportId, too many photos and null island', () => {
      rejected(decodeUplink('report', json({ category: '0101', lat: 31.2, lon: 121.4 }), handheld), 'schema', /\/reportId/);
      rejected(decodeUplink('report', json({ reportId: 'R1', category: '0101', lat: 31.2, lon: 121.4, photos: Array(10).fill(JPEG_B64) }), handheld), 'schema', /\/photos/);
      rejected(decodeUplink('report', json({ reportId: 'R1', category: '0101', lat: 0, lon: 0 }), handheld), 'out_of_range');
    });
  });

  describe('case', () => {
    it('should decode case progress with a note and a photo', () => {
      const [msg] = messages(decodeUplink('case', json({ caseId: 'C-20240601-0007', action: 'resolve', ts: NOW - 1000, note: '已清理', photos: [JPEG_B64] }), handheld));
      expect(msg).toEqual({ channel: 'case', ts: NOW - 1000, caseId: 'C-20240601-0007', action: 'resolve', note: '已清理', photos: [expect.any(Uint8Array)] });
    });

    it('should decode each case action', () => {
      for (const action of ['accept', 'decline', 'arrive', 'resolve'] as const) {
        expect(messages(decodeUplink('case', json({ caseId: 'C1', action }), handheld))).toStrictEqual([{ channel: 'case', ts: NOW, caseId: 'C1', action }]);
      }
    });

    it('should reject an unknown action', () => {
      rejected(decodeUplink('case', json({ caseId: 'C1', action: 'close' }), handheld), 'schema', /\/action/);
    });
  });

  describe('status', () => {
    it('should decode online/offline and duty', () => {
      expect(decodeUplink('status', json({ online: false }), water)).toStrictEqual({ ok: true, messages: [{ channel: 'status', ts: NOW, online: false }] });
      expect(messages(decodeUplink('status', json({ online: true, duty: true, ts: NOW - 1 }), handheld))).toStrictEqual([{ channel: 'status', ts: NOW - 1, online: true, duty: true }]);
    });

    it('should reject a non-boolean online', () => {
      rejected(decodeUplink('status', json({ online: 'yes' }), water), 'schema', /\/online/);
    });
  });

  describe('rejections', () => {
    it('should reject a channel the device type does not publish on, before parsing', () => {
      rejected(decodeUplink('location', json({ lat: 31.2, lon: 121.4 }), water), 'channel_not_allowed', /sensor.water_level does not publish on location/);
      rejected(decodeUplink('alert', 'not json at all', handheld), 'channel_not_allowed');
      rejected(decodeUplink('cmd' as never, '{}', handheld), 'channel_not_allowed');
      rejected(decodeUplink('status', '{}', { ...water, deviceType: 'toaster' as never }), 'channel_not_allowed', /toaster/);
    });

    it('should reject payloads that are not JSON or not UTF-8', () => {
      rejected(decodeUplink('telemetry', '{"values":', water), 'not_json');
      rejected(decodeUplink('telemetry', new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]), water), 'not_json', /UTF-8/);
    });

    it('should reject an empty payload', () => {
      rejected(decodeUplink('status', '', water), 'empty');
      rejected(decodeUplink('status', new Uint8Array(0), water), 'empty');
    });

    it('should reject JSON of the wrong shape as schema', () => {
      for (const payload of ['null', '42', '"x"', '[1]', '{"value":{}}']) rejected(decodeUplink('telemetry', payload, water), 'schema');
    });

    it('should accept a Buffer payload as MQTT delivers it', () => {
      expect(messages(decodeUplink('status', Buffer.from('{"online":true}'), water))).toStrictEqual([{ channel: 'status', ts: NOW, online: true }]);
    });
  });
});

describe('decodeValue', () => {
  it('should decode an already parsed body like decodeUplink does', () => {
    expect(decodeValue('telemetry', { values: { water_level_cm: 3 } }, water)).toEqual(decodeUplink('telemetry', json({ values: { water_level_cm: 3 } }), water));
    rejected(decodeValue('telemetry', { values: { nope: 3 } }, water), 'unknown_metric');
  });
});

describe('decodeCommand', () => {
  it('should accept dispatch and cancel commands', () => {
    const dispatch = {
      cmdId: 'cmd-1',
      type: 'dispatch',
      ts: NOW,
      case: { id: 'c1', code: 'SH-20240601-0007', title: '积水', category: '0203', lat: 31.23, lon: 121.47, deadline: NOW + 3600_000 },
    };
    expect(decodeCommand(json(dispatch))).toEqual(dispatch);
    expect(decodeCommand(bytes({ cmdId: 'cmd-2', type: 'cancel', ts: NOW, caseId: 'c1' }))).toEqual({ cmdId: 'cmd-2', type: 'cancel', ts: NOW, caseId: 'c1' });
  });

  it('should return null for anything else', () => {
    expect(decodeCommand('{')).toBeNull();
    expect(decodeCommand(json({ cmdId: 'x', type: 'reboot', ts: NOW }))).toBeNull();
    expect(decodeCommand(json({ cmdId: 'x', type: 'cancel', ts: NOW }))).toBeNull();
  });
});

describe('text and numbers PostgreSQL cannot store', () => {
  it('should refuse U+0000 in any string, key or nested value, with bad_text and the path', () => {
    rejected(decodeUplink('event', '{"type":"tamper","data":{"note":"a\\u0000b"}}', smoke), 'bad_text', /^\/data\/note: contains U\+0000/);
    rejected(decodeUplink('event', '{"type":"tamper","data":{"k\\u0000":1}}', smoke), 'bad_text', /key contains U\+0000/);
    rejected(decodeUplink('alert', '{"type":"fire","objects":[{"label":["x","\\u0000"]}]}', camera), 'bad_text', /^\/objects\/0\/label\/1/);
    rejected(decodeUplink('case', '{"caseId":"c1","action":"resolve","note":"done\\u0000"}', handheld), 'bad_text', /^\/note/);
    rejected(decodeUplink('event', '{"type":"tamp\\u0000er"}', smoke), 'bad_text', /^\/type/);
  });

  it('should refuse lone surrogates but keep proper pairs and escaped backslashes', () => {
    rejected(decodeUplink('event', '{"type":"tamper","data":{"s":"\\ud800"}}', smoke), 'bad_text', /lone surrogate/);
    rejected(decodeUplink('event', '{"type":"tamper","data":{"s":"x\\udc00y"}}', smoke), 'bad_text', /lone surrogate/);
    rejected(decodeValue('event', { type: 'tamper', data: { s: 'a\ud83d' } }, smoke), 'bad_text', /lone surrogate/);
    const ok = messages(decodeUplink('event', '{"type":"tamper","data":{"s":"\\ud83d\\ude92 \\\\u0000 \\u00e9"}}', smoke));
    expect(ok[0]).toMatchObject({ data: { s: '🚒 \\u0000 é' } });
  });

  it('should refuse a seq beyond bigint-safe integers and an accuracy beyond its column', () => {
    rejected(decodeUplink('telemetry', json({ seq: 2 ** 63, values: { water_level_cm: 1 } }), water), 'out_of_range', /\/seq/);
    rejected(decodeUplink('location', json({ lat: 30, lon: 104, acc: 1e39 }), handheld), 'out_of_range', /\/acc/);
    rejected(decodeUplink('telemetry', '{"values":{"water_level_cm":1e400}}', water), 'schema', /water_level_cm/);
  });
});
