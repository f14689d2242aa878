/**
 * Every route declares exactly the fields it accepts: body schemas are
 * sealed (unknown fields → 400 UNKNOWN_FIELD) and services copy named
 * fields, never a request body, into stored state.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemActor } from '../../src/cases/index.js';
import { startWorld, type World } from './fixtures.js';

/** Object schemas reachable in a body schema that accept properties nobody declared. */
function openObjects(schema: unknown, path = '$', out: string[] = [], seen = new Set<unknown>()): string[] {
  if (!schema || typeof schema !== 'object' || seen.has(schema)) return out;
  seen.add(schema);
  const s = schema as Record<string, unknown>;
  if (s.type === 'object' && s.properties && s.additionalProperties !== false && s.patternProperties === undefined) out.push(path);
  for (const [k, v] of Object.entries((s.properties ?? {}) as Record<string, unknown>)) openObjects(v, `${path}.${k}`, out, seen);
  if (s.items) openObjects(s.items, `${path}[]`, out, seen);
  for (const k of ['anyOf', 'oneOf', 'allOf']) for (const v of (s[k] as unknown[] | undefined) ?? []) openObjects(v, path, out, seen);
  return out;
}

describe('mass assignment', () => {
  let w: World;
  beforeAll(async () => {
    w = await startWorld();
  }, 180_000);
  afterAll(async () => w?.t.stop(), 60_000);

  it('should seal every body schema of every route (no object takes undeclared fields)', () => {
    const withBody = w.t.hub.ctx.app.routeTable.filter((r) => r.body);
    expect(withBody.length).toBeGreaterThan(20);
    // GeoJSON `crs` is an opaque member by the RFC; everything else is sealed.
    const open = withBody.flatMap((r) => openObjects(r.body).map((p) => `${r.method} ${r.url} ${p}`)).filter((p) => !p.endsWith('.crs'));
    expect(open).toEqual([]);
  });

  it('should refuse secretHash and type on PATCH /devices (400 UNKNOWN_FIELD) and keep the device\'s own secret working', async () => {
    const planted = await w.t.api<any>('PATCH', `/devices/${w.dev.A.id}`, { name: 'x', secretHash: 'scrypt$1024$8$1$AAAA$AAAA' });
    expect([planted.status, planted.body.code, planted.body.details?.field]).toEqual([400, 'UNKNOWN_FIELD', 'secretHash']);
    const retyped = await w.t.api<any>('PATCH', `/devices/${w.dev.A.id}`, { type: 'handheld' });
    expect([retyped.status, retyped.body.code]).toEqual([400, 'UNKNOWN_FIELD']);
    expect(w.t.hub.ctx.registry.get(w.dev.A.id)?.type).toBe('sensor.smoke');
    expect(await w.t.hub.ctx.registry.authenticate(w.dev.A.id, w.dev.A.secret)).toBeTruthy();
  });

  it('should copy only named fields in the registry even when handed more (no spread of a body into state)', async () => {
    const patch = { name: 'renamed', secretHash: 'planted', type: 'handheld', enabled: false } as unknown as { name: string };
    await w.t.hub.ctx.registry.update(w.dev.A.id, patch);
    const d = w.t.hub.ctx.registry.get(w.dev.A.id)!;
    expect([d.name, d.type, d.enabled]).toEqual(['renamed', 'sensor.smoke', true]);
    expect(await w.t.hub.ctx.registry.authenticate(w.dev.A.id, w.dev.A.secret)).toBeTruthy();
  });

  it('should refuse gridId and sealed on PATCH /cameras', async () => {
    expect(w.camera.A).toBeTruthy();
    for (const body of [{ gridId: 'G-B1' }, { sealed: 'v1.x.y.z' }, { name: 'n', rtspUrl: 'rtsp://evil/x' }]) {
      const r = await w.t.api<any>('PATCH', `/cameras/${w.camera.A}`, body);
      expect([r.status, r.body.code]).toEqual([400, 'UNKNOWN_FIELD']);
    }
    expect((await w.t.api<any>('GET', `/cameras/${w.camera.A}`)).body.gridId).toBe('G-A1');
  });

  it('should not let a case action\'s data rewrite history fields (workerId and friends)', async () => {
    const forged = await w.t.api<any>('POST', `/cases/${w.caseId.A}/actions`, { action: 'register', data: { workerId: 'someone-else' } });
    expect([forged.status, forged.body.code]).toEqual([400, 'DATA_FIELD_RESERVED']);
    // Inside the service too: the hub's own fields win over caller data.
    const store = w.t.hub.ctx.domains.cases!.store;
    await store.act(w.caseId.A, 'register', systemActor('test'));
    await store.act(w.caseId.A, 'dispatch', systemActor('test'), { workerId: w.worker.A, data: { workerId: 'someone-else', note: 'kept' } });
    const d = (await w.t.api<any>('GET', `/cases/${w.caseId.A}`)).body;
    const entry = d.history.find((h: { action: string }) => h.action === 'dispatch');
    expect(entry.data).toMatchObject({ workerId: w.worker.A, note: 'kept' });
    expect(d.workerId).toBe(w.worker.A);
  });
});
