import { describe, expect, it } from 'vitest';
import { AMAP_DISTANCE_URL, amapLegs, buildDistanceUrl, parseDistanceResponse } from '../../src/dispatch/amap.js';
import { loadDispatchConfig, parseAutoDispatch } from '../../src/dispatch/dispatch.config.js';
import { haversineM, wgs84ToGcj02 } from '@gridlink/devices/geo';
import { LocationFlagger } from '../../src/dispatch/location.flagger.js';
import { osmandToLocation, parseOsmandTime } from '../../src/dispatch/osmand.routes.js';
import { findStops } from '../../src/dispatch/track.js';

const loc = (ts: number, lat: number, lon: number) => ({ channel: 'location' as const, ts, lat, lon });

describe('LocationFlagger', () => {
  const T = 1_800_000_000_000;
  const make = () => new LocationFlagger({ maxSpeedMps: 70, maxFutureS: 120, maxFixAgeS: 900 }, () => T);

  it('should flag a 50 km jump in one second and keep the reference fix', () => {
    const f = make();
    expect(f.check('d', loc(T - 1000, 30.6, 104))).toBeNull();
    expect(f.check('d', loc(T, 31.05, 104))).toBe('jump');
    expect(f.check('d', loc(T + 1000, 30.6001, 104))).toBeNull();
  });

  it('should accept a fast but plausible move (60 m/s) and reject 80 m/s', () => {
    const f = make();
    f.check('d', loc(T - 20_000, 30.6, 104));
    expect(f.check('d', loc(T - 10_000, 30.6 + 600 / 111_195, 104))).toBeNull();
    expect(f.check('d', loc(T, 30.6 + 1400 / 111_195, 104))).toBe('jump');
  });

  it('should flag future, stale and out-of-order fixes but not a re-sent identical fix', () => {
    const f = make();
    expect(f.check('d', loc(T + 121_000, 30.6, 104))).toBe('future');
    expect(f.check('d', loc(T - 901_000, 30.6, 104))).toBe('stale');
    expect(f.check('d', loc(T - 5000, 30.6, 104))).toBeNull();
    expect(f.check('d', loc(T - 5000, 30.6, 104))).toBeNull();
    expect(f.check('d', loc(T - 6000, 30.6, 104))).toBe('stale');
  });

  it('should re-anchor after three agreeing jumps (the reference itself was wrong)', () => {
    const f = make();
    f.check('d', loc(T - 60_000, 10, 10)); // a bad first fix
    expect(f.check('d', loc(T - 30_000, 30.6, 104))).toBe('jump');
    expect(f.check('d', loc(T - 20_000, 30.6001, 104))).toBe('jump');
    expect(f.check('d', loc(T - 10_000, 30.6002, 104))).toBeNull();
    expect(f.check('d', loc(T, 30.6003, 104))).toBeNull();
  });
});

