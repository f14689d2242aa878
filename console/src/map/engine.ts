/**
 * A small canvas map: no base map needed, optional raster tiles. Layers are
 * plain objects registered by layer components (which render nothing).
 *
 * Two stacked canvases: the opaque base canvas holds the static layers
 * (tiles, grids, labels, sensors, cameras) and is repainted only when the
 * view or their data changes; the transparent canvas above it holds the
 * dynamic layers (workers, cases, paths) and is cleared and repainted each
 * frame while something moves or pulses. A frame therefore never copies the
 * 1920×1080 base (8 MB) again: the compositor keeps it. Position batches are
 * drained here, once per animation frame.
 */
import { batcher, positions } from '../store/data';
import { fitBounds, pan, screenToWorld, worldToLonLat, zoomAround, type View, type WorldBounds } from './projection';

export type HitKind = 'worker' | 'case' | 'camera' | 'sensor' | 'grid';
export interface Hit {
  kind: HitKind;
  id: string;
  /** Distance in pixels (0 for areas). */
  d: number;
}

/** A screen rectangle in CSS pixels: x, y, width, height. */
export type Rect = readonly [number, number, number, number];

export interface Frame {
  view: View;
  now: number;
  /**
   * Set on a partial repaint of the dynamic canvas: only these rectangles
   * were cleared (and the canvas is clipped to them), so a layer may skip
   * whatever lies outside them.
   */
  clip?: readonly Rect[];
}

export interface Layer {
  id: string;
  /** Paint order; lower first. */
  z: number;
  kind: 'static' | 'dynamic';
  draw(ctx: CanvasRenderingContext2D, f: Frame): void;
  hit?(sx: number, sy: number, f: Frame): Hit | null;
  /** Dynamic layers that animate on their own (pulses) ask for frames. */
  wantsFrames?(now: number): boolean;
  /**
   * Dynamic layers: where the picture would change if drawn at `f` rather
   * than as last drawn (old and new places), `[]` for nowhere. Without it a
   * layer counts as changed everywhere. Not asked after a view or data
   * change: those repaint the whole canvas.
   */
  damage?(f: Frame): Rect[] | 'all';
}

/** More damaged rectangles than this repaint the whole dynamic canvas. */
const MAX_DAMAGE_RECTS = 160;

export class MapEngine {
  view: View = { cx: 0.8, cy: 0.4, zoom: 3, width: 800, height: 600 };
  /** Static layers; repainted on pan, zoom and data change. */
  private base: Surface | null = null;
  /** Dynamic layers; on top, receives the pointer. */
  private top: Surface | null = null;
  private layers = new Map<string, Layer>();
  private sorted: Layer[] = [];
  private staticDirty = true;
  private dynamicDirty = true;
  private raf = 0;
  private ro: ResizeObserver | null = null;
  private detachInput: (() => void) | null = null;
  private lastPositionsVersion = -1;
  private wasAnimating = false;
  private fitted = false;
  dpr = 1;
  onSelect: ((h: Hit | null, sx: number, sy: number) => void) | null = null;
  onViewChange: ((v: View) => void) | null = null;
  /** Frame statistics for the debug hook and the benchmark. */
  stats = { frames: 0, partialFrames: 0, unchangedFrames: 0, rafTicks: 0, lastDrawMs: 0, drawMsTotal: 0 };

  attach(container: HTMLElement): void {
    this.base = surface(container, 'map-canvas map-base', false);
    this.top = surface(container, 'map-canvas map-top', true);
    this.top.canvas.setAttribute('role', 'img');
    this.ro = new ResizeObserver(() => this.resize(container));
    this.ro.observe(container);
    this.resize(container);
    this.detachInput = this.bindInput(this.top.canvas);
    const tick = () => {
      this.raf = requestAnimationFrame(tick);
      this.frame();
    };
    this.raf = requestAnimationFrame(tick);
  }

  detach(): void {
    cancelAnimationFrame(this.raf);
    this.ro?.disconnect();
    this.detachInput?.();
    this.base?.canvas.remove();
    this.top?.canvas.remove();
    this.base = this.top = null;
  }

