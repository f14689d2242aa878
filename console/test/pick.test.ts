/**
 * 地图上报 sends the clicked point in WGS-84: with a GCJ-02 base map the
 * screen point is shifted back (fromDisplay inverts toDisplay to well under
 * a metre); with a WGS-84 one it is unchanged.
 */
import { describe, expect, it } from 'vitest';
import { fromDisplay, toDisplay } from '../src/map/projection';

describe('fromDisplay', () => {
  it('should invert the GCJ-02 shift to under a metre and leave WGS-84 alone', () => {
    for (const [lon, lat] of [[104.06, 30.66], [116.397, 39.909], [121.47, 31.23], [113.26, 23.13]] as const) {
      const [dl, da] = toDisplay('gcj02', lon, lat);
      expect(Math.hypot(dl - lon, da - lat)).toBeGreaterThan(0.001); // the shift is hundreds of metres
      const [wl, wa] = fromDisplay('gcj02', dl, da);
      expect(Math.abs(wl - lon) * 96_000).toBeLessThan(1);
      expect(Math.abs(wa - lat) * 111_000).toBeLessThan(1);
      expect(fromDisplay('wgs84', lon, lat)).toEqual([lon, lat]);
    }
  });
});
