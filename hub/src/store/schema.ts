import type { Db, Queryable } from './db.js';
import type { Migration } from './migrate.js';

/**
 * Time-series tables carry the time column in their unique key so the same
 * key works on hypertables; a re-sent message hits ON CONFLICT DO NOTHING.
 */
const core = `
create table devices (
  id text primary key,
  type text not null,
  name text not null default '',
  secret_hash text not null,
  enabled boolean not null default true,
  lat double precision,
  lon double precision,
  grid_id text,
  meta jsonb not null default '{}',
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  last_seen timestamptz,
  online boolean not null default false
);
create index devices_type_idx on devices (type);

create table users (
  id text primary key,
  username text not null unique,
  password_hash text not null,
  role text not null,
  region_id text,
  display_name text not null default '',
  enabled boolean not null default true,
  created_at timestamptz not null default now()
);

create table readings (
  ts timestamptz not null,
  device_id text not null,
  metric text not null,
  value double precision,
  value_text text,
  seq bigint,
  received_at timestamptz not null default now(),
  primary key (device_id, metric, ts)
);
create index readings_ts_idx on readings (ts desc);

create table events (
  ts timestamptz not null,
  device_id text not null,
  type text not null,
  severity text,
  data jsonb,
  seq bigint,
  received_at timestamptz not null default now(),
  primary key (device_id, type, ts)
);
create index events_ts_idx on events (ts desc);

create table alerts (
  ts timestamptz not null,
  device_id text not null,
  type text not null,
  confidence double precision,
  snapshot bytea,
  snapshot_url text,
  objects jsonb,
  seq bigint,
  received_at timestamptz not null default now(),
  primary key (device_id, type, ts)
);
create index alerts_ts_idx on alerts (ts desc);

create table positions (
  ts timestamptz not null,
  device_id text not null,
  lat double precision not null,
  lon double precision not null,
  acc real,
  alt real,
  spd real,
  hdg real,
  batt real,
  flag text,
  seq bigint,
  received_at timestamptz not null default now(),
  primary key (device_id, ts)
);
create index positions_ts_idx on positions (ts desc);

create table device_status (
  ts timestamptz not null,
  device_id text not null,
  online boolean not null,
  duty boolean,
  received_at timestamptz not null default now(),
  primary key (device_id, ts)
);

-- report and case messages from handhelds: the durable inbox the case loop reads.
create table device_messages (
  ts timestamptz not null,
  device_id text not null,
  channel text not null,
  key text not null,
  body jsonb not null,
  received_at timestamptz not null default now(),
  primary key (device_id, channel, key, ts)
);
`;

async function timescale(db: Db): Promise<void> {
  if (!db.timescale) return;
  for (const table of ['readings', 'events', 'alerts', 'positions', 'device_status', 'device_messages']) {
    await db.query(`select create_hypertable('${table}', 'ts', chunk_time_interval => interval '1 day', migrate_data => true)`);
    await db.exec(`alter table ${table} set (timescaledb.compress, timescaledb.compress_segmentby = 'device_id')`);
    await db.query(`select add_compression_policy('${table}', interval '7 days')`);
  }
  await db.exec(`
    create materialized view readings_1m with (timescaledb.continuous) as
      select time_bucket('1 minute', ts) as bucket, device_id, metric,
             avg(value) as avg, min(value) as min, max(value) as max, count(*) as n
      from readings group by 1, 2, 3 with no data;
    create materialized view readings_1h with (timescaledb.continuous) as
      select time_bucket('1 hour', ts) as bucket, device_id, metric,
             avg(value) as avg, min(value) as min, max(value) as max, count(*) as n
      from readings group by 1, 2, 3 with no data;
  `);
  await db.query(`select add_continuous_aggregate_policy('readings_1m', start_offset => interval '2 hours', end_offset => interval '1 minute', schedule_interval => interval '1 minute')`);
  await db.query(`select add_continuous_aggregate_policy('readings_1h', start_offset => interval '3 days', end_offset => interval '1 hour', schedule_interval => interval '30 minutes')`);
}

/**
 * Messages the database refused for good (found by splitting a failed batch):
 * kept with the reason and the raw payload (bounded) so an integrator can see
 * what the device sent; not a time-series table, retention trims it too.
 */
const deadLetters = `
create table dead_letters (
  id bigserial primary key,
  ts timestamptz not null default now(),
  device_id text not null,
  channel text not null,
  reason text not null,
  detail text not null default '',
  payload bytea,
  payload_bytes bigint not null
);
create index dead_letters_device_idx on dead_letters (device_id, id desc);
create index dead_letters_ts_idx on dead_letters (ts);
`;

/**
 * Time-series tables are written in time order and read per device (the
 * primary key), so the only reads by time alone are retention and backtests:
 * a BRIN index answers those (a few pages for a day of rows) at a fraction
 * of a b-tree's cost on every insert (docs/benchmarks.md, "BRIN").
 * `received_at` is the hub's clock: a backtest's window.
 */
const brin = ['readings', 'events', 'alerts', 'positions'].map((t) => `
drop index if exists ${t}_ts_idx;
create index ${t}_ts_brin on ${t} using brin (ts);
create index ${t}_received_brin on ${t} using brin (received_at);
`).join('');

export const storeMigrations: Migration[] = [
  { id: '001_core', up: (db) => db.exec(core) },
  { id: '002_timescale', up: timescale },
  { id: '003_dead_letters', up: (db) => db.exec(deadLetters) },
  { id: '004_brin_time', up: (db) => db.exec(brin) },
];

/** Time-series tables that retention applies to. */
export const RETAINED_TABLES = ['readings', 'events', 'alerts', 'positions', 'device_status', 'device_messages'] as const;

/**
 * Retention: a TimescaleDB policy where the extension is present, otherwise an
 * in-app job deleting old rows (same result for every client). `q`: where
 * the statements run (a lease's fenced transaction in a cluster); the
 * database itself by default.
 */
export async function applyRetention(db: Db, days: number, q: Queryable = db): Promise<{ mode: 'timescale' | 'app'; deleted: number }> {
  if (db.timescale) {
    // dead_letters is a plain table, not a hypertable: no policy, delete here.
    await q.query(`delete from dead_letters where ts < now() - make_interval(days => $1::int)`, [days]);
    for (const t of RETAINED_TABLES) {
      await q.query(`select remove_retention_policy('${t}', if_exists => true)`);
      await q.query(`select add_retention_policy('${t}', make_interval(days => $1::int))`, [days]);
    }
    return { mode: 'timescale', deleted: 0 };
  }
  let deleted = 0;
  for (const t of [...RETAINED_TABLES, 'dead_letters']) {
    const rows = await q.query<{ n: number }>(
      `with d as (delete from ${t} where ts < now() - make_interval(days => $1::int) returning 1) select count(*)::int as n from d`,
      [days],
    );
    deleted += rows[0]?.n ?? 0;
  }
  return { mode: 'app', deleted };
}
