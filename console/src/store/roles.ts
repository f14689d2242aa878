/**
 * Role → screens and case actions. The hub is the authority (every route
 * checks); this only hides what a role could not do anyway.
 */
import { CASE_ACTIONS, roleMayTake, WORKFLOW } from '@gridlink/devices/workflow';
import type { CaseAction, CaseStatus, Role } from '../api/types';

export type Page = 'map' | 'alarms' | 'cases' | 'video' | 'history' | 'assessment' | 'admin' | 'settings';

export const PAGES_BY_ROLE: Record<Role, readonly Page[]> = {
  admin: ['map', 'alarms', 'cases', 'video', 'history', 'assessment', 'admin', 'settings'],
  officer: ['map', 'alarms', 'cases', 'video', 'history', 'assessment', 'settings'],
  dispatcher: ['map', 'cases', 'alarms', 'video', 'history', 'assessment', 'settings'],
  integrator: ['map', 'admin', 'history', 'assessment', 'video', 'settings'],
  worker: ['map', 'settings'],
};

/**
 * The case actions the board offers as buttons, in the order they show.
 * Who may take each one and from which status is the workflow table's
 * (`@gridlink/devices/workflow`, the one the hub enforces); 分流 and 督办 have
 * panels of their own (canRoute below, the supervise box), and the worker's
 * accept / arrive / resolve live on the handheld.
 */
const BOARD_ACTIONS: readonly CaseAction[] = ['register', 'dispatch', 'reject', 'verify', 'rate', 'rework', 'cancel'];

/** Which console actions a case in `status` offers to `role` (CONTRACT 4). */
export function allowedActions(role: Role, status: CaseStatus): CaseAction[] {
  return BOARD_ACTIONS.filter((a) => WORKFLOW[a].from.includes(status) && roleMayTake(role, a));
}

/** What a department user may do with a case routed to their department (签收, 办结回复, 退回). */
export function departmentActions(status: CaseStatus): CaseAction[] {
  return CASE_ACTIONS.filter((a) => WORKFLOW[a].department === true && WORKFLOW[a].from.includes(status));
}

/** The centre may route (分流) a registered case; officers and dispatchers may 督办 an open one. */
export const canRoute = (role: Role, status: CaseStatus) => WORKFLOW.route.from.includes(status) && roleMayTake(role, 'route');

export const ADMIN_TABS_BY_ROLE: Record<Role, readonly ('devices' | 'cameras' | 'grids' | 'rules' | 'users' | 'workers')[]> = {
  admin: ['devices', 'cameras', 'workers', 'grids', 'rules', 'users'],
  integrator: ['devices', 'cameras', 'grids', 'rules'],
  officer: [],
  dispatcher: [],
  worker: [],
};
