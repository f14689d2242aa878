/** The situation map: grids, workers, sensors, cameras, open cases; click anything for its card. */
import { useCallback, useEffect, useMemo, useState } from 'react';
import { OPEN_STATUSES, WORKER_STATUSES, type GridFeature } from '../api/types';
import { useI18n } from '../i18n';
import type { Hit } from '../map/engine';
import { boundsOf } from '../map/layers';
import { CasesLayer, GridLayer, PathLayer, PointsLayer, WorkersLayer } from '../map/MapLayers';
import { MapView, useMap } from '../map/MapView';
import { SEVERITY_COLOR, WORKER_COLOR } from '../map/style';
import { alarms, cameraState, cameras, cases, devices, grids, myDepartments, positions } from '../store/data';
import { session } from '../store/session';
import { navigate } from '../hooks/route';
import type { CaseSummary } from '../api/types';
import { useEntities, useValue } from '../store/entities';
import { tiles } from '../store/settings';
import { MapCard } from '../views/MapCard';
import { AlarmList } from '../views/AlarmList';
import { CaseList } from '../views/CaseList';
import { NewCaseForm } from '../views/NewCaseForm';

export function MapPage() {
  const { t } = useI18n();
  const g = useValue(grids);
  const devs = useEntities(devices);
  const cams = useEntities(cameras);
  const cs = useEntities(cases);
  const al = useEntities(alarms);
  const [sel, setSel] = useState<Hit | null>(null);
  const [show, setShow] = useState({ grids: true, labels: true, workers: true, sensors: true, cameras: true, cases: true });
  // 地图上报: officers and dispatchers (not department users) pick a point, then fill the form.
  const role = useValue(session)?.user.role;
  const depts = useValue(myDepartments);
  const canReport = (role === 'officer' || role === 'dispatcher' || role === 'admin') && !depts.length;
  const [placing, setPlacing] = useState(false);
  const [pick, setPick] = useState<{ lat: number; lon: number } | null>(null);
  const [created, setCreated] = useState<CaseSummary | null>(null);
  useEffect(() => {
    if (!placing) return;
    const esc = (e: KeyboardEvent) => e.key === 'Escape' && setPlacing(false);
    window.addEventListener('keydown', esc);
    return () => window.removeEventListener('keydown', esc);
  }, [placing]);
  const pickMarker = useCallback(() => pick, [pick]);
  const pickPoints = useMemo(() => (pick ? [pick] : []), [pick]);

  const sensors = useMemo(() => devs.filter((d) => d.type.startsWith('sensor.')), [devs]);
  // Cameras come from the camera registry when it exists, else from camera devices.
  // The marker greys out when the camera is offline by its RTSP health (camera.state), not only by its MQTT connection.
  const camItems = useMemo(() => (cams.length ? cams.map((c) => ({ ...c, online: cameraState(c) !== 'offline' })) : devs.filter((d) => d.type === 'camera')), [cams, devs]);
  const open = useMemo(() => cs.filter((c) => OPEN_STATUSES.includes(c.status)), [cs]);
  const activeAlarms = useMemo(() => al.filter((a) => a.status === 'active').sort((a, b) => b.ts - a.ts), [al]);
  const onSelect = useCallback((h: Hit | null, at: { lat: number; lon: number }) => {
    if (placing) {
      setPlacing(false);
      setSel(null);
      setCreated(null);
      setPick(at);
    } else setSel(h);
  }, [placing]);
  const toggle = (k: keyof typeof show) => setShow((s) => ({ ...s, [k]: !s[k] }));

  return (
    <div className={`map-page ${placing ? 'placing' : ''}`} data-placing={placing ? '1' : '0'}>
      <MapView onSelect={onSelect}>
        {show.grids && <GridLayer data={g} labels={show.labels} selected={sel?.kind === 'grid' ? sel.id : null} />}
        {show.sensors && <PointsLayer kind="sensor" items={sensors} />}
        {show.cameras && <PointsLayer kind="camera" items={camItems} />}
        {show.cases && <CasesLayer items={open} selected={sel?.kind === 'case' ? sel.id : null} />}
        {show.workers && <WorkersLayer selected={sel?.kind === 'worker' ? sel.id : null} />}
        {pick && <PathLayer id="new-case-point" points={pickPoints} color="#38bdf8" marker={pickMarker} />}
        <FitWhenNoGrids features={g.features} points={[...devs, ...open]} />
      </MapView>
      <div className="map-legend panel" data-testid="map-legend">
        {canReport && (
          <button type="button" className={placing ? 'primary' : ''} onClick={() => { setPlacing((x) => !x); setPick(null); }} data-testid="new-case-start" aria-pressed={placing}>
            {t('newCase.start')}
          </button>
        )}
        <h3>{t('map.layers')}</h3>
        {(['grids', 'labels', 'workers', 'sensors', 'cameras', 'cases'] as const).map((k) => (
          <label key={k} className="check">
            <input type="checkbox" checked={show[k]} onChange={() => toggle(k)} /> {t(`map.layer.${k}`)}
          </label>
        ))}
        <h3>{t('map.legend')}</h3>
        <WorkerCounts />
        <ul className="legend">
          {(['critical', 'major', 'minor'] as const).map((s) => (
            <li key={s}>
              <span className="swatch diamond" style={{ background: SEVERITY_COLOR[s] }} /> {t(`severity.${s}`)}
            </li>
          ))}
        </ul>
      </div>
      {placing && <div className="map-hint" data-testid="new-case-picking">{t('newCase.picking')}</div>}
      {sel && !pick && <MapCard hit={sel} onClose={() => setSel(null)} />}
      {pick && (
        <NewCaseForm
          at={pick}
          onClose={() => setPick(null)}
          onCreated={(c) => {
            setPick(null);
            setCreated(c);
          }}
        />
      )}
      {created && (
        <div className="map-hint done" data-testid="new-case-created" data-case-id={created.id}>
          {t('newCase.created', { code: created.code })}
          <button type="button" onClick={() => navigate(`cases/${created.id}`)}>{t('newCase.open')}</button>
          <button type="button" className="ghost" onClick={() => setCreated(null)} aria-label={t('common.close')}>×</button>
        </div>
      )}
      <aside className="side panel">
        <section>
          <h3>{t('alarm.count', { n: activeAlarms.length })}</h3>
          <AlarmList items={activeAlarms.slice(0, 30)} compact />
        </section>
        <section>
          <h3>{t('case.openCount', { n: open.length })}</h3>
          <CaseList items={open} compact />
        </section>
      </aside>
    </div>
  );
}

