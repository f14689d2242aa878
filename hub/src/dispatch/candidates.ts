/**
 * Candidate ranking for a case: available workers with a fresh fix, nearest
 * first by haversine distance, except that the case grid's own workers come
 * first when they are at most `ownGridExtraM` farther than the nearest
 * candidate (DOMAIN "Dispatch": prefer the grid's own worker).
 */
import type { DispatchConfig } from './dispatch.config.js';
import type { Near } from './positions.index.js';
import { statusOf, TEAM_NAMES, type WorkerState } from './worker.model.js';

export interface Candidate {
  workerId: string;
  deviceId: string;
  name: string;
  team: string;
  teamName: string;
  distanceM: number;
  etaS: number;
  status: string;
  ownGrid: boolean;
  lastFixAgeS: number;
  etaSource: 'haversine' | 'amap';
}

export interface Scored extends Near {
  own: boolean;
}

/** Orders scored workers: promoted own-grid workers first, then by distance (ties by id, for a stable order). */
export function rankCandidates(pool: Scored[], ownGridExtraM: number): Scored[] {
  if (pool.length === 0) return pool;
  let d0 = Infinity;
  for (const s of pool) if (s.distanceM < d0) d0 = s.distanceM;
  const limit = d0 + ownGridExtraM;
  const promoted = (s: Scored) => (s.own && s.distanceM <= limit ? 0 : 1);
  return pool.sort((a, b) => promoted(a) - promoted(b) || a.distanceM - b.distanceM || (a.w.id < b.w.id ? -1 : a.w.id > b.w.id ? 1 : 0));
}

export function speedMps(cfg: Pick<DispatchConfig, 'travelMode' | 'walkingMps' | 'cyclingMps'>): number {
  return cfg.travelMode === 'cycling' ? cfg.cyclingMps : cfg.walkingMps;
}

/** Offline ETA: straight line times a detour factor at the configured speed. */
export function etaSeconds(distanceM: number, cfg: Pick<DispatchConfig, 'travelMode' | 'walkingMps' | 'cyclingMps' | 'detourFactor'>): number {
  return Math.round((distanceM * cfg.detourFactor) / speedMps(cfg));
}

export function toCandidate(s: Scored, now: number, cfg: DispatchConfig): Candidate {
  return {
    workerId: s.w.id,
    deviceId: s.w.deviceId,
    name: s.w.name,
    team: s.w.team,
    teamName: TEAM_NAMES[s.w.team],
    distanceM: Math.round(s.distanceM * 10) / 10,
    etaS: etaSeconds(s.distanceM, cfg),
    status: statusOf(s.w),
    ownGrid: s.own,
    lastFixAgeS: Math.max(0, Math.round((now - s.w.ts) / 1000)),
    etaSource: 'haversine',
  };
}
