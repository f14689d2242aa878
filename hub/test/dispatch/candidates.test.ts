import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AT, startDispatchHub, type DispatchHub } from './fixtures.js';

/** Independent great-circle distance (spherical law of cosines in a different form than the hub's haversine). */
function distM(lat1: number, lon1: number, lat2: number, lon2: number): number {
  const r = Math.PI / 180;
  const a = Math.sin(lat1 * r) * Math.sin(lat2 * r) + Math.cos(lat1 * r) * Math.cos(lat2 * r) * Math.cos((lon2 - lon1) * r);
  // acos loses precision for short distances; atan2 of the chord form does not.
  const x = Math.cos(lat2 * r) * Math.sin((lon2 - lon1) * r);
  const y = Math.cos(lat1 * r) * Math.sin(lat2 * r) - Math.sin(lat1 * r) * Math.cos(lat2 * r) * Math.cos((lon2 - lon1) * r);
  return 6_371_008.8 * Math.atan2(Math.hypot(x, y), a);
}

/** Deterministic PRNG so a failure reproduces. */
function rng(seed: number): () => number {
  return () => {
    seed = (seed * 1664525 + 1013904223) >>> 0;
    return seed / 2 ** 32;
  };
}

const UNIT_GRIDS = ['G-A1', 'G-A2', 'G-B1', 'G-B2'];
const ANCESTORS: Record<string, string[]> = { 'G-A1': ['G-A1', 'C-A', 'S-A', 'D1'], 'G-A2': ['G-A2', 'C-A', 'S-A', 'D1'] };

interface W {
  id: string;
  lat: number;
  lon: number;
  gridIds: string[];
  onDuty: boolean;
  busy: boolean;
  stale: boolean;
}

