/**
 * Plane geometry for the district. The generator works in local metres
 * (x east, y north) around an origin and projects to WGS-84 with an
 * equirectangular approximation, exact enough over a few kilometres and
 * affine, so tiling properties proven in metres hold in degrees too.
 */
import { flatRing, pointInRing as inFlatRing } from '@gridlink/devices/geo';

export type Pt = readonly [number, number];
export type Ring = Pt[];

const M_PER_DEG_LAT = 111_320;

export interface Projection {
  toLonLat(p: Pt): [number, number];
  toLocal(lon: number, lat: number): [number, number];
}

export function projection(originLat: number, originLon: number): Projection {
  const mLon = M_PER_DEG_LAT * Math.cos((originLat * Math.PI) / 180);
  return {
    toLonLat: ([x, y]) => [round7(originLon + x / mLon), round7(originLat + y / M_PER_DEG_LAT)],
    toLocal: (lon, lat) => [(lon - originLon) * mLon, (lat - originLat) * M_PER_DEG_LAT],
  };
}

/** 7 decimals is ~1 cm: enough, and shared vertices stay bit-identical after rounding. */
export function round7(v: number): number {
  return Math.round(v * 1e7) / 1e7;
}

/** Signed area (shoelace); positive for counter-clockwise. Ring without the closing point. */
export function signedArea(ring: readonly Pt[]): number {
  let a = 0;
  for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) a += ring[j]![0] * ring[i]![1] - ring[i]![0] * ring[j]![1];
  return a / 2;
}

/** The contract's half-open point-in-ring (a point on a shared edge belongs to one tile), on `[x, y]` pairs. */
export function pointInRing(p: Pt, ring: readonly Pt[]): boolean {
  return inFlatRing(flatRing(ring), p[0], p[1]);
}

export function bbox(ring: readonly Pt[]): [number, number, number, number] {
  let minX = Infinity, minY = Infinity, maxX = -Infinity, maxY = -Infinity;
  for (const [x, y] of ring) {
    if (x < minX) minX = x;
    if (y < minY) minY = y;
    if (x > maxX) maxX = x;
    if (y > maxY) maxY = y;
  }
  return [minX, minY, maxX, maxY];
}

export function centroid(ring: readonly Pt[]): [number, number] {
  let a = 0, cx = 0, cy = 0;
  for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
    const f = ring[j]![0] * ring[i]![1] - ring[i]![0] * ring[j]![1];
    a += f;
    cx += (ring[j]![0] + ring[i]![0]) * f;
    cy += (ring[j]![1] + ring[i]![1]) * f;
  }
  return [cx / (3 * a), cy / (3 * a)];
}

export function dist(a: Pt, b: Pt): number {
  return Math.hypot(a[0] - b[0], a[1] - b[1]);
}

export { bearingDeg, haversineM } from '@gridlink/devices/geo';

/** Moves a WGS-84 point by metres east/north (small offsets). */
export function offsetLonLat(lon: number, lat: number, dxM: number, dyM: number): [number, number] {
  return [lon + dxM / (M_PER_DEG_LAT * Math.cos((lat * Math.PI) / 180)), lat + dyM / M_PER_DEG_LAT];
}
