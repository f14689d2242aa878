/** Layer components: each renders nothing and keeps one engine layer in sync with its props. */
import { useEffect } from 'react';
import type { CaseSummary, GridCollection } from '../api/types';
import { useValue } from '../store/entities';
import { positions } from '../store/data';
import { tiles } from '../store/settings';
import type { Layer } from './engine';
import { boundsOf, buildGridModel, cameraLayer, caseLayer, gridLayer, pathLayer, pointModel, sensorLayer, workerLayer } from './layers';
import { useMap } from './MapView';

function useLayer(make: () => Layer | null, deps: unknown[]): void {
  const engine = useMap();
  useEffect(() => {
    const l = make();
    if (!l) return;
    engine.setLayer(l);
    return () => engine.removeLayer(l.id);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [engine, ...deps]);
}

export function GridLayer({ data, labels = true, selected = null, fit = true }: { data: GridCollection; labels?: boolean; selected?: string | null; fit?: boolean }) {
  const engine = useMap();
  const { datum } = useValue(tiles);
  useLayer(() => {
    const model = buildGridModel(data.features, datum);
    if (fit) engine.fit(model.bounds);
    return gridLayer(model, { labels, selected: () => selected });
  }, [data, datum, labels, selected]);
  return null;
}

export function WorkersLayer({ selected = null }: { selected?: string | null }) {
  useLayer(() => workerLayer(positions, () => selected), [selected]);
  return null;
}

export function PointsLayer({ kind, items }: { kind: 'sensor' | 'camera'; items: ReadonlyArray<{ id: string; lat: number | null; lon: number | null; online?: boolean }> }) {
  const { datum } = useValue(tiles);
  useLayer(() => (kind === 'sensor' ? sensorLayer(pointModel(items, datum)) : cameraLayer(pointModel(items, datum))), [items, datum, kind]);
  return null;
}

export function CasesLayer({ items, selected = null }: { items: readonly CaseSummary[]; selected?: string | null }) {
  const { datum } = useValue(tiles);
  useLayer(() => caseLayer(items, datum, () => selected), [items, datum, selected]);
  return null;
}

export function PathLayer({ id, points, color, marker, fit }: { id: string; points: ReadonlyArray<{ lat: number; lon: number }>; color: string; marker?: () => { lat: number; lon: number } | null; fit?: boolean }) {
  const engine = useMap();
  const { datum } = useValue(tiles);
  useLayer(() => {
    if (fit && points.length) engine.fit(boundsOf(points, datum), true);
    return pathLayer(id, points, datum, color, marker);
  }, [id, points, datum, color, marker]);
  return null;
}

/** Centres the map on a point once (e.g. the case being dispatched). */
export function FocusPoint({ lat, lon, zoom = 16 }: { lat: number; lon: number; zoom?: number }) {
  const engine = useMap();
  const { datum } = useValue(tiles);
  useEffect(() => {
    const b = boundsOf([{ lat, lon }], datum);
    engine.setView({ cx: b.minX, cy: b.minY, zoom });
  }, [engine, lat, lon, zoom, datum]);
  return null;
}
