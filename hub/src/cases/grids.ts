/**
 * Grids: the multi-level polygon hierarchy (district → street → community →
 * unit grid) and a spatial index over it. `locate` answers the finest
 * polygon containing a point: flatbush narrows to the polygons whose bounding
 * box holds the point, then a ray-casting point-in-polygon test decides.
 * With 10,000 unit grids a lookup touches a handful of polygons.
 * The same object is the auth RegionResolver, so "inside a region" means
 * "the grid or one of its descendants".
 */
import Flatbush from 'flatbush';
import type { RegionResolver } from '../auth/index.js';
import { Errors } from '../core/errors.js';
import type { GridService } from '../core/services.js';
import type { Db } from '../store/index.js';
import { flatRing, pointInRing } from '@gridlink/devices/geo';

type Position = [number, number, ...number[]];
export type Polygon = { type: 'Polygon'; coordinates: Position[][] };
export type MultiPolygon = { type: 'MultiPolygon'; coordinates: Position[][][] };

export interface GridProps {
  id: string;
  name: string;
  level: string;
  parentId: string | null;
  code: string | null;
  [k: string]: unknown;
}

export interface GridFeature {
  type: 'Feature';
  id?: string | number;
  properties: GridProps;
  geometry: Polygon | MultiPolygon;
}

export interface GridCollection {
  type: 'FeatureCollection';
  features: GridFeature[];
}

/** Finest last. Unknown level names sort by depth in the hierarchy instead. */
export const GRID_LEVELS = ['city', 'district', 'street', 'community', 'grid'] as const;

/** Digits appended per level when a grid has no code (Beijing style: 6 admin + 3 street + 3 community + 3 grid). */
export const DEFAULT_CODE_WIDTHS: Record<string, number> = { district: 6, street: 3, community: 3, grid: 3 };

interface Entry {
  props: GridProps;
  geometry: Polygon | MultiPolygon;
  /** polygons → rings → flat [lon0, lat0, lon1, lat1, ...] */
  rings: Float64Array[][];
  bbox: [number, number, number, number];
  depth: number;
  area: number;
}

function ringsOf(g: Polygon | MultiPolygon): Float64Array[][] {
  const polys = g.type === 'Polygon' ? [g.coordinates] : g.coordinates;
  return polys.map((rings) => rings.map((ring) => flatRing(ring as Array<[number, number]>)));
}

const inRing = pointInRing;

export function pointInGeometry(rings: Float64Array[][], lon: number, lat: number): boolean {
  for (const poly of rings) {
    if (!poly[0] || !inRing(poly[0], lon, lat)) continue;
    let hole = false;
    for (let h = 1; h < poly.length; h++) if (inRing(poly[h]!, lon, lat)) hole = true;
    if (!hole) return true;
  }
  return false;
}

const invalid = (message: string) => Errors.gridsInvalid(message);

function validRing(ring: unknown): ring is Position[] {
  return Array.isArray(ring) && ring.length >= 4 && ring.every((p) => Array.isArray(p) && p.length >= 2 && Number.isFinite(p[0]) && Number.isFinite(p[1]) && Math.abs(p[0]) <= 180 && Math.abs(p[1]) <= 90);
}

/** Checks a FeatureCollection and normalises ids, parents and codes; throws GRIDS_INVALID naming every problem found (up to 20). */
export function normaliseGrids(fc: GridCollection, codeWidths = DEFAULT_CODE_WIDTHS): GridFeature[] {
  const problems: string[] = [];
  const out: GridFeature[] = [];
  const ids = new Set<string>();
  fc.features.forEach((f, i) => {
    const p = (f.properties ?? {}) as Partial<GridProps>;
    const id = String(p.id ?? f.id ?? '');
    if (!id) problems.push(`features[${i}]: missing id`);
    else if (ids.has(id)) problems.push(`features[${i}]: duplicate id ${id}`);
    ids.add(id);
    const g = f.geometry;
    const ok = g && ((g.type === 'Polygon' && Array.isArray(g.coordinates) && g.coordinates.length > 0 && g.coordinates.every(validRing)) ||
      (g.type === 'MultiPolygon' && Array.isArray(g.coordinates) && g.coordinates.length > 0 && g.coordinates.every((poly) => Array.isArray(poly) && poly.length > 0 && poly.every(validRing))));
    if (!ok) problems.push(`features[${i}] (${id}): geometry must be a Polygon or MultiPolygon of closed WGS-84 rings`);
    out.push({
      type: 'Feature',
      properties: { ...p, id, name: String(p.name ?? id), level: String(p.level ?? 'grid'), parentId: p.parentId ? String(p.parentId) : null, code: p.code ? String(p.code) : null },
      geometry: g,
    });
  });
  const byId = new Map(out.map((f) => [f.properties.id, f]));
  for (const f of out) {
    const parent = f.properties.parentId;
    if (parent && !byId.has(parent)) problems.push(`${f.properties.id}: parentId ${parent} is not in the collection`);
    // A cycle would make ancestors() loop.
    const seen = new Set<string>([f.properties.id]);
    for (let cur = parent; cur; cur = byId.get(cur)?.properties.parentId ?? null) {
      if (seen.has(cur)) {
        problems.push(`${f.properties.id}: parent chain has a cycle`);
        break;
      }
      seen.add(cur);
    }
  }
  if (problems.length) throw invalid(`invalid grids: ${problems.slice(0, 20).join('; ')}`);
  // Missing codes: parent code + sibling number, width per level.
  const siblings = new Map<string, number>();
  const codeOf = (f: GridFeature): string | null => {
    if (f.properties.code) return f.properties.code;
    const parent = f.properties.parentId ? byId.get(f.properties.parentId) : undefined;
    const parentCode = parent ? codeOf(parent) : '';
    const key = f.properties.parentId ?? '';
    const n = (siblings.get(key) ?? 0) + 1;
    siblings.set(key, n);
    f.properties.code = `${parentCode ?? ''}${String(n).padStart(codeWidths[f.properties.level] ?? 3, '0')}`;
    return f.properties.code;
  };
  for (const f of out) codeOf(f);
  return out;
}

