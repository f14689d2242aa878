/** Distances and camera coverage on WGS-84 (spherical earth: metres-level error is fine at city scale). */
import { haversineM } from '../dispatch/geo.js';

const rad = (d: number) => (d * Math.PI) / 180;

/** Great-circle metres: the one haversine the hub has (dispatch/geo.ts), under video's name. */
export const distanceM = haversineM;

/** Initial bearing from 1 to 2, degrees clockwise from north in [0, 360). */
export function bearingDeg(lat1: number, lon1: number, lat2: number, lon2: number): number {
  const y = Math.sin(rad(lon2 - lon1)) * Math.cos(rad(lat2));
  const x = Math.cos(rad(lat1)) * Math.sin(rad(lat2)) - Math.sin(rad(lat1)) * Math.cos(rad(lat2)) * Math.cos(rad(lon2 - lon1));
  return ((Math.atan2(y, x) * 180) / Math.PI + 360) % 360;
}

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
