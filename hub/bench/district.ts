/**
 * What the live-load benchmarks share: a synthetic district (a 0.2° x 0.2°
 * square near Chengdu, about 22 x 19 km: 10 streets x 10 unit grids, ids
 * D / S{i} / G{i}-{j}), a seeded random source, and percentile summaries.
 */
import mqtt, { type MqttClient } from 'mqtt';

export const LAT0 = 30.55;
export const LON0 = 103.95;
export const SPAN = 0.2;

/** The district as the GeoJSON PUT /grids takes. */
export function gridsGeoJson() {
  const features: unknown[] = [];
  const sq = (x0: number, y0: number, w: number, h: number) => [[[x0, y0], [x0 + w, y0], [x0 + w, y0 + h], [x0, y0 + h], [x0, y0]]];
  const f = (id: string, level: string, parentId: string | null, x: number, y: number, w: number, h: number) =>
    features.push({ type: 'Feature', properties: { id, name: id, level, parentId }, geometry: { type: 'Polygon', coordinates: sq(x, y, w, h) } });
  f('D', 'district', null, LON0, LAT0, SPAN, SPAN);
  const s = SPAN / 10;
  for (let i = 0; i < 10; i++) {
    f(`S${i}`, 'street', 'D', LON0 + i * s, LAT0, s, SPAN);
    for (let j = 0; j < 10; j++) f(`G${i}-${j}`, 'grid', `S${i}`, LON0 + i * s, LAT0 + j * s, s, s);
  }
  return { type: 'FeatureCollection', features };
}

/** The unit grid of a point inside the district. */
export function gridOf(lat: number, lon: number): string {
  return `G${Math.min(9, Math.floor(((lon - LON0) / SPAN) * 10))}-${Math.min(9, Math.floor(((lat - LAT0) / SPAN) * 10))}`;
}

/** A seeded linear congruential source in [0, 1): the same district every run. */
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32);
}

export function pct(values: number[], p: number, digits = 3): number {
  if (values.length === 0) return 0;
  const s = Float64Array.from(values).sort();
  return +s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!.toFixed(digits);
}

export const summary = (v: number[], digits = 3) => ({ n: v.length, p50: pct(v, 50, digits), p95: pct(v, 95, digits), p99: pct(v, 99, digits), max: pct(v, 100, digits) });

/**
 * Connects one simulated device as a real one would: a connection the hub
 * refuses before CONNACK (a burst from one address past
 * GRIDLINK_MAX_PENDING_PER_ADDRESS) is tried again after a short pause, up to
 * `attempts` times. Resolves with the client, or null (counted by the caller).
 */
export function connectDevice(url: string, d: { id: string; secret: string }, opts: { keepalive?: number; connectTimeout?: number; attempts?: number } = {}): Promise<MqttClient | null> {
  const attempts = opts.attempts ?? 5;
  return new Promise((resolve) => {
    const attempt = (n: number) => {
      const c = mqtt.connect(url, { clientId: d.id, username: d.id, password: d.secret, reconnectPeriod: 0, keepalive: opts.keepalive ?? 120, connectTimeout: opts.connectTimeout ?? 120_000 });
      let settled = false;
      const fail = () => {
        if (settled) return;
        settled = true;
        c.end(true);
        if (n + 1 < attempts) setTimeout(() => attempt(n + 1), 200 * (n + 1));
        else resolve(null);
      };
      c.once('connect', () => {
        if (settled) return;
        settled = true;
        resolve(c);
      });
      c.once('error', fail);
      c.once('close', fail);
    };
    attempt(0);
  });
}
