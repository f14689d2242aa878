import { describe, expect, it } from 'vitest';
import { generateDistrict, type District, type PolygonFeature, type StreetEdgeFeature } from '../src/district/generate.js';
import { CodeBuilder, schemeFor } from '../src/district/codes.js';
import { bbox, pointInRing, signedArea, type Pt } from '../src/district/geo.js';
import { StreetGraph } from '../src/district/streets.js';
import { Rng } from '../src/util/rng.js';

const ring = (f: PolygonFeature): Pt[] => f.geometry.coordinates[0]!.slice(0, -1);
const level = (d: District, l: string) => d.grids.features.filter((f) => f.properties.level === l);

/** Segments ab and cd cross at a point strictly inside both (touching and collinear overlap do not count). */
function properCross(a: Pt, b: Pt, c: Pt, d: Pt): boolean {
  const o = (p: Pt, q: Pt, r: Pt) => Math.sign((q[0] - p[0]) * (r[1] - p[1]) - (q[1] - p[1]) * (r[0] - p[0]));
  const o1 = o(a, b, c), o2 = o(a, b, d), o3 = o(c, d, a), o4 = o(c, d, b);
  return o1 * o2 < 0 && o3 * o4 < 0;
}

function overlaps(a: PolygonFeature, b: PolygonFeature, rng: Rng): boolean {
  const ra = ring(a), rb = ring(b);
  const [ax0, ay0, ax1, ay1] = bbox(ra), [bx0, by0, bx1, by1] = bbox(rb);
  if (ax1 < bx0 || bx1 < ax0 || ay1 < by0 || by1 < ay0) return false;
  for (let i = 0; i < ra.length; i++) {
    for (let j = 0; j < rb.length; j++) {
      if (properCross(ra[i]!, ra[(i + 1) % ra.length]!, rb[j]!, rb[(j + 1) % rb.length]!)) return true;
    }
  }
  // No edges cross: the polygons are disjoint, nested or identical. Sample the interior of each.
  for (const [p, q] of [[ra, rb], [rb, ra]] as const) {
    const [x0, y0, x1, y1] = bbox(p);
    for (let k = 0; k < 200; k++) {
      const pt: Pt = [rng.range(x0, x1), rng.range(y0, y1)];
      if (pointInRing(pt, p) && pointInRing(pt, q)) return true;
    }
  }
  return false;
}

