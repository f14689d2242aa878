/**
 * Dispatch test fixtures: the real cases + realtime modules (hub/test/cases
 * fixtures: injected clock, district grids, users of every role) plus the
 * dispatch module, and helpers to enrol workers and feed positions through
 * the real ingest path.
 */
import { casesModule, dispatchModule, realtimeModule, type ModuleFactory } from '../../src/hub.js';
import type { MqttClient } from 'mqtt';
import { commandTopic, decodeCommand, type Command } from '@gridlink/devices';
import type { DispatchConfig, DispatchModule } from '../../src/dispatch/index.js';
import type { Fetch } from '../../src/dispatch/amap.js';
import type { Role } from '../../src/auth/index.js';
import type { Logger } from '../../src/core/logger.js';
import type { CaseStore } from '../../src/cases/index.js';
import { Clock, districtGrids } from '../cases/fixtures.js';
import { startHub, until, type TestHub } from '../helpers.js';

export { AT, T0, Clock } from '../cases/fixtures.js';

type Who = 'admin' | 'officer' | 'dispatcher' | 'dispatcherA';

export interface DispatchHub extends TestHub {
  clock: Clock;
  cases: CaseStore;
  tokens: Record<Who, string>;
  as(user: Who): <T = any>(method: string, path: string, body?: unknown) => Promise<{ status: number; body: T }>;
  dispatch: DispatchModule;
  /** Registers a handheld and a worker bound to it; optionally on duty and at a position (stamped now). */
  addWorker(o: { id: string; gridIds?: string[]; onDuty?: boolean; at?: { lat: number; lon: number }; name?: string }): Promise<{ id: string; deviceId: string; secret: string }>;
  /** A `location` through ingest (the same path MQTT uses). */
  fix(deviceId: string, lat: number, lon: number, ts?: number): Promise<void>;
  /** A registered case at a point (created by the officer, registered). */
  newCase(at: { lat: number; lon: number }, category?: string): Promise<{ id: string; code: string; gridId: string | null }>;
  /** The handheld's MQTT client subscribed to its command topic; received commands collect in `commands`. */
  handheld(deviceId: string, secret: string, opts?: { clean?: boolean }): Promise<{ client: MqttClient; commands: Command[] }>;
}

export async function startDispatchHub(opts: { config?: Partial<DispatchConfig>; clock?: Clock; fetch?: Fetch; amapKey?: string; extraModules?: ModuleFactory[]; databaseUrl?: string; logger?: Logger } = {}): Promise<DispatchHub> {
  const clock = opts.clock ?? new Clock();
  // Lighter than the cases fixture: tokens are minted, not logged in (scrypt per user is slow on a shared machine).
  const t = await startHub({ ...(opts.amapKey ? { amapKey: opts.amapKey } : {}), ...(opts.databaseUrl ? { databaseUrl: opts.databaseUrl } : {}) }, {
    now: clock.now,
    ...(opts.logger ? { logger: opts.logger } : {}),
    modules: [
      realtimeModule(),
      casesModule({ overdueEveryMs: 0 }),
      dispatchModule({ config: { resendDelayMs: 50, positionsIntervalMs: 100_000, ...opts.config }, ...(opts.fetch ? { fetch: opts.fetch } : {}) }),
      ...(opts.extraModules ?? []),
    ],
  });
  const g = await t.api('PUT', '/grids', districtGrids());
  if (g.status !== 200) throw new Error(`grids: ${g.status} ${JSON.stringify(g.body)}`);
  const h = t as DispatchHub;
  const mint = (username: string, role: Role, regionId: string | null) => t.hub.ctx.auth.sign({ id: `u-${username}`, username, role, regionId, displayName: username });
  h.tokens = { admin: t.token, officer: mint('officer', 'officer', null), dispatcher: mint('dispatcher', 'dispatcher', null), dispatcherA: mint('dispatcherA', 'dispatcher', 'S-A') };
  h.as = (user) => (method, path, body) => t.api(method, path, body, h.tokens[user]);
  h.clock = clock;
  h.cases = t.hub.ctx.domains.cases!.store;
  const mod = t.hub.ctx.domains.dispatch!;
  h.dispatch = mod;
  const { registry, ingest } = h.hub.ctx;
  h.addWorker = async (o) => {
    const deviceId = `hh-${o.id}`;
    const { secret } = await registry.register({ id: deviceId, type: 'handheld' });
    const w = await mod.workers.create({ id: o.id, name: o.name ?? o.id, deviceId, gridIds: o.gridIds ?? [] });
    if (o.onDuty !== false) await mod.workers.setDuty(w, true);
    if (o.at) await h.fix(deviceId, o.at.lat, o.at.lon);
    return { id: o.id, deviceId, secret };
  };
  h.fix = async (deviceId, lat, lon, ts = h.clock.now()) => {
    const r = await ingest.handleAsync(deviceId, 'location', Buffer.from(JSON.stringify({ ts, lat, lon })));
    if (!r.ok) throw new Error(`fix rejected: ${r.reason} ${r.detail}`);
  };
  h.newCase = async (at, category = 'E0101') => {
    const c = await h.as('officer')<{ id: string; code: string; gridId: string | null }>('POST', '/cases', { category, lat: at.lat, lon: at.lon, description: 'test' });
    if (c.status !== 201) throw new Error(`case: ${c.status} ${JSON.stringify(c.body)}`);
    const r = await h.as('officer')('POST', `/cases/${c.body.id}/actions`, { action: 'register' });
    if (r.status !== 200) throw new Error(`register: ${r.status} ${JSON.stringify(r.body)}`);
    return c.body;
  };
  h.handheld = async (deviceId, secret, o = {}) => {
    const client = await h.connect(deviceId, secret, { clean: o.clean ?? false });
    const commands: Command[] = [];
    client.on('message', (topic, payload) => {
      if (topic !== commandTopic(deviceId)) return;
      const cmd = decodeCommand(payload);
      if (cmd) commands.push(cmd);
    });
    await client.subscribeAsync(commandTopic(deviceId), { qos: 1 });
    return { client, commands };
  };
  return h;
}

export async function waitFor<T>(fn: () => T | Promise<T>, ms = 5_000): Promise<NonNullable<T>> {
  return until(fn, ms, 10);
}
