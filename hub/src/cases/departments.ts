/**
 * Functional departments (职能部门: 城管, 市政, 水务, 园林, 交警, 燃气, 供电 …)
 * as case owners next to grid workers ("中心吹哨、部门报到"). Each has a
 * region it works in (null: the whole city), the categories it owns (which
 * makes it the suggested owner when a case of that category is routed) and
 * its users. A user who belongs to a department sees and acts on only the
 * cases routed to it. Cached in memory; every write goes through here.
 */
import type { Queryable } from '../store/index.js';
import { Errors } from '../core/errors.js';

export interface Department {
  id: string;
  name: string;
  nameEn: string | null;
  regionId: string | null;
  categories: string[];
  /** The user 督办 notices name as the department's leader. */
  leaderUserId: string | null;
  enabled: boolean;
  userIds: string[];
}

export const DepartmentErrors = {
  notFound: (id: string) => Errors.departmentNotFound(`department ${id} not found`),
  exists: (id: string) => Errors.departmentExists(`department ${id} exists`),
  disabled: (id: string) => Errors.departmentDisabled(`department ${id} is disabled`),
};

/** The Socket.IO room of a department's members: they get its cases and nothing sent to regions. */
export const departmentRoom = (id: string): string => `department:${id}`;

/** The seeded departments and the categories each owns (editable through REST). */
export const SEED_DEPARTMENTS: Array<Pick<Department, 'id' | 'name' | 'nameEn' | 'categories'>> = [
  { id: 'chengguan', name: '城管局', nameEn: 'City management', categories: ['E0101', 'E0102', 'E0103', 'E0201', 'E0301', 'E0501', 'E0502', 'E0505', 'C0301', 'C0302'] },
  { id: 'shizheng', name: '市政局', nameEn: 'Municipal works', categories: ['E0302', 'E0403', 'C0101', 'C0102', 'C0202', 'C0203'] },
  { id: 'shuiwu', name: '水务局', nameEn: 'Water authority', categories: ['E0401', 'E0404', 'C0103'] },
  { id: 'yuanlin', name: '园林局', nameEn: 'Parks and greening', categories: ['C0401', 'C0402'] },
  { id: 'jiaojing', name: '交警大队', nameEn: 'Traffic police', categories: ['E0503', 'C0201'] },
  { id: 'ranqi', name: '燃气公司', nameEn: 'Gas company', categories: ['E0405'] },
  { id: 'gongdian', name: '供电公司', nameEn: 'Power company', categories: [] },
];

interface Row {
  id: string;
  name: string;
  name_en: string | null;
  region_id: string | null;
  categories: string[];
  leader_user_id: string | null;
  enabled: boolean;
}

export class DepartmentDirectory {
  private byId = new Map<string, Department>();
  private byUser = new Map<string, Set<string>>();
  /** Called with the users whose departments changed (joined or left one), so their open sockets change rooms; awaited. */
  onMembersChanged: ((userIds: string[]) => Promise<void>) | null = null;

  constructor(private readonly db: Queryable, private readonly contains: (regionId: string, gridId: string | null) => boolean) {}

  async load(): Promise<void> {
    const rows = await this.db.query<Row>('select * from departments order by id');
    const members = await this.db.query<{ department_id: string; user_id: string }>('select department_id, user_id from department_members order by user_id');
    this.byId.clear();
    for (const r of rows) this.byId.set(r.id, { id: r.id, name: r.name, nameEn: r.name_en, regionId: r.region_id, categories: r.categories ?? [], leaderUserId: r.leader_user_id, enabled: r.enabled, userIds: [] });
    for (const m of members) this.byId.get(m.department_id)?.userIds.push(m.user_id);
    this.reindex();
  }

  private reindex(): void {
    this.byUser.clear();
    for (const d of this.byId.values()) {
      for (const u of d.userIds) {
        let set = this.byUser.get(u);
        if (!set) this.byUser.set(u, (set = new Set()));
        set.add(d.id);
      }
    }
  }

  list(): Department[] {
    return [...this.byId.values()];
  }

  get(id: string): Department | undefined {
    return this.byId.get(id);
  }

  /** Departments the user belongs to (empty: not a department user). */
  of(userId: string): string[] {
    return [...(this.byUser.get(userId) ?? [])];
  }

  /**
   * Owners of a category for a case in `gridId`, best first: enabled
   * departments owning the category whose region contains the grid, the
   * most local region first (a district's 城管 before the city's).
   */
  suggest(categoryCode: string, gridId: string | null, depth: (regionId: string) => number): Department[] {
    return this.list()
      .filter((d) => d.enabled && d.categories.includes(categoryCode) && (!d.regionId || this.contains(d.regionId, gridId)))
      .sort((a, b) => (b.regionId ? depth(b.regionId) : -1) - (a.regionId ? depth(a.regionId) : -1) || a.id.localeCompare(b.id));
  }

  async create(d: Omit<Department, 'userIds' | 'enabled'> & { enabled?: boolean; userIds?: string[] }): Promise<Department> {
    if (this.byId.has(d.id)) throw DepartmentErrors.exists(d.id);
    const dept: Department = { ...d, enabled: d.enabled ?? true, userIds: [...new Set(d.userIds ?? [])] };
    await this.db.query(
      'insert into departments (id, name, name_en, region_id, categories, leader_user_id, enabled) values ($1, $2, $3, $4, $5::text[], $6, $7) on conflict do nothing',
      [dept.id, dept.name, dept.nameEn, dept.regionId, dept.categories, dept.leaderUserId, dept.enabled],
    );
    await this.writeMembers(dept.id, dept.userIds);
    this.byId.set(dept.id, dept);
    this.reindex();
    if (dept.userIds.length) await this.onMembersChanged?.(dept.userIds);
    return dept;
  }

  async update(id: string, patch: Partial<Omit<Department, 'id'>>): Promise<Department> {
    const cur = this.byId.get(id);
    if (!cur) throw DepartmentErrors.notFound(id);
    const next: Department = { ...cur, ...patch, userIds: patch.userIds ? [...new Set(patch.userIds)] : cur.userIds };
    await this.db.query('update departments set name = $2, name_en = $3, region_id = $4, categories = $5::text[], leader_user_id = $6, enabled = $7 where id = $1',
      [id, next.name, next.nameEn, next.regionId, next.categories, next.leaderUserId, next.enabled]);
    if (patch.userIds) await this.writeMembers(id, next.userIds);
    this.byId.set(id, next);
    this.reindex();
    const moved = [...cur.userIds.filter((u) => !next.userIds.includes(u)), ...next.userIds.filter((u) => !cur.userIds.includes(u))];
    if (moved.length) await this.onMembersChanged?.(moved);
    return next;
  }

  private async writeMembers(id: string, userIds: string[]): Promise<void> {
    await this.db.query('delete from department_members where department_id = $1', [id]);
    for (const u of userIds) await this.db.query('insert into department_members (department_id, user_id) values ($1, $2) on conflict do nothing', [id, u]);
  }
}
