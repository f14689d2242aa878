/**
 * Worker history: the track between two times (downsampled into time buckets
 * when it would exceed maxPoints: time_bucket on TimescaleDB, date_bin on
 * plain PostgreSQL / PGlite), the distance travelled, and stops. Flagged
 * fixes (jumps, stale, future) are history but never part of the path.
 */
import type { Db } from '../store/index.js';
import { haversineM } from '@gridlink/devices/geo';

export interface TrackPoint {
  ts: number;
  lat: number;
  lon: number;
  spd?: number | null;
  acc?: number | null;
  n?: number;
}

export interface Stop {
  lat: number;
  lon: number;
  from: number;
  to: number;
  durationS: number;
}

export interface Track {
  points: TrackPoint[];
  bucketS: number | null;
  /** all unflagged fixes in the range, before downsampling */
  fixes: number;
  flagged: number;
  distanceM: number;
  stops: Stop[];
}

/** A stop: consecutive points within `radiusM` of where it began for at least `minS` seconds. */
export function findStops(points: TrackPoint[], radiusM = 50, minS = 180): Stop[] {
  const out: Stop[] = [];
  let i = 0;
  while (i < points.length) {
    const a = points[i]!;
    let j = i + 1;
    let sLat = a.lat;
    let sLon = a.lon;
    while (j < points.length && haversineM(a.lat, a.lon, points[j]!.lat, points[j]!.lon) <= radiusM) {
      sLat += points[j]!.lat;
      sLon += points[j]!.lon;
      j++;
    }
    const last = points[j - 1]!;
    const dur = (last.ts - a.ts) / 1000;
    if (dur >= minS) {
      const n = j - i;
      out.push({ lat: sLat / n, lon: sLon / n, from: a.ts, to: last.ts, durationS: Math.round(dur) });
      i = j;
    } else i++;
  }
  return out;
}

export function pathLength(points: TrackPoint[]): number {
  let d = 0;
  for (let i = 1; i < points.length; i++) d += haversineM(points[i - 1]!.lat, points[i - 1]!.lon, points[i]!.lat, points[i]!.lon);
  return d;
}

const R = 6_371_008.8;

export async function loadTrack(db: Db, deviceId: string, from: number, to: number, maxPoints: number): Promise<Track> {
  const [stats] = await db.query<{ fixes: number; flagged: number; distance: number | null }>(
    // Distance in SQL over every fix (lag over the raw rows), so downsampling never shortens it.
    `with p as (
       select ts, lat, lon, flag, lag(lat) over w as plat, lag(lon) over w as plon
         from positions where device_id = $1 and ts >= to_timestamp($2 / 1000.0) and ts < to_timestamp($3 / 1000.0) and flag is null
       window w as (order by ts))
     select count(*)::int as fixes,
            (select count(*)::int from positions where device_id = $1 and ts >= to_timestamp($2 / 1000.0) and ts < to_timestamp($3 / 1000.0) and flag is not null) as flagged,
            -- least() ignores NULLs, so the first row (no predecessor) must be filtered, not left to propagate NULL
            sum(2 * ${R} * asin(least(1, sqrt(power(sin(radians(lat - plat) / 2), 2) + cos(radians(plat)) * cos(radians(lat)) * power(sin(radians(lon - plon) / 2), 2)))))
              filter (where plat is not null) as distance
       from p`,
    [deviceId, from, to],
  );
  const fixes = stats?.fixes ?? 0;
  let points: TrackPoint[];
  let bucketS: number | null = null;
  if (fixes > maxPoints) {
    bucketS = Math.max(1, Math.ceil((to - from) / 1000 / maxPoints));
    const bucket = db.timescale ? 'time_bucket(make_interval(secs => $4), ts)' : `date_bin(make_interval(secs => $4), ts, timestamptz '2000-01-03')`;
    const rows = await db.query<{ b: Date | string; lat: number; lon: number; spd: number | null; n: number }>(
      `select ${bucket} as b, avg(lat) as lat, avg(lon) as lon, avg(spd) as spd, count(*)::int as n
         from positions where device_id = $1 and ts >= to_timestamp($2 / 1000.0) and ts < to_timestamp($3 / 1000.0) and flag is null
        group by 1 order by 1`,
      [deviceId, from, to, bucketS],
    );
    points = rows.map((r) => ({ ts: new Date(r.b).getTime(), lat: r.lat, lon: r.lon, spd: r.spd, n: r.n }));
  } else {
    const rows = await db.query<{ ts: Date | string; lat: number; lon: number; spd: number | null; acc: number | null }>(
      `select ts, lat, lon, spd, acc from positions where device_id = $1 and ts >= to_timestamp($2 / 1000.0) and ts < to_timestamp($3 / 1000.0) and flag is null order by ts`,
      [deviceId, from, to],
    );
    points = rows.map((r) => ({ ts: new Date(r.ts).getTime(), lat: r.lat, lon: r.lon, spd: r.spd, acc: r.acc }));
  }
  return { points, bucketS, fixes, flagged: stats?.flagged ?? 0, distanceM: Math.round((stats?.distance ?? 0) * 10) / 10, stops: findStops(points) };
}

export interface DispatchRecord {
  workerId: string;
  deviceId: string;
  attempt: number;
  actor: string;
  dispatchedAt: number;
  acceptedAt: number | null;
  arrivedAt: number | null;
  arrivedBy: string | null;
  resolvedAt: number | null;
  endedAt: number | null;
  outcome: string | null;
  /** travelled path from dispatch to arrival (to now while en route) */
  path?: { points: TrackPoint[]; distanceM: number; bucketS: number | null };
}

const msOrNull = (v: Date | string | null): number | null => (v === null ? null : new Date(v).getTime());

export async function caseDispatches(db: Db, caseId: string, opts: { withPath: boolean; now: number; maxPoints: number }): Promise<DispatchRecord[]> {
  const rows = await db.query<{
    worker_id: string; device_id: string; attempt: number; actor: string; dispatched_at: Date | string; accepted_at: Date | string | null;
    arrived_at: Date | string | null; arrived_by: string | null; resolved_at: Date | string | null; ended_at: Date | string | null; outcome: string | null;
  }>('select * from case_dispatches where case_id = $1 order by dispatched_at, attempt', [caseId]);
  const out: DispatchRecord[] = [];
  for (const r of rows) {
    const rec: DispatchRecord = {
      workerId: r.worker_id,
      deviceId: r.device_id,
      attempt: r.attempt,
      actor: r.actor,
      dispatchedAt: new Date(r.dispatched_at).getTime(),
      acceptedAt: msOrNull(r.accepted_at),
      arrivedAt: msOrNull(r.arrived_at),
      arrivedBy: r.arrived_by,
      resolvedAt: msOrNull(r.resolved_at),
      endedAt: msOrNull(r.ended_at),
      outcome: r.outcome,
    };
    if (opts.withPath && rec.acceptedAt !== null) {
      const end = rec.arrivedAt ?? rec.endedAt ?? opts.now;
      const t = await loadTrack(db, rec.deviceId, rec.dispatchedAt, end + 1, opts.maxPoints);
      rec.path = { points: t.points, distanceM: t.distanceM, bucketS: t.bucketS };
    }
    out.push(rec);
  }
  return out;
}
