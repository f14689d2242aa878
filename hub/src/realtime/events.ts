/**
 * Server → client Socket.IO events (CONTRACT section 6), as types only so
 * the console can import this file without pulling in the hub.
 */
import type { Severity } from '@gridlink/devices';
import type { CaseSummary, WorkerStatus } from '../core/services.js';

export type AlarmStatus = 'active' | 'cleared';

/** `alarm`: raised, repeated, acknowledged, escalated or cleared. */
export interface AlarmEvent {
  id: string;
  /** Rule id. */
  rule: string;
  ruleName?: string;
  deviceId: string;
  severity: Severity;
  status: AlarmStatus;
  acknowledged: boolean;
  ackBy?: string | null;
  ackAt?: number | null;
  escalated: boolean;
  /** Triggers folded into this alarm (1 on raise). */
  count: number;
  /** Signal type (event/alert type, metric, `offline`, `correlation`). */
  type: string;
  message: string;
  /** Time of the first trigger. */
  ts: number;
  lastTs: number;
  lat: number | null;
  lon: number | null;
  gridId: string | null;
  caseId?: string | null;
  /** What changed: raised, repeated, acked, cleared, escalated, commented, case_linked. */
  change?: string;
}

export type CaseEvent = CaseSummary & { change?: string };

export interface PositionEvent {
  workerId: string;
  deviceId: string;
  lat: number;
  lon: number;
  ts: number;
  status: WorkerStatus;
  gridId?: string | null;
}

export interface DeviceEvent {
  deviceId: string;
  online: boolean;
  lastSeen: number | null;
}

export interface LinkageEvent {
  caseId: string;
  cameras: Array<{ id: string; name: string; distanceM: number; stream: string }>;
}

export interface ServerToClientEvents {
  alarm: (payload: AlarmEvent) => void;
  case: (payload: CaseEvent) => void;
  positions: (payload: PositionEvent[]) => void;
  device: (payload: DeviceEvent) => void;
  linkage: (payload: LinkageEvent) => void;
}

export type ServerEventName = keyof ServerToClientEvents;
export type ServerEventPayload<E extends ServerEventName> = Parameters<ServerToClientEvents[E]>[0];
