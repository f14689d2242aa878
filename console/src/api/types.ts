/**
 * Wire types of the REST and Socket.IO surface (CONTRACT sections 5-6) as
 * the console reads them. Fields the console does not need are left out;
 * optional fields are extensions it uses when present.
 */
import type { Severity } from '@gridlink/devices';
export type { Severity };

export type Role = 'admin' | 'officer' | 'dispatcher' | 'worker' | 'integrator';

export interface User {
  id: string;
  username: string;
  role: Role;
  regionId: string | null;
  displayName: string;
}

export interface Device {
  id: string;
  type: string;
  name: string;
  enabled: boolean;
  lat: number | null;
  lon: number | null;
  gridId: string | null;
  meta: Record<string, unknown>;
  createdAt: number;
  lastSeen: number | null;
  online: boolean;
}

export type WorkerStatus = 'off_duty' | 'available' | 'dispatched' | 'en_route' | 'on_scene';
export const WORKER_STATUSES: readonly WorkerStatus[] = ['available', 'dispatched', 'en_route', 'on_scene', 'off_duty'];

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

export type CaseStatus = 'reported' | 'registered' | 'dispatched' | 'accepted' | 'on_scene' | 'resolved' | 'closed' | 'rejected';
export const CASE_STATUSES: readonly CaseStatus[] = ['reported', 'registered', 'dispatched', 'accepted', 'on_scene', 'resolved', 'closed', 'rejected'];
export const OPEN_STATUSES: readonly CaseStatus[] = ['reported', 'registered', 'dispatched', 'accepted', 'on_scene', 'resolved'];
export type CaseAction = 'register' | 'dispatch' | 'accept' | 'decline' | 'arrive' | 'resolve' | 'verify' | 'reject' | 'rework' | 'cancel';
export type CaseSource = 'rule' | 'worker' | 'officer' | 'citizen';

export interface CaseSummary {
  id: string;
  code: string;
  title: string;
  status: CaseStatus;
  category: { code: string; name: string; nameEn?: string };
  severity: Severity;
  lat: number;
  lon: number;
  address?: string | null;
  gridId: string | null;
  source: CaseSource;
  workerId: string | null;
  deadline: number;
  overdue: boolean;
  createdAt: number;
  updatedAt: number;
}

export interface CaseHistoryEntry {
  id?: string | number;
  ts: number;
  action: string;
  from?: CaseStatus | null;
  to?: CaseStatus | null;
  actor?: { kind: string; id: string; name: string } | null;
  actorName?: string;
  note?: string | null;
}

export interface Evidence {
  id?: string;
  kind?: string;
  url?: string;
  mime?: string;
  ts?: number;
  [k: string]: unknown;
}

export interface CaseDetail extends CaseSummary {
  description?: string | null;
  history?: CaseHistoryEntry[];
  evidence?: Evidence[];
  cameras?: LinkedCamera[];
  clipUrl?: string | null;
}

export interface Alarm {
  id: string;
  rule: string;
  deviceId: string;
  severity: Severity;
  status: 'active' | 'cleared';
  message?: string;
  ts: number;
  lat?: number | null;
  lon?: number | null;
  gridId?: string | null;
  caseId?: string | null;
  acknowledged?: boolean;
  ackBy?: string | null;
  ackAt?: number | null;
  ackComment?: string | null;
  escalated?: boolean;
  escalatedAt?: number | null;
  lastTs?: number;
  count?: number;
  ruleName?: string;
  type?: string;
}

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

export interface Linkage {
  caseId: string;
  cameras: LinkedCamera[];
}

export interface StreamInfo {
  hls: string;
  live?: string | null;
}

export interface DeviceStatusUpdate {
  deviceId: string;
  online: boolean;
  lastSeen: number | null;
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
