/**
 * The case workflow (CONTRACT section 4, 数字城管 closed loop) as one table:
 * each action lists the statuses it starts from, the status it leads to,
 * the user roles that may take it, and whether the dispatched worker may take
 * it from a handheld. `admin` may take every user action; the hub itself
 * (`system` actor: rules, timers, dispatch automation) may take every action.
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
import type { Role } from '../auth/index.js';
import type { CaseAction, CaseStatus } from '../core/services.js';

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

export const OPEN_STATUSES: readonly CaseStatus[] = ['reported', 'registered', 'dispatched', 'accepted', 'on_scene', 'resolved'];
export const CASE_STATUSES: readonly CaseStatus[] = [...OPEN_STATUSES, 'closed', 'rejected'];

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
  cancel: { from: ['reported', 'registered', 'dispatched', 'accepted', 'on_scene', 'resolved'], to: 'rejected', roles: ['officer', 'dispatcher'], worker: false, zh: '撤销' },
  // Internal cases: the officer who verified; citizen cases: the reporter (Open311 / 12345 token).
  rate: { from: ['closed'], to: null, roles: ['officer'], worker: false, zh: '评价' },
  route: { from: ['registered'], to: 'dispatched', roles: ['dispatcher', 'officer'], worker: false, needsDepartment: true, zh: '分流' },
  sign: { from: ['dispatched'], to: 'accepted', roles: [], worker: false, department: true, zh: '签收' },
  reply: { from: ['accepted', 'on_scene'], to: 'resolved', roles: [], worker: false, department: true, zh: '办结回复' },
  return: { from: ['dispatched', 'accepted'], to: 'registered', roles: [], worker: false, department: true, needsNote: true, zh: '退回' },
  supervise: { from: ['reported', 'registered', 'dispatched', 'accepted', 'on_scene', 'resolved'], to: null, roles: ['officer', 'dispatcher'], worker: false, needsNote: true, zh: '督办' },
};

export const CASE_ACTIONS = Object.keys(WORKFLOW) as CaseAction[];

export function isOpen(status: CaseStatus): boolean {
  return OPEN_STATUSES.includes(status);
}

/** Actions a user role may take at all (for UIs and the OpenAPI description). */
export function actionsForRole(role: Role): CaseAction[] {
  return CASE_ACTIONS.filter((a) => role === 'admin' ? WORKFLOW[a].roles.length > 0 || WORKFLOW[a].worker || !!WORKFLOW[a].department : WORKFLOW[a].roles.includes(role) || (role === 'worker' && WORKFLOW[a].worker));
}

/** The workflow as a markdown table (OpenAPI description, docs). */
export function workflowTable(): string {
  const rows = CASE_ACTIONS.map((a) => {
    const t = WORKFLOW[a];
    const who = [...t.roles, ...(t.worker ? ['dispatched worker'] : []), ...(t.department ? ['routed department'] : [])].join(', ') || '—';
    return `| ${a} (${t.zh}) | ${t.from.join(', ')} | ${t.to ?? '(unchanged)'} | ${who}, admin |`;
  });
  return ['| action | from | to | who |', '|---|---|---|---|', ...rows].join('\n');
}
