import { describe, expect, it } from 'vitest';
import { bearingDeg, flatRing, gcj02ToWgs84, haversineM, pointInRing, wgs84ToGcj02 } from '../src/geo.js';

describe('geo', () => {
  it('should give compass bearings and great-circle distances', () => {
    expect(bearingDeg(30, 104, 30.01, 104)).toBeCloseTo(0, 6);
    expect(bearingDeg(30, 104, 30, 104.01)).toBeCloseTo(90, 1);
    expect(bearingDeg(30, 104, 29.99, 104)).toBeCloseTo(180, 6);
    expect(bearingDeg(30, 104, 30, 103.99)).toBeCloseTo(270, 1);
    expect(haversineM(30, 104, 30.001, 104)).toBeCloseTo(111.2, 0);
    expect(haversineM(30.67, 104.06, 30.67, 104.06)).toBe(0);
  });

  it('should put a point on an edge shared by two grids in exactly one of them', () => {
    const west = flatRing([[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]);
    const east = flatRing([[1, 0], [2, 0], [2, 1], [1, 1], [1, 0]]);
    for (const y of [0, 0.25, 0.5, 0.999]) {
      const inside = [pointInRing(west, 1, y), pointInRing(east, 1, y)].filter(Boolean);
      expect(inside).toHaveLength(1);
    }
    expect(pointInRing(west, 0.5, 0.5)).toBe(true);
    expect(pointInRing(west, 1.5, 0.5)).toBe(false);
    expect(pointInRing(west, 0.5, 1.5)).toBe(false);
  });

  it('should shift WGS-84 to GCJ-02 by a few hundred metres in China, not elsewhere, and invert it', () => {
    const g = wgs84ToGcj02(30.61, 104.005);
    const shift = haversineM(30.61, 104.005, g.lat, g.lon);
    expect(shift).toBeGreaterThan(100);
    expect(shift).toBeLessThan(1000);
    expect(wgs84ToGcj02(48.85, 2.35)).toEqual({ lat: 48.85, lon: 2.35 });
    const back = gcj02ToWgs84(g.lat, g.lon);
    expect(haversineM(back.lat, back.lon, 30.61, 104.005)).toBeLessThan(0.01);
  });
});
