import type { Migration } from '../store/index.js';

/**
 * workers: people bound to one handheld; duty and the current assignment are
 * persisted so status survives a restart.
 * dispatch_commands: the downlink outbox. aedes keeps QoS 1 messages for
 * offline persistent sessions only in memory, so a command stays pending here
 * until the handheld answers (or it is superseded) and is re-sent when the
 * device reconnects.
 * case_dispatches: one row per dispatch attempt with the times the KPIs and
 * the case history need.
 */
const ddl = `
create table workers (
  id text primary key,
  name text not null,
  device_id text not null unique,
  team text not null default 'grid_worker',
  phone text,
  grid_ids text[] not null default '{}',
  on_duty boolean not null default false,
  case_id text,
  stage text,
  stage_since timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

create table dispatch_commands (
  cmd_id text primary key,
  device_id text not null,
  worker_id text,
  case_id text not null,
  type text not null,
  body jsonb not null,
  created_at timestamptz not null default now(),
  sent_at timestamptz,
  sends int not null default 0,
  done_at timestamptz,
  done_reason text
);
create index dispatch_commands_pending_idx on dispatch_commands (device_id) where done_at is null;

create table case_dispatches (
  id text primary key,
  case_id text not null,
  worker_id text not null,
  device_id text not null,
  attempt int not null,
  actor text not null,
  dispatched_at timestamptz not null,
  accepted_at timestamptz,
  arrived_at timestamptz,
  arrived_by text,
  resolved_at timestamptz,
  ended_at timestamptz,
  outcome text
);
create index case_dispatches_case_idx on case_dispatches (case_id, dispatched_at);
create index case_dispatches_worker_idx on case_dispatches (worker_id, dispatched_at);
`;

export const dispatchMigrations: Migration[] = [
  { id: '301_dispatch', up: (db) => db.exec(ddl) },
  // The user account a worker logs in with (role `worker`), so cases can map a login to the worker record.
  { id: '302_worker_user', up: (db) => db.exec('alter table workers add column user_id text unique') },
  // When a command was first handed to the broker (the dispatching hub's clock): a dispatch's accept timeout counts from it.
  { id: '303_command_first_sent', up: (db) => db.exec('alter table dispatch_commands add column first_sent_at timestamptz') },
  // Every case action publishes the commands it committed (a dispatch, a cancel) by case: found without reading the whole open outbox.
  { id: '304_command_case', up: (db) => db.exec('create index dispatch_commands_case_idx on dispatch_commands (case_id) where done_at is null') },
  // When the re-dispatch a decline or an accept timeout owes its case was made (or found not needed): a record ended
  // so and not escalated is owed one, also when the process that committed the decline died before making it.
  // Records ended before this column existed were escalated by their process.
  {
    id: '305_dispatch_escalated',
    up: (db) => db.exec(`
      alter table case_dispatches add column escalated_at timestamptz;
      update case_dispatches set escalated_at = ended_at where outcome in ('declined', 'timeout');
      create index case_dispatches_owed_idx on case_dispatches (ended_at) where escalated_at is null and outcome in ('declined', 'timeout');
    `),
  },
];
