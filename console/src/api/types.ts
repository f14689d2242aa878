/**
 * Wire types of the REST and Socket.IO surface (CONTRACT sections 5-6) as
 * the console reads them. Where the hub declares the same shape, it is
 * imported from there as a type (erased from the bundle: nothing of the hub
 * is shipped); the rest are the console's own reading of a response, with
 * fields it does not need left out and extensions optional.
 */
import type { Severity } from '@gridlink/devices';
import type { Role, User } from '../../../hub/src/auth/index';
import type { Actor, CaseAction, CaseSource, CaseStatus, CaseSummary, WorkerStatus } from '../../../hub/src/core/services';
import type { AlarmEvent, LinkageEvent } from '../../../hub/src/realtime/events';
import type { Device } from '../../../hub/src/registry/index';
export type { Actor, CaseAction, CaseSource, CaseStatus, CaseSummary, Device, Role, Severity, User, WorkerStatus };

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

export const CASE_STATUSES: readonly CaseStatus[] = ['reported', 'registered', 'dispatched', 'accepted', 'on_scene', 'resolved', 'closed', 'rejected'];
export const OPEN_STATUSES: readonly CaseStatus[] = ['reported', 'registered', 'dispatched', 'accepted', 'on_scene', 'resolved'];

export interface CaseHistoryEntry {
  id?: string | number;
  ts: number;
  action: string;
  from?: CaseStatus | null;
  to?: CaseStatus | null;
  actor?: Actor | null;
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
