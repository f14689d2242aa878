/**
 * The case workflow (CONTRACT section 4, 数字城管 closed loop) as one table,
 * plain data: the hub enforces it, the console reads it to offer only the
 * actions a role could take. Each action lists the statuses it starts from,
 * the status it leads to, the user roles that may take it, and whether the
 * dispatched worker may take it from a handheld. `admin` may take every user
 * action; the hub itself (`system` actor: rules, timers, dispatch
 * automation) may take every action.
 *
 *   reported ─register→ registered ─dispatch→ dispatched ─accept→ accepted ─arrive→ on_scene ─resolve→ resolved ─verify→ closed
 *       │                   ▲   │                 │  ▲                  │                                       │
 *       │                   └───┼──── decline ────┘  └────────────────── rework ─────────────────────────────────┘
 *       └──── reject ───────────┴──→ rejected  ←── cancel (any open status)
 *
 * Departments (分流, "中心吹哨、部门报到"): registered ─route→ dispatched (to a
 * department) ─sign→ accepted ─reply→ resolved; the department may `return`
 * (退回, with a reason) a dispatched or accepted case to registered, and the
 * centre routes it again. After 结案 the case is rated (`rate`, 1–5); a poor
 * rating (≤ POOR_RATING) lets an officer `rework` the closed case. `supervise`
 * (督办) leaves the status as it is and only writes history.
 */
import { CASE_STATUSES, OPEN_STATUSES, type CaseStatus, type Role } from './values.js';

export * from './values.js';

/** Every workflow action (CONTRACT 4 and its extensions). */
export const CASE_ACTIONS = [
  'register', 'dispatch', 'accept', 'decline', 'arrive', 'resolve', 'verify', 'reject', 'rework', 'cancel',
  // 评价, 分流 to a department, its 签收 / 回复 / 退回, 督办 (no status change)
  'rate', 'route', 'sign', 'reply', 'return', 'supervise',
] as const;
export type CaseAction = (typeof CASE_ACTIONS)[number];

export interface Transition {
  from: readonly CaseStatus[];
  /** null: the status does not change (评价, 督办). */
  to: CaseStatus | null;
  roles: readonly Role[];
  /** The worker the case is dispatched to may take it (handheld `case` channel or a worker login). */
  worker: boolean;
  /** Needs `workerId`. */
  needsWorker?: boolean;
  /** Members of the department the case is routed to may take it. */
  department?: boolean;
  /** Needs `departmentId`. */
  needsDepartment?: boolean;
  /** Needs a note (退回 reason, 督办 text). */
  needsNote?: boolean;
  zh: string;
}

/** A rating at or below this is poor: the closed case may be reworked (返工). */
export const POOR_RATING = 2;

export const WORKFLOW: Readonly<Record<CaseAction, Transition>> = {
  register: { from: ['reported'], to: 'registered', roles: ['officer'], worker: false, zh: '立案' },
  dispatch: { from: ['registered'], to: 'dispatched', roles: ['dispatcher', 'officer'], worker: false, needsWorker: true, zh: '派遣' },
  accept: { from: ['dispatched'], to: 'accepted', roles: ['dispatcher'], worker: true, zh: '接单' },
  decline: { from: ['dispatched', 'accepted'], to: 'registered', roles: ['dispatcher'], worker: true, zh: '退单' },
  // Arrival may come straight after dispatch: GPS detection or a worker who skipped "accept".
  arrive: { from: ['dispatched', 'accepted'], to: 'on_scene', roles: ['dispatcher'], worker: true, zh: '到场' },
  resolve: { from: ['on_scene'], to: 'resolved', roles: [], worker: true, zh: '处置反馈' },
  verify: { from: ['resolved'], to: 'closed', roles: ['officer'], worker: false, zh: '核查结案' },
  reject: { from: ['reported', 'registered'], to: 'rejected', roles: ['officer'], worker: false, zh: '作废' },
  // From closed only after a poor rating (≤ POOR_RATING).
  rework: { from: ['resolved', 'closed'], to: 'dispatched', roles: ['officer'], worker: false, zh: '返工' },
  cancel: { from: OPEN_STATUSES, to: 'rejected', roles: ['officer', 'dispatcher'], worker: false, zh: '撤销' },
  // Internal cases: the officer who verified; citizen cases: the reporter (Open311 / 12345 token).
  rate: { from: ['closed'], to: null, roles: ['officer'], worker: false, zh: '评价' },
  route: { from: ['registered'], to: 'dispatched', roles: ['dispatcher', 'officer'], worker: false, needsDepartment: true, zh: '分流' },
  sign: { from: ['dispatched'], to: 'accepted', roles: [], worker: false, department: true, zh: '签收' },
  reply: { from: ['accepted', 'on_scene'], to: 'resolved', roles: [], worker: false, department: true, zh: '办结回复' },
  return: { from: ['dispatched', 'accepted'], to: 'registered', roles: [], worker: false, department: true, needsNote: true, zh: '退回' },
  supervise: { from: OPEN_STATUSES, to: null, roles: ['officer', 'dispatcher'], worker: false, needsNote: true, zh: '督办' },
};

export function isOpen(status: CaseStatus): boolean {
  return OPEN_STATUSES.includes(status);
}

export function isCaseStatus(v: unknown): v is CaseStatus {
  return (CASE_STATUSES as readonly unknown[]).includes(v);
}

/** May a user of `role` take `action` as a user (not as the dispatched worker or a department member)? */
export function roleMayTake(role: Role, action: CaseAction): boolean {
  const t = WORKFLOW[action];
  return role === 'admin' ? t.roles.length > 0 || t.worker || !!t.department : t.roles.includes(role);
}

/** Actions a user role may take at all (for UIs and the OpenAPI description). */
export function actionsForRole(role: Role): CaseAction[] {
  return CASE_ACTIONS.filter((a) => roleMayTake(role, a) || (role === 'worker' && WORKFLOW[a].worker));
}

/** Actions that start from `status`, in table order. */
export function actionsFrom(status: CaseStatus): CaseAction[] {
  return CASE_ACTIONS.filter((a) => WORKFLOW[a].from.includes(status));
}
