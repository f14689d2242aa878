/**
 * Configuration: one schema with a default and a description per field,
 * read from the environment, validated with every error listed at once, then
 * frozen (zigbee2mqtt settings.schema.json; fastify/demo env plugin).
 */
import { randomBytes } from 'node:crypto';

type Kind = 'string' | 'int' | 'number' | 'bool';

export interface Field {
  env: string;
  kind: Kind;
  description: string;
  default?: string | number | boolean;
  min?: number;
  max?: number;
  oneOf?: readonly string[];
}

export const configSchema = {
  host: { env: 'GRIDLINK_HOST', kind: 'string', default: '0.0.0.0', description: 'Address every listener binds to' },
  mqttPort: { env: 'GRIDLINK_MQTT_PORT', kind: 'int', default: 1883, min: 0, max: 65535, description: 'MQTT over TCP port (0 = pick a free port)' },
  mqttsPort: { env: 'GRIDLINK_MQTTS_PORT', kind: 'int', min: 0, max: 65535, description: 'MQTT over TLS port; off unless set together with cert and key' },
  tlsCert: { env: 'GRIDLINK_TLS_CERT', kind: 'string', description: 'PEM certificate file for MQTT over TLS' },
  tlsKey: { env: 'GRIDLINK_TLS_KEY', kind: 'string', description: 'PEM private key file for MQTT over TLS' },
  httpPort: { env: 'GRIDLINK_HTTP_PORT', kind: 'int', default: 8080, min: 0, max: 65535, description: 'HTTP port: REST, Socket.IO, MQTT over WebSocket, video, console' },
  databaseUrl: { env: 'DATABASE_URL', kind: 'string', description: 'unset: embedded PGlite under dataDir; memory://: PGlite in memory; postgres://...: PostgreSQL / TimescaleDB' },
  dataDir: { env: 'GRIDLINK_DATA_DIR', kind: 'string', default: './data', description: 'Directory for the embedded database, evidence files, video segments and the JWT key' },
  adminPassword: { env: 'GRIDLINK_ADMIN_PASSWORD', kind: 'string', description: 'Password of the bootstrap admin; generated and printed once when unset' },
  jwtSecret: { env: 'GRIDLINK_JWT_SECRET', kind: 'string', description: 'HMAC secret for access tokens; generated and kept in dataDir when unset' },
  tokenTtlS: { env: 'GRIDLINK_TOKEN_TTL_S', kind: 'int', default: 12 * 3600, min: 60, description: 'Access token lifetime in seconds (one shift)' },
  maxPayload: { env: 'GRIDLINK_MAX_PAYLOAD', kind: 'int', default: 1024 * 1024, min: 1024, description: 'Largest MQTT/HTTP device payload in bytes' },
  deviceRate: { env: 'GRIDLINK_DEVICE_RATE', kind: 'number', default: 50, min: 0.1, description: 'Messages per second a device may publish (token bucket refill)' },
  deviceBurst: { env: 'GRIDLINK_DEVICE_BURST', kind: 'int', default: 200, min: 1, description: 'Token bucket size per device' },
  maxConnections: { env: 'GRIDLINK_MAX_CONNECTIONS', kind: 'int', min: 1, description: 'MQTT connections accepted at most; default: the open-file limit minus 1024 kept for the database, video and HTTP' },
  floodDisconnect: { env: 'GRIDLINK_FLOOD_DISCONNECT', kind: 'int', default: 500, min: 1, description: 'Dropped messages within one minute after which a device is disconnected' },
  batchSize: { env: 'GRIDLINK_BATCH_SIZE', kind: 'int', default: 1000, min: 1, description: 'Rows per database batch (flush by size)' },
  dbCommits: { env: 'GRIDLINK_DB_COMMITS', kind: 'int', min: 1, max: 16, description: 'Batch commits in flight at once (default 3 on PostgreSQL, which overlaps one commit\'s WAL flush with the next; 1 on the embedded PGlite, a single connection)' },
  batchMs: { env: 'GRIDLINK_BATCH_MS', kind: 'int', default: 10, min: 0, description: 'Longest wait before a batch is flushed (flush by time)' },
  pendingMax: { env: 'GRIDLINK_PENDING_MAX', kind: 'int', default: 100_000, min: 100, description: 'Messages held unacknowledged while the database is down; past it new publishes close the connection' },
  pendingMaxBytes: { env: 'GRIDLINK_PENDING_MAX_BYTES', kind: 'int', default: 256 * 1024 * 1024, min: 1024 * 1024, description: 'Memory (bytes) that unacknowledged messages may hold while the database is down, counted as 3 × payload + 1 KiB per message; past it new publishes close the connection' },
  retentionDays: { env: 'GRIDLINK_RETENTION_DAYS', kind: 'int', default: 180, min: 1, description: 'Raw readings, events and positions older than this are dropped' },
  offlineAfterS: { env: 'GRIDLINK_OFFLINE_AFTER_S', kind: 'int', default: 600, min: 5, description: 'Default silence after which a device counts as offline' },
  logLevel: { env: 'GRIDLINK_LOG_LEVEL', kind: 'string', default: 'info', oneOf: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], description: 'Log level' },
  consoleDir: { env: 'GRIDLINK_CONSOLE_DIR', kind: 'string', description: 'Built console to serve at / (default: console/dist of the repository)' },
  amapKey: { env: 'GRIDLINK_AMAP_KEY', kind: 'string', description: 'AMap web service key for road ETA; offline haversine ETA without it' },
  mqttProxyProtocol: { env: 'GRIDLINK_MQTT_PROXY_PROTOCOL', kind: 'bool', default: false, description: 'When true, every connection to the MQTT TCP port must start with a PROXY protocol v1 or v2 header (HAProxy send-proxy, send-proxy-v2): devices are seen from the address in it (per-address limits, logs). Only for a port that nothing but the balancer can reach' },
  maxPendingPerAddress: { env: 'GRIDLINK_MAX_PENDING_PER_ADDRESS', kind: 'int', default: 32, min: 1, description: 'MQTT connections (TCP, TLS, WebSocket) one client address may hold open without having sent CONNECT; devices that log in are not limited by it' },
  trustProxy: { env: 'GRIDLINK_TRUST_PROXY', kind: 'string', default: 'off', description: 'Which proxies may set X-Forwarded-For (client address for login throttling and logs): off, true (any), or a comma-separated list of addresses/CIDRs' },
  allowedOrigins: { env: 'GRIDLINK_ALLOWED_ORIGINS', kind: 'string', default: '', description: 'Extra browser origins (comma-separated, e.g. https://console.example) allowed to open Socket.IO and MQTT-over-WebSocket connections; the hub\'s own origin is always allowed' },
  metricsToken: { env: 'GRIDLINK_METRICS_TOKEN', kind: 'string', description: 'When set, /metrics requires `Authorization: Bearer <this token>` (a Prometheus bearer_token); open when unset' },
  docsAuth: { env: 'GRIDLINK_DOCS_AUTH', kind: 'bool', default: false, description: 'When true, /docs (OpenAPI UI and JSON) requires a bearer token of a logged-in user' },
  ffmpegPath: { env: 'GRIDLINK_FFMPEG', kind: 'string', description: 'ffmpeg binary (default: system ffmpeg, else @ffmpeg-installer/ffmpeg)' },
} as const satisfies Record<string, Field>;

