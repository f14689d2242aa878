/**
 * `@gridlink/hub/testing`: a real hub on free ports (PGlite in memory by default, or
 * PostgreSQL when TEST_DATABASE_URL is set), a logged-in admin, registered
 * devices and real MQTT.js clients.
 */
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import pg from 'pg';
import { testConfig, type Config } from './core/config.js';
import { createHub, type Hub, type HubOptions } from './hub.js';

export const REQUIRE_ALL = process.env.GRIDLINK_REQUIRE_ALL === '1';
export const PG_URL = process.env.TEST_DATABASE_URL;

/** Database engines every storage test runs on. PostgreSQL joins when TEST_DATABASE_URL is set (always in CI). */
export function engines(): Array<{ name: string; url: string; timescale?: boolean }> {
  const list: Array<{ name: string; url: string; timescale?: boolean }> = [{ name: 'pglite', url: 'memory://' }];
  if (PG_URL) list.push({ name: 'postgres', url: PG_URL });
  else if (REQUIRE_ALL) throw new Error('GRIDLINK_REQUIRE_ALL=1 but TEST_DATABASE_URL is not set');
  return list;
}

/**
 * A fresh schema per test hub on PostgreSQL so test files can run in
 * parallel against one database: the URL gets `options=-csearch_path=...`.
 */
export async function freshPostgresUrl(baseUrl: string): Promise<string> {
  const schema = `t_${randomBytes(6).toString('hex')}`;
  const client = new pg.Client({ connectionString: baseUrl });
  await client.connect();
  await client.query(`create schema ${schema}`);
  await client.end();
  const u = new URL(baseUrl);
  u.searchParams.set('options', `-c search_path=${schema},public`);
  return u.toString();
}

export interface TestHub {
  hub: Hub;
  config: Config;
  http: string;
  mqttUrl: string;
  token: string;
  api<T = unknown>(method: string, path: string, body?: unknown, token?: string): Promise<{ status: number; body: T }>;
  registerDevice(type: string, id?: string, extra?: Record<string, unknown>): Promise<{ id: string; secret: string }>;
  connect(id: string, secret: string, opts?: IClientOptions): Promise<MqttClient>;
  stop(): Promise<void>;
}

export async function startHub(overrides: Partial<Config> = {}, options: HubOptions = {}): Promise<TestHub> {
  let url = overrides.databaseUrl ?? 'memory://';
  if (url.startsWith('postgres')) url = await freshPostgresUrl(url);
  const config = testConfig({ ...overrides, databaseUrl: url });
  const hub = await createHub(config, options);
  const ports = await hub.start();
  const http = `http://127.0.0.1:${ports.http}`;
  const clients: MqttClient[] = [];
  const api = async <T>(method: string, path: string, body?: unknown, token?: string) => {
    const headers: Record<string, string> = {};
    if (body !== undefined) headers['content-type'] = 'application/json';
    const tok = token === undefined ? t.token : token;
    if (tok) headers.authorization = `Bearer ${tok}`;
    const res = await fetch(`${http}/api/v1${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      /* not JSON */
    }
    return { status: res.status, body: parsed as T };
  };
  const t: TestHub = {
    hub,
    config,
    http,
    mqttUrl: `mqtt://127.0.0.1:${ports.mqtt}`,
    token: '',
    api,
    async registerDevice(type, id, extra = {}) {
      const r = await api<{ id: string; secret: string }>('POST', '/devices', { type, ...(id ? { id } : {}), ...extra });
      if (r.status !== 201) throw new Error(`register failed: ${r.status} ${JSON.stringify(r.body)}`);
      return { id: r.body.id, secret: r.body.secret };
    },
    async connect(id, secret, opts = {}) {
      const c = mqtt.connect(t.mqttUrl, { clientId: id, username: id, password: secret, reconnectPeriod: 0, connectTimeout: 5_000, ...opts });
      clients.push(c);
      await new Promise<void>((resolve, reject) => {
        c.once('connect', () => resolve());
        c.once('error', reject);
      });
      return c;
    },
    async stop() {
      await Promise.all(clients.map((c) => c.endAsync(true).catch(() => undefined)));
      await hub.stop();
    },
  };
  const login = await api<{ token: string }>('POST', '/auth/login', { username: 'admin', password: config.adminPassword }, '');
  if (login.status !== 200) throw new Error(`login failed: ${login.status}`);
  t.token = login.body.token;
  return t;
}

/** Waits until `fn` returns a truthy value (polling real state, not sleeping for logic). */
export async function until<T>(fn: () => T | Promise<T>, timeoutMs = 20_000, stepMs = 20): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v as NonNullable<T>;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

/** Publishes and resolves when the broker's PUBACK (QoS 1) arrives. */
export function publishAck(c: MqttClient, topic: string, payload: string | Buffer | object, qos: 0 | 1 = 1): Promise<void> {
  const body = typeof payload === 'string' || Buffer.isBuffer(payload) ? payload : JSON.stringify(payload);
  return new Promise((resolve, reject) => c.publish(topic, body, { qos }, (err) => (err ? reject(err) : resolve())));
}

/** ffmpeg processes whose command line mentions `dir` (ours, wherever they were started from). */
export function ffmpegUnder(dir: string): number[] {
  const out: number[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8');
      if (cmd.includes('ffmpeg') && cmd.includes(dir)) out.push(Number(p));
    } catch {
      /* gone */
    }
  }
  return out;
}

/** Connects and resolves with the CONNACK outcome instead of throwing (code: v3 return code or v5 reason code). */
export function tryConnect(url: string, opts: IClientOptions): Promise<{ ok: boolean; code?: number }> {
  return new Promise((resolve) => {
    const c = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: 3000, ...opts });
    c.once('connect', () => {
      c.end(true);
      resolve({ ok: true });
    });
    c.once('error', (err: Error & { code?: number }) => {
      c.end(true);
      resolve({ ok: false, code: err.code });
    });
  });
}
