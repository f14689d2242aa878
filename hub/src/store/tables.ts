import type { TableSpec } from './batch-writer.js';

/** Ingest tables as the batch writer sees them; column order is the order of RowValues. */
export const ingestTables: TableSpec[] = [
  { name: 'readings', columns: [['ts', 'ts'], ['device_id', 'text'], ['metric', 'text'], ['value', 'float8'], ['value_text', 'text'], ['seq', 'int8'], ['received_at', 'ts']] },
  { name: 'events', columns: [['ts', 'ts'], ['device_id', 'text'], ['type', 'text'], ['severity', 'text'], ['data', 'jsonb'], ['seq', 'int8'], ['received_at', 'ts']] },
  { name: 'alerts', columns: [['ts', 'ts'], ['device_id', 'text'], ['type', 'text'], ['confidence', 'float8'], ['snapshot', 'bytea'], ['snapshot_url', 'text'], ['objects', 'jsonb'], ['seq', 'int8'], ['received_at', 'ts']] },
  { name: 'positions', columns: [['ts', 'ts'], ['device_id', 'text'], ['lat', 'float8'], ['lon', 'float8'], ['acc', 'float8'], ['alt', 'float8'], ['spd', 'float8'], ['hdg', 'float8'], ['batt', 'float8'], ['flag', 'text'], ['seq', 'int8'], ['received_at', 'ts']] },
  { name: 'device_status', columns: [['ts', 'ts'], ['device_id', 'text'], ['online', 'bool'], ['duty', 'bool'], ['received_at', 'ts']] },
  { name: 'dead_letters', columns: [['ts', 'ts'], ['device_id', 'text'], ['channel', 'text'], ['reason', 'text'], ['detail', 'text'], ['payload', 'bytea'], ['payload_bytes', 'int8']] },
  { name: 'device_messages', columns: [['ts', 'ts'], ['device_id', 'text'], ['channel', 'text'], ['key', 'text'], ['body', 'jsonb'], ['received_at', 'ts']] },
];
