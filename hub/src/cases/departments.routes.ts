/**
 * REST for departments (分流): list (with the owner suggested for a case),
 * create and change (admin), and `mine` for a department user's console.
 */
import { CreateDepartmentBody, Department as DepartmentSchema, DepartmentsQuery, IdParams, UpdateDepartmentBody } from '@gridlink/devices/contract';
import type { Auth } from '../auth/index.js';
import { Errors } from '../core/errors.js';
import type { App } from '../http/app.js';
import { authenticate, principal, requireRole } from '../http/guards.js';
import { errors, Items } from '../http/schemas.js';
import { DepartmentErrors, type Department, type DepartmentDirectory } from './departments.js';
import type { GridIndex } from './grids.js';
import { CaseErrors, type CaseStore } from './service.js';

export interface DepartmentRouteDeps {
  auth: Auth;
  cases: CaseStore;
  departments: DepartmentDirectory;
  grids: GridIndex;
}

export function departmentRoutes(app: App, d: DepartmentRouteDeps): void {
  const { auth, cases, departments, grids } = d;
  const guard = authenticate(auth);
  const publicView = (x: Department, admin: boolean) => (admin ? x : { ...x, userIds: undefined });

  /** Region, categories and users must exist; a scoped admin keeps departments inside the region. */
  async function check(p: ReturnType<typeof principal>, b: Partial<Department>): Promise<void> {
    const problems: string[] = [];
    if (b.regionId !== undefined) {
      if (b.regionId === null ? !!p.regionId : !auth.canSee(p, b.regionId)) throw Errors.outsideRegion('the department region is outside your region');
      if (b.regionId && !grids.has(b.regionId)) problems.push(`unknown region ${b.regionId}`);
    }
    for (const c of b.categories ?? []) if (!cases.categories.get(c)) problems.push(`unknown category ${c}`);
    const ids = [...(b.userIds ?? []), ...(b.leaderUserId ? [b.leaderUserId] : [])];
    if (ids.length) {
      const known = new Set((await auth.listUsers()).map((u) => u.id));
      for (const u of ids) if (!known.has(u)) problems.push(`unknown user ${u}`);
    }
    if (problems.length) throw Errors.validation(problems.join('; '), { problems });
  }

  app.get('/departments', {
    preHandler: [guard, requireRole('officer', 'dispatcher', 'integrator')],
    schema: {
      tags: ['departments'],
      summary: 'Departments; with `caseId`, ordered for routing that case: owners of its category (most local region first, `suggested: true`), then the rest',
      querystring: DepartmentsQuery,
      response: { 200: Items(DepartmentSchema), ...errors(401, 403, 404) },
    },
  }, async (req) => {
    const p = principal(req);
    const admin = p.role === 'admin';
    const all = departments.list();
    if (!req.query.caseId) return { items: all.map((x) => publicView(x, admin)) };
    const c = await cases.get(req.query.caseId);
    if (!c || !auth.canSee(p, c.gridId)) throw CaseErrors.notFound();
    const owners = departments.suggest(c.category.code, c.gridId, (id) => grids.ancestors(id).length);
    const rest = all.filter((x) => x.enabled && !owners.includes(x));
    return { items: [...owners.map((x) => ({ ...publicView(x, admin), suggested: true })), ...rest.map((x) => ({ ...publicView(x, admin), suggested: false }))] };
  });

  app.get('/departments/mine', {
    preHandler: [guard],
    schema: { tags: ['departments'], summary: 'The departments the caller belongs to (empty: not a department user)', response: { 200: Items(DepartmentSchema), ...errors(401) } },
  }, async (req) => ({ items: departments.of(principal(req).sub).map((id) => publicView(departments.get(id)!, false)) }));

  app.post('/departments', {
    preHandler: [guard, requireRole('admin')],
    schema: {
      tags: ['departments'],
      summary: 'Add a department',
      body: CreateDepartmentBody,
      response: { 201: DepartmentSchema, ...errors(400, 401, 403, 409) },
    },
  }, async (req, reply) => {
    const b = req.body;
    const input = { id: b.id, name: b.name, nameEn: b.nameEn ?? null, regionId: b.regionId ?? null, categories: b.categories ?? [], leaderUserId: b.leaderUserId ?? null, enabled: b.enabled, userIds: b.userIds };
    await check(principal(req), input);
    return reply.status(201).send(await departments.create(input));
  });

  app.patch('/departments/:id', {
    preHandler: [guard, requireRole('admin')],
    schema: {
      tags: ['departments'],
      summary: 'Change a department (name, region, owned categories, leader, users, enabled)',
      params: IdParams,
      body: UpdateDepartmentBody,
      response: { 200: DepartmentSchema, ...errors(400, 401, 403, 404) },
    },
  }, async (req) => {
    const p = principal(req);
    const cur = departments.get(req.params.id);
    // A department outside a scoped admin's region does not exist for them.
    if (!cur || (p.regionId && (!cur.regionId || !auth.canSee(p, cur.regionId)))) throw DepartmentErrors.notFound(req.params.id);
    await check(p, req.body);
    return departments.update(req.params.id, req.body);
  });
}
