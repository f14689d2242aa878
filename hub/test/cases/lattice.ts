import type { GridCollection } from '../../src/cases/index.js';

/** n×n unit grids under 10 streets under one district, 0.001° cells. */
export function lattice(n: number): GridCollection {
  const cell = 0.001;
  const x0 = 104, y0 = 30.5;
  const sq = (x: number, y: number, w: number, h: number) => [[[x, y], [x + w, y], [x + w, y + h], [x, y + h], [x, y]]];
  const features: GridCollection['features'] = [
    { type: 'Feature', properties: { id: 'D', name: 'D', level: 'district', parentId: null, code: '510106' }, geometry: { type: 'Polygon', coordinates: sq(x0, y0, n * cell, n * cell) as never } },
  ];
  const streets = 10;
  const rows = n / streets;
  for (let s = 0; s < streets; s++) {
    features.push({ type: 'Feature', properties: { id: `S${s}`, name: `S${s}`, level: 'street', parentId: 'D', code: null }, geometry: { type: 'Polygon', coordinates: sq(x0, y0 + s * rows * cell, n * cell, rows * cell) as never } });
  }
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      features.push({ type: 'Feature', properties: { id: `G${i}-${j}`, name: `G${i}-${j}`, level: 'grid', parentId: `S${Math.floor(j / rows)}`, code: null }, geometry: { type: 'Polygon', coordinates: sq(x0 + i * cell, y0 + j * cell, cell, cell) as never } });
    }
  }
  return { type: 'FeatureCollection', features };
}
