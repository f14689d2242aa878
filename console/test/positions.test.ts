import { describe, expect, it, vi } from 'vitest';
import type { PositionUpdate } from '../src/api/types';
import { GLIDE_MS, PositionBatcher, PositionIndex } from '../src/map/positions';
import { lonLatToWorld } from '../src/map/projection';

const fix = (workerId: string, lat: number, lon: number, ts: number, status: PositionUpdate['status'] = 'available'): PositionUpdate => ({ workerId, lat, lon, ts, status });

describe('PositionBatcher', () => {
  it('should hand one batch per drain with the newest fix per worker', () => {
    const sink = vi.fn();
    const b = new PositionBatcher(sink);
    b.push([fix('w1', 30, 104, 1000), fix('w2', 30, 104, 1000)]);
    b.push([fix('w1', 30.001, 104, 2000)]);
    b.push([fix('w1', 29, 104, 1500)]); // late, out of order
    expect(sink).not.toHaveBeenCalled();
    expect(b.drain()).toBe(2);
    expect(sink).toHaveBeenCalledTimes(1);
    const batch = sink.mock.calls[0]![0] as PositionUpdate[];
    expect(batch.find((p) => p.workerId === 'w1')).toMatchObject({ lat: 30.001, ts: 2000 });
    expect(b.drain()).toBe(0);
    expect(sink).toHaveBeenCalledTimes(1);
  });

  it('should drop malformed items and schedule at most one drain per burst', () => {
    vi.useFakeTimers();
    try {
      const sink = vi.fn();
      const b = new PositionBatcher(sink, (cb) => setTimeout(cb, 250));
      b.push([fix('w1', 30, 104, 1), { workerId: 'bad', lat: NaN, lon: 1, ts: 1 } as PositionUpdate, null as unknown as PositionUpdate]);
      b.push([fix('w2', 30, 104, 1)]);
      expect(b.size).toBe(2);
      vi.advanceTimersByTime(250);
      expect(sink).toHaveBeenCalledTimes(1);
      expect((sink.mock.calls[0]![0] as PositionUpdate[]).map((p) => p.workerId).sort()).toEqual(['w1', 'w2']);
    } finally {
      vi.useRealTimers();
    }
  });

  it('should absorb 5,000 workers a second into 5,000 entries, not 5,000 renders', () => {
    const sink = vi.fn();
    const b = new PositionBatcher(sink);
    for (let burst = 0; burst < 10; burst++) b.push(Array.from({ length: 500 }, (_, i) => fix(`w${burst * 500 + i}`, 30, 104, burst)));
    b.drain();
    expect(sink).toHaveBeenCalledTimes(1);
    expect((sink.mock.calls[0]![0] as unknown[]).length).toBe(5000);
  });
});

describe('PositionIndex', () => {
  it('should glide from the drawn position to the new fix over GLIDE_MS', () => {
    const idx = new PositionIndex();
    idx.apply([fix('w1', 30, 104, 1000)], 0);
    const a = lonLatToWorld(104, 30);
    const out: [number, number] = [0, 0];
    expect(idx.current(idx.byId.get('w1')!, 0, out)).toEqual(a);
    idx.apply([fix('w1', 30.01, 104, 2000)], 1000);
    const b = lonLatToWorld(104, 30.01);
    const mid = idx.current(idx.byId.get('w1')!, 1000 + GLIDE_MS / 2, out);
    expect(mid[1]).toBeCloseTo((a[1] + b[1]) / 2, 12);
    expect(idx.current(idx.byId.get('w1')!, 1000 + GLIDE_MS * 2, out)).toEqual(b);
    expect(idx.animating(1000 + GLIDE_MS / 2)).toBe(true);
    expect(idx.animating(1000 + GLIDE_MS + 1)).toBe(false);
  });

  it('should derive heading from movement and never move a worker backwards in time', () => {
    const idx = new PositionIndex();
    idx.apply([fix('w1', 30, 104, 1000)], 0);
    idx.apply([fix('w1', 30, 104.01, 2000)], 10);
    const p = idx.byId.get('w1')!;
    expect(p.hdg).toBeCloseTo(90, 1);
    idx.apply([fix('w1', 31, 105, 1500)], 20);
    expect(p.lat).toBe(30);
    expect(p.ts).toBe(2000);
  });

  it('should carry status changes and re-project on a datum change', () => {
    const idx = new PositionIndex();
    idx.apply([fix('w1', 30.67, 104.06, 1, 'available')], 0);
    idx.apply([fix('w1', 30.67, 104.06, 2, 'en_route')], 1);
    expect(idx.byId.get('w1')!.status).toBe('en_route');
    const before = idx.byId.get('w1')!.tx;
    idx.setDatum('gcj02');
    expect(idx.byId.get('w1')!.tx).not.toBe(before);
  });
});