  setLayer(l: Layer): void {
    this.layers.set(l.id, l);
    this.sorted = [...this.layers.values()].sort((a, b) => a.z - b.z);
    this.invalidate(l.kind);
  }
  removeLayer(id: string): void {
    const l = this.layers.get(id);
    if (!l) return;
    this.layers.delete(id);
    this.sorted = this.sorted.filter((x) => x.id !== id);
    this.invalidate(l.kind);
  }
  /** Marks one canvas for repainting on the next frame. */
  invalidate(kind: 'static' | 'dynamic' = 'static'): void {
    if (kind === 'static') this.staticDirty = true;
    else this.dynamicDirty = true;
  }

  setView(v: Partial<View>): void {
    this.view = { ...this.view, ...v };
    this.staticDirty = this.dynamicDirty = true;
    this.onViewChange?.(this.view);
  }

  /** Fits the bounds once (first data), or again when `force`. */
  fit(b: WorldBounds, force = false): void {
    if (this.fitted && !force) return;
    if (!Number.isFinite(b.minX)) return;
    this.fitted = true;
    const v = fitBounds(b, this.view.width, this.view.height, 40);
    this.setView({ cx: v.cx, cy: v.cy, zoom: v.zoom });
  }

  zoomBy(dz: number): void {
    this.setView(zoomAround(this.view, this.view.width / 2, this.view.height / 2, dz));
  }

  hitTest(sx: number, sy: number): Hit | null {
    const f: Frame = { view: this.view, now: performance.now() };
    let best: Hit | null = null;
    // Top-most layer first; points beat areas.
    for (let i = this.sorted.length - 1; i >= 0; i--) {
      const h = this.sorted[i]!.hit?.(sx, sy, f);
      if (h && (!best || (best.kind === 'grid' && h.kind !== 'grid') || (h.kind !== 'grid' && h.d < best.d))) best = h;
    }
    return best;
  }

  private resize(container: HTMLElement): void {
    if (!this.base || !this.top) return;
    const r = container.getBoundingClientRect();
    this.dpr = window.devicePixelRatio || 1;
    const w = Math.max(1, Math.round(r.width));
    const h = Math.max(1, Math.round(r.height));
    for (const { canvas } of [this.base, this.top]) {
      canvas.width = Math.round(w * this.dpr);
      canvas.height = Math.round(h * this.dpr);
      canvas.style.width = `${w}px`;
      canvas.style.height = `${h}px`;
    }
    this.setView({ width: w, height: h });
  }

  private frame(): void {
    this.stats.rafTicks++;
    if (!this.base || !this.top) return;
    const now = performance.now();
    batcher.drain();
    // One frame past the end of the glides too, so markers come to rest exactly on their fix.
    const animating = positions.animating(now);
    const moving = positions.version !== this.lastPositionsVersion || animating || this.wasAnimating;
    this.wasAnimating = animating;
    this.lastPositionsVersion = positions.version;
    const pulsing = this.sorted.some((l) => l.wantsFrames?.(now));
    if (!this.staticDirty && !this.dynamicDirty && !moving && !pulsing) return;
    const t0 = performance.now();
    const f: Frame = { view: this.view, now };
    const paintedStatic = this.staticDirty;
    if (this.staticDirty) {
      const b = this.base.ctx;
      b.setTransform(this.dpr, 0, 0, this.dpr, 0, 0);
      b.fillStyle = '#0b1220';
      b.fillRect(0, 0, this.view.width, this.view.height);
      for (const l of this.sorted) if (l.kind === 'static') l.draw(b, f);
      this.staticDirty = false;
    }
    const dynamic = this.paintDynamic(f);
    if (dynamic === 'none' && !paintedStatic) {
      this.stats.unchangedFrames++;
      return;
    }
    if (dynamic === 'partial') this.stats.partialFrames++;
    const ms = performance.now() - t0;
    this.stats.frames++;
    this.stats.lastDrawMs = ms;
    this.stats.drawMsTotal += ms;
  }

