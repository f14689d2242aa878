/** Per-browser console settings (base map tiles), kept in localStorage. */
import type { TileConfig } from '../map/layers';
import { Value } from './entities';

const KEY = 'gridlink.tiles';

export const TILE_PRESETS: Record<'none' | 'osm' | 'tianditu' | 'amap', TileConfig> = {
  none: { template: '', subdomains: '', datum: 'wgs84' },
  osm: { template: 'https://tile.openstreetmap.org/{z}/{x}/{y}.png', subdomains: '', datum: 'wgs84' },
  // Tianditu is CGCS2000, equal to WGS-84 at map scale; it needs a key (tk).
  tianditu: {
    template: 'https://t{s}.tianditu.gov.cn/vec_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0&LAYER=vec&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles&TILEMATRIX={z}&TILEROW={y}&TILECOL={x}&tk=YOUR_TK',
    subdomains: '01234567',
    datum: 'wgs84',
  },
  // AMap tiles are GCJ-02: every drawn point is shifted to match them.
  amap: { template: 'https://webrd0{s}.is.autonavi.com/appmaptile?lang=zh_cn&size=1&scale=1&style=8&x={x}&y={y}&z={z}', subdomains: '1234', datum: 'gcj02' },
};

function load(): TileConfig {
  try {
    const v = JSON.parse(localStorage.getItem(KEY) ?? 'null') as Partial<TileConfig> | null;
    if (v && typeof v.template === 'string') return { template: v.template, subdomains: v.subdomains ?? '', datum: v.datum === 'gcj02' ? 'gcj02' : 'wgs84' };
  } catch {
    /* fall through to no base map */
  }
  return TILE_PRESETS.none;
}

export const tiles = new Value<TileConfig>(load());
tiles.subscribe(() => localStorage.setItem(KEY, JSON.stringify(tiles.get())));

const LL_KEY = 'gridlink.video.lowLatency';
/** Prefer fMP4 over WebSocket (sub-second) to HLS; HLS stays the fallback. */
export const lowLatency = new Value<boolean>(localStorage.getItem(LL_KEY) !== '0');
lowLatency.subscribe(() => localStorage.setItem(LL_KEY, lowLatency.get() ? '1' : '0'));
