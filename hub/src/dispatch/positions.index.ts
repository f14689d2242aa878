/**
 * Spatial index of live worker positions.
 *
 * kdbush is static, so the index is a snapshot rebuilt at most once per
 * positions interval (20,000 points: ~5 ms); geokdbush answers k-nearest by
 * great-circle distance on it (~0.03 ms). Workers that moved since the
 * snapshot sit in `moved` and are excluded from the tree search and checked
 * exactly instead, so a query is exact against live positions without paying
 * for a rebuild. Measured against flatbush (planar degrees: wrong order away
 * from the equator without scaling) and a linear scan (~1 ms p50 at 20k):
 * see docs/dispatch.md.
 */
import KDBush from 'kdbush';
import { around } from 'geokdbush';
import { haversineM } from '@gridlink/devices/geo';
import { hasFix, type WorkerState } from './worker.model.js';

export interface Near {
  w: WorkerState;
  distanceM: number;
}

export class PositionIndex {
  private tree: KDBush | null = null;
  private members: WorkerState[] = [];
  private readonly inTree = new Set<WorkerState>();
  private readonly moved = new Set<WorkerState>();
  private readonly all = new Set<WorkerState>();
  builtAt = 0;
  lastBuildMs = 0;

  add(w: WorkerState): void {
    this.all.add(w);
    if (hasFix(w)) this.moved.add(w);
  }

  remove(w: WorkerState): void {
    this.all.delete(w);
    this.moved.delete(w);
  }

  /** Call after the worker's live position changed. */
  touch(w: WorkerState): void {
    this.moved.add(w);
  }

  get dirty(): boolean {
    return this.moved.size > 0;
  }

  get size(): number {
    return this.members.length;
  }

  rebuild(now = Date.now()): void {
    const t0 = performance.now();
    const members: WorkerState[] = [];
    for (const w of this.all) if (hasFix(w) && !w.removed) members.push(w);
    const tree = new KDBush(Math.max(1, members.length));
    for (const w of members) tree.add(w.lon, w.lat);
    if (members.length === 0) tree.add(0, 0);
    tree.finish();
    this.tree = tree;
    this.members = members;
    this.inTree.clear();
    for (const w of members) this.inTree.add(w);
    this.moved.clear();
    this.builtAt = now;
    this.lastBuildMs = performance.now() - t0;
  }

  /**
   * The k nearest workers passing `accept`, nearest first, with exact
   * distances from their live positions.
   */
  nearest(lat: number, lon: number, k: number, accept: (w: WorkerState) => boolean): Near[] {
    const out: Near[] = [];
    const { tree, members, moved } = this;
    if (tree && members.length) {
      const ids = around(tree, lon, lat, k, Infinity, (i) => {
        const w = members[i]!;
        return !moved.has(w) && !w.removed && accept(w);
      });
      for (const i of ids) {
        const w = members[i]!;
        out.push({ w, distanceM: haversineM(lat, lon, w.lat, w.lon) });
      }
    }
    for (const w of moved) {
      if (w.removed || !hasFix(w) || !accept(w)) continue;
      out.push({ w, distanceM: haversineM(lat, lon, w.lat, w.lon) });
    }
    out.sort((a, b) => a.distanceM - b.distanceM);
    if (out.length > k) out.length = k;
    return out;
  }
}
