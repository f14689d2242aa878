import type { Migration, Queryable } from '../store/index.js';
import { CN_HOLIDAYS, DEFAULT_CALENDAR, type CalendarData } from '@gridlink/devices/calendar';
import { SEED_DEPARTMENTS } from './departments.js';
import { insertCategoryV1, SEED_CATEGORIES, SEED_LIMITS_V1 } from './categories.js';

const tables = `
create table grids (
  id text primary key,
  name text not null,
  level text not null,
  parent_id text,
  code text,
  geometry jsonb not null,
  properties jsonb not null default '{}',
  updated_at timestamptz not null default now()
);

create table case_categories (
  code text primary key,
  key text unique,
  kind text not null check (kind in ('component', 'event')),
  major_code text not null,
  major_name text not null,
  minor_code text not null,
  name text not null,
  name_en text not null,
  time_limit_min integer not null check (time_limit_min > 0),
  default_severity text not null,
  created_at timestamptz not null default now()
);

create sequence case_code_seq;

create table cases (
  id text primary key,
  code text not null unique,
  title text not null,
  description text,
  status text not null,
  category_code text not null references case_categories (code),
  severity text not null,
  lat double precision not null,
  lon double precision not null,
  address text,
  grid_id text,
  source text not null,
  -- worker reports: deviceId:reportId, so a re-sent report is one case
  report_key text unique,
  rule_id text,
  device_id text,
  worker_id text,
  reporter jsonb,
  deadline timestamptz not null,
  overdue boolean not null default false,
  created_at timestamptz not null,
  updated_at timestamptz not null,
  registered_at timestamptz,
  dispatched_at timestamptz,
  accepted_at timestamptz,
  arrived_at timestamptz,
  resolved_at timestamptz,
  closed_at timestamptz,
  dispatch_count integer not null default 0,
  decline_count integer not null default 0,
  rework_count integer not null default 0
);
create index cases_status_idx on cases (status);
create index cases_grid_idx on cases (grid_id);
create index cases_created_idx on cases (created_at desc, id desc);
create index cases_worker_idx on cases (worker_id) where worker_id is not null;

-- append-only: rows are inserted, never updated or deleted
create table case_history (
  id bigserial primary key,
  case_id text not null references cases (id),
  ts timestamptz not null,
  action text not null,
  from_status text,
  to_status text,
  actor jsonb not null,
  note text,
  data jsonb
);
create index case_history_case_idx on case_history (case_id, id);

-- what a new trigger attaches to: (rule, device) or (category, device) of an open case
create table case_links (
  case_id text not null references cases (id),
  rule_id text,
  category_code text,
  device_id text not null,
  alarm_id text,
  created_at timestamptz not null
);
create index case_links_device_idx on case_links (device_id);
create index case_links_case_idx on case_links (case_id);

create table evidence (
  id text primary key,
  case_id text,
  alarm_id text,
  kind text not null,
  mime text not null,
  size integer not null,
  sha256 text not null,
  file text not null,
  device_id text,
  grid_id text,
  actor jsonb,
  created_at timestamptz not null
);
create index evidence_case_idx on evidence (case_id);
create index evidence_alarm_idx on evidence (alarm_id);
`;

