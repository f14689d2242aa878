/**
 * Layer implementations: data in, canvas out. Each keeps its data already
 * projected to world units so a frame is only an affine transform.
 */
import type { Camera, CaseSummary, Device, GridFeature, Severity } from '../api/types';
import { OPEN_STATUSES, WORKER_STATUSES } from '../api/types';
import { inClip, type Frame, type Hit, type Layer, type Rect } from './engine';
import type { PositionIndex } from './positions';
import { emptyBounds, extend, project, scaleOf, tileUrl, visibleTiles, worldToScreen, type Datum, type WorldBounds } from './projection';
import { AGEING_MS, LEVEL_COLORS, SEVERITY_COLOR, STALE_MS, WORKER_COLOR } from './style';
import { pointInRing } from '@gridlink/devices/geo';

const pt: [number, number] = [0, 0];

// ---------------------------------------------------------------- tiles

export interface TileConfig {
  template: string;
  subdomains: string;
  datum: Datum;
}

export function tileLayer(cfg: TileConfig, invalidate: () => void): Layer {
  const cache = new Map<string, HTMLImageElement>();
  return {
    id: 'tiles',
    z: 0,
    kind: 'static',
    draw(ctx, f) {
      if (!cfg.template) return;
      for (const t of visibleTiles(f.view)) {
        const url = tileUrl(cfg.template, t, cfg.subdomains);
        let img = cache.get(url);
        if (!img) {
          img = new Image();
          img.crossOrigin = 'anonymous';
          img.onload = invalidate;
          img.src = url;
          cache.set(url, img);
          if (cache.size > 400) cache.delete(cache.keys().next().value!);
        }
        if (img.complete && img.naturalWidth) ctx.drawImage(img, t.sx, t.sy, t.size + 0.5, t.size + 0.5);
      }
    },
  };
}

// ---------------------------------------------------------------- grids

/** Named levels of the hub's grid hierarchy, coarse to fine; numbers are accepted too. */
const LEVEL_RANK: Record<string, number> = { city: 0, district: 1, street: 2, community: 3, grid: 4 };
export const levelRank = (l: unknown): number => (typeof l === 'number' ? l : LEVEL_RANK[String(l)] ?? (Number(l) || 0));

interface GridShape {
  id: string;
  name: string;
  code: string;
  level: number;
  levelName: string;
  rings: Float64Array[];
  b: WorldBounds;
  lx: number;
  ly: number;
}

export interface GridModel {
  shapes: GridShape[];
  levels: number[];
  bounds: WorldBounds;
}

export function buildGridModel(features: readonly GridFeature[], datum: Datum): GridModel {
  const shapes: GridShape[] = [];
  const bounds = emptyBounds();
  const levels = new Set<number>();
  for (const f of features) {
    const polys = f.geometry?.type === 'Polygon' ? [f.geometry.coordinates] : f.geometry?.type === 'MultiPolygon' ? f.geometry.coordinates : [];
    const rings: Float64Array[] = [];
    const b = emptyBounds();
    let area = 0, lx = 0, ly = 0;
    for (const poly of polys) {
      for (const ring of poly) {
        const arr = new Float64Array(ring.length * 2);
        ring.forEach((c, i) => {
          project(datum, c[0]!, c[1]!, pt);
          arr[i * 2] = pt[0];
          arr[i * 2 + 1] = pt[1];
          extend(b, pt[0], pt[1]);
        });
        rings.push(arr);
      }
      // Label at the centroid of the largest outer ring.
      const outer = rings[rings.length - poly.length];
      if (outer) {
        const c = centroid(outer);
        if (c.area > area) ({ area, x: lx, y: ly } = c);
      }
    }
    if (!rings.length) continue;
    const p = f.properties ?? ({} as GridFeature['properties']);
    const level = levelRank(p.level);
    levels.add(level);
    extend(bounds, b.minX, b.minY);
    extend(bounds, b.maxX, b.maxY);
    shapes.push({ id: String(p.id ?? f.id), name: String(p.name ?? ''), code: String(p.code ?? p.id ?? f.id ?? ''), level, levelName: String(p.level ?? ''), rings, b, lx: lx || (b.minX + b.maxX) / 2, ly: ly || (b.minY + b.maxY) / 2 });
  }
  const lv = [...levels].sort((a, b) => a - b);
  // Coarse first so fine outlines paint on top.
  shapes.sort((a, b) => a.level - b.level);
  return { shapes, levels: lv, bounds };
}

