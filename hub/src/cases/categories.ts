/**
 * Category catalogue (部件/事件 大类/小类, GB/T 30428 / CJ/T 214 style).
 * A code is kind letter + 2-digit 大类 + 2-digit 小类: `E0402` is 事件 ·
 * 突发事件 · 火灾, `C0101` is 部件 · 公用设施 · 井盖. Each category has a
 * 签收 (acknowledge) limit and a 处置 (handling) limit, both in minutes of
 * working time or of calendar time as its `limitUnit` says (the working
 * calendar is data: calendar.ts). Seeded by migration, editable by REST.
 */
import type { Severity } from '@gridlink/devices';
import type { Queryable } from '../store/index.js';
import type { LimitUnit } from '@gridlink/devices/calendar';

export type CategoryKind = 'component' | 'event';

export interface Category {
  code: string;
  /** Short stable slug handhelds and rules may use instead of the code (e.g. `fire`). */
  key: string | null;
  kind: CategoryKind;
  majorCode: string;
  majorName: string;
  minorCode: string;
  name: string;
  nameEn: string;
  /** 处置 limit: from creation to the deadline. */
  timeLimitMin: number;
  defaultSeverity: Severity;
  /** 签收 limit: from dispatch / routing to acknowledgement. */
  ackLimitMin: number;
  limitUnit: LimitUnit;
}

const H = 60;
type Seed = [code: string, key: string | null, major: string, name: string, nameEn: string, limitMin: number, severity: Severity];

/** 大类 names by kind and code. */
export const MAJOR: Record<CategoryKind, Record<string, string>> = {
  event: { '01': '市容环境', '02': '宣传广告', '03': '施工管理', '04': '突发事件', '05': '街面秩序', '06': '其他事件' },
  component: { '01': '公用设施', '02': '道路交通', '03': '市容环境', '04': '园林绿化', '05': '其他设施' },
};

const SEEDS: Seed[] = [
  // 事件 · 市容环境
  ['E0101', 'garbage', '01', '暴露垃圾', 'Exposed garbage', 4 * H, 'minor'],
  ['E0102', 'road_dirty', '01', '道路不洁', 'Dirty road', 2 * H, 'info'],
  ['E0103', 'garbage_overflow', '01', '垃圾满溢', 'Overflowing bins', 4 * H, 'minor'],
  // 事件 · 宣传广告
  ['E0201', 'illegal_posters', '02', '非法小广告', 'Illegal posters', 24 * H, 'info'],
  // 事件 · 施工管理
  ['E0301', 'construction_dust', '03', '施工扬尘', 'Construction dust', 24 * H, 'minor'],
  ['E0302', 'road_occupation', '03', '道路占挖', 'Road occupation by works', 24 * H, 'minor'],
  // 事件 · 突发事件
  ['E0401', 'flooding', '04', '积水', 'Flooding', 2 * H, 'major'],
  ['E0402', 'fire', '04', '火灾', 'Fire', 1 * H, 'critical'],
  ['E0403', 'road_collapse', '04', '路面塌陷', 'Road collapse', 2 * H, 'critical'],
  ['E0404', 'pipe_burst', '04', '管道破裂', 'Pipe burst', 2 * H, 'major'],
  ['E0405', 'gas_leak', '04', '燃气泄漏', 'Gas leak', 1 * H, 'critical'],
  ['E0406', 'crowd', '04', '人员聚集', 'Crowd gathering', 1 * H, 'major'],
  ['E0407', 'fall', '04', '人员跌倒', 'Person fallen', 1 * H, 'major'],
  ['E0408', 'fight', '04', '打架斗殴', 'Fight', 1 * H, 'major'],
  // 事件 · 街面秩序
  ['E0501', 'street_vending', '05', '占道经营', 'Street vending', 4 * H, 'minor'],
  ['E0502', 'unlicensed_business', '05', '无照经营', 'Unlicensed business', 24 * H, 'minor'],
  ['E0503', 'illegal_parking', '05', '乱停车', 'Illegal parking', 2 * H, 'minor'],
  ['E0504', 'intrusion', '05', '非法闯入', 'Intrusion', 1 * H, 'major'],
  ['E0505', 'road_obstruction', '05', '道路遗撒障碍', 'Road obstruction', 2 * H, 'minor'],
  // 事件 · 其他
  ['E0601', 'device_offline', '06', '设备离线', 'Device offline', 24 * H, 'warning'],
  ['E0602', 'air_quality', '06', '空气质量超标', 'Air quality exceeded', 24 * H, 'minor'],
  ['E0699', 'other', '06', '其他事件', 'Other event', 72 * H, 'info'],
  // 部件 · 公用设施
  ['C0101', 'manhole_cover', '01', '井盖', 'Manhole cover', 4 * H, 'major'],
  ['C0102', 'street_lamp', '01', '路灯', 'Street lamp', 24 * H, 'minor'],
  ['C0103', 'hydrant', '01', '消防栓', 'Fire hydrant', 24 * H, 'major'],
  // 部件 · 道路交通
  ['C0201', 'traffic_sign', '02', '交通标志牌', 'Traffic sign', 72 * H, 'minor'],
  ['C0202', 'guard_rail', '02', '护栏', 'Guard rail', 72 * H, 'minor'],
  ['C0203', 'bus_stop', '02', '公交站亭', 'Bus stop', 72 * H, 'minor'],
  // 部件 · 市容环境
  ['C0301', 'public_toilet', '03', '公厕', 'Public toilet', 24 * H, 'minor'],
  ['C0302', 'bin', '03', '垃圾箱', 'Litter bin', 24 * H, 'info'],
  // 部件 · 园林绿化
  ['C0401', 'street_tree', '04', '行道树', 'Street tree', 120 * H, 'info'],
  ['C0402', 'green_land', '04', '绿地', 'Green land', 120 * H, 'info'],
  ['C0599', 'other_component', '05', '其他部件', 'Other component', 72 * H, 'info'],
];

