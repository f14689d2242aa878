/**
 * <MapView> owns one MapEngine; its children are layer components that
 * render nothing and push layers into the engine (traccar-web MainMap style).
 */
import { createContext, useContext, useEffect, useMemo, useRef, useState, type ReactNode } from 'react';
import { useI18n } from '../i18n';
import { useValue } from '../store/entities';
import { grids, positions, batcher } from '../store/data';
import { tiles } from '../store/settings';
import { MapEngine, type Hit } from './engine';
import { buildGridModel, tileLayer } from './layers';
import { fromDisplay, worldToScreen } from './projection';

const Ctx = createContext<MapEngine | null>(null);
export const useMap = (): MapEngine => {
  const e = useContext(Ctx);
  if (!e) throw new Error('map layer outside <MapView>');
  return e;
};

declare global {
  interface Window {
    __gridlink?: Record<string, unknown>;
  }
}

/** Test and benchmark hook: where things are drawn, frame stats, direct feed of position bursts. */
function exposeDebug(engine: MapEngine): void {
  const tmp: [number, number] = [0, 0];
  window.__gridlink = {
    ...(window.__gridlink ?? {}),
    engine,
    stats: () => ({ ...engine.stats, workers: positions.byId.size, received: batcher.received }),
    ingestPositions: (list: unknown[]) => batcher.push(list as never[]),
    workerScreen: (id: string) => {
      const p = positions.byId.get(id);
      if (!p) return null;
      positions.current(p, performance.now(), tmp);
      const [x, y] = worldToScreen(engine.view, tmp[0], tmp[1], tmp);
      return { x, y, lat: p.lat, lon: p.lon, status: p.status };
    },
    view: () => ({ ...engine.view }),
  };
}

export function MapView({ children, onSelect, className }: { children?: ReactNode; onSelect?: (h: Hit | null, at: { lat: number; lon: number }) => void; className?: string }) {
  const ref = useRef<HTMLDivElement>(null);
  const engine = useMemo(() => new MapEngine(), []);
  const [ready, setReady] = useState(false);
  const { t } = useI18n();
  const tileCfg = useValue(tiles);

  useEffect(() => {
    engine.attach(ref.current!);
    exposeDebug(engine);
    setReady(true);
    return () => engine.detach();
  }, [engine]);

  useEffect(() => {
    // `at`: the clicked point in WGS-84, whatever the base map's datum.
    engine.onSelect = (h, sx, sy) => {
      const [lon, lat] = engine.screenToLonLat(sx, sy);
      const [wl, wa] = fromDisplay(tiles.get().datum, lon, lat);
      onSelect?.(h, { lat: wa, lon: wl });
    };
  }, [engine, onSelect]);

  useEffect(() => {
    positions.setDatum(tileCfg.datum);
    engine.setLayer(tileLayer(tileCfg, () => engine.invalidate()));
  }, [engine, tileCfg]);

  return (
    <div className={`map ${className ?? ''}`} ref={ref} data-testid="map" aria-label={t('map.title')}>
      {ready && <Ctx.Provider value={engine}>{children}</Ctx.Provider>}
      <div className="map-controls">
        <button type="button" title={t('map.zoomIn')} aria-label={t('map.zoomIn')} onClick={() => engine.zoomBy(1)}>+</button>
        <button type="button" title={t('map.zoomOut')} aria-label={t('map.zoomOut')} onClick={() => engine.zoomBy(-1)}>−</button>
        <button type="button" title={t('map.fit')} onClick={() => engine.fit(buildGridModel(grids.get().features, tileCfg.datum).bounds, true)}>{t('map.fit')}</button>
      </div>
      {!tileCfg.template && <div className="map-badge">{t('map.noBase')}</div>}
    </div>
  );
}