describe('dispatch candidates', () => {
  let h: DispatchHub;
  const roster: W[] = [];

  beforeAll(async () => {
    h = await startDispatchHub();
    const rand = rng(42);
    const now = h.clock.now();
    for (let i = 0; i < 300; i++) {
      const w: W = {
        id: `w${String(i).padStart(3, '0')}`,
        lat: 30.59 + rand() * 0.04,
        lon: 103.99 + rand() * 0.06,
        gridIds: [UNIT_GRIDS[Math.floor(rand() * 4)]!],
        onDuty: rand() > 0.2,
        busy: false,
        stale: false,
      };
      const roll = rand();
      w.stale = roll < 0.1;
      w.busy = !w.stale && roll < 0.2 && w.onDuty;
      roster.push(w);
      await h.addWorker({ id: w.id, gridIds: w.gridIds, onDuty: w.onDuty });
      // Stale: the last fix is 10 minutes old (older than candidateMaxFixAgeS = 5 min).
      await h.fix(`hh-${w.id}`, w.lat, w.lon, w.stale ? now - 600_000 : now - 1000);
    }
    // Busy workers: assigned to some case (status dispatched), as the case loop would.
    for (const w of roster.filter((x) => x.busy)) {
      await h.dispatch.workers.assign(h.dispatch.workers.byId.get(w.id)!, { caseId: `other-${w.id}`, stage: 'dispatched', since: now, lat: 0, lon: 0, gridId: null });
    }
  }, 300_000);

  afterAll(async () => {
    await h?.stop();
  });

  function expected(c: { lat: number; lon: number; gridId: string | null }, extraM: number) {
    const own = (w: W) => c.gridId !== null && w.gridIds.some((g) => (ANCESTORS[c.gridId!] ?? [c.gridId!]).includes(g));
    const pool = roster.filter((w) => w.onDuty && !w.busy && !w.stale).map((w) => ({ w, d: distM(c.lat, c.lon, w.lat, w.lon), own: own(w) }));
    const d0 = Math.min(...pool.map((p) => p.d));
    const first = (p: (typeof pool)[number]) => (p.own && p.d <= d0 + extraM ? 0 : 1);
    return pool.sort((a, b) => first(a) - first(b) || a.d - b.d);
  }

  it('should rank available workers by haversine distance like an independent computation, skipping off-duty, busy and stale ones', async () => {
    for (const at of [AT.A1, AT.B2, { lat: 30.6005, lon: 104.0395 }]) {
      const c = await h.newCase(at);
      const r = await h.as('dispatcher')<{ items: Array<{ workerId: string; distanceM: number; etaS: number; status: string; ownGrid: boolean; lastFixAgeS: number }> }>(
        'GET', `/cases/${c.id}/candidates?limit=25`,
      );
      expect(r.status).toBe(200);
      const want = expected({ ...at, gridId: c.gridId }, 500).slice(0, 25);
      expect(r.body.items.map((i) => i.workerId)).toEqual(want.map((p) => p.w.id));
      r.body.items.forEach((item, i) => {
        expect(Math.abs(item.distanceM - want[i]!.d)).toBeLessThan(0.1);
        expect(item.status).toBe('available');
        expect(item.ownGrid).toBe(want[i]!.own);
        expect(item.lastFixAgeS).toBe(1);
        // walking 1.3 m/s with a 1.3 detour factor: ETA in seconds equals the straight-line metres
        expect(item.etaS).toBe(Math.round((want[i]!.d * 1.3) / 1.3));
      });
      const excluded = new Set(roster.filter((w) => !w.onDuty || w.busy || w.stale).map((w) => w.id));
      expect(r.body.items.some((i) => excluded.has(i.workerId))).toBe(false);
    }
  });

  it('should put the own grid worker first only within the configured extra distance', async () => {
    const c = await h.newCase(AT.A1);
    const nearestOverall = expected({ ...AT.A1, gridId: null }, 0)[0]!;
    const d0 = nearestOverall.d;
    // A fresh own-grid worker 300 m farther than the nearest: promoted (300 < 500).
    const lat300 = AT.A1.lat + (d0 + 300) / 111_195;
    await h.addWorker({ id: 'own-near', gridIds: ['G-A1'], at: { lat: lat300, lon: AT.A1.lon } });
    // Another 800 m farther: not promoted.
    await h.addWorker({ id: 'own-far', gridIds: ['G-A1'], at: { lat: AT.A1.lat - (d0 + 800) / 111_195, lon: AT.A1.lon } });
    const r = await h.as('dispatcher')<{ items: Array<{ workerId: string; ownGrid: boolean; distanceM: number }> }>('GET', `/cases/${c.id}/candidates?limit=100`);
    const ids = r.body.items.map((i) => i.workerId);
    const promoted = r.body.items.filter((i) => i.ownGrid && i.distanceM <= d0 + 500).map((i) => i.workerId);
    expect(ids.slice(0, promoted.length)).toEqual(promoted);
    expect(promoted).toContain('own-near');
    expect(promoted).not.toContain('own-far');
    const far = r.body.items.find((i) => i.workerId === 'own-far');
    if (far) {
      // Ranked by distance among the rest.
      const rest = r.body.items.slice(promoted.length);
      expect(rest.map((i) => i.distanceM)).toEqual([...rest.map((i) => i.distanceM)].sort((a, b) => a - b));
    }
    await h.dispatch.workers.setDuty(h.dispatch.workers.byId.get('own-near')!, false);
    await h.dispatch.workers.setDuty(h.dispatch.workers.byId.get('own-far')!, false);
  });

  it('should answer CASE_NOT_FOUND for an unknown case and hide cases outside a dispatcher region', async () => {
    const r = await h.as('dispatcher')<{ code: string }>('GET', '/cases/nope/candidates');
    expect(r.status).toBe(404);
    expect(r.body.code).toBe('CASE_NOT_FOUND');
    const c = await h.newCase(AT.B1);
    const a = await h.as('dispatcherA')<{ code: string }>('GET', `/cases/${c.id}/candidates`);
    expect(a.status).toBe(404);
  });

  it('should stay exact while workers move between index rebuilds', async () => {
    h.dispatch.flush(); // snapshot now
    const c = await h.newCase(AT.B2);
    // Move the farthest available worker onto the case: not in the snapshot at its new place.
    const far = expected({ ...AT.B2, gridId: c.gridId }, 500).at(-1)!;
    // Slow enough not to be a jump (at most a few km in 200 s).
    h.clock.advance(200_000);
    await h.fix(`hh-${far.w.id}`, AT.B2.lat + 0.0001, AT.B2.lon);
    far.w.lat = AT.B2.lat + 0.0001;
    far.w.lon = AT.B2.lon;
    const r = await h.as('dispatcher')<{ items: Array<{ workerId: string; distanceM: number }> }>('GET', `/cases/${c.id}/candidates?limit=10`);
    const want = expected({ ...AT.B2, gridId: c.gridId }, 500).slice(0, 10);
    expect(r.body.items.map((i) => i.workerId)).toEqual(want.map((p) => p.w.id));
    const moved = r.body.items.find((i) => i.workerId === far.w.id)!;
    expect(moved.distanceM).toBeCloseTo(distM(AT.B2.lat, AT.B2.lon, far.w.lat, far.w.lon), 1);
    expect(Math.min(...r.body.items.map((i) => i.distanceM))).toBe(moved.distanceM);
  });
});