export class GridIndex implements GridService, RegionResolver {
  private entries = new Map<string, Entry>();
  private list: Entry[] = [];
  private index: Flatbush | null = null;
  private readonly ancestorCache = new Map<string, string[]>();
  private readonly descendantCache = new Map<string, string[]>();

  get size(): number {
    return this.list.length;
  }

  load(features: GridFeature[]): void {
    const entries = new Map<string, Entry>();
    for (const f of features) {
      const rings = ringsOf(f.geometry);
      let minX = Infinity, minY = Infinity, maxX = -Infinity, maxY = -Infinity;
      for (const poly of rings) {
        const outer = poly[0]!;
        for (let i = 0; i < outer.length; i += 2) {
          const x = outer[i]!, y = outer[i + 1]!;
          if (x < minX) minX = x;
          if (x > maxX) maxX = x;
          if (y < minY) minY = y;
          if (y > maxY) maxY = y;
        }
      }
      entries.set(f.properties.id, { props: f.properties, geometry: f.geometry, rings, bbox: [minX, minY, maxX, maxY], depth: 0, area: (maxX - minX) * (maxY - minY) });
    }
    for (const e of entries.values()) {
      let d = 0;
      for (let p = e.props.parentId; p && d < 64; p = entries.get(p)?.props.parentId ?? null) d++;
      e.depth = d;
    }
    this.entries = entries;
    this.list = [...entries.values()];
    this.ancestorCache.clear();
    this.descendantCache.clear();
    if (this.list.length === 0) {
      this.index = null;
      return;
    }
    const idx = new Flatbush(this.list.length);
    for (const e of this.list) idx.add(e.bbox[0], e.bbox[1], e.bbox[2], e.bbox[3]);
    idx.finish();
    this.index = idx;
  }

  get(id: string): GridProps | undefined {
    return this.entries.get(id)?.props;
  }

  has(id: string): boolean {
    return this.entries.has(id);
  }

  locate(lat: number, lon: number): string | null {
    if (!this.index) return null;
    let best: Entry | null = null;
    for (const i of this.index.search(lon, lat, lon, lat)) {
      const e = this.list[i]!;
      if (best && (e.depth < best.depth || (e.depth === best.depth && e.area >= best.area))) continue;
      if (pointInGeometry(e.rings, lon, lat)) best = e;
    }
    return best?.props.id ?? null;
  }

  ancestors(gridId: string): string[] {
    let a = this.ancestorCache.get(gridId);
    if (a) return a;
    a = [];
    for (let cur: string | null = gridId; cur && a.length < 64; cur = this.entries.get(cur)?.props.parentId ?? null) a.push(cur);
    this.ancestorCache.set(gridId, a);
    return a;
  }

  contains(regionId: string, gridId: string | null | undefined): boolean {
    if (!gridId) return false;
    if (gridId === regionId) return true;
    return this.ancestors(gridId).includes(regionId);
  }

  /** The region and every grid below it (for SQL `grid_id = any(...)`). */
  descendants(regionId: string): string[] {
    let d = this.descendantCache.get(regionId);
    if (d) return d;
    d = [regionId];
    for (const e of this.list) if (e.props.id !== regionId && this.contains(regionId, e.props.id)) d.push(e.props.id);
    this.descendantCache.set(regionId, d);
    return d;
  }

  /** Bounding-box centre: where a case goes when a device has a grid but no coordinates. */
  centre(gridId: string): { lat: number; lon: number } | null {
    const e = this.entries.get(gridId);
    if (!e) return null;
    return { lon: (e.bbox[0] + e.bbox[2]) / 2, lat: (e.bbox[1] + e.bbox[3]) / 2 };
  }

  features(filter?: (id: string) => boolean): GridFeature[] {
    const out: GridFeature[] = [];
    for (const e of this.list) if (!filter || filter(e.props.id)) out.push({ type: 'Feature', id: e.props.id, properties: e.props, geometry: e.geometry });
    return out;
  }
}

interface GridRow {
  id: string;
  name: string;
  level: string;
  parent_id: string | null;
  code: string | null;
  geometry: Polygon | MultiPolygon;
  properties: Record<string, unknown> | null;
}

export async function loadGrids(db: Db): Promise<GridFeature[]> {
  const rows = await db.query<GridRow>('select id, name, level, parent_id, code, geometry, properties from grids order by id');
  return rows.map((r) => ({
    type: 'Feature',
    properties: { ...(r.properties ?? {}), id: r.id, name: r.name, level: r.level, parentId: r.parent_id, code: r.code },
    geometry: r.geometry,
  }));
}

/** Replaces the whole set in one transaction (one statement: 10k polygons travel as one JSON document). */
export async function replaceGrids(db: Db, features: GridFeature[]): Promise<void> {
  const doc = features.map((f) => {
    const { id, name, level, parentId, code, ...rest } = f.properties;
    return { id, name, level, parentId, code, geometry: f.geometry, properties: rest };
  });
  await db.tx(async (q) => {
    await q.query('delete from grids');
    await q.query(
      `insert into grids (id, name, level, parent_id, code, geometry, properties)
       select x->>'id', x->>'name', x->>'level', x->>'parentId', x->>'code', x->'geometry', coalesce(x->'properties', '{}'::jsonb)
       from jsonb_array_elements($1::jsonb) as x`,
      [JSON.stringify(doc)],
    );
  });
}
