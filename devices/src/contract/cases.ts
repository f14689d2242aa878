/** Cases as REST and Socket.IO carry them (CONTRACT 4, 5 `/cases`, 6 `case`). */
import { Type, type Static } from '@sinclair/typebox';
import { RoleT } from './accounts.js';
import { Nullable, OneOf, TimeQuery } from './common.js';
import { CASE_ACTIONS } from './workflow.js';
import { CASE_SOURCES, CASE_STATUSES, CATEGORY_CODE_PATTERN, LIMIT_UNITS, SEVERITIES } from './values.js';

export const SeverityT = OneOf(SEVERITIES);
export const CaseStatusT = OneOf(CASE_STATUSES);
export const CaseSourceT = OneOf(CASE_SOURCES);
export const CaseActionT = OneOf(CASE_ACTIONS);
export const LimitUnitT = OneOf(LIMIT_UNITS, { description: 'limits count working time (the working calendar) or calendar time' });

/** Who did something: a console user, a grid worker's handheld, the hub itself (rules, timers), or a member of the public. */
export const Actor = Type.Union([
  Type.Object({ kind: Type.Literal('user'), id: Type.String(), name: Type.String(), role: RoleT, regionId: Nullable(Type.String()) }),
  Type.Object({ kind: Type.Literal('worker'), id: Type.String(), name: Type.String(), deviceId: Type.String() }),
  Type.Object({ kind: Type.Literal('system'), id: Type.String(), name: Type.String() }),
  /** Open311 / 12345: `id` is the request or order reference. */
  Type.Object({ kind: Type.Literal('citizen'), id: Type.String(), name: Type.String() }),
]);
export type Actor = Static<typeof Actor>;

/**
 * An actor inside a response: serialised as it is stored (histories written
 * before a field existed stay readable), typed as the Actor union.
 */
const StoredActor = Type.Unsafe<Actor>(Type.Unknown({ description: 'Actor: {kind: user|worker|system|citizen, id, name, ...}' }));

export const CaseCategoryRef = Type.Object({ code: Type.String(), name: Type.String(), nameEn: Type.Optional(Type.String()), limitUnit: Type.Optional(LimitUnitT) });

/** The case summary: list items, action answers and the Socket.IO `case` event. */
export const CaseSummary = Type.Object({
  id: Type.String(),
  code: Type.String({ description: 'GL-YYYYMMDD-NNNNNN' }),
  title: Type.String(),
  status: CaseStatusT,
  category: CaseCategoryRef,
  severity: SeverityT,
  lat: Type.Number(),
  lon: Type.Number(),
  address: Type.Optional(Nullable(Type.String())),
  gridId: Nullable(Type.String()),
  source: CaseSourceT,
  workerId: Nullable(Type.String({ description: 'worker currently dispatched to the case' })),
  deadline: Type.Number(),
  overdue: Type.Boolean(),
  createdAt: Type.Number(),
  updatedAt: Type.Number(),
  departmentId: Type.Optional(Nullable(Type.String({ description: 'department the case is routed to (分流)' }))),
  ackDeadline: Type.Optional(Nullable(Type.Number({ description: '签收 deadline while the case is not acknowledged' }))),
  ackOverdue: Type.Optional(Type.Boolean({ description: '签收 was not in time (since the last dispatch)' })),
  warned: Type.Optional(Type.Boolean({ description: '黄牌: the deadline is near' })),
  escalatedTo: Type.Optional(Nullable(Type.String({ description: 'region the case was escalated to (督办升级)' }))),
  rating: Type.Optional(Nullable(Type.Integer({ description: '评价 score 1–5 after 结案' }))),
});
export type CaseSummary = Static<typeof CaseSummary>;

export const Evidence = Type.Object({
  id: Type.String(), caseId: Nullable(Type.String()), alarmId: Nullable(Type.String()), kind: Type.String(), mime: Type.String(), size: Type.Number(),
  sha256: Type.String(), deviceId: Nullable(Type.String()), gridId: Nullable(Type.String()), createdAt: Type.Number(), url: Type.String(),
});
export type Evidence = Static<typeof Evidence>;

