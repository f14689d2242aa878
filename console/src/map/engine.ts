/**
 * A small canvas map: no base map needed, optional raster tiles. Layers are
 * plain objects registered by layer components (which render nothing). Static
 * layers (tiles, grids, sensors, cameras) are painted into a cached canvas
 * only when the view or their data changes; dynamic layers (workers, cases,
 * paths) are painted every frame on top while something moves. Position
 * batches are drained here, once per animation frame.
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

export interface Frame {
  view: View;
  now: number;
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
}

export class MapEngine {
  view: View = { cx: 0.8, cy: 0.4, zoom: 3, width: 800, height: 600 };
  private canvas: HTMLCanvasElement | null = null;
  private ctx: CanvasRenderingContext2D | null = null;
  private base = document.createElement('canvas');
  private layers = new Map<string, Layer>();
  private sorted: Layer[] = [];
  private staticDirty = true;
  private dynamicDirty = true;
  private raf = 0;
  private ro: ResizeObserver | null = null;
  private detachInput: (() => void) | null = null;
  private lastPositionsVersion = -1;
  private fitted = false;
  dpr = 1;
  onSelect: ((h: Hit | null, sx: number, sy: number) => void) | null = null;
  onViewChange: ((v: View) => void) | null = null;
  /** Frame statistics for the debug hook and the benchmark. */
  stats = { frames: 0, rafTicks: 0, lastDrawMs: 0, drawMsTotal: 0 };

  attach(container: HTMLElement): void {
    const canvas = document.createElement('canvas');
    canvas.className = 'map-canvas';
    canvas.setAttribute('role', 'img');
    container.appendChild(canvas);
    this.canvas = canvas;
    this.ctx = canvas.getContext('2d', { alpha: false });
    this.ro = new ResizeObserver(() => this.resize(container));
    this.ro.observe(container);
    this.resize(container);
    this.detachInput = this.bindInput(canvas);
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
    this.canvas?.remove();
    this.canvas = null;
    this.ctx = null;
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
  invalidate(kind: 'static' | 'dynamic' = 'static'): void {
    if (kind === 'static') this.staticDirty = true;
    this.dynamicDirty = true;
  }

  setView(v: Partial<View>): void {
    this.view = { ...this.view, ...v };
    this.invalidate();
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
    if (!this.canvas) return;
    const r = container.getBoundingClientRect();
    this.dpr = window.devicePixelRatio || 1;
    const w = Math.max(1, Math.round(r.width));
    const h = Math.max(1, Math.round(r.height));
    this.canvas.width = Math.round(w * this.dpr);
    this.canvas.height = Math.round(h * this.dpr);
    this.canvas.style.width = `${w}px`;
    this.canvas.style.height = `${h}px`;
    this.base.width = this.canvas.width;
    this.base.height = this.canvas.height;
    this.setView({ width: w, height: h });
  }

  private frame(): void {
    this.stats.rafTicks++;
    const ctx = this.ctx;
    if (!ctx || !this.canvas) return;
    const now = performance.now();
    batcher.drain();
    const moving = positions.version !== this.lastPositionsVersion || positions.animating(now);
    this.lastPositionsVersion = positions.version;
    const pulsing = this.sorted.some((l) => l.wantsFrames?.(now));
    if (!this.staticDirty && !this.dynamicDirty && !moving && !pulsing) return;
    const t0 = performance.now();
    const f: Frame = { view: this.view, now };
    if (this.staticDirty) {
      const b = this.base.getContext('2d', { alpha: false })!;
      b.setTransform(this.dpr, 0, 0, this.dpr, 0, 0);
      b.fillStyle = '#0b1220';
      b.fillRect(0, 0, this.view.width, this.view.height);
      for (const l of this.sorted) if (l.kind === 'static') l.draw(b, f);
      this.staticDirty = false;
    }
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.drawImage(this.base, 0, 0);
    ctx.setTransform(this.dpr, 0, 0, this.dpr, 0, 0);
    for (const l of this.sorted) if (l.kind === 'dynamic') l.draw(ctx, f);
    this.dynamicDirty = false;
    const ms = performance.now() - t0;
    this.stats.frames++;
    this.stats.lastDrawMs = ms;
    this.stats.drawMsTotal += ms;
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
