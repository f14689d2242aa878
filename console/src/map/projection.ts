/**
 * WGS-84 → Web Mercator world units ([0,1]², y down) → screen pixels. Pure
 * functions: the canvas layers, hit tests and tile math all go through here,
 * and console/test/projection.test.ts pins them down.
 *
 * Coordinates are stored and sent as WGS-84 (CONTRACT 3); a GCJ-02 base map
 * (AMap, Tencent) needs every drawn point shifted, so the display datum is
 * applied once when a point enters world units, never to stored data.
 */
import { wgs84ToGcj02 } from '@gridlink/devices/geo';

export const TILE = 256;
const MAX_LAT = 85.05112878;

export interface View {
  /** Centre in world units. */
  cx: number;
  cy: number;
  zoom: number;
  width: number;
  height: number;
}

export type Datum = 'wgs84' | 'gcj02';

export function lonLatToWorld(lon: number, lat: number, out: [number, number] = [0, 0]): [number, number] {
  const la = Math.max(-MAX_LAT, Math.min(MAX_LAT, lat));
  const s = Math.sin((la * Math.PI) / 180);
  out[0] = (lon + 180) / 360;
  out[1] = 0.5 - Math.log((1 + s) / (1 - s)) / (4 * Math.PI);
  return out;
}

export function worldToLonLat(x: number, y: number): [number, number] {
  const lon = x * 360 - 180;
  const lat = (Math.atan(Math.sinh(Math.PI * (1 - 2 * y))) * 180) / Math.PI;
  return [lon, lat];
}

/** WGS-84 → the datum of the base map, for display only. */
export function toDisplay(datum: Datum, lon: number, lat: number): [number, number] {
  if (datum === 'wgs84') return [lon, lat];
  const g = wgs84ToGcj02(lat, lon);
  return [g.lon, g.lat];
}

/** The base map's datum → WGS-84 (a point picked on screen); two fixed-point steps of the forward shift, well under a metre. */
export function fromDisplay(datum: Datum, lon: number, lat: number): [number, number] {
  if (datum === 'wgs84') return [lon, lat];
  let [wl, wa] = [lon, lat];
  for (let i = 0; i < 3; i++) {
    const [dl, da] = toDisplay(datum, wl, wa);
    wl -= dl - lon;
    wa -= da - lat;
  }
  return [wl, wa];
}

/** Display-datum world coordinates of a WGS-84 point. */
export function project(datum: Datum, lon: number, lat: number, out: [number, number] = [0, 0]): [number, number] {
  if (datum === 'wgs84') return lonLatToWorld(lon, lat, out);
  const [dl, da] = toDisplay(datum, lon, lat);
  return lonLatToWorld(dl, da, out);
}

export const scaleOf = (zoom: number): number => TILE * 2 ** zoom;

export function worldToScreen(v: View, wx: number, wy: number, out: [number, number] = [0, 0]): [number, number] {
  const s = scaleOf(v.zoom);
  out[0] = (wx - v.cx) * s + v.width / 2;
  out[1] = (wy - v.cy) * s + v.height / 2;
  return out;
}

export function screenToWorld(v: View, sx: number, sy: number): [number, number] {
  const s = scaleOf(v.zoom);
  return [(sx - v.width / 2) / s + v.cx, (sy - v.height / 2) / s + v.cy];
}

export const MIN_ZOOM = 3;
export const MAX_ZOOM = 21;
const clampZoom = (z: number) => Math.max(MIN_ZOOM, Math.min(MAX_ZOOM, z));

/** Zoom by `factor` keeping the world point under (sx, sy) fixed. */
export function zoomAround(v: View, sx: number, sy: number, dz: number): View {
  const zoom = clampZoom(v.zoom + dz);
  const [wx, wy] = screenToWorld(v, sx, sy);
  const s = scaleOf(zoom);
  return { ...v, zoom, cx: wx - (sx - v.width / 2) / s, cy: wy - (sy - v.height / 2) / s };
}

export function pan(v: View, dx: number, dy: number): View {
  const s = scaleOf(v.zoom);
  return { ...v, cx: v.cx - dx / s, cy: v.cy - dy / s };
}

export interface WorldBounds {
  minX: number;
  minY: number;
  maxX: number;
  maxY: number;
}

export function emptyBounds(): WorldBounds {
  return { minX: Infinity, minY: Infinity, maxX: -Infinity, maxY: -Infinity };
}
export function extend(b: WorldBounds, x: number, y: number): void {
  if (x < b.minX) b.minX = x;
  if (y < b.minY) b.minY = y;
  if (x > b.maxX) b.maxX = x;
  if (y > b.maxY) b.maxY = y;
}

/** The view that shows `b` inside a width×height viewport with `pad` pixels to spare. */
export function fitBounds(b: WorldBounds, width: number, height: number, pad = 40, maxZoom = 18): View {
  if (!Number.isFinite(b.minX)) return { cx: 0.5, cy: 0.5, zoom: MIN_ZOOM, width, height };
  const w = Math.max(b.maxX - b.minX, 1e-9);
  const h = Math.max(b.maxY - b.minY, 1e-9);
  const s = Math.min((width - 2 * pad) / w, (height - 2 * pad) / h);
  const zoom = clampZoom(Math.min(maxZoom, Math.log2(Math.max(s, 1) / TILE)));
  return { cx: (b.minX + b.maxX) / 2, cy: (b.minY + b.maxY) / 2, zoom, width, height };
}

export interface TileRef {
  z: number;
  x: number;
  y: number;
  /** Screen rectangle. */
  sx: number;
  sy: number;
  size: number;
}

/** Tiles (at the integer zoom nearest below) that cover the view. */
export function visibleTiles(v: View, maxTileZoom = 18): TileRef[] {
  const z = Math.max(0, Math.min(maxTileZoom, Math.floor(v.zoom + 0.25)));
  const n = 2 ** z;
  const size = scaleOf(v.zoom) / n;
  const [x0, y0] = screenToWorld(v, 0, 0);
  const [x1, y1] = screenToWorld(v, v.width, v.height);
  const out: TileRef[] = [];
  // End edges are exclusive: a tile starting exactly at the right border is not visible.
  const tx0 = Math.floor(x0 * n), tx1 = Math.ceil(x1 * n) - 1;
  const ty0 = Math.max(0, Math.floor(y0 * n)), ty1 = Math.min(n - 1, Math.ceil(y1 * n) - 1);
  for (let ty = ty0; ty <= ty1; ty++) {
    for (let tx = tx0; tx <= tx1; tx++) {
      const [sx, sy] = worldToScreen(v, tx / n, ty / n);
      out.push({ z, x: ((tx % n) + n) % n, y: ty, sx, sy, size });
    }
  }
  return out;
}

/** Fills a tile URL template: {z} {x} {y} {s} ({-y} for TMS). */
export function tileUrl(template: string, t: { z: number; x: number; y: number }, subdomains = 'abc'): string {
  const subs = subdomains.length ? subdomains : 'a';
  const s = subs[(t.x + t.y) % subs.length] ?? '';
  return template
    .replace(/\{z\}/g, String(t.z))
    .replace(/\{x\}/g, String(t.x))
    .replace(/\{-y\}/g, String(2 ** t.z - 1 - t.y))
    .replace(/\{y\}/g, String(t.y))
    .replace(/\{s\}/g, s);
}

