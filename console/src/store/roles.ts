/**
 * Role → screens and case actions. The hub is the authority (every route
 * checks); this only hides what a role could not do anyway.
 */
import type { CaseAction, CaseStatus, Role } from '../api/types';

export type Page = 'map' | 'alarms' | 'cases' | 'video' | 'history' | 'assessment' | 'admin' | 'settings';

export const PAGES_BY_ROLE: Record<Role, readonly Page[]> = {
  admin: ['map', 'alarms', 'cases', 'video', 'history', 'assessment', 'admin', 'settings'],
  officer: ['map', 'alarms', 'cases', 'video', 'history', 'assessment', 'settings'],
  dispatcher: ['map', 'cases', 'alarms', 'video', 'history', 'assessment', 'settings'],
  integrator: ['map', 'admin', 'history', 'assessment', 'video', 'settings'],
  worker: ['map', 'settings'],
};

// Mirrors hub/src/cases/workflow.ts (the hub checks every action again).
const ACTIONS_BY_ROLE: Record<Role, readonly CaseAction[]> = {
  admin: ['register', 'reject', 'dispatch', 'verify', 'rework', 'cancel', 'rate'],
  officer: ['register', 'reject', 'dispatch', 'verify', 'rework', 'cancel', 'rate'],
  dispatcher: ['dispatch', 'cancel'],
  integrator: [],
  worker: [],
};

/** Which console actions a case in `status` offers (CONTRACT 4). */
const ACTIONS_BY_STATUS: Record<CaseStatus, readonly CaseAction[]> = {
  reported: ['register', 'reject', 'cancel'],
  registered: ['dispatch', 'reject', 'cancel'],
  dispatched: ['cancel'],
  accepted: ['cancel'],
  on_scene: ['cancel'],
  resolved: ['verify', 'rework', 'cancel'],
  // rework of a closed case: only after a poor rating (the hub checks).
  closed: ['rate', 'rework'],
  rejected: [],
};

export function allowedActions(role: Role, status: CaseStatus): CaseAction[] {
  return ACTIONS_BY_STATUS[status].filter((a) => ACTIONS_BY_ROLE[role].includes(a));
}

/** What a department user may do with a case routed to their department (签收, 办结回复, 退回). */
const DEPARTMENT_ACTIONS: Partial<Record<CaseStatus, readonly CaseAction[]>> = {
  dispatched: ['sign', 'return'],
  accepted: ['reply', 'return'],
  on_scene: ['reply'],
};

export function departmentActions(status: CaseStatus): CaseAction[] {
  return [...(DEPARTMENT_ACTIONS[status] ?? [])];
}

/** The centre may route (分流) a registered case; officers and dispatchers may 督办 an open one. */
export const canRoute = (role: Role, status: CaseStatus) => status === 'registered' && (role === 'admin' || role === 'officer' || role === 'dispatcher');

export const ADMIN_TABS_BY_ROLE: Record<Role, readonly ('devices' | 'cameras' | 'grids' | 'rules' | 'users' | 'workers')[]> = {
  admin: ['devices', 'cameras', 'workers', 'grids', 'rules', 'users'],
  integrator: ['devices', 'cameras', 'grids', 'rules'],
  officer: [],
  dispatcher: [],
  worker: [],
};