function centroid(r: Float64Array): { area: number; x: number; y: number } {
  let a = 0, cx = 0, cy = 0;
  const n = r.length / 2;
  for (let i = 0, j = n - 1; i < n; j = i++) {
    const x0 = r[j * 2]!, y0 = r[j * 2 + 1]!, x1 = r[i * 2]!, y1 = r[i * 2 + 1]!;
    const c = x0 * y1 - x1 * y0;
    a += c;
    cx += (x0 + x1) * c;
    cy += (y0 + y1) * c;
  }
  if (Math.abs(a) < 1e-18) return { area: 0, x: r[0] ?? 0, y: r[1] ?? 0 };
  return { area: Math.abs(a / 2), x: cx / (3 * a), y: cy / (3 * a) };
}


export function gridLayer(model: GridModel, opts: { labels: boolean; selected: () => string | null }): Layer {
  const levelColor = (lv: number) => LEVEL_COLORS[Math.min(LEVEL_COLORS.length - 1, model.levels.indexOf(lv))] ?? '#475569';
  const finest = model.levels[model.levels.length - 1];
  return {
    id: 'grids',
    z: 10,
    kind: 'static',
    draw(ctx, f) {
      const v = f.view;
      const s = scaleOf(v.zoom);
      const [x0, y0] = [v.cx - v.width / 2 / s, v.cy - v.height / 2 / s];
      const [x1, y1] = [v.cx + v.width / 2 / s, v.cy + v.height / 2 / s];
      const sel = opts.selected();
      for (const g of model.shapes) {
        if (g.b.maxX < x0 || g.b.minX > x1 || g.b.maxY < y0 || g.b.minY > y1) continue;
        const px = (g.b.maxX - g.b.minX) * s;
        // Fine grids far below a pixel would be noise.
        if (px < 2 && g.level === finest && model.levels.length > 1) continue;
        ctx.beginPath();
        for (const r of g.rings) {
          for (let i = 0; i < r.length; i += 2) {
            const sx = (r[i]! - v.cx) * s + v.width / 2;
            const sy = (r[i + 1]! - v.cy) * s + v.height / 2;
            if (i === 0) ctx.moveTo(sx, sy);
            else ctx.lineTo(sx, sy);
          }
          ctx.closePath();
        }
        const c = levelColor(g.level);
        const rank = model.levels.indexOf(g.level);
        if (g.level === finest) {
          ctx.fillStyle = g.id === sel ? 'rgba(56,189,248,0.22)' : 'rgba(30,41,59,0.35)';
          ctx.fill('evenodd');
        }
        ctx.strokeStyle = g.id === sel ? '#f8fafc' : c;
        ctx.lineWidth = g.id === sel ? 2.5 : Math.max(0.8, 2.4 - rank * 0.6);
        ctx.stroke();
      }
      if (!opts.labels) return;
      ctx.textAlign = 'center';
      ctx.textBaseline = 'middle';
      for (const g of model.shapes) {
        const w = (g.b.maxX - g.b.minX) * s;
        if (w < 70) continue;
        // Only label the finest level that is large enough, plus coarse ones when zoomed out.
        const [sx, sy] = worldToScreen(v, g.lx, g.ly, pt);
        if (sx < -50 || sy < -20 || sx > v.width + 50 || sy > v.height + 20) continue;
        const big = g.level !== finest;
        if (big && w > v.width * 1.5) continue;
        ctx.font = big ? '600 14px system-ui, sans-serif' : '12px system-ui, sans-serif';
        ctx.fillStyle = big ? 'rgba(186,230,253,0.85)' : 'rgba(226,232,240,0.75)';
        ctx.fillText(g.name, sx, sy - (w > 110 ? 7 : 0));
        if (w > 110) {
          ctx.font = '10px ui-monospace, monospace';
          ctx.fillStyle = 'rgba(148,163,184,0.8)';
          ctx.fillText(g.code, sx, sy + 8);
        }
      }
    },
    hit(sx, sy, f) {
      const v = f.view;
      const s = scaleOf(v.zoom);
      const x = (sx - v.width / 2) / s + v.cx;
      const y = (sy - v.height / 2) / s + v.cy;
      // Finest containing grid wins.
      for (let i = model.shapes.length - 1; i >= 0; i--) {
        const g = model.shapes[i]!;
        if (x < g.b.minX || x > g.b.maxX || y < g.b.minY || y > g.b.maxY) continue;
        let inside = false;
        for (const r of g.rings) if (pointInRing(r, x, y)) inside = !inside;
        if (inside) return { kind: 'grid', id: g.id, d: 0 };
      }
      return null;
    },
  };
}