/**
 * Emergencies and safety run on the clock; routine city management in
 * working hours (暴露垃圾 4 working hours, 绿地养护 5 working days: DOMAIN.md).
 */
export const CALENDAR_CODES = new Set(['E0401', 'E0402', 'E0403', 'E0404', 'E0405', 'E0406', 'E0407', 'E0408', 'E0504', 'E0601', 'C0101', 'C0103']);
/** Seeded 处置 limits that differ once counted in working time. */
export const WORKING_LIMITS: Record<string, number> = { C0401: 5 * 8 * H, C0402: 5 * 8 * H };
/** 签收 limits: emergencies 10 minutes, everything else 1 hour (the seeds: answer a citizen within 2 hours). */
export const ackLimitFor = (code: string) => (code.startsWith('E04') ? 10 : H);

export const SEED_CATEGORIES: Category[] = SEEDS.map(([code, key, major, name, nameEn, limit, severity]) => {
  const kind: CategoryKind = code.startsWith('C') ? 'component' : 'event';
  return {
    code, key, kind, majorCode: major, majorName: MAJOR[kind][major] ?? '其他', minorCode: code.slice(3), name, nameEn,
    timeLimitMin: WORKING_LIMITS[code] ?? limit, defaultSeverity: severity, ackLimitMin: ackLimitFor(code), limitUnit: CALENDAR_CODES.has(code) ? 'calendar' : 'working',
  };
});
/** The limits migration 202 seeded, before working time existed (migration 204 moves them to SEED_CATEGORIES). */
export const SEED_LIMITS_V1: Record<string, number> = Object.fromEntries(SEEDS.map((s) => [s[0], s[5]]));

interface CategoryRow {
  code: string;
  key: string | null;
  kind: CategoryKind;
  major_code: string;
  major_name: string;
  minor_code: string;
  name: string;
  name_en: string;
  time_limit_min: number;
  default_severity: Severity;
  ack_limit_min?: number;
  limit_unit?: LimitUnit;
}

const fromRow = (r: CategoryRow): Category => ({
  code: r.code, key: r.key, kind: r.kind, majorCode: r.major_code, majorName: r.major_name, minorCode: r.minor_code,
  name: r.name, nameEn: r.name_en, timeLimitMin: r.time_limit_min, defaultSeverity: r.default_severity,
  ackLimitMin: r.ack_limit_min ?? 60, limitUnit: r.limit_unit ?? 'calendar',
});

/** The columns of migration 201 only (migration 202 runs before 204 adds the limits). */
export async function insertCategoryV1(q: Queryable, c: Category): Promise<boolean> {
  const rows = await q.query(
    `insert into case_categories (code, key, kind, major_code, major_name, minor_code, name, name_en, time_limit_min, default_severity)
     values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) on conflict do nothing returning code`,
    [c.code, c.key, c.kind, c.majorCode, c.majorName, c.minorCode, c.name, c.nameEn, SEED_LIMITS_V1[c.code] ?? c.timeLimitMin, c.defaultSeverity],
  );
  return rows.length > 0;
}

export async function insertCategory(q: Queryable, c: Category): Promise<boolean> {
  const rows = await q.query(
    `insert into case_categories (code, key, kind, major_code, major_name, minor_code, name, name_en, time_limit_min, default_severity, ack_limit_min, limit_unit)
     values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) on conflict do nothing returning code`,
    [c.code, c.key, c.kind, c.majorCode, c.majorName, c.minorCode, c.name, c.nameEn, c.timeLimitMin, c.defaultSeverity, c.ackLimitMin, c.limitUnit],
  );
  return rows.length > 0;
}

/** In-memory catalogue: looked up on every case creation; changes go through `add`. */
export class CategoryCatalogue {
  private byCode = new Map<string, Category>();
  private byAlias = new Map<string, Category>();

  constructor(private readonly db: Queryable) {}

  async load(): Promise<void> {
    const rows = await this.db.query<CategoryRow>('select * from case_categories order by code');
    this.byCode.clear();
    this.byAlias.clear();
    for (const r of rows) this.index(fromRow(r));
  }

  private index(c: Category): void {
    this.byCode.set(c.code, c);
    if (c.key) this.byAlias.set(c.key.toLowerCase(), c);
    this.byAlias.set(c.name, c);
    this.byAlias.set(c.nameEn.toLowerCase(), c);
  }

  list(): Category[] {
    return [...this.byCode.values()];
  }

  get(code: string): Category | undefined {
    return this.byCode.get(code);
  }

  /** By code, key, Chinese or English name: what a handheld or a rule may send. */
  resolve(ref: string): Category | undefined {
    return this.byCode.get(ref) ?? this.byCode.get(ref.toUpperCase()) ?? this.byAlias.get(ref) ?? this.byAlias.get(ref.toLowerCase());
  }

  async add(c: Category): Promise<Category | null> {
    if (!(await insertCategory(this.db, c))) return null;
    this.index(c);
    return c;
  }

  /** Changes a category's limits or default severity. */
  async update(code: string, patch: Partial<Pick<Category, 'timeLimitMin' | 'ackLimitMin' | 'limitUnit' | 'defaultSeverity'>>): Promise<Category | null> {
    const cur = this.byCode.get(code);
    if (!cur) return null;
    const next = { ...cur, ...patch };
    await this.db.query('update case_categories set time_limit_min = $2, ack_limit_min = $3, limit_unit = $4, default_severity = $5 where code = $1',
      [code, next.timeLimitMin, next.ackLimitMin, next.limitUnit, next.defaultSeverity]);
    this.index(next);
    return next;
  }
}
