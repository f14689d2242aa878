import { describe, expect, it } from 'vitest';
import { allowedActions, canRoute, departmentActions } from '../src/store/roles';
import { CASE_STATUSES, type CaseStatus, type Role } from '../src/api/types';

describe('store/roles (from the contract workflow table)', () => {
  it('should offer each role the board buttons the workflow lets it take from each status', () => {
    const offered = (role: Role) => Object.fromEntries(CASE_STATUSES.map((s) => [s, allowedActions(role, s)]));
    const officer = {
      reported: ['register', 'reject', 'cancel'],
      registered: ['dispatch', 'reject', 'cancel'],
      dispatched: ['cancel'],
      accepted: ['cancel'],
      on_scene: ['cancel'],
      resolved: ['verify', 'rework', 'cancel'],
      closed: ['rate', 'rework'],
      rejected: [],
    };
    expect(offered('officer')).toEqual(officer);
    expect(offered('admin')).toEqual(officer);
    expect(offered('dispatcher')).toEqual({
      reported: ['cancel'], registered: ['dispatch', 'cancel'], dispatched: ['cancel'], accepted: ['cancel'], on_scene: ['cancel'], resolved: ['cancel'], closed: [], rejected: [],
    });
    for (const role of ['worker', 'integrator'] as const) for (const s of CASE_STATUSES) expect(allowedActions(role, s)).toEqual([]);
  });

  it('should offer a department 签收 / 退回 on a dispatched case and 办结回复 once accepted or on scene', () => {
    const by = Object.fromEntries(CASE_STATUSES.map((s) => [s, departmentActions(s)]));
    expect(by).toEqual({
      reported: [], registered: [], dispatched: ['sign', 'return'], accepted: ['reply', 'return'], on_scene: ['reply'], resolved: [], closed: [], rejected: [],
    });
  });

  it('should let the centre route only a registered case', () => {
    const routable = (role: Role) => CASE_STATUSES.filter((s: CaseStatus) => canRoute(role, s));
    expect(routable('officer')).toEqual(['registered']);
    expect(routable('dispatcher')).toEqual(['registered']);
    expect(routable('admin')).toEqual(['registered']);
    expect(routable('worker')).toEqual([]);
    expect(routable('integrator')).toEqual([]);
  });
});