// ---------------------------------------------------------------- points (sensors, cameras)

interface PointItem {
  id: string;
  x: number;
  y: number;
  on: boolean;
}

export function pointModel(list: ReadonlyArray<{ id: string; lat: number | null; lon: number | null; online?: boolean }>, datum: Datum): PointItem[] {
  const out: PointItem[] = [];
  for (const d of list) {
    if (d.lat == null || d.lon == null) continue;
    project(datum, d.lon, d.lat, pt);
    out.push({ id: d.id, x: pt[0], y: pt[1], on: d.online !== false });
  }
  return out;
}

/**
 * Sensors and cameras: one filled path for the online ones, one for the
 * offline ones (greyed), each symbol traced by `shape` at its screen point.
 */
function pointLayer(
  kind: 'sensor' | 'camera',
  z: number,
  items: PointItem[],
  style: { radius: (zoom: number) => number; fill: { on: string; off: string }; stroke?: string; shape: (ctx: CanvasRenderingContext2D, sx: number, sy: number, r: number) => void },
): Layer {
  return {
    id: `${kind}s`,
    z,
    kind: 'static',
    draw(ctx, f) {
      const r = style.radius(f.view.zoom);
      const pad = r + 1;
      for (const on of [true, false]) {
        ctx.beginPath();
        for (const p of items) {
          if (p.on !== on) continue;
          const [sx, sy] = worldToScreen(f.view, p.x, p.y, pt);
          if (sx < -pad || sy < -pad || sx > f.view.width + pad || sy > f.view.height + pad) continue;
          style.shape(ctx, sx, sy, r);
        }
        ctx.fillStyle = on ? style.fill.on : style.fill.off;
        ctx.fill();
        if (!style.stroke) continue;
        ctx.strokeStyle = style.stroke;
        ctx.lineWidth = 1;
        ctx.stroke();
      }
    },
    hit: (sx, sy, f) => nearest(items, sx, sy, f, kind),
  };
}

export const sensorLayer = (items: PointItem[]): Layer =>
  pointLayer('sensor', 20, items, {
    radius: (zoom) => (zoom >= 15 ? 4 : 2.5),
    fill: { on: '#5eead4', off: '#475569' },
    shape: (ctx, sx, sy, r) => ctx.rect(sx - r, sy - r, r * 2, r * 2),
  });

export const cameraLayer = (items: PointItem[]): Layer =>
  pointLayer('camera', 25, items, {
    radius: (zoom) => (zoom >= 15 ? 7 : 5),
    fill: { on: '#fbbf24', off: '#57534e' },
    stroke: '#0b1220',
    // A camera body with its lens to the right.
    shape(ctx, sx, sy, r) {
      ctx.moveTo(sx - r, sy - r * 0.6);
      ctx.lineTo(sx + r * 0.4, sy - r * 0.6);
      ctx.lineTo(sx + r, sy - r);
      ctx.lineTo(sx + r, sy + r);
      ctx.lineTo(sx + r * 0.4, sy + r * 0.6);
      ctx.lineTo(sx - r, sy + r * 0.6);
      ctx.closePath();
    },
  });

function nearest(items: readonly { id: string; x: number; y: number }[], sx: number, sy: number, f: Frame, kind: Hit['kind'], max = 10): Hit | null {
  let best: Hit | null = null;
  for (const p of items) {
    const [x, y] = worldToScreen(f.view, p.x, p.y, pt);
    const d = Math.hypot(x - sx, y - sy);
    if (d <= max && (!best || d < best.d)) best = { kind, id: p.id, d };
  }
  return best;
}

// ---------------------------------------------------------------- cases

const SEV_RANK: Record<Severity, number> = { info: 0, warning: 1, minor: 2, major: 3, critical: 4 };
/** Outer reach of a critical case's pulse ring (radius 8-24, 2 px line). */
const PULSE_R = 26;

