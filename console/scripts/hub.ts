/**
 * A real hub for the console's scripts (screenshots, benchmarks), built
 * through the hub's public entry: in memory, on free ports, with an admin
 * token and a small REST helper. Devices speak MQTT through the simulators'
 * DeviceLink, configured as a real device must be.
 */
import { createHub, testConfig, type Config, type Hub, type HubOptions } from '@gridlink/hub';
import { DeviceLink } from '@gridlink/simulators';

export interface ScriptHub {
  hub: Hub;
  config: Config;
  /** Base URL of the hub's HTTP server (console at /, REST at /api/v1). */
  http: string;
  /** REST under /api/v1 as the admin (or with `token`); the body parsed when it is JSON. */
  api<T = unknown>(method: string, path: string, body?: unknown, token?: string): Promise<{ status: number; body: T }>;
  /** Registers a device and answers its one-time secret. */
  registerDevice(type: string, id: string, extra?: Record<string, unknown>): Promise<{ id: string; secret: string }>;
  /** An MQTT link for a registered device, connected. */
  link(id: string, secret: string): Promise<DeviceLink>;
  stop(): Promise<void>;
}

export async function startHub(overrides: Partial<Config> = {}, options: HubOptions = {}): Promise<ScriptHub> {
  const config = testConfig({ databaseUrl: 'memory://', ...overrides });
  const hub = await createHub(config, options);
  const ports = await hub.start();
  const http = `http://127.0.0.1:${ports.http}`;
  const mqttUrl = `mqtt://127.0.0.1:${ports.mqtt}`;
  const links: DeviceLink[] = [];
  let admin = '';
  const t: ScriptHub = {
    hub, config, http,
    async api<T>(method: string, path: string, body?: unknown, token = admin) {
      const res = await fetch(`${http}/api/v1${path}`, {
        method,
        headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...(token ? { authorization: `Bearer ${token}` } : {}) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const json = res.headers.get('content-type')?.includes('application/json');
      return { status: res.status, body: (json ? await res.json() : await res.text()) as T };
    },
    async registerDevice(type, id, extra = {}) {
      const r = await t.api<{ id: string; secret: string }>('POST', '/devices', { type, id, ...extra });
      if (r.status !== 201) throw new Error(`register ${id}: ${r.status} ${JSON.stringify(r.body)}`);
      return r.body;
    },
    async link(id, secret) {
      const l = new DeviceLink({ url: mqttUrl, deviceId: id, secret });
      links.push(l);
      await l.connect();
      return l;
    },
    async stop() {
      await Promise.all(links.map((l) => l.close({ announce: false }).catch(() => undefined)));
      await hub.stop();
    },
  };
  const login = await t.api<{ token: string }>('POST', '/auth/login', { username: 'admin', password: config.adminPassword }, '');
  if (login.status !== 200) throw new Error(`admin login: ${login.status}`);
  admin = login.body.token;
  return t;
}
