/**
 * Plausibility check for handheld fixes, run by ingest before the row is
 * written (ingest.setLocationFlagger). A flagged fix is stored with its flag
 * and never moves the worker:
 * - `future`: stamped further ahead of the hub clock than maxFutureS;
 * - `stale`: older than maxFixAgeS on arrival, or older than the fix the
 *   worker already stands on (out of order; buffered offline uploads);
 * - `jump`: implies a speed above maxSpeedMps from the last accepted fix.
 * A device whose reference fix was itself wrong would be stuck, so two
 * consecutive flagged jumps that agree with each other re-anchor it on the
 * third.
 */
import type { Normalised } from '@gridlink/devices';
import type { DispatchConfig } from './dispatch.config.js';
import { haversineM } from '@gridlink/devices/geo';

type Loc = Extract<Normalised, { channel: 'location' }>;

interface Ref {
  lat: number;
  lon: number;
  ts: number;
  /** last jump-flagged fix and how many agreeing jumps in a row */
  jLat: number;
  jLon: number;
  jTs: number;
  jumps: number;
}

export type FixFlag = 'future' | 'stale' | 'jump';

export class LocationFlagger {
  private readonly refs = new Map<string, Ref>();

  constructor(
    private readonly cfg: Pick<DispatchConfig, 'maxSpeedMps' | 'maxFutureS' | 'maxFixAgeS'>,
    private readonly now: () => number,
  ) {}

  /** Seeds the reference fix (at start, from the last stored unflagged position). */
  seed(deviceId: string, lat: number, lon: number, ts: number): void {
    this.refs.set(deviceId, { lat, lon, ts, jLat: NaN, jLon: NaN, jTs: NaN, jumps: 0 });
  }

  forget(deviceId: string): void {
    this.refs.delete(deviceId);
  }

  check(deviceId: string, m: Loc): FixFlag | null {
    const now = this.now();
    if (m.ts > now + this.cfg.maxFutureS * 1000) return 'future';
    if (m.ts < now - this.cfg.maxFixAgeS * 1000) return 'stale';
    const ref = this.refs.get(deviceId);
    if (!ref) {
      this.seed(deviceId, m.lat, m.lon, m.ts);
      return null;
    }
    // A re-sent fix (PUBACK lost, database retry) is the same fix, not an old one.
    if (m.ts === ref.ts && m.lat === ref.lat && m.lon === ref.lon) return null;
    if (m.ts <= ref.ts) return 'stale';
    const speed = haversineM(ref.lat, ref.lon, m.lat, m.lon) / Math.max(1, (m.ts - ref.ts) / 1000);
    if (speed > this.cfg.maxSpeedMps) {
      const agrees = ref.jumps > 0 && m.ts > ref.jTs && haversineM(ref.jLat, ref.jLon, m.lat, m.lon) / Math.max(1, (m.ts - ref.jTs) / 1000) <= this.cfg.maxSpeedMps;
      if (agrees && ref.jumps >= 2) {
        this.seed(deviceId, m.lat, m.lon, m.ts);
        return null;
      }
      ref.jumps = agrees ? ref.jumps + 1 : 1;
      ref.jLat = m.lat;
      ref.jLon = m.lon;
      ref.jTs = m.ts;
      return 'jump';
    }
    ref.lat = m.lat;
    ref.lon = m.lon;
    ref.ts = m.ts;
    ref.jumps = 0;
    return null;
  }
}