export function caseLayer(list: readonly CaseSummary[], datum: Datum, selected: () => string | null): Layer {
  const items = list
    .filter((c) => OPEN_STATUSES.includes(c.status) && Number.isFinite(c.lat))
    .sort((a, b) => SEV_RANK[a.severity] - SEV_RANK[b.severity])
    .map((c) => {
      project(datum, c.lon, c.lat, pt);
      return { id: c.id, x: pt[0], y: pt[1], sev: c.severity, overdue: c.overdue || c.deadline < Date.now() };
    });
  const hasCritical = items.some((i) => i.sev === 'critical');
  return {
    id: 'cases',
    z: 40,
    kind: 'dynamic',
    wantsFrames: () => hasCritical,
    // Only the pulse rings of critical cases change between frames.
    damage(f) {
      const out: Rect[] = [];
      for (const c of items) {
        if (c.sev !== 'critical') continue;
        const [sx, sy] = worldToScreen(f.view, c.x, c.y, pt);
        out.push([sx - PULSE_R, sy - PULSE_R, PULSE_R * 2, PULSE_R * 2]);
      }
      return out;
    },
    draw(ctx, f) {
      const sel = selected();
      const pulse = (f.now % 1500) / 1500;
      for (const c of items) {
        const [sx, sy] = worldToScreen(f.view, c.x, c.y, pt);
        if (sx < -30 || sy < -30 || sx > f.view.width + 30 || sy > f.view.height + 30) continue;
        const col = SEVERITY_COLOR[c.sev];
        if (c.sev === 'critical') {
          ctx.beginPath();
          ctx.arc(sx, sy, 8 + pulse * 16, 0, Math.PI * 2);
          ctx.strokeStyle = `rgba(239,68,68,${(1 - pulse) * 0.8})`;
          ctx.lineWidth = 2;
          ctx.stroke();
        }
        // Diamond: cases never look like workers (circles).
        ctx.beginPath();
        ctx.moveTo(sx, sy - 9);
        ctx.lineTo(sx + 9, sy);
        ctx.lineTo(sx, sy + 9);
        ctx.lineTo(sx - 9, sy);
        ctx.closePath();
        ctx.fillStyle = col;
        ctx.fill();
        ctx.lineWidth = c.id === sel ? 3 : c.overdue ? 2 : 1;
        ctx.strokeStyle = c.id === sel ? '#f8fafc' : c.overdue ? '#fca5a5' : '#0b1220';
        ctx.stroke();
      }
    },
    hit: (sx, sy, f) => nearest(items, sx, sy, f, 'case', 12),
  };
}

// ---------------------------------------------------------------- workers

/** Sprite index of a worker status: the contract's order. */
const STATUS_ORDER = WORKER_STATUSES;
const HDG_BUCKETS = 16;
/** More changed markers than this in one frame: repaint them all. */
const MAX_WORKER_RECTS = 150;

/**
 * Marker sprites per (status, freshness, heading bucket, size), drawn once
 * with anti-aliasing and kept as ImageBitmaps. Wall PCs (and CI) often
 * rasterise canvases in software, where anti-aliasing 5,000 arcs a frame
 * costs ~100 ms but blitting 5,000 small bitmaps costs a few: measured with
 * `npm run bench:console`.
 */
class SpriteCache {
  private cache = new Map<number, ImageBitmap | HTMLCanvasElement>();
  constructor(private dpr: number) {}
  static key(status: number, fresh: number, hdg: number, r: number): number {
    return ((status * 3 + fresh) * (HDG_BUCKETS + 1) + hdg) * 100 + Math.round(r * 10);
  }
  get(key: number): ImageBitmap | HTMLCanvasElement {
    const hit = this.cache.get(key);
    if (hit) return hit;
    const rest = Math.floor(key / 100), kind = Math.floor(rest / (HDG_BUCKETS + 1));
    const c = this.draw(Math.floor(kind / 3), kind % 3, rest % (HDG_BUCKETS + 1), (key % 100) / 10);
    this.cache.set(key, c);
    // Until the bitmap is ready the canvas itself serves.
    if (typeof createImageBitmap === 'function') void createImageBitmap(c).then((bm) => this.cache.set(key, bm), () => undefined);
    return c;
  }
  private draw(status: number, fresh: number, hdg: number, r: number): HTMLCanvasElement {
    const half = Math.ceil(r + 8);
    const c = document.createElement('canvas');
    c.width = c.height = half * 2 * this.dpr;
    const g = c.getContext('2d')!;
    g.scale(this.dpr, this.dpr);
    const color = WORKER_COLOR[STATUS_ORDER[status]!];
    g.beginPath();
    g.arc(half, half, r, 0, Math.PI * 2);
    if (fresh === 2) {
      // Stale fix: hollow ring.
      g.strokeStyle = color;
      g.globalAlpha = 0.7;
      g.lineWidth = 1.5;
      g.stroke();
    } else {
      g.fillStyle = color;
      g.globalAlpha = fresh === 1 ? 0.55 : 1;
      g.fill();
      g.globalAlpha = 1;
      g.strokeStyle = '#0b1220';
      g.lineWidth = 1;
      g.stroke();
    }
    if (hdg < HDG_BUCKETS && r >= 4.5) {
      const a = (hdg * 2 * Math.PI) / HDG_BUCKETS;
      g.beginPath();
      g.moveTo(half + Math.sin(a) * r, half - Math.cos(a) * r);
      g.lineTo(half + Math.sin(a) * (r + 6), half - Math.cos(a) * (r + 6));
      g.strokeStyle = color;
      g.lineWidth = 2;
      g.globalAlpha = fresh === 2 ? 0.7 : 1;
      g.stroke();
    }
    return c;
  }
}