/** One line of a case's history (who, what, when). */
export const CaseHistoryEntry = Type.Object({
  id: Type.Number(), ts: Type.Number(), action: Type.String(), from: Nullable(CaseStatusT), to: Nullable(CaseStatusT),
  actor: StoredActor, note: Nullable(Type.String()), data: Type.Unsafe<Record<string, unknown> | null>(Type.Unknown()),
});
export type CaseHistoryEntry = Static<typeof CaseHistoryEntry>;

const NullableTime = Nullable(Type.Number());
/** `GET /cases/{id}`: the summary with history and evidence. */
export const CaseDetail = Type.Intersect([CaseSummary, Type.Object({
  description: Nullable(Type.String()),
  ruleId: Nullable(Type.String()),
  deviceId: Nullable(Type.String()),
  reporter: Type.Unsafe<Actor | null>(Type.Unknown()),
  times: Type.Object({ registeredAt: NullableTime, dispatchedAt: NullableTime, acceptedAt: NullableTime, arrivedAt: NullableTime, resolvedAt: NullableTime, closedAt: NullableTime }),
  counts: Type.Object({ dispatches: Type.Number(), declines: Type.Number(), reworks: Type.Number(), routes: Type.Optional(Type.Number()), returns: Type.Optional(Type.Number()), supervisions: Type.Optional(Type.Number()), escalationLevel: Type.Optional(Type.Number()) }),
  alarmIds: Type.Array(Type.String()),
  evaluation: Nullable(Type.Object({ rating: Type.Integer(), comment: Nullable(Type.String()), at: Type.Number(), by: Type.Unsafe<Actor | null>(Type.Unknown()) })),
  history: Type.Array(CaseHistoryEntry),
  evidence: Type.Array(Evidence),
})]);
export type CaseDetail = Static<typeof CaseDetail>;

const Photos = Type.Array(Type.String({ minLength: 8, maxLength: 1_400_000, description: 'base64 JPEG or PNG (a data: URL is accepted)' }), { maxItems: 9 });

/** `POST /cases`. */
export const CreateCaseBody = Type.Object({
  title: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
  description: Type.Optional(Type.String({ maxLength: 2000 })),
  category: Type.String({ minLength: 1, maxLength: 64, description: 'category code (E0402), key (fire) or name (火灾)' }),
  severity: Type.Optional(SeverityT),
  lat: Type.Number({ minimum: -90, maximum: 90 }),
  lon: Type.Number({ minimum: -180, maximum: 180 }),
  address: Type.Optional(Type.String({ maxLength: 500 })),
  source: Type.Optional(Type.Union([Type.Literal('officer'), Type.Literal('citizen')])),
  photos: Type.Optional(Photos),
  note: Type.Optional(Type.String({ maxLength: 2000 })),
}, { additionalProperties: false });
export type CreateCaseBody = Static<typeof CreateCaseBody>;

/** `POST /cases/{id}/actions`: a workflow action (CONTRACT 4). */
export const CaseActionBody = Type.Object({
  action: CaseActionT,
  workerId: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
  departmentId: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'route (分流): the department' })),
  rating: Type.Optional(Type.Integer({ minimum: 1, maximum: 5, description: 'rate (评价): 1–5; the note is the comment' })),
  note: Type.Optional(Type.String({ maxLength: 2000 })),
  photos: Type.Optional(Photos),
  data: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
}, { additionalProperties: false });
export type CaseActionBody = Static<typeof CaseActionBody>;

/** `GET /cases/counts`: the board's column badges. */
export const CaseCounts = Type.Object({ total: Type.Integer(), byStatus: Type.Record(Type.String(), Type.Integer()), overdue: Type.Integer(), warned: Type.Integer(), escalated: Type.Integer() });
export type CaseCounts = Static<typeof CaseCounts>;

