/**
 * Arrival and geofence from GPS: a worker en route who stays within
 * `arrivalRadiusM` of the case for `arrivalDwellS` has arrived (the case
 * action `arrive` with source gps); an on-duty worker without a task outside
 * their grids for `geofenceMinutes` raises `worker_left_grid`, cleared when
 * they are back. Fixes come from `onFix`; dwell and geofence time also pass
 * without new fixes, through `tick`.
 */
import { haversineM } from '@gridlink/devices/geo';
import type { GridService } from '../core/services.js';
import type { DispatchConfig } from './dispatch.config.js';
import type { WorkerState } from './worker.model.js';

export interface ArrivalDeps {
  cfg: DispatchConfig;
  grids?: Pick<GridService, 'contains'>;
  /** Takes the case action `arrive` for the worker (on the case's serial queue). */
  arrive(w: WorkerState, caseId: string, distanceM: number): Promise<void>;
  /** Raises or clears the worker's geofence alarm. */
  geofenceAlarm(w: WorkerState, status: 'active' | 'cleared', message: string): void;
}

export class ArrivalWatch {
  /** Arrivals being applied (one at a time per case). */
  private readonly busy = new Set<string>();

  constructor(private readonly d: ArrivalDeps) {}

  /** A new fix of the worker. */
  onFix(w: WorkerState): void {
    const a = w.assignment;
    if (a && a.stage === 'en_route' && a.lat === a.lat) {
      if (haversineM(w.lat, w.lon, a.lat, a.lon) <= this.d.cfg.arrivalRadiusM) {
        a.nearSince ??= w.ts;
        this.checkArrival(w, w.ts);
      } else a.nearSince = null;
    }
    if (this.d.cfg.geofenceMinutes > 0) this.checkInside(w);
  }

  /** Time passed (the module timer): dwell without new fixes, geofence. Dispatched workers are the accept timeout's. */
  tick(w: WorkerState, now: number): void {
    const a = w.assignment;
    const geofence = this.d.cfg.geofenceMinutes * 60_000;
    if (a) {
      if (a.stage === 'en_route' && a.nearSince !== null) this.checkArrival(w, now);
    } else if (geofence > 0 && w.outsideSince !== null && !w.geofenceAlarmed && now - w.outsideSince >= geofence) {
      w.geofenceAlarmed = true;
      this.d.geofenceAlarm(w, 'active', `${w.name} 离开责任网格超过 ${this.d.cfg.geofenceMinutes} 分钟`);
    }
  }

  private checkArrival(w: WorkerState, now: number): void {
    const a = w.assignment;
    if (!a || a.stage !== 'en_route' || a.nearSince === null || now - a.nearSince < this.d.cfg.arrivalDwellS * 1000) return;
    const key = `arrive:${a.caseId}`;
    if (this.busy.has(key)) return;
    this.busy.add(key);
    const distanceM = Math.round(haversineM(w.lat, w.lon, a.lat, a.lon));
    void this.d.arrive(w, a.caseId, distanceM).finally(() => this.busy.delete(key));
  }

  private checkInside(w: WorkerState): void {
    const grids = this.d.grids;
    if (!grids || w.gridIds.length === 0 || !w.onDuty || w.assignment) {
      w.outsideSince = null;
      return;
    }
    const inside = w.gridId !== null && w.gridIds.some((g) => g === w.gridId || grids.contains(g, w.gridId));
    if (inside) {
      if (w.geofenceAlarmed) this.d.geofenceAlarm(w, 'cleared', `${w.name} 已回到责任网格`);
      w.outsideSince = null;
      w.geofenceAlarmed = false;
    } else w.outsideSince ??= w.ts;
  }
}
