/**
 * Cross-domain services. Domains talk through the event bus; where one needs
 * an answer from another (dispatch asks cases for a case, cases asks grids
 * where a point lies) it goes through these interfaces, which the owning
 * module registers in `ctx.services` from its factory. Each may be absent
 * when its module is not loaded; callers degrade gracefully.
 */
import type { Severity } from '@gridlink/devices';
import type { Principal } from '../auth/index.js';

export type CaseStatus = 'reported' | 'registered' | 'dispatched' | 'accepted' | 'on_scene' | 'resolved' | 'closed' | 'rejected';
export type CaseAction = 'register' | 'dispatch' | 'accept' | 'decline' | 'arrive' | 'resolve' | 'verify' | 'reject' | 'rework' | 'cancel'
  // 评价, 分流 to a department, its 签收 / 回复 / 退回, 督办 (no status change)
  | 'rate' | 'route' | 'sign' | 'reply' | 'return' | 'supervise';
export type CaseSource = 'rule' | 'worker' | 'officer' | 'citizen';

/** Who did something: a console user, a grid worker's handheld, or the hub itself (rules, timers). */
export type Actor =
  | { kind: 'user'; id: string; name: string; role: Principal['role']; regionId: string | null }
  | { kind: 'worker'; id: string; name: string; deviceId: string }
  | { kind: 'system'; id: string; name: string }
  /** A member of the public (Open311 / 12345): `id` is the request or order reference. */
  | { kind: 'citizen'; id: string; name: string };

export interface CaseSummary {
  id: string;
  code: string;
  title: string;
  status: CaseStatus;
  category: { code: string; name: string; nameEn?: string; limitUnit?: 'working' | 'calendar' };
  severity: Severity;
  lat: number;
  lon: number;
  address?: string | null;
  gridId: string | null;
  source: CaseSource;
  /** Worker currently dispatched to the case. */
  workerId: string | null;
  deadline: number;
  overdue: boolean;
  createdAt: number;
  updatedAt: number;
  /** Department the case is routed to (分流), when it is. */
  departmentId?: string | null;
  /** 签收 deadline while a worker or department has not acknowledged the case. */
  ackDeadline?: number | null;
  /** 签收 was not in time (since the last dispatch). */
  ackOverdue?: boolean;
  /** 黄牌: the deadline is near. */
  warned?: boolean;
  /** Region (street / district) the case was escalated to (督办升级), when it was. */
  escalatedTo?: string | null;
  /** 评价 score 1–5 after 结案. */
  rating?: number | null;
}

export interface CaseActInput {
  workerId?: string;
  note?: string;
  /** JPEG/PNG bytes (worker photos). */
  photos?: Uint8Array[];
  data?: Record<string, unknown>;
  ts?: number;
  /** `rate`: score 1–5 (the note is the comment). */
  rating?: number;
  /** `route`: the department. */
  departmentId?: string;
}

export interface CaseService {
  get(id: string): Promise<CaseSummary | null>;
  act(id: string, action: CaseAction, actor: Actor, input?: CaseActInput): Promise<CaseSummary>;
}

export type WorkerStatus = 'off_duty' | 'available' | 'dispatched' | 'en_route' | 'on_scene';

export interface WorkerInfo {
  id: string;
  name: string;
  deviceId: string;
  gridIds: string[];
  status: WorkerStatus;
  position: { lat: number; lon: number; ts: number } | null;
}

export interface WorkerService {
  get(id: string): WorkerInfo | undefined;
  byDevice(deviceId: string): WorkerInfo | undefined;
  /** The worker a `worker` login acts as (cases falls back to worker id = username when absent). */
  byUser?(userId: string): WorkerInfo | undefined;
  /** Throws a GridError when the worker cannot take a dispatch now. */
  assertDispatchable(workerId: string): void;
}

export interface GridService {
  /** Finest grid polygon containing the point, or null. */
  locate(lat: number, lon: number): string | null;
  /** The grid and its ancestors, finest first. */
  ancestors(gridId: string): string[];
  /** True when gridId equals regionId or lies inside it. */
  contains(regionId: string, gridId: string | null | undefined): boolean;
}

export interface RealtimeService {
  /** Emits to every socket whose user may see an object in `gridId` (null: only unscoped users). */
  send(event: string, gridId: string | null | undefined, payload: unknown): void;
  /** Emits one array per socket, keeping only the items whose `gridId` that socket may see. */
  sendFiltered(event: string, items: ReadonlyArray<{ gridId?: string | null }>): void;
  /**
   * Narrower rooms for users who see less than their region (a department's
   * members see only the cases routed to it): when `roomsOf` names rooms for a
   * user, their sockets join those instead of the region's, and get nothing
   * sent to regions.
   */
  setRoomsOf(roomsOf: (userId: string) => string[] | null): void;
  /** Emits to one private room (never to regions). */
  sendToRoom(room: string, event: string, payload: unknown): void;
}

export interface CameraLinkageService {
  /** Nearest cameras to a point, nearest first, covering the point first. */
  nearest(lat: number, lon: number, opts?: { radiusM?: number; limit?: number; preferCameraId?: string }): Promise<Array<{ id: string; name: string; distanceM: number }>>;
}

export interface Services {
  cases?: CaseService;
  workers?: WorkerService;
  grids?: GridService;
  realtime?: RealtimeService;
  cameras?: CameraLinkageService;
}
