/**
 * A grid worker as dispatch holds it in memory: identity, duty, the case
 * they are busy with, and the live position. Status is derived, never stored
 * on its own, so duty and assignment cannot disagree.
 */
import type { Team } from '@gridlink/devices/contract';
import type { WorkerInfo, WorkerStatus } from '../core/services.js';

export { TEAMS, type Team } from '@gridlink/devices/contract';
/** 网格长 / 网格员 / 志愿者 */
export const TEAM_NAMES: Record<Team, string> = { grid_leader: '网格长', grid_worker: '网格员', volunteer: '志愿者' };

export type Stage = 'dispatched' | 'en_route' | 'on_scene';

export interface Assignment {
  caseId: string;
  stage: Stage;
  /** when the current stage began (epoch ms) */
  since: number;
  lat: number;
  lon: number;
  gridId: string | null;
  /** first fix within the arrival radius, while it lasts */
  nearSince: number | null;
}

export interface WorkerState {
  id: string;
  name: string;
  deviceId: string;
  team: Team;
  phone: string | null;
  gridIds: string[];
  /** user account (role `worker`) that acts as this worker */
  userId: string | null;
  onDuty: boolean;
  assignment: Assignment | null;
  /** live position; NaN ts means no fix yet */
  lat: number;
  lon: number;
  ts: number;
  acc: number | null;
  batt: number | null;
  /** grid the last fix lies in (null: outside every grid, or grids unknown) */
  gridId: string | null;
  /** for the geofence alarm: when the worker was first seen outside their grids */
  outsideSince: number | null;
  geofenceAlarmed: boolean;
  createdAt: number;
  removed: boolean;
}

export function statusOf(w: WorkerState): WorkerStatus {
  if (w.assignment) return w.assignment.stage;
  return w.onDuty ? 'available' : 'off_duty';
}

export function hasFix(w: WorkerState): boolean {
  return w.ts === w.ts; // NaN check without a call
}

export function infoOf(w: WorkerState): WorkerInfo {
  return {
    id: w.id,
    name: w.name,
    deviceId: w.deviceId,
    gridIds: w.gridIds,
    status: statusOf(w),
    position: hasFix(w) ? { lat: w.lat, lon: w.lon, ts: w.ts } : null,
  };
}
