/** Distances and camera coverage on WGS-84 (spherical earth: metres-level error is fine at city scale). */
import { bearingDeg, haversineM } from '@gridlink/devices/geo';

export { bearingDeg };

/** Great-circle metres: the contract's one haversine, under video's name. */
export const distanceM = haversineM;

export interface Placed {
  lat: number;
  lon: number;
  heading: number | null;
  fov: number | null;
}

/**
 * true: heading and fov are known and the point lies inside the view cone;
 * false: known and outside; null: unknown (no heading/fov).
 * A point within 3 m counts as covered (the camera's own alert position).
 */
export function covers(cam: Placed, lat: number, lon: number, dist = distanceM(cam.lat, cam.lon, lat, lon)): boolean | null {
  if (cam.heading === null || cam.fov === null) return null;
  if (dist < 3 || cam.fov >= 360) return true;
  const b = bearingDeg(cam.lat, cam.lon, lat, lon);
  const diff = Math.abs(((b - cam.heading + 540) % 360) - 180);
  return diff <= cam.fov / 2;
}

/** Rank for "covering first": covering, then unknown, then known-not-covering; nearest first inside each. */
export function coverageRank(c: boolean | null): number {
  return c === true ? 0 : c === null ? 1 : 2;
}