  /**
   * Repaints the dynamic canvas: all of it after a view or data change,
   * otherwise only the rectangles the layers report as changed (clipped, so
   * the result equals a full repaint), or nothing when nothing on screen
   * changed: 5,000 workers gliding a fraction of a pixel mostly stay put.
   */
  private paintDynamic(f: Frame): 'full' | 'partial' | 'none' {
    const { canvas, ctx } = this.top!;
    const dynamicLayers = this.sorted.filter((l) => l.kind === 'dynamic');
    let rects: Rect[] | 'all' = 'all';
    if (!this.dynamicDirty) {
      rects = [];
      for (const l of dynamicLayers) {
        const d = l.damage ? l.damage(f) : 'all';
        if (d === 'all' || rects.length + d.length > MAX_DAMAGE_RECTS) {
          rects = 'all';
          break;
        }
        rects.push(...d);
      }
      if (rects !== 'all' && !rects.length) return 'none';
    }
    this.dynamicDirty = false;
    ctx.save();
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    if (rects !== 'all') {
      // Whole device pixels, so the clip has no anti-aliased edge.
      ctx.beginPath();
      for (const [x, y, w, h] of rects) {
        const x0 = Math.floor(x * this.dpr), y0 = Math.floor(y * this.dpr);
        ctx.rect(x0, y0, Math.ceil((x + w) * this.dpr) - x0, Math.ceil((y + h) * this.dpr) - y0);
      }
      ctx.clip();
    }
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    ctx.setTransform(this.dpr, 0, 0, this.dpr, 0, 0);
    const lf = rects === 'all' ? f : { ...f, clip: rects };
    for (const l of dynamicLayers) l.draw(ctx, lf);
    ctx.restore();
    return rects === 'all' ? 'full' : 'partial';
  }

  private bindInput(c: HTMLCanvasElement): () => void {
    let drag: { x: number; y: number; moved: boolean; id: number } | null = null;
    const local = (e: MouseEvent) => {
      const r = c.getBoundingClientRect();
      return [e.clientX - r.left, e.clientY - r.top] as const;
    };
    const down = (e: PointerEvent) => {
      drag = { x: e.clientX, y: e.clientY, moved: false, id: e.pointerId };
      c.setPointerCapture(e.pointerId);
    };
    const move = (e: PointerEvent) => {
      if (!drag) {
        const [sx, sy] = local(e);
        c.style.cursor = this.hitTest(sx, sy)?.kind && this.hitTest(sx, sy)!.kind !== 'grid' ? 'pointer' : 'grab';
        return;
      }
      const dx = e.clientX - drag.x;
      const dy = e.clientY - drag.y;
      if (!drag.moved && Math.abs(dx) + Math.abs(dy) < 4) return;
      drag.moved = true;
      drag.x = e.clientX;
      drag.y = e.clientY;
      this.setView(pan(this.view, dx, dy));
    };
    const up = (e: PointerEvent) => {
      const d = drag;
      drag = null;
      if (c.hasPointerCapture(e.pointerId)) c.releasePointerCapture(e.pointerId);
      if (d && !d.moved) {
        const [sx, sy] = local(e);
        this.onSelect?.(this.hitTest(sx, sy), sx, sy);
      }
    };
    const wheel = (e: WheelEvent) => {
      e.preventDefault();
      const [sx, sy] = local(e);
      const dz = Math.max(-1, Math.min(1, -e.deltaY / 300));
      this.setView(zoomAround(this.view, sx, sy, dz));
    };
    c.addEventListener('pointerdown', down);
    c.addEventListener('pointermove', move);
    c.addEventListener('pointerup', up);
    c.addEventListener('wheel', wheel, { passive: false });
    return () => {
      c.removeEventListener('pointerdown', down);
      c.removeEventListener('pointermove', move);
      c.removeEventListener('pointerup', up);
      c.removeEventListener('wheel', wheel);
    };
  }

  screenToLonLat(sx: number, sy: number): [number, number] {
    const [wx, wy] = screenToWorld(this.view, sx, sy);
    return worldToLonLat(wx, wy);
  }
}

interface Surface {
  canvas: HTMLCanvasElement;
  ctx: CanvasRenderingContext2D;
}

/** Appends a canvas below the container's overlays (controls, badge), which come after it. */
function surface(container: HTMLElement, className: string, alpha: boolean): Surface {
  const canvas = document.createElement('canvas');
  canvas.className = className;
  container.insertBefore(canvas, container.querySelector(':scope > :not(canvas)'));
  return { canvas, ctx: canvas.getContext('2d', { alpha })! };
}

/** True when the box (CSS pixels) meets one of the clip rectangles, or there is no clip. */
export function inClip(clip: readonly Rect[] | undefined, x: number, y: number, w: number, h: number): boolean {
  if (!clip) return true;
  for (const r of clip) if (x < r[0] + r[2] && r[0] < x + w && y < r[1] + r[3] && r[1] < y + h) return true;
  return false;
}