describe('AMap distance', () => {
  it('should build one batched request in GCJ-02 with the key, walking type and every origin', () => {
    const url = new URL(buildDistanceUrl('KEY', [{ lat: 30.61, lon: 104.005 }, { lat: 30.62, lon: 104.01 }], { lat: 30.6, lon: 104.0 }));
    expect(`${url.origin}${url.pathname}`).toBe(AMAP_DISTANCE_URL);
    expect(url.searchParams.get('key')).toBe('KEY');
    expect(url.searchParams.get('type')).toBe('3');
    const origins = url.searchParams.get('origins')!.split('|');
    expect(origins).toHaveLength(2);
    const g = wgs84ToGcj02(30.61, 104.005);
    expect(origins[0]).toBe(`${g.lon.toFixed(6)},${g.lat.toFixed(6)}`);
    // GCJ-02 is offset by a few hundred metres in Chengdu.
    const off = haversineM(30.61, 104.005, g.lat, g.lon);
    expect(off).toBeGreaterThan(100);
    expect(off).toBeLessThan(800);
    expect(() => buildDistanceUrl('K', [], { lat: 0, lon: 0 })).toThrow(RangeError);
  });

  it('should leave coordinates outside China untouched', () => {
    expect(wgs84ToGcj02(48.85, 2.35)).toEqual({ lat: 48.85, lon: 2.35 });
  });

  it('should parse results by origin id and refuse a failed status', () => {
    const legs = parseDistanceResponse({ status: '1', info: 'OK', results: [{ origin_id: '2', dest_id: '1', distance: '1200', duration: '900' }] }, 2);
    expect(legs).toEqual([null, { distanceM: 1200, durationS: 900 }]);
    expect(() => parseDistanceResponse({ status: '0', info: 'INVALID_USER_KEY' }, 1)).toThrow(/INVALID_USER_KEY/);
  });

  it('should make exactly one call through the injected fetch', async () => {
    const urls: string[] = [];
    const legs = await amapLegs({
      key: 'K',
      origins: [{ lat: 30.61, lon: 104 }, { lat: 30.62, lon: 104 }],
      dest: { lat: 30.6, lon: 104 },
      timeoutMs: 500,
      fetch: async (url) => {
        urls.push(url);
        return { ok: true, status: 200, json: async () => ({ status: '1', results: [{ origin_id: '1', distance: '1500', duration: '1100' }, { origin_id: '2', distance: '2600', duration: '2000' }] }) };
      },
    });
    expect(urls).toHaveLength(1);
    expect(legs.map((l) => l?.durationS)).toEqual([1100, 2000]);
  });
});

describe('OsmAnd parameters', () => {
  it('should read epoch seconds, epoch ms and dates', () => {
    expect(parseOsmandTime('1700000000')).toBe(1_700_000_000_000);
    expect(parseOsmandTime('1700000000123')).toBe(1_700_000_000_123);
    expect(parseOsmandTime('2026-11-26 09:00:00')).toBe(Date.UTC(2026, 10, 26, 9));
    expect(parseOsmandTime('2026-11-26T09:00:00+08:00')).toBe(Date.UTC(2026, 10, 26, 1));
    expect(parseOsmandTime('soon')).toBeNaN();
  });

  it('should map query parameters, converting knots and keeping only sane values', () => {
    const { deviceId, item } = osmandToLocation({ id: 'hh-1', lat: '30.61', lon: '104.01', speed: '10', bearing: '-1', accuracy: '12', batt: '80', altitude: '500' }, undefined);
    expect(deviceId).toBe('hh-1');
    expect(item).toEqual({ lat: 30.61, lon: 104.01, spd: 5.144, acc: 12, batt: 80, alt: 500 });
    expect(osmandToLocation({ id: 'x', location: '30.1,104.2' }, undefined).item).toMatchObject({ lat: 30.1, lon: 104.2 });
  });
});

describe('dispatch settings', () => {
  it('should list every bad setting at once', () => {
    expect(() => loadDispatchConfig({ GRIDLINK_DISPATCH_MAX_SPEED_MPS: 'fast', GRIDLINK_DISPATCH_TRAVEL_MODE: 'car', GRIDLINK_DISPATCH_AUTO: 'fire:hot' })).toThrow(
      /MAX_SPEED_MPS=fast[\s\S]*TRAVEL_MODE=car[\s\S]*unknown severity "hot"/,
    );
    expect(parseAutoDispatch('fire:critical, flooding')).toEqual([{ category: 'fire', minSeverity: 'critical' }, { category: 'flooding', minSeverity: null }]);
  });
});

describe('findStops', () => {
  it('should find a stop of at least three minutes within 50 m', () => {
    const pts = [
      ...Array.from({ length: 10 }, (_, i) => ({ ts: i * 10_000, lat: 30.6 + i * 0.001, lon: 104 })),
      ...Array.from({ length: 25 }, (_, i) => ({ ts: 100_000 + i * 10_000, lat: 30.62, lon: 104 + (i % 2) * 0.0001 })),
    ];
    const stops = findStops(pts);
    expect(stops).toHaveLength(1);
    expect(stops[0]).toMatchObject({ from: 100_000, to: 340_000, durationS: 240 });
  });
});