export const markerRadius = (zoom: number): number => (zoom >= 16 ? 6 : zoom >= 13 ? 4.5 : 3);

/**
 * Workers: one pass over the live index lays every marker out at an integer
 * device pixel with its sprite; one sprite blit per visible marker. Between
 * full repaints `damage` compares that layout with the one on screen, so a
 * frame repaints only the markers that moved a pixel or changed sprite (a
 * worker walking at ~1.5 m/s crosses a pixel about once a second at city
 * zoom), plus the selection ring.
 */
export function workerLayer(index: PositionIndex, selected: () => string | null): Layer {
  // Layout at `laidOutAt` (next) and as on screen (drawn): worker, sprite's device x and y, sprite key (-1: off screen).
  const empty = (n: number) => ({ ids: new Array<string>(n), x: new Int32Array(n), y: new Int32Array(n), key: new Int32Array(n) });
  let next = empty(0);
  let drawn = empty(0);
  let count = 0;
  let drawnCount = -1;
  let laidOutAt = -1;
  let ring: Rect | null = null;
  let drawnRing: Rect | null = null;
  let sprites: SpriteCache | null = null;
  let spriteDpr = 0;
  let dpr = 1;
  let half = 0;

  const layout = (f: Frame) => {
    const v = f.view;
    const n = index.byId.size;
    if (next.x.length < n) {
      next = empty(n * 2);
      drawn = empty(n * 2);
      drawnCount = -1;
    }
    count = n;
    const wall = Date.now();
    const s = scaleOf(v.zoom);
    const hw = v.width / 2, hh = v.height / 2;
    const r = markerRadius(v.zoom);
    half = Math.ceil(r + 8);
    let k = 0;
    for (const p of index.byId.values()) {
      index.current(p, f.now, pt);
      const sx = (pt[0] - v.cx) * s + hw;
      const sy = (pt[1] - v.cy) * s + hh;
      next.ids[k] = p.workerId;
      next.x[k] = Math.round((sx - half) * dpr);
      next.y[k] = Math.round((sy - half) * dpr);
      if (sx > -10 && sy > -10 && sx < v.width + 10 && sy < v.height + 10) {
        const age = wall - p.ts;
        const fresh = age > STALE_MS ? 2 : age > AGEING_MS ? 1 : 0;
        const hb = p.hdg == null ? HDG_BUCKETS : Math.round((p.hdg / 360) * HDG_BUCKETS) % HDG_BUCKETS;
        next.key[k] = SpriteCache.key(STATUS_ORDER.indexOf(p.status), fresh, hb, r);
      } else next.key[k] = -1;
      k++;
    }
    const sel = selected();
    const p = sel ? index.byId.get(sel) : undefined;
    ring = null;
    if (p) {
      index.current(p, f.now, pt);
      const [sx, sy] = worldToScreen(v, pt[0], pt[1], pt);
      const rr = r + 7;
      ring = [sx - rr, sy - rr, rr * 2, rr * 2];
    }
    laidOutAt = f.now;
  };

  return {
    id: 'workers',
    z: 50,
    kind: 'dynamic',
    damage(f) {
      layout(f);
      if (count !== drawnCount) return 'all';
      const out: Rect[] = [];
      const box = (half * 2) / dpr;
      for (let i = 0; i < count; i++) {
        if (next.x[i] === drawn.x[i] && next.y[i] === drawn.y[i] && next.key[i] === drawn.key[i] && next.ids[i] === drawn.ids[i]) continue;
        if (drawn.key[i]! >= 0) out.push([drawn.x[i]! / dpr, drawn.y[i]! / dpr, box, box]);
        if (next.key[i]! >= 0) out.push([next.x[i]! / dpr, next.y[i]! / dpr, box, box]);
        if (out.length > MAX_WORKER_RECTS) return 'all';
      }
      if (ring?.[0] !== drawnRing?.[0] || ring?.[1] !== drawnRing?.[1] || ring?.[2] !== drawnRing?.[2]) {
        if (drawnRing) out.push(drawnRing);
        if (ring) out.push(ring);
      }
      return out;
    },
    draw(ctx, f) {
      dpr = ctx.getTransform().a || 1;
      if (!sprites || spriteDpr !== dpr) {
        sprites = new SpriteCache(dpr);
        spriteDpr = dpr;
      }
      if (laidOutAt !== f.now || !f.clip) layout(f);
      const box = (half * 2) / dpr;
      ctx.save();
      ctx.setTransform(1, 0, 0, 1, 0, 0);
      for (let i = 0; i < count; i++) {
        const key = next.key[i]!;
        if (key < 0 || !inClip(f.clip, next.x[i]! / dpr, next.y[i]! / dpr, box, box)) continue;
        ctx.drawImage(sprites.get(key), next.x[i]!, next.y[i]!);
      }
      ctx.restore();
      [drawn, next] = [next, drawn];
      drawnCount = count;
      drawnRing = ring;
      if (!ring) return;
      const rr = ring[2] / 2 - 2;
      ctx.beginPath();
      ctx.arc(ring[0] + ring[2] / 2, ring[1] + ring[3] / 2, rr, 0, Math.PI * 2);
      ctx.strokeStyle = '#f8fafc';
      ctx.lineWidth = 2;
      ctx.stroke();
    },
    hit(sx, sy) {
      // Markers as drawn: sprite centres in CSS pixels.
      let best: Hit | null = null;
      const c = half;
      for (let i = 0; i < drawnCount; i++) {
        if (drawn.key[i]! < 0) continue;
        const d = Math.hypot(drawn.x[i]! / dpr + c - sx, drawn.y[i]! / dpr + c - sy);
        if (d <= 9 && (!best || d < best.d)) best = { kind: 'worker', id: drawn.ids[i]!, d };
      }
      return best;
    },
  };
}

