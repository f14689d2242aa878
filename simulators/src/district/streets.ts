/**
 * The road network as a graph: shortest paths (Dijkstra on a binary heap)
 * for workers travelling to a case, random walks for patrols, and snapping
 * a point to the nearest node.
 */
import type { StreetCollection, StreetEdgeFeature, StreetNodeFeature } from './generate.js';
import { haversineM } from './geo.js';
import type { Rng } from '../util/rng.js';

export interface StreetNode {
  id: string;
  lat: number;
  lon: number;
  kind: string;
  elevationM: number;
}

export class StreetGraph {
  readonly nodes = new Map<string, StreetNode>();
  private readonly adj = new Map<string, Array<{ to: string; m: number; name: string }>>();

  constructor(fc: StreetCollection) {
    for (const f of fc.features) {
      if (f.geometry.type !== 'Point') continue;
      const n = f as StreetNodeFeature;
      const [lon, lat] = n.geometry.coordinates;
      this.nodes.set(n.properties.id, { id: n.properties.id, lat, lon, kind: n.properties.kind, elevationM: n.properties.elevationM });
      this.adj.set(n.properties.id, []);
    }
    for (const f of fc.features) {
      if (f.geometry.type !== 'LineString') continue;
      const e = f as StreetEdgeFeature;
      const { from, to, lengthM, name } = e.properties;
      if (!this.nodes.has(from) || !this.nodes.has(to)) throw new Error(`street edge ${e.properties.id} references a missing node`);
      this.adj.get(from)!.push({ to, m: lengthM, name });
      this.adj.get(to)!.push({ to: from, m: lengthM, name });
    }
  }

  neighbours(id: string): ReadonlyArray<{ to: string; m: number; name: string }> {
    return this.adj.get(id) ?? [];
  }

  node(id: string): StreetNode {
    const n = this.nodes.get(id);
    if (!n) throw new Error(`unknown street node ${id}`);
    return n;
  }

  nearest(lat: number, lon: number): StreetNode {
    let best: StreetNode | undefined;
    let bestD = Infinity;
    for (const n of this.nodes.values()) {
      const d = (n.lat - lat) ** 2 + ((n.lon - lon) * Math.cos((lat * Math.PI) / 180)) ** 2;
      if (d < bestD) {
        bestD = d;
        best = n;
      }
    }
    if (!best) throw new Error('empty street graph');
    return best;
  }

  /** Node ids from `from` to `to` inclusive, shortest by length; null when unreachable. */
  shortestPath(from: string, to: string): string[] | null {
    if (from === to) return [from];
    const distTo = new Map<string, number>([[from, 0]]);
    const prev = new Map<string, string>();
    const heap: Array<[number, string]> = [[0, from]];
    const push = (item: [number, string]) => {
      heap.push(item);
      let i = heap.length - 1;
      while (i > 0) {
        const p = (i - 1) >> 1;
        if (heap[p]![0] <= heap[i]![0]) break;
        [heap[p], heap[i]] = [heap[i]!, heap[p]!];
        i = p;
      }
    };
    const pop = (): [number, string] => {
      const top = heap[0]!;
      const last = heap.pop()!;
      if (heap.length) {
        heap[0] = last;
        let i = 0;
        for (;;) {
          const l = 2 * i + 1, r = l + 1;
          let m = i;
          if (l < heap.length && heap[l]![0] < heap[m]![0]) m = l;
          if (r < heap.length && heap[r]![0] < heap[m]![0]) m = r;
          if (m === i) break;
          [heap[m], heap[i]] = [heap[i]!, heap[m]!];
          i = m;
        }
      }
      return top;
    };
    while (heap.length) {
      const [d, u] = pop();
      if (u === to) break;
      if (d > (distTo.get(u) ?? Infinity)) continue;
      for (const { to: v, m } of this.neighbours(u)) {
        const nd = d + m;
        if (nd < (distTo.get(v) ?? Infinity)) {
          distTo.set(v, nd);
          prev.set(v, u);
          push([nd, v]);
        }
      }
    }
    if (!prev.has(to)) return null;
    const path = [to];
    while (path[0] !== from) path.unshift(prev.get(path[0]!)!);
    return path;
  }

  /** A patrol leg: a random walk of `steps` edges that avoids turning straight back. */
  randomWalk(from: string, steps: number, rng: Rng): string[] {
    const path = [from];
    let prev: string | undefined;
    let cur = from;
    for (let i = 0; i < steps; i++) {
      const opts = this.neighbours(cur).filter((n) => n.to !== prev);
      const next = opts.length ? rng.pick(opts).to : prev;
      if (!next) break;
      prev = cur;
      cur = next;
      path.push(cur);
    }
    return path;
  }

  pathLengthM(path: readonly string[]): number {
    let m = 0;
    for (let i = 1; i < path.length; i++) {
      const a = this.node(path[i - 1]!), b = this.node(path[i]!);
      m += haversineM(a.lat, a.lon, b.lat, b.lon);
    }
    return m;
  }
}
