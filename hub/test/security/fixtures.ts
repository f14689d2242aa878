/**
 * A whole hub (every module) with two regions and users of every role in
 * each, for the security tests: street S-A and street S-B of district D1
 * (hub/test/cases/fixtures.ts grids). Users are rows plus hub-signed tokens
 * (scrypt for a dozen users proves nothing here); devices, workers, cameras
 * and cases exist in both regions so a test can aim at the other one.
 */
import { randomUUID } from 'node:crypto';
import { districtGrids, AT, Clock } from '../cases/fixtures.js';
import { startHub, type TestHub } from '../helpers.js';
import type { Config } from '../../src/core/config.js';
import type { Role } from '../../src/auth/index.js';

export { AT, Clock };

export type Caller = `${'admin' | 'officer' | 'dispatcher' | 'integrator' | 'worker'}${'' | 'A' | 'B'}`;

export interface World {
  t: TestHub;
  clock: Clock;
  token: Record<Caller, string>;
  userId: Record<Caller, string>;
  as(who: Caller): <T = any>(method: string, path: string, body?: unknown) => Promise<{ status: number; body: T }>;
  /** Objects in each region. */
  dev: { A: { id: string; secret: string }; B: { id: string; secret: string } };
  handheld: { A: string; B: string; freeA: string; freeB: string };
  worker: { A: string; B: string };
  camera: { A: string | null; B: string | null };
  caseId: { A: string; B: string };
}

export async function startWorld(config: Partial<Config> = {}): Promise<World> {
  const clock = new Clock(Date.now());
  const t = await startHub(config, { now: clock.now });
  const grids = await t.api('PUT', '/grids', districtGrids());
  if (grids.status !== 200) throw new Error(`grids: ${grids.status} ${JSON.stringify(grids.body)}`);
  const token = { admin: t.token } as Record<Caller, string>;
  const userId = {} as Record<Caller, string>;
  userId.admin = (await t.api<{ sub: string }>('GET', '/auth/me')).body.sub;
  for (const role of ['admin', 'officer', 'dispatcher', 'integrator', 'worker'] as const) {
    for (const region of ['', 'A', 'B'] as const) {
      const who = `${role}${region}` as Caller;
      if (who === 'admin') continue;
      const id = randomUUID();
      const regionId = region ? `S-${region}` : null;
      await t.hub.ctx.db.query('insert into users (id, username, password_hash, role, region_id, display_name) values ($1, $2, $3, $4, $5, $2)', [id, `u-${who}`, 'x', role, regionId]);
      userId[who] = id;
      token[who] = t.hub.ctx.auth.sign({ id, username: `u-${who}`, role: role as Role, regionId, displayName: who });
    }
  }
  const as = (who: Caller) => <T = any>(method: string, path: string, body?: unknown) => t.api<T>(method, path, body, token[who]);
  const reg = async (type: string, id: string, gridId: string, at: { lat: number; lon: number } = AT.A1) => {
    const r = await t.api<{ id: string; secret: string }>('POST', '/devices', { type, id, gridId, ...at });
    if (r.status !== 201) throw new Error(`device ${id}: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body;
  };
  const dev = { A: await reg('sensor.smoke', 'smoke-a', 'G-A1', AT.A1), B: await reg('sensor.smoke', 'smoke-b', 'G-B1', AT.B1) };
  const handheld = {
    A: (await reg('handheld', 'hh-a', 'G-A1', AT.A1)).id, B: (await reg('handheld', 'hh-b', 'G-B1', AT.B1)).id,
    freeA: (await reg('handheld', 'hh-a2', 'G-A2', AT.A2)).id, freeB: (await reg('handheld', 'hh-b2', 'G-B2', AT.B2)).id,
  };
  const mkWorker = async (id: string, deviceId: string, gridIds: string[]) => {
    const r = await t.api('POST', '/workers', { id, name: id, deviceId, gridIds, onDuty: true });
    if (r.status !== 201) throw new Error(`worker ${id}: ${r.status} ${JSON.stringify(r.body)}`);
    return id;
  };
  const worker = { A: await mkWorker('w-a', handheld.A, ['G-A1']), B: await mkWorker('w-b', handheld.B, ['G-B1']) };
  const mkCamera = async (id: string, at: { lat: number; lon: number }) => {
    const r = await t.api<{ id: string }>('POST', '/cameras', { id, rtspUrl: 'rtsp://127.0.0.1:8554/cam', ...at });
    return r.status === 201 ? r.body.id : null;
  };
  const camera = { A: await mkCamera('cam-a', AT.A1), B: await mkCamera('cam-b', AT.B1) };
  const mkCase = async (at: { lat: number; lon: number }) => {
    const r = await t.api<{ id: string }>('POST', '/cases', { category: 'E0402', ...at, title: 'x' });
    if (r.status !== 201) throw new Error(`case: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body.id;
  };
  const caseId = { A: await mkCase(AT.A1), B: await mkCase(AT.B1) };
  return { t, clock, token, userId, as, dev, handheld, worker, camera, caseId };
}