describe('generateDistrict', () => {
  const d = generateDistrict();

  it('should build the hierarchy district → 4 streets → 12 communities → 108 grids with 15-digit codes', () => {
    expect(level(d, 'district')).toHaveLength(1);
    expect(level(d, 'street')).toHaveLength(4);
    expect(level(d, 'community')).toHaveLength(12);
    const grids = level(d, 'grid');
    expect(grids).toHaveLength(108);
    for (const g of grids) {
      expect(g.properties.id).toMatch(/^510106\d{9}$/);
      expect(g.properties.id.startsWith(g.properties.parentId!)).toBe(true);
    }
    const ids = d.grids.features.map((f) => f.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(d.grids.features.find((f) => f.id === '510106001001001')?.properties.name).toMatch(/社区第1网格$/);
  });

  it('should be deterministic from the seed and differ with another seed', () => {
    expect(JSON.stringify(generateDistrict())).toBe(JSON.stringify(d));
    expect(JSON.stringify(generateDistrict({ seed: 7 }).grids)).not.toBe(JSON.stringify(d.grids));
  });

  it('should tile the district: areas sum to the outline, no two grids overlap', () => {
    const outline = level(d, 'district')[0]!;
    const total = Math.abs(signedArea(ring(outline)));
    const grids = level(d, 'grid');
    const sum = grids.reduce((s, g) => s + Math.abs(signedArea(ring(g))), 0);
    expect(Math.abs(sum - total) / total).toBeLessThan(1e-9);
    for (const g of grids) expect(signedArea(ring(g))).toBeGreaterThan(0);
    const rng = new Rng(1);
    let pairs = 0;
    for (let i = 0; i < grids.length; i++) {
      for (let j = i + 1; j < grids.length; j++) {
        pairs++;
        expect(overlaps(grids[i]!, grids[j]!, rng), `${grids[i]!.id} overlaps ${grids[j]!.id}`).toBe(false);
      }
    }
    expect(pairs).toBe((108 * 107) / 2);
    // Each level also tiles its parent.
    for (const parentLevel of ['district', 'street', 'community'] as const) {
      for (const p of level(d, parentLevel)) {
        const kids = d.grids.features.filter((f) => f.properties.parentId === p.id);
        const a = kids.reduce((s, k) => s + signedArea(ring(k)), 0);
        expect(Math.abs(a - signedArea(ring(p))) / signedArea(ring(p))).toBeLessThan(1e-9);
      }
    }
  });

  it('should leave no gaps: random points inside the outline fall in exactly one grid', () => {
    const outline = ring(level(d, 'district')[0]!);
    const grids = level(d, 'grid').map(ring);
    const [x0, y0, x1, y1] = bbox(outline);
    const rng = new Rng(2);
    let inside = 0;
    for (let k = 0; k < 5000; k++) {
      const p: Pt = [rng.range(x0, x1), rng.range(y0, y1)];
      const n = grids.filter((g) => pointInRing(p, g)).length;
      expect(n).toBe(pointInRing(p, outline) ? 1 : 0);
      if (n) inside++;
    }
    expect(inside).toBeGreaterThan(4000);
  });

  it('should place every street point (nodes and points along edges) in exactly one grid', () => {
    const grids = level(d, 'grid').map(ring);
    const edges = d.streets.features.filter((f): f is StreetEdgeFeature => f.geometry.type === 'LineString');
    expect(edges.length).toBeGreaterThan(300);
    let checked = 0;
    for (const e of edges) {
      const [a, b] = e.geometry.coordinates as unknown as [Pt, Pt];
      for (let t = 0; t <= 1; t += 0.125) {
        const p: Pt = [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t];
        expect(grids.filter((g) => pointInRing(p, g)).length, `${e.id} at t=${t}`).toBe(1);
        checked++;
      }
    }
    expect(checked).toBe(edges.length * 9);
  });

  it('should make a connected street network', () => {
    const g = new StreetGraph(d.streets);
    const ids = [...g.nodes.keys()];
    const seen = new Set([ids[0]!]);
    const stack = [ids[0]!];
    while (stack.length) for (const n of g.neighbours(stack.pop()!)) if (!seen.has(n.to)) (seen.add(n.to), stack.push(n.to));
    expect(seen.size).toBe(ids.length);
    const path = g.shortestPath(ids[0]!, ids[ids.length - 1]!);
    expect(path?.[0]).toBe(ids[0]);
    expect(g.pathLengthM(path!)).toBeGreaterThan(100);
  });

  it('should put devices inside their grid, 1-2 workers per grid and a leader per community, cameras at intersections', () => {
    const byId = new Map(level(d, 'grid').map((g) => [g.id, ring(g)]));
    for (const dev of d.devices) expect(pointInRing([dev.lon, dev.lat], byId.get(dev.gridId)!), dev.id).toBe(true);
    const types = new Set(d.devices.map((x) => x.type));
    for (const t of ['sensor.smoke', 'sensor.water_level', 'sensor.manhole_cover', 'sensor.gas', 'camera', 'handheld']) expect(types.has(t as never), t).toBe(true);
    for (const g of byId.keys()) {
      const n = d.workers.filter((w) => w.role === 'worker' && w.gridIds[0] === g).length;
      expect(n).toBeGreaterThanOrEqual(1);
      expect(n).toBeLessThanOrEqual(2);
      expect(d.devices.filter((x) => x.gridId === g && x.type === 'sensor.smoke')).toHaveLength(1);
    }
    expect(d.workers.filter((w) => w.role === 'leader')).toHaveLength(12);
    const deviceIds = new Set(d.devices.map((x) => x.id));
    for (const w of d.workers) expect(deviceIds.has(w.deviceId)).toBe(true);
    expect(d.devices.filter((x) => x.type === 'camera').every((x) => String(x.meta.node).startsWith('v'))).toBe(true);
    expect(new Set(d.devices.map((x) => x.id)).size).toBe(d.devices.length);
  });

  it('should build 14-digit codes on request', () => {
    const d14 = generateDistrict({ codeDigits: 14, streets: 3, communitiesPerStreet: 2 });
    for (const g of level(d14, 'grid')) expect(g.id).toMatch(/^510106\d{8}$/);
    expect(new CodeBuilder(schemeFor(14, '110108')).grid(2, 3, 4)).toBe('11010800200304');
    expect(() => new CodeBuilder(schemeFor(14, '110108')).grid(1, 1, 100)).toThrow(RangeError);
  });
});