/** Without grids, fit the map to whatever has a position. */
function FitWhenNoGrids({ features, points }: { features: GridFeature[]; points: ReadonlyArray<{ lat: number | null; lon: number | null }> }) {
  const engine = useMap();
  const { datum } = useValue(tiles);
  useEffect(() => {
    if (features.length) return;
    const all = [...points, ...[...positions.byId.values()]];
    if (all.length) engine.fit(boundsOf(all, datum));
  }, [engine, features.length, points, datum]);
  return null;
}

function WorkerCounts() {
  const { t } = useI18n();
  const [counts, setCounts] = useState<Record<string, number>>({});
  // Counted at 1 Hz from the live index, never per position burst.
  useEffect(() => {
    const count = () => {
      const c: Record<string, number> = {};
      for (const p of positions.byId.values()) c[p.status] = (c[p.status] ?? 0) + 1;
      setCounts(c);
    };
    count();
    const iv = setInterval(count, 1000);
    return () => clearInterval(iv);
  }, []);
  return (
    <ul className="legend" data-testid="worker-counts">
      {WORKER_STATUSES.map((s) => (
        <li key={s}>
          <span className="swatch dot" style={{ background: WORKER_COLOR[s] }} /> {t(`worker.status.${s}`)} <b>{counts[s] ?? 0}</b>
        </li>
      ))}
    </ul>
  );
}