// ---------------------------------------------------------------- paths (dispatch progress, track replay)

export function pathLayer(id: string, points: ReadonlyArray<{ lat: number; lon: number }>, datum: Datum, color: string, marker?: () => { lat: number; lon: number } | null): Layer {
  const world = points.map((p) => project(datum, p.lon, p.lat, [0, 0]));
  return {
    id,
    z: 45,
    kind: 'dynamic',
    draw(ctx, f) {
      if (world.length > 1) {
        ctx.beginPath();
        world.forEach(([x, y], i) => {
          const [sx, sy] = worldToScreen(f.view, x, y, pt);
          if (i === 0) ctx.moveTo(sx, sy);
          else ctx.lineTo(sx, sy);
        });
        ctx.strokeStyle = color;
        ctx.lineWidth = 3;
        ctx.lineJoin = 'round';
        ctx.setLineDash([8, 5]);
        ctx.stroke();
        ctx.setLineDash([]);
      }
      const m = marker?.();
      if (m) {
        project(datum, m.lon, m.lat, pt);
        const [sx, sy] = worldToScreen(f.view, pt[0], pt[1], pt);
        ctx.beginPath();
        ctx.arc(sx, sy, 8, 0, Math.PI * 2);
        ctx.fillStyle = color;
        ctx.fill();
        ctx.strokeStyle = '#f8fafc';
        ctx.lineWidth = 2;
        ctx.stroke();
      }
    },
  };
}

export function boundsOf(points: ReadonlyArray<{ lat: number | null; lon: number | null }>, datum: Datum): WorldBounds {
  const b = emptyBounds();
  for (const p of points) {
    if (p.lat == null || p.lon == null) continue;
    project(datum, p.lon, p.lat, pt);
    extend(b, pt[0], pt[1]);
  }
  return b;
}

export type { Camera, Device };