/** `GET /categories` items (部件/事件 catalogue): limits in minutes (签收 ack, 处置 handling), counted as `limitUnit` says. */
export const Category = Type.Object({
  code: Type.String(), key: Nullable(Type.String()), kind: Type.Union([Type.Literal('component'), Type.Literal('event')]),
  majorCode: Type.String(), majorName: Type.String(), minorCode: Type.String(), name: Type.String(), nameEn: Type.String(),
  timeLimitMin: Type.Integer(), defaultSeverity: SeverityT,
  ackLimitMin: Type.Integer(), limitUnit: Type.Union([Type.Literal('working'), Type.Literal('calendar')]),
});
export type Category = Static<typeof Category>;

/** `GET /departments` items (分流: the departments a case is routed to); `userIds` only for admins. */
export const Department = Type.Object({
  id: Type.String(),
  name: Type.String(),
  nameEn: Nullable(Type.String()),
  regionId: Nullable(Type.String()),
  categories: Type.Array(Type.String()),
  leaderUserId: Nullable(Type.String()),
  enabled: Type.Boolean(),
  userIds: Type.Optional(Type.Array(Type.String())),
  /** In a suggestion list: the department owns the case's category. */
  suggested: Type.Optional(Type.Boolean()),
});
export type Department = Static<typeof Department>;

/** `GET /cases/counts` filters; `GET /cases` takes them with a page (CaseListQuery). */
export const CaseFilterQuery = Type.Object({
  status: Type.Optional(Type.String({ description: 'one status or several separated by commas' })),
  gridId: Type.Optional(Type.String({ maxLength: 64 })),
  workerId: Type.Optional(Type.String({ maxLength: 64 })),
  departmentId: Type.Optional(Type.String({ maxLength: 64, description: 'only cases routed to this department' })),
  escalatedTo: Type.Optional(Type.String({ maxLength: 64, description: 'only cases escalated (督办升级) to this region; `mine`: to the caller\'s own region' })),
  category: Type.Optional(Type.String({ maxLength: 64 })),
  from: Type.Optional(TimeQuery),
  to: Type.Optional(TimeQuery),
});
export type CaseFilterQuery = Static<typeof CaseFilterQuery>;

/** `GET /cases`: the filters, a page size and the `nextCursor` of the previous page. */
export const CaseListQuery = Type.Intersect([CaseFilterQuery, Type.Object({
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
  cursor: Type.Optional(Type.String({ maxLength: 200 })),
})]);
export type CaseListQuery = Static<typeof CaseListQuery>;

const LimitMin = (options: { default?: number } = {}) => Type.Integer({ minimum: 1, maximum: 525_600, ...options });

/** `POST /categories` (admin): `code`, when sent, must be the kind letter + 大类 + 小类 it is built from. */
export const CreateCategoryBody = Type.Object({
  code: Type.Optional(Type.String({ pattern: CATEGORY_CODE_PATTERN })),
  key: Type.Optional(Type.String({ pattern: '^[a-z][a-z0-9_]{0,63}$' })),
  kind: Type.Union([Type.Literal('component'), Type.Literal('event')]),
  majorCode: Type.String({ pattern: '^\\d{2}$' }),
  majorName: Type.Optional(Type.String({ maxLength: 64 })),
  minorCode: Type.String({ pattern: '^\\d{2}$' }),
  name: Type.String({ minLength: 1, maxLength: 64 }),
  nameEn: Type.String({ minLength: 1, maxLength: 64 }),
  timeLimitMin: LimitMin(),
  ackLimitMin: Type.Optional(LimitMin({ default: 60 })),
  limitUnit: Type.Optional(LimitUnitT),
  defaultSeverity: SeverityT,
}, { additionalProperties: false });
export type CreateCategoryBody = Static<typeof CreateCategoryBody>;