export const caseMigrations: Migration[] = [
  { id: '201_cases', up: (db) => db.exec(tables) },
  {
    id: '202_case_categories_seed',
    up: async (db) => {
      for (const c of SEED_CATEGORIES) await insertCategoryV1(db, c);
    },
  },
  {
    // 评价: one rating per closure (a rework after a poor rating allows another); who verified decides who may rate.
    id: '203_case_rating',
    up: (db) => db.exec(`
      alter table cases add column verified_by text;
      alter table cases add column rating smallint check (rating between 1 and 5);
      alter table cases add column rating_comment text;
      alter table cases add column rated_at timestamptz;
      alter table cases add column rated_by jsonb;
    `),
  },
  {
    // 签收 and 处置 limits in working or calendar time; the working calendar as data; the 签收 deadline of a dispatch.
    id: '204_working_time',
    up: async (db) => {
      await db.exec(`
        alter table case_categories add column ack_limit_min integer not null default 60 check (ack_limit_min > 0);
        alter table case_categories add column limit_unit text not null default 'calendar' check (limit_unit in ('working', 'calendar'));
        create table work_calendar (id text primary key, data jsonb not null, updated_at timestamptz not null default now());
        alter table cases add column ack_deadline timestamptz;
        alter table cases add column acked_at timestamptz;
        alter table cases add column ack_overdue boolean not null default false;
      `);
      for (const c of SEED_CATEGORIES) {
        await db.query('update case_categories set ack_limit_min = $2, limit_unit = $3, time_limit_min = $4 where code = $1 and time_limit_min = $5',
          [c.code, c.ackLimitMin, c.limitUnit, c.timeLimitMin, SEED_LIMITS_V1[c.code]]);
      }
      await db.query("insert into work_calendar (id, data) values ('default', $1::jsonb)", [JSON.stringify(DEFAULT_CALENDAR)]);
    },
  },
  {
    // 分流: departments as case owners, their users, the department a case is routed to.
    id: '205_departments',
    up: async (db) => {
      await db.exec(`
        create table departments (
          id text primary key,
          name text not null,
          name_en text,
          region_id text,
          categories text[] not null default '{}',
          leader_user_id text,
          enabled boolean not null default true,
          created_at timestamptz not null default now()
        );
        create table department_members (
          department_id text not null references departments (id) on delete cascade,
          user_id text not null,
          primary key (department_id, user_id)
        );
        create index department_members_user_idx on department_members (user_id);
        alter table cases add column department_id text references departments (id);
        alter table cases add column route_count integer not null default 0;
        alter table cases add column return_count integer not null default 0;
        create index cases_department_idx on cases (department_id) where department_id is not null;
      `);
      for (const d of SEED_DEPARTMENTS) {
        await db.query('insert into departments (id, name, name_en, categories) values ($1, $2, $3, $4::text[])', [d.id, d.name, d.nameEn, d.categories]);
      }
    },
  },
  {
    // 督办: 黄牌 before the deadline, 红牌 at it with an automatic notice and escalation up the 四级网络, manual 督办.
    id: '206_supervision',
    up: (db) => db.exec(`
      alter table cases add column warn_at timestamptz;
      alter table cases add column warned boolean not null default false;
      alter table cases add column escalation_level integer not null default 0;
      alter table cases add column escalated_to text;
      alter table cases add column next_escalation_at timestamptz;
      alter table cases add column supervise_count integer not null default 0;
      create index cases_escalated_idx on cases (escalated_to) where escalated_to is not null;
      create index cases_open_deadline_idx on cases (deadline) where status in ('reported', 'registered', 'dispatched', 'accepted', 'on_scene');
    `),
  },
  {
    // Citizen intake (Open311, 12345): the hash of the token that reads a request's status and rates it.
    id: '207_citizen_intake',
    up: (db) => db.exec('alter table cases add column citizen_token_hash text'),
  },
  {
    // The published PRC holidays and 调休 days into a calendar stored before they shipped. A new database got them with 204.
    // When the next year is published: add it to CN_HOLIDAYS and a migration that calls mergeShippedHolidays again.
    id: '208_cn_holidays',
    up: (db) => mergeShippedHolidays(db),
  },
  {
    // Cluster mode: evidence bytes in the database, in parts of 1 MiB (cases/stored-media.ts), gone with their row.
    // Stored as they are (images are compressed already): storage external keeps substring() reads to the chunks they need.
    id: '209_evidence_parts',
    up: (db) => db.exec(`
      create table evidence_parts (
        evidence_id text not null references evidence (id) on delete cascade,
        part integer not null check (part >= 0),
        data bytea not null,
        primary key (evidence_id, part)
      );
      alter table evidence_parts alter column data set storage external;
    `),
  },
];

/** Adds every year of CN_HOLIDAYS to the stored calendar, except a year it already has dates of (an operator's own entries win). */
export async function mergeShippedHolidays(db: Queryable): Promise<void> {
  const row = (await db.query<{ data: CalendarData }>("select data from work_calendar where id = 'default'"))[0];
  if (!row) return;
  const holidays = new Set(row.data.holidays ?? []);
  const workdays = new Set(row.data.workdays ?? []);
  for (const [year, y] of Object.entries(CN_HOLIDAYS)) {
    if ([...holidays, ...workdays].some((d) => d.startsWith(`${year}-`))) continue;
    for (const d of y.holidays) holidays.add(d);
    for (const d of y.workdays) workdays.add(d);
  }
  await db.query("update work_calendar set data = $1::jsonb, updated_at = now() where id = 'default'",
    [JSON.stringify({ ...row.data, holidays: [...holidays].sort(), workdays: [...workdays].sort() })]);
}