type Schema = typeof configSchema;
type ValueOf<F extends Field> = F['kind'] extends 'string' ? string : F['kind'] extends 'bool' ? boolean : number;
type HasDefault<F> = F extends { default: unknown } ? true : false;

export type Config = {
  readonly [K in keyof Schema]: HasDefault<Schema[K]> extends true ? ValueOf<Schema[K]> : ValueOf<Schema[K]> | undefined;
};

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

function parseField(f: Field, raw: string, problems: string[]): string | number | boolean | undefined {
  switch (f.kind) {
    case 'string':
      if (f.oneOf && !f.oneOf.includes(raw)) problems.push(`${f.env}=${raw}: must be one of ${f.oneOf.join(', ')}`);
      return raw;
    case 'bool':
      if (!/^(1|0|true|false|yes|no)$/i.test(raw)) problems.push(`${f.env}=${raw}: must be true or false`);
      return /^(1|true|yes)$/i.test(raw);
    case 'int':
    case 'number': {
      const n = Number(raw);
      if (raw.trim() === '' || !Number.isFinite(n) || (f.kind === 'int' && !Number.isInteger(n))) {
        problems.push(`${f.env}=${raw}: must be ${f.kind === 'int' ? 'an integer' : 'a number'}`);
        return undefined;
      }
      if (f.min !== undefined && n < f.min) problems.push(`${f.env}=${raw}: must be >= ${f.min}`);
      if (f.max !== undefined && n > f.max) problems.push(`${f.env}=${raw}: must be <= ${f.max}`);
      return n;
    }
  }
}

/**
 * Reads every field of a schema from the environment (default when unset),
 * applies overrides, and appends one line per bad value to `problems`.
 * Domain modules with their own settings use it too.
 */
export function readFields(
  schema: Record<string, Field>,
  env: Record<string, string | undefined>,
  overrides: Record<string, unknown>,
  problems: string[],
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, field] of Object.entries(schema)) {
    const raw = env[field.env];
    out[key] = raw === undefined || raw === '' ? field.default : parseField(field, raw, problems);
  }
  Object.assign(out, Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined)));
  return out;
}

/** Reads and validates every setting; throws ConfigError naming all bad settings at once. */
export function loadConfig(env: Record<string, string | undefined> = process.env, overrides: Partial<Config> = {}): Config {
  const problems: string[] = [];
  const out = readFields(configSchema, env, overrides, problems);
  const url = out.databaseUrl as string | undefined;
  if (url && !/^(memory:\/\/|postgres(ql)?:\/\/)/.test(url)) problems.push(`DATABASE_URL: must be memory:// or postgres://..., got ${url.split(':')[0]}:`);
  const tls = [out.mqttsPort, out.tlsCert, out.tlsKey].filter((v) => v !== undefined).length;
  if (tls > 0 && tls < 3) problems.push('GRIDLINK_MQTTS_PORT, GRIDLINK_TLS_CERT and GRIDLINK_TLS_KEY must be set together');
  if (problems.length) throw new ConfigError(problems);
  return Object.freeze(out) as Config;
}

/** Config for tests: in-memory database, free ports, quiet log. */
export function testConfig(overrides: Partial<Config> = {}): Config {
  return loadConfig({}, {
    host: '127.0.0.1',
    mqttPort: 0,
    httpPort: 0,
    databaseUrl: 'memory://',
    logLevel: 'silent',
    adminPassword: 'admin-test-password',
    jwtSecret: randomBytes(32).toString('hex'),
    ...overrides,
  });
}

export function describeConfig(): Array<{ key: string; env: string; default?: unknown; description: string }> {
  return Object.entries(configSchema).map(([key, f]) => ({ key, env: f.env, default: 'default' in f ? f.default : undefined, description: f.description }));
}
