/**
 * Wire types of the REST and Socket.IO surface (CONTRACT sections 5-6) as
 * the console reads them. Every shape the contract defines is imported from
 * `@gridlink/devices/contract` as a type (erased from the bundle); run-time
 * lists come from `@gridlink/devices/workflow` (plain data, no TypeBox). The
 * rest are the console's own reading of a response, with fields it does not
 * need left out and extensions optional.
 */
import type {
  Actor, AlarmEvent, CaseAction, CaseDetail, CaseHistoryEntry, CaseSource, CaseStatus, CaseSummary, Device, Evidence, LinkageEvent, Role, Severity, User, WorkerStatus,
} from '@gridlink/devices/contract';
export type { Actor, CaseAction, CaseDetail, CaseHistoryEntry, CaseSource, CaseStatus, CaseSummary, Device, Evidence, Role, Severity, User, WorkerStatus };
export { CASE_STATUSES, OPEN_STATUSES, WORKER_STATUSES } from '@gridlink/devices/workflow';

export interface Worker {
  id: string;
  name: string;
  deviceId: string;
  gridIds?: string[];
  status: WorkerStatus;
  position: { lat: number; lon: number; ts: number; hdg?: number | null } | null;
}

/** Socket.IO `positions` item. */
export interface PositionUpdate {
  workerId: string;
  deviceId?: string;
  lat: number;
  lon: number;
  ts: number;
  status?: WorkerStatus;
  hdg?: number | null;
  gridId?: string | null;
}

export interface GridFeature {
  type: 'Feature';
  id?: string | number;
  properties: { id: string; name: string; level: string | number; parentId?: string | null; code?: string; [k: string]: unknown };
  geometry: { type: 'Polygon'; coordinates: number[][][] } | { type: 'MultiPolygon'; coordinates: number[][][][] };
}
export interface GridCollection {
  type: 'FeatureCollection';
  features: GridFeature[];
}


/** An alarm as the socket pushes it; REST answers carry more, of which the console reads these. */
export type Alarm = AlarmEvent & { escalatedAt?: number | null; ackComment?: string | null };

export interface Candidate {
  workerId: string;
  name?: string;
  distanceM: number;
  etaS: number;
  status: WorkerStatus;
  ownGrid?: boolean;
  gridIds?: string[];
}

export interface Camera {
  id: string;
  name: string;
  lat: number | null;
  lon: number | null;
  gridId?: string | null;
  online?: boolean;
  distanceM?: number;
  [k: string]: unknown;
}

export interface LinkedCamera {
  id: string;
  name: string;
  distanceM: number;
  stream?: string | { hls?: string; live?: string } | null;
}

export type Linkage = LinkageEvent;

export interface StreamInfo {
  hls: string;
  live?: string | null;
}

export interface TelemetryPoint {
  ts: number;
  value: number | boolean | string | null;
  min?: number;
  max?: number;
}

export interface Kpi {
  [k: string]: unknown;
}

export interface Rule {
  id: string;
  name?: string;
  enabled: boolean;
  [k: string]: unknown;
}

export interface TrackPoint {
  ts: number;
  lat: number;
  lon: number;
  spd?: number | null;
  hdg?: number | null;
}
