/**
 * Optional road ETA from AMap's distance API (restapi.amap.com/v3/distance):
 * one batched request for up to 100 origins to one destination. AMap works in
 * GCJ-02, so coordinates are converted on the way out only. Any failure or
 * timeout leaves the offline haversine ETA in place; without a key the hub
 * never touches the network.
 */
import { wgs84ToGcj02 } from '@gridlink/devices/geo';

export const AMAP_DISTANCE_URL = 'https://restapi.amap.com/v3/distance';
/** AMap's limit on origins per request. */
export const AMAP_MAX_ORIGINS = 100;

export interface LatLon {
  lat: number;
  lon: number;
}

export interface RoadLeg {
  distanceM: number;
  durationS: number;
}

const fmt = (p: LatLon): string => {
  const g = wgs84ToGcj02(p.lat, p.lon);
  return `${g.lon.toFixed(6)},${g.lat.toFixed(6)}`;
};

/** type 3 = walking route distance (AMap serves it within 5 km); 1 = driving. */
export function buildDistanceUrl(key: string, origins: LatLon[], dest: LatLon, type: 1 | 3 = 3): string {
  if (origins.length === 0 || origins.length > AMAP_MAX_ORIGINS) throw new RangeError(`AMap takes 1..${AMAP_MAX_ORIGINS} origins, got ${origins.length}`);
  const q = new URLSearchParams({ key, origins: origins.map(fmt).join('|'), destination: fmt(dest), type: String(type), output: 'json' });
  return `${AMAP_DISTANCE_URL}?${q.toString()}`;
}

/** Legs by origin index; null where AMap gave no usable result. Throws on a failed request. */
export function parseDistanceResponse(body: unknown, count: number): Array<RoadLeg | null> {
  const b = body as { status?: string; info?: string; results?: Array<{ origin_id?: string; distance?: string; duration?: string }> };
  if (b?.status !== '1' || !Array.isArray(b.results)) throw new Error(`AMap distance failed: ${b?.info ?? 'no results'}`);
  const out: Array<RoadLeg | null> = new Array(count).fill(null);
  for (const r of b.results) {
    const i = Number(r.origin_id) - 1;
    const d = Number(r.distance);
    const t = Number(r.duration);
    if (Number.isInteger(i) && i >= 0 && i < count && Number.isFinite(d) && Number.isFinite(t)) out[i] = { distanceM: d, durationS: t };
  }
  return out;
}

export type Fetch = (url: string, init: { signal: AbortSignal }) => Promise<{ ok: boolean; status: number; json(): Promise<unknown> }>;

export async function amapLegs(opts: { key: string; origins: LatLon[]; dest: LatLon; timeoutMs: number; fetch?: Fetch }): Promise<Array<RoadLeg | null>> {
  const f: Fetch = opts.fetch ?? (globalThis.fetch as unknown as Fetch);
  const res = await f(buildDistanceUrl(opts.key, opts.origins.slice(0, AMAP_MAX_ORIGINS), opts.dest), { signal: AbortSignal.timeout(opts.timeoutMs) });
  if (!res.ok) throw new Error(`AMap distance HTTP ${res.status}`);
  const legs = parseDistanceResponse(await res.json(), Math.min(opts.origins.length, AMAP_MAX_ORIGINS));
  while (legs.length < opts.origins.length) legs.push(null);
  return legs;
}
