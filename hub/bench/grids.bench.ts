/**
 * npm run bench:grids — point-in-grid lookups among 10,011 grids (a 100×100
 * lattice of 0.001° cells under 10 streets and a district): the lookup every
 * reading, position and case makes. Prints one JSON object.
 */
import { GridIndex, normaliseGrids } from '../src/cases/index.js';
import { lattice } from '../test/cases/lattice.js';

const g = new GridIndex();
let t = performance.now();
g.load(normaliseGrids(lattice(100)));
const loadMs = performance.now() - t;
const n = 500_000;
let hits = 0;
const point = (k: number): [number, number] => [30.5 + ((k * 7919) % 100_000) / 1_000_000, 104 + ((k * 104729) % 100_000) / 1_000_000];
for (let k = 0; k < 50_000; k++) g.locate(...point(k)); // warm-up
t = performance.now();
for (let k = 0; k < n; k++) if (g.locate(...point(k))) hits++;
const us = ((performance.now() - t) * 1000) / n;
process.stdout.write(`${JSON.stringify({ grids: g.size, loadMs: Math.round(loadMs), lookups: n, hits, usPerLookup: +us.toFixed(2), lookupsPerS: Math.round(1e6 / us) })}\n`);
