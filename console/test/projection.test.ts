import { describe, expect, it } from 'vitest';
import { bearingDeg as bearing, haversineM } from '@gridlink/devices/geo';
import { emptyBounds, extend, fitBounds, lonLatToWorld, pan, project, screenToWorld, tileUrl, toDisplay, visibleTiles, worldToLonLat, worldToScreen, zoomAround, type View } from '../src/map/projection';

describe('projection', () => {
  it('should map WGS-84 to Web Mercator world units and back', () => {
    expect(lonLatToWorld(0, 0)).toEqual([0.5, 0.5]);
    const [x, y] = lonLatToWorld(104.06, 30.67);
    expect(x).toBeCloseTo((104.06 + 180) / 360, 12);
    expect(y).toBeLessThan(0.5);
    const [lon, lat] = worldToLonLat(x, y);
    expect(lon).toBeCloseTo(104.06, 9);
    expect(lat).toBeCloseTo(30.67, 9);
  });

  it('should put the view centre in the middle of the screen and invert exactly', () => {
    const v: View = { cx: 0.8, cy: 0.4, zoom: 15, width: 1920, height: 1080 };
    expect(worldToScreen(v, 0.8, 0.4)).toEqual([960, 540]);
    const [wx, wy] = screenToWorld(v, 100, 200);
    const [sx, sy] = worldToScreen(v, wx, wy);
    expect(sx).toBeCloseTo(100, 6);
    expect(sy).toBeCloseTo(200, 6);
  });

  it('should scale 256 px per tile at zoom 0 and double per level', () => {
    const v0: View = { cx: 0.5, cy: 0.5, zoom: 0, width: 256, height: 256 };
    expect(worldToScreen(v0, 0, 0)).toEqual([0, 0]);
    expect(worldToScreen({ ...v0, zoom: 1 }, 1, 1)).toEqual([384, 384]);
  });

  it('should keep the point under the cursor fixed when zooming', () => {
    const v: View = { cx: 0.8, cy: 0.4, zoom: 14, width: 1366, height: 768 };
    const before = screenToWorld(v, 300, 600);
    const z = zoomAround(v, 300, 600, 1.5);
    const after = screenToWorld(z, 300, 600);
    expect(z.zoom).toBe(15.5);
    expect(after[0]).toBeCloseTo(before[0], 12);
    expect(after[1]).toBeCloseTo(before[1], 12);
  });

  it('should pan by screen pixels', () => {
    const v: View = { cx: 0.8, cy: 0.4, zoom: 10, width: 800, height: 600 };
    const p = pan(v, 100, -50);
    const [sx, sy] = worldToScreen(p, 0.8, 0.4);
    expect(sx).toBeCloseTo(500, 6);
    expect(sy).toBeCloseTo(250, 6);
  });

  it('should fit bounds inside the viewport with padding', () => {
    const b = emptyBounds();
    const a = lonLatToWorld(104.0, 30.6);
    const c = lonLatToWorld(104.1, 30.7);
    extend(b, a[0], a[1]);
    extend(b, c[0], c[1]);
    const v = fitBounds(b, 1000, 800, 40);
    const [x0, y0] = worldToScreen(v, b.minX, b.minY);
    const [x1, y1] = worldToScreen(v, b.maxX, b.maxY);
    expect(Math.min(x0, y0)).toBeGreaterThanOrEqual(39.9);
    expect(x1).toBeLessThanOrEqual(960.1);
    expect(y1).toBeLessThanOrEqual(760.1);
    // Tight on the limiting axis.
    expect(Math.max(x1 - x0 - 920, y1 - y0 - 720)).toBeCloseTo(0, 3);
  });

  it('should shift points to GCJ-02 for display only, by a few hundred metres in China', () => {
    const [lon, lat] = toDisplay('gcj02', 104.06, 30.67);
    const d = haversineM(30.67, 104.06, lat, lon);
    expect(d).toBeGreaterThan(100);
    expect(d).toBeLessThan(800);
    expect(toDisplay('wgs84', 104.06, 30.67)).toEqual([104.06, 30.67]);
    expect(project('gcj02', 104.06, 30.67)).toEqual(lonLatToWorld(lon, lat));
  });

  it('should list the tiles covering the view and fill URL templates', () => {
    const v: View = { cx: 0.5, cy: 0.5, zoom: 2, width: 512, height: 512 };
    const tiles = visibleTiles(v);
    expect(tiles.length).toBe(4);
    expect(tiles.every((t) => t.z === 2 && t.size === 256)).toBe(true);
    expect(tileUrl('https://t{s}.x/{z}/{x}/{y}.png', { z: 3, x: 5, y: 2 }, '01234567')).toBe('https://t7.x/3/5/2.png');
    expect(tileUrl('/tms/{z}/{x}/{-y}', { z: 2, x: 1, y: 0 })).toBe('/tms/2/1/3');
    expect(tileUrl('?TILEMATRIX={z}&TILEROW={y}&TILECOL={x}', { z: 9, x: 400, y: 200 })).toBe('?TILEMATRIX=9&TILEROW=200&TILECOL=400');
  });

  it('should give compass bearings and great-circle distances', () => {
    expect(bearing(30, 104, 30.01, 104)).toBeCloseTo(0, 6);
    expect(bearing(30, 104, 30, 104.01)).toBeCloseTo(90, 1);
    expect(bearing(30, 104, 29.99, 104)).toBeCloseTo(180, 6);
    expect(haversineM(30, 104, 30.001, 104)).toBeCloseTo(111.2, 0);
  });
});
