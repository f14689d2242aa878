/**
 * Shared fixtures for the cases, rules and realtime tests: a hub with the
 * realtime, cases and rules modules on an injected clock, a small grid
 * hierarchy (one district, two streets, a community and two unit grids each)
 * and users of every role, some scoped to street A.
 */
import { casesModule as cases, realtimeModule, rulesModule, type HubOptions, type ModuleFactory } from '../../src/hub.js';
import type { CasesModule, CaseStore, GridCollection } from '../../src/cases/index.js';
import type { RulesModule, RulesOptions } from '../../src/rules/index.js';
import type { Config } from '../../src/core/config.js';
import { startHub, type TestHub } from '../helpers.js';

export const T0 = Date.UTC(2026, 10, 26, 1, 0, 0); // 2026-11-26 09:00 CST

export class Clock {
  constructor(public t = T0) {}
  now = () => this.t;
  advance(ms: number): number {
    this.t += ms;
    return this.t;
  }
}

const square = (x0: number, y0: number, w: number, h: number) => [[[x0, y0], [x0 + w, y0], [x0 + w, y0 + h], [x0, y0 + h], [x0, y0]]];

/**
 * D1 (104.00..104.04, 30.60..30.62)
 *   S-A (104.00..104.02): C-A → G-A1 (104.00..104.01), G-A2 (104.01..104.02)
 *   S-B (104.02..104.04): C-B → G-B1 (104.02..104.03), G-B2 (104.03..104.04)
 */
export function districtGrids(): GridCollection {
  const f = (id: string, level: string, parentId: string | null, x0: number, w: number) => ({
    type: 'Feature' as const,
    properties: { id, name: id, level, parentId, code: null },
    geometry: { type: 'Polygon' as const, coordinates: square(x0, 30.6, w, 0.02) as never },
  });
  return {
    type: 'FeatureCollection',
    features: [
      f('D1', 'district', null, 104.0, 0.04),
      f('S-A', 'street', 'D1', 104.0, 0.02),
      f('S-B', 'street', 'D1', 104.02, 0.02),
      f('C-A', 'community', 'S-A', 104.0, 0.02),
      f('C-B', 'community', 'S-B', 104.02, 0.02),
      f('G-A1', 'grid', 'C-A', 104.0, 0.01),
      f('G-A2', 'grid', 'C-A', 104.01, 0.01),
      f('G-B1', 'grid', 'C-B', 104.02, 0.01),
      f('G-B2', 'grid', 'C-B', 104.03, 0.01),
    ],
  };
}

/** A point inside each unit grid. */
export const AT = {
  A1: { lat: 30.61, lon: 104.005 },
  A2: { lat: 30.61, lon: 104.015 },
  B1: { lat: 30.61, lon: 104.025 },
  B2: { lat: 30.61, lon: 104.035 },
} as const;

/** Smallest valid-looking JPEG (magic bytes are what the hub checks). */
export const JPEG = Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46, 0x49, 0x46, 0x00, 0x01, 0xff, 0xd9]);
export const JPEG_B64 = JPEG.toString('base64');

export interface CaseHub extends TestHub {
  clock: Clock;
  cases: CaseStore;
  casesModule: CasesModule;
  rules: RulesModule;
  /** Through real ingest (decode, store, bus), then waits for the alarm steps. */
  send(deviceId: string, channel: string, body: unknown, receivedAt?: number): Promise<void>;
  tokens: Record<'admin' | 'officer' | 'officerA' | 'officerB' | 'dispatcher' | 'dispatcherA' | 'integrator' | 'w1' | 'w2', string>;
  as(user: keyof CaseHub['tokens']): <T = any>(method: string, path: string, body?: unknown) => Promise<{ status: number; body: T }>;
}

export async function startCaseHub(opts: { databaseUrl?: string; rules?: RulesOptions | false; extraModules?: ModuleFactory[]; config?: Partial<Config>; clock?: Clock; grids?: boolean; wrapDb?: HubOptions['wrapDb'] } = {}): Promise<CaseHub> {
  const clock = opts.clock ?? new Clock();
  const modules: ModuleFactory[] = [
    realtimeModule(),
    cases({ overdueEveryMs: 0 }),
    ...(opts.rules === false ? [] : [rulesModule({ tickMs: 0, stateFlushMs: 0, ...opts.rules })]),
    ...(opts.extraModules ?? []),
  ];
  const t = await startHub({ databaseUrl: opts.databaseUrl ?? 'memory://', ...opts.config }, { modules, now: clock.now, ...(opts.wrapDb ? { wrapDb: opts.wrapDb } : {}) });
  if (opts.grids !== false) {
    const r = await t.api('PUT', '/grids', districtGrids());
    if (r.status !== 200) throw new Error(`grids: ${r.status} ${JSON.stringify(r.body)}`);
  }
  const users: Array<[keyof CaseHub['tokens'], string, string | null]> = [
    ['officer', 'officer', null], ['officerA', 'officer', 'S-A'], ['officerB', 'officer', 'S-B'], ['dispatcher', 'dispatcher', null],
    ['dispatcherA', 'dispatcher', 'S-A'], ['integrator', 'integrator', null], ['w1', 'worker', null], ['w2', 'worker', null],
  ];
  const tokens = { admin: t.token } as CaseHub['tokens'];
  // Rows straight into the table and tokens signed by the hub: scrypt for eight users
  // costs tens of seconds on a loaded CI machine and proves nothing here.
  for (const [username, role, regionId] of users) {
    const id = `u-${username}`;
    await t.hub.ctx.db.query('insert into users (id, username, password_hash, role, region_id, display_name) values ($1, $2, $3, $4, $5, $2)', [id, username, 'x', role, regionId]);
    tokens[username] = t.hub.ctx.auth.sign({ id, username, role: role as 'officer', regionId, displayName: username });
  }
  const h = t as CaseHub;
  h.clock = clock;
  h.casesModule = t.hub.ctx.domains.cases!;
  h.rules = t.hub.ctx.domains.rules!;
  h.send = async (deviceId, channel, body, receivedAt) => {
    const r = await t.hub.ctx.ingest.handleAsync(deviceId, channel as 'event', Buffer.from(JSON.stringify(body)), receivedAt ?? clock.now());
    if (!r.ok) throw new Error(`ingest refused: ${r.reason} ${r.detail}`);
    await t.hub.ctx.domains.rules?.idle();
  };
  h.cases = t.hub.ctx.domains.cases!.store;
  h.tokens = tokens;
  h.as = (user) => (method, path, body) => t.api(method, path, body, tokens[user]);
  return h;
}
