import { describe, expect, it } from 'vitest';
import { GridIndex, normaliseGrids } from '../../src/cases/index.js';
import { districtGrids, startCaseHub } from './fixtures.js';
import { lattice } from './lattice.js';

describe('GridIndex', () => {
  it('should answer the finest grid, its ancestors and containment', () => {
    const g = new GridIndex();
    g.load(normaliseGrids(districtGrids()));
    expect(g.locate(30.61, 104.005)).toBe('G-A1');
    expect(g.locate(30.61, 104.035)).toBe('G-B2');
    expect(g.locate(31, 104.005)).toBeNull();
    expect(g.ancestors('G-A1')).toEqual(['G-A1', 'C-A', 'S-A', 'D1']);
    expect(g.contains('S-A', 'G-A2')).toBe(true);
    expect(g.contains('S-A', 'G-B1')).toBe(false);
    expect(g.descendants('S-B').sort()).toEqual(['C-B', 'G-B1', 'G-B2', 'S-B']);
  });

  it('should respect holes and multipolygons', () => {
    const g = new GridIndex();
    g.load(normaliseGrids({
      type: 'FeatureCollection',
      features: [{
        type: 'Feature',
        properties: { id: 'M', name: 'M', level: 'grid', parentId: null, code: null },
        geometry: { type: 'MultiPolygon', coordinates: [
          [[[0, 0], [10, 0], [10, 10], [0, 10], [0, 0]], [[4, 4], [6, 4], [6, 6], [4, 6], [4, 4]]],
          [[[20, 20], [21, 20], [21, 21], [20, 21], [20, 20]]],
        ] as never },
      }],
    }));
    expect(g.locate(1, 1)).toBe('M');
    expect(g.locate(5, 5)).toBeNull();
    expect(g.locate(20.5, 20.5)).toBe('M');
  });

  it('should build missing codes from the parent code and refuse bad input, naming each problem', () => {
    const f = normaliseGrids(lattice(10));
    expect(f.find((x) => x.properties.id === 'S0')!.properties.code).toBe('510106001');
    expect(f.find((x) => x.properties.id === 'G0-0')!.properties.code).toBe('510106001001');
    expect(() => normaliseGrids({ type: 'FeatureCollection', features: [
      { type: 'Feature', properties: { id: 'a', parentId: 'zz' } as never, geometry: { type: 'Polygon', coordinates: [] } },
      { type: 'Feature', properties: { id: 'a' } as never, geometry: { type: 'Point', coordinates: [] } as never },
    ] })).toThrow(/missing|duplicate id a.*|parentId zz/);
  });

  it('should locate every point among 10,000 grids (speed: npm run bench:grids)', () => {
    const g = new GridIndex();
    g.load(normaliseGrids(lattice(100)));
    expect(g.size).toBe(10_011);
    const n = 100_000;
    let hits = 0;
    for (let k = 0; k < n; k++) {
      const lat = 30.5 + ((k * 7919) % 100_000) / 1_000_000;
      const lon = 104 + ((k * 104729) % 100_000) / 1_000_000;
      if (g.locate(lat, lon)?.startsWith('G')) hits++;
    }
    expect(hits).toBe(n);
    expect(g.locate(30.5005, 104.0995)).toBe('G99-0');
    expect(g.contains('S0', 'G99-0')).toBe(true);
  });

  it('should take 10,000 grids over REST and scope GET /grids by region', { timeout: 120_000 }, async () => {
    const h = await startCaseHub({ grids: false });
    try {
      const put = await h.api<{ count: number }>('PUT', '/grids', lattice(100));
      expect(put.status).toBe(200);
      expect(put.body.count).toBe(10_011);
      const loc = await h.api<{ gridId: string; ancestors: string[] }>('GET', '/grids/locate?lat=30.5005&lon=104.0005');
      expect(loc.body).toEqual({ gridId: 'G0-0', ancestors: ['G0-0', 'S0', 'D'] });
      const r = await h.api('PUT', '/grids', districtGrids());
      expect(r.status).toBe(200);
      const a = await h.as('officerA')<{ features: Array<{ properties: { id: string } }> }>('GET', '/grids');
      expect(a.body.features.map((f) => f.properties.id).sort()).toEqual(['C-A', 'G-A1', 'G-A2', 'S-A']);
      expect((await h.as('officer')<{ features: unknown[] }>('GET', '/grids')).body.features).toHaveLength(9);
      expect((await h.as('officer')('PUT', '/grids', districtGrids())).status).toBe(403);
    } finally {
      await h.stop();
    }
  });
});
