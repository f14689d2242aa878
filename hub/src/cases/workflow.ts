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
 */
import type { Role } from '../auth/index.js';
import type { CaseAction, CaseStatus } from '../core/services.js';

export interface Transition {
  from: readonly CaseStatus[];
  to: CaseStatus;
  roles: readonly Role[];
  /** The worker the case is dispatched to may take it (handheld `case` channel or a worker login). */
  worker: boolean;
  /** Needs `workerId`. */
  needsWorker?: boolean;
  zh: string;
}

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
  rework: { from: ['resolved'], to: 'dispatched', roles: ['officer'], worker: false, zh: '返工' },
  cancel: { from: ['reported', 'registered', 'dispatched', 'accepted', 'on_scene', 'resolved'], to: 'rejected', roles: ['officer', 'dispatcher'], worker: false, zh: '撤销' },
};

export const CASE_ACTIONS = Object.keys(WORKFLOW) as CaseAction[];

export function isOpen(status: CaseStatus): boolean {
  return OPEN_STATUSES.includes(status);
}

/** Actions a user role may take at all (for UIs and the OpenAPI description). */
export function actionsForRole(role: Role): CaseAction[] {
  return CASE_ACTIONS.filter((a) => role === 'admin' ? WORKFLOW[a].roles.length > 0 || WORKFLOW[a].worker : WORKFLOW[a].roles.includes(role) || (role === 'worker' && WORKFLOW[a].worker));
}

/** The workflow as a markdown table (OpenAPI description, docs). */
export function workflowTable(): string {
  const rows = CASE_ACTIONS.map((a) => {
    const t = WORKFLOW[a];
    const who = [...t.roles, ...(t.worker ? ['dispatched worker'] : [])].join(', ') || '—';
    return `| ${a} (${t.zh}) | ${t.from.join(', ')} | ${t.to} | ${who}, admin |`;
  });
  return ['| action | from | to | who |', '|---|---|---|---|', ...rows].join('\n');
}