/** `PATCH /categories/{code}` (admin): limits, their unit or the default severity; applies to cases created or dispatched from then on. */
export const UpdateCategoryBody = Type.Object({
  timeLimitMin: Type.Optional(LimitMin()),
  ackLimitMin: Type.Optional(LimitMin()),
  limitUnit: Type.Optional(LimitUnitT),
  defaultSeverity: Type.Optional(SeverityT),
}, { additionalProperties: false, minProperties: 1 });
export type UpdateCategoryBody = Static<typeof UpdateCategoryBody>;

export const CategoryParams = Type.Object({ code: Type.String({ pattern: CATEGORY_CODE_PATTERN }) });
export type CategoryParams = Static<typeof CategoryParams>;

/** `GET /departments`: with `caseId`, the list is ordered for routing that case (owners of its category first, `suggested: true`). */
export const DepartmentsQuery = Type.Object({ caseId: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })) }, { additionalProperties: false });
export type DepartmentsQuery = Static<typeof DepartmentsQuery>;

const DepartmentFields = {
  name: Type.String({ minLength: 1, maxLength: 64 }),
  nameEn: Nullable(Type.String({ maxLength: 64 })),
  regionId: Nullable(Type.String({ minLength: 1, maxLength: 64, description: 'grid id of the region it works in; null: the whole city' })),
  categories: Type.Array(Type.String({ pattern: CATEGORY_CODE_PATTERN }), { maxItems: 500, description: 'category codes it owns' }),
  leaderUserId: Nullable(Type.String({ minLength: 1, maxLength: 64 })),
  enabled: Type.Boolean(),
  userIds: Type.Array(Type.String({ minLength: 1, maxLength: 64 }), { maxItems: 1000, description: 'its users (they then see only cases routed to it)' }),
};
const F = DepartmentFields;

/** `POST /departments` (admin). */
export const CreateDepartmentBody = Type.Object({
  id: Type.String({ pattern: '^[a-z][a-z0-9_-]{0,63}$' }),
  name: F.name, nameEn: Type.Optional(F.nameEn), regionId: Type.Optional(F.regionId), categories: Type.Optional(F.categories),
  leaderUserId: Type.Optional(F.leaderUserId), enabled: Type.Optional(F.enabled), userIds: Type.Optional(F.userIds),
}, { additionalProperties: false });
export type CreateDepartmentBody = Static<typeof CreateDepartmentBody>;

/** `PATCH /departments/{id}` (admin): at least one field. */
export const UpdateDepartmentBody = Type.Object({
  name: Type.Optional(F.name), nameEn: Type.Optional(F.nameEn), regionId: Type.Optional(F.regionId), categories: Type.Optional(F.categories),
  leaderUserId: Type.Optional(F.leaderUserId), enabled: Type.Optional(F.enabled), userIds: Type.Optional(F.userIds),
}, { additionalProperties: false, minProperties: 1 });
export type UpdateDepartmentBody = Static<typeof UpdateDepartmentBody>;

const HourMinute = Type.String({ pattern: '^([01]\\d|2[0-4]):[0-5]\\d$' });
const LocalDate = Type.String({ pattern: '^\\d{4}-\\d{2}-\\d{2}$' });

/** `GET /calendar` answers and `PUT /calendar` (admin) takes the working calendar (工作日历) that working-time limits count in. */
export const WorkingCalendar = Type.Object({
  utcOffsetMin: Type.Integer({ minimum: -840, maximum: 840, description: 'minutes east of UTC (480 = China Standard Time)' }),
  hours: Type.Array(Type.Tuple([HourMinute, HourMinute]), { minItems: 1, maxItems: 8, description: 'working intervals of a working day, local HH:MM' }),
  weekend: Type.Array(Type.Integer({ minimum: 0, maximum: 6 }), { maxItems: 7, description: 'rest days, 0 = Sunday' }),
  holidays: Type.Array(LocalDate, { maxItems: 2000, description: 'public holidays (YYYY-MM-DD)' }),
  workdays: Type.Array(LocalDate, { maxItems: 2000, description: '调休 working days on a weekend (YYYY-MM-DD)' }),
}, { additionalProperties: false });
export type WorkingCalendar = Static<typeof WorkingCalendar>;
