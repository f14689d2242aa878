import type { Migration } from '../store/index.js';
import { DEFAULT_RULES } from './rule.schema.js';

const tables = `
create table rules (
  id text primary key,
  name text not null,
  kind text not null,
  enabled boolean not null default true,
  definition jsonb not null,
  version integer not null default 1,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

-- evaluator state in progress (pending durations, counts) per rule and device
create table rule_state (
  rule_id text not null,
  device_id text not null,
  state jsonb not null,
  updated_at timestamptz not null default now(),
  primary key (rule_id, device_id)
);

create table alarms (
  id text primary key,
  rule_id text not null,
  rule_name text,
  device_id text not null,
  type text not null,
  severity text not null,
  original_severity text not null,
  status text not null check (status in ('active', 'cleared')),
  acknowledged boolean not null default false,
  ack_by text,
  ack_at timestamptz,
  escalated boolean not null default false,
  escalations integer not null default 0,
  escalated_at timestamptz,
  count integer not null default 1,
  message text not null,
  value jsonb,
  ts timestamptz not null,
  last_ts timestamptz not null,
  created_at timestamptz not null,
  updated_at timestamptz not null,
  cleared_at timestamptz,
  cleared_by text,
  lat double precision,
  lon double precision,
  grid_id text,
  case_id text,
  related jsonb
);
-- one active alarm per (rule, device)
create unique index alarms_active_key on alarms (rule_id, device_id) where status = 'active';
create index alarms_created_idx on alarms (created_at desc);
create index alarms_case_idx on alarms (case_id);

create table alarm_comments (
  id bigserial primary key,
  alarm_id text not null references alarms (id),
  ts timestamptz not null,
  author text not null,
  text text not null
);
create index alarm_comments_alarm_idx on alarm_comments (alarm_id, id);
`;

export const ruleMigrations: Migration[] = [
  { id: '101_rules', up: (db) => db.exec(tables) },
  {
    id: '102_default_rules',
    up: async (db) => {
      for (const r of DEFAULT_RULES) {
        await db.query('insert into rules (id, name, kind, enabled, definition) values ($1, $2, $3, $4, $5) on conflict do nothing', [r.id, r.name, r.kind, r.enabled, JSON.stringify(r)]);
      }
    },
  },
  // A take-over's replay reads the last trigger the alarm rows counted, of the last 10 minutes only (docs/cluster.md).
  { id: '103_alarms_last_ts', up: (db) => db.exec('create index if not exists alarms_last_ts_idx on alarms (last_ts)') },
];
