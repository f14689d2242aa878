/**
 * Live worker positions for the map, kept outside React. Socket `positions`
 * bursts go into a PositionBatcher (latest fix per worker wins); the map
 * drains it once per animation frame and every fix starts a short glide from
 * where the marker is drawn now to the new point, so 5,000 workers updating
 * every second move smoothly without a single React render.
 */
import type { PositionUpdate, WorkerStatus } from '../api/types';
import { bearingDeg } from '@gridlink/devices/geo';
import { project, type Datum } from './projection';

export interface LivePosition {
  workerId: string;
  lat: number;
  lon: number;
  ts: number;
  status: WorkerStatus;
  /** Degrees, 0 = north, derived from the last move (the hub sends no heading). */
  hdg: number | null;
  /** Glide: from (fx, fy) at t0 to (tx, ty) at t0 + GLIDE_MS, world units. */
  fx: number;
  fy: number;
  tx: number;
  ty: number;
  t0: number;
}

export const GLIDE_MS = 900;

/** Collects position updates between frames; one entry per worker. */
export class PositionBatcher {
  private pending = new Map<string, PositionUpdate>();
  private schedule: ((cb: () => void) => void) | null;
  private scheduled = false;
  received = 0;

  /**
   * `schedule` runs the drain later (a timer when no map is drawing); the map
   * drains on its own frames and the scheduled call then finds nothing.
   */
  constructor(private sink: (batch: PositionUpdate[]) => void, schedule?: (cb: () => void) => void) {
    this.schedule = schedule ?? null;
  }

  push(items: readonly PositionUpdate[]): void {
    for (const p of items) {
      if (!p || typeof p.workerId !== 'string' || !Number.isFinite(p.lat) || !Number.isFinite(p.lon)) continue;
      const prev = this.pending.get(p.workerId);
      // Out-of-order fixes inside one batch: keep the newest.
      if (!prev || !(prev.ts > p.ts)) this.pending.set(p.workerId, p);
      this.received++;
    }
    if (this.schedule && !this.scheduled && this.pending.size) {
      this.scheduled = true;
      this.schedule(() => {
        this.scheduled = false;
        this.drain();
      });
    }
  }

  get size(): number {
    return this.pending.size;
  }

  /** Hands everything pending to the sink in one batch; returns how many. */
  drain(): number {
    if (!this.pending.size) return 0;
    const batch = [...this.pending.values()];
    this.pending.clear();
    this.sink(batch);
    return batch.length;
  }
}

export class PositionIndex {
  readonly byId = new Map<string, LivePosition>();
  private tmp: [number, number] = [0, 0];
  /** Bumped on every applied batch; layers use it to know something moved. */
  version = 0;
  private listeners = new Set<() => void>();

  constructor(public datum: Datum = 'wgs84') {}

  onChange(l: () => void): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  /** Where the marker is drawn at `now` (world units). */
  current(p: LivePosition, now: number, out: [number, number]): [number, number] {
    const k = Math.min(1, Math.max(0, (now - p.t0) / GLIDE_MS));
    out[0] = p.fx + (p.tx - p.fx) * k;
    out[1] = p.fy + (p.ty - p.fy) * k;
    return out;
  }

  apply(batch: readonly PositionUpdate[], now: number): void {
    const w = this.tmp;
    for (const u of batch) {
      let p = this.byId.get(u.workerId);
      project(this.datum, u.lon, u.lat, w);
      if (!p) {
        p = { workerId: u.workerId, lat: u.lat, lon: u.lon, ts: u.ts, status: u.status ?? 'available', hdg: null, fx: w[0], fy: w[1], tx: w[0], ty: w[1], t0: now };
        this.byId.set(u.workerId, p);
        continue;
      }
      if (u.ts < p.ts) continue; // late fix: never move a worker backwards
      const moved = u.lat !== p.lat || u.lon !== p.lon;
      if (moved) p.hdg = bearingDeg(p.lat, p.lon, u.lat, u.lon);
      const cur = this.current(p, now, this.tmp2);
      p.fx = cur[0];
      p.fy = cur[1];
      p.tx = w[0];
      p.ty = w[1];
      p.t0 = now;
      p.lat = u.lat;
      p.lon = u.lon;
      p.ts = u.ts;
      if (u.status) p.status = u.status;
    }
    this.lastApply = now;
    this.version++;
    for (const l of this.listeners) l();
  }
  private tmp2: [number, number] = [0, 0];

  setStatus(workerId: string, status: WorkerStatus): void {
    const p = this.byId.get(workerId);
    if (p && p.status !== status) {
      p.status = status;
      this.version++;
      for (const l of this.listeners) l();
    }
  }

  /** Re-projects everything after the display datum changed. */
  setDatum(d: Datum): void {
    if (d === this.datum) return;
    this.datum = d;
    for (const p of this.byId.values()) {
      project(d, p.lon, p.lat, this.tmp);
      p.fx = p.tx = this.tmp[0];
      p.fy = p.ty = this.tmp[1];
    }
    this.version++;
  }

  clear(): void {
    this.byId.clear();
    this.version++;
  }

  private lastApply = -Infinity;

  /** True while markers may still be gliding at `now`. */
  animating(now: number): boolean {
    return now - this.lastApply < GLIDE_MS;
  }
}
