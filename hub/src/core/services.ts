/**
 * Cross-domain services. Domains talk through the event bus; where one needs
 * an answer from another (dispatch asks cases for a case, cases asks grids
 * where a point lies) it goes through these interfaces, which the composition
 * root (hub/src/hub.ts) hands to each domain it builds. Each may be absent
 * when its module is not loaded; callers degrade gracefully.
 */
import type { AnyServerEventName, AnyServerEventPayload, CaseAction, CaseStatus, CaseSummary, Actor, ServerEventName, ServerEventPayload, WorkerInfo } from '@gridlink/devices/contract';
import type { Queryable } from '../store/index.js';

// The shapes other rooms and clients see are the contract's (docs/contract.md): one definition.
export type { Actor, CaseAction, CaseSource, CaseStatus, CaseSummary, WorkerInfo, WorkerStatus } from '@gridlink/devices/contract';

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
  /** Only from these statuses, judged in the action's transaction (a timer's action that must not undo what a worker did meanwhile). */
  ifStatus?: readonly CaseStatus[];
}

export interface CaseService {
  get(id: string): Promise<CaseSummary | null>;
  act(id: string, action: CaseAction, actor: Actor, input?: CaseActInput): Promise<CaseSummary>;
}

export interface WorkerService {
  get(id: string): WorkerInfo | undefined;
  byDevice(deviceId: string): WorkerInfo | undefined;
  /** The worker a `worker` login acts as (cases falls back to worker id = username without a worker registry). */
  byUser(userId: string): WorkerInfo | undefined;
  /** Throws a GridError when the worker cannot take a dispatch now. */
  assertDispatchable(workerId: string): void;
  /**
   * Inside the dispatch's own transaction: takes the worker's row for the
   * case, or throws the same 409 as `assertDispatchable` when the row says
   * the worker is off duty or holds another open case. The database decides,
   * whichever node made the other dispatch. `rework` (back to a worker):
   * in a cluster refused only when the row holds another open case; the
   * single process takes the row as before (the newer case wins).
   */
  claim?(q: Queryable, workerId: string, caseId: string, at: number, opts?: { rework?: boolean }): Promise<void>;
  /**
   * Inside the transaction of every case action, after the case row is
   * written: the worker rows follow the case (a stage on for `accept` and
   * `arrive`, released when the case is no longer open with a worker), and
   * so do the dispatch records and the commands to the handhelds (a stamp,
   * an end, a `cancel`), so a process killed after the commit leaves neither
   * a row nor a record behind the case. `data` is the action's own (as the
   * caller gave it).
   */
  caseMoved?(q: Queryable, d: { case: CaseSummary; action: CaseAction; at: number; actor: Actor; data?: Record<string, unknown> }): Promise<void>;
  /**
   * Inside the transaction of a case's `dispatch` (or `rework` to a worker),
   * after the case row is written: the dispatch's record and its command to
   * the handheld's outbox, committed with the case (or not at all). The
   * command is published after the commit.
   */
  dispatched?(q: Queryable, d: { case: CaseSummary; workerId: string; actor: Actor; at: number }): Promise<void>;
}

export interface GridService {
  /** Finest grid polygon containing the point, or null. */
  locate(lat: number, lon: number): string | null;
  /** The grid and its ancestors, finest first. */
  ancestors(gridId: string): string[];
  /** True when gridId equals regionId or lies inside it. */
  contains(regionId: string, gridId: string | null | undefined): boolean;
  /** The region and every grid inside it. */
  descendants(regionId: string): string[];
  /** A known grid (or region) id. */
  has(id: string): boolean;
}

export interface RealtimeService {
  /** Emits to every socket whose user may see an object in `gridId` (null: only unscoped users). */
  send<E extends ServerEventName>(event: E, gridId: string | null | undefined, payload: ServerEventPayload<E>): void;
  /** Emits one array per socket, keeping only the items whose `gridId` that socket may see. */
  sendFiltered<E extends ServerEventName>(event: E, items: ServerEventPayload<E> & ReadonlyArray<{ gridId?: string | null }>): void;
  /**
   * Narrower rooms for users who see less than their region (a department's
   * members see only the cases routed to it): when `roomsOf` names rooms for a
   * user, their sockets join those instead of the region's, and get nothing
   * sent to regions.
   */
  setRoomsOf(roomsOf: (userId: string) => string[] | null): void;
  /** Moves a user's open sockets into the rooms they get now (after their departments changed), without a reconnect. */
  reroom(userId: string): Promise<void>;
  /** Emits to one private room (never to regions). */
  sendToRoom<E extends AnyServerEventName>(room: string, event: E, payload: AnyServerEventPayload<E>): void;
}

export interface CameraLinkageService {
  /** Nearest cameras to a point, nearest first, covering the point first. */
  nearest(lat: number, lon: number, opts?: { radiusM?: number; limit?: number; preferCameraId?: string }): Promise<Array<{ id: string; name: string; distanceM: number }>>;
}
