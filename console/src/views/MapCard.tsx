/** The card for whatever was clicked on the map. Props only; live data read from the stores by id. */
import type { DictKey } from '../i18n/dict';
import { useI18n } from '../i18n';
import type { Hit } from '../map/engine';
import { cameras, cases, devices, grids, positions, workers } from '../store/data';
import { useEntities } from '../store/entities';
import { navigate } from '../hooks/route';
import { useTick } from '../hooks/useTick';
import { ago, clock, duration } from './format';
import { CameraPlayer } from '../video/CameraPlayer';

export function MapCard({ hit, onClose }: { hit: Hit; onClose: () => void }) {
  const { t } = useI18n();
  useTick(1000);
  useEntities(workers);
  useEntities(cases);
  return (
    <div className="map-card panel" data-testid="map-card" data-kind={hit.kind} data-id={hit.id}>
      <button type="button" className="close" onClick={onClose} aria-label={t('common.close')}>×</button>
      {hit.kind === 'worker' && <WorkerCard id={hit.id} />}
      {hit.kind === 'case' && <CaseCard id={hit.id} />}
      {hit.kind === 'sensor' && <DeviceCard id={hit.id} />}
      {hit.kind === 'camera' && <CameraCard id={hit.id} />}
      {hit.kind === 'grid' && <GridCard id={hit.id} />}
    </div>
  );
}

function WorkerCard({ id }: { id: string }) {
  const { t, locale } = useI18n();
  const w = workers.get(id);
  const p = positions.byId.get(id);
  const status = p?.status ?? w?.status ?? 'off_duty';
  return (
    <>
      <h3>{t('worker.card')} · {w?.name ?? id}</h3>
      <dl className="kv">
        <dt>{t('common.status')}</dt>
        <dd><span className={`tag ws-${status}`}>{t(`worker.status.${status}` as DictKey)}</span></dd>
        <dt>{t('worker.device')}</dt>
        <dd>{w?.deviceId ?? '—'}</dd>
        <dt>{t('worker.grids')}</dt>
        <dd>{w?.gridIds?.join(', ') || t('common.none')}</dd>
        <dt>{t('worker.lastFix')}</dt>
        <dd>{p ? `${clock(locale, p.ts)} (${ago(t, p.ts)})` : t('common.never')}</dd>
        {p?.hdg != null && (
          <>
            <dt>{t('worker.heading')}</dt>
            <dd>{Math.round(p.hdg)}°</dd>
          </>
        )}
      </dl>
      <div className="row">
        <button type="button" onClick={() => navigate(`history/track?worker=${encodeURIComponent(id)}`)}>{t('history.track')}</button>
      </div>
    </>
  );
}

function CaseCard({ id }: { id: string }) {
  const { t } = useI18n();
  const c = cases.get(id);
  if (!c) return <p>{id}</p>;
  const left = c.deadline - Date.now();
  return (
    <>
      <h3>{c.code} · {c.title}</h3>
      <dl className="kv">
        <dt>{t('case.category')}</dt>
        <dd>{c.category.name}</dd>
        <dt>{t('case.severity')}</dt>
        <dd><span className={`tag sev-${c.severity}`}>{t(`severity.${c.severity}` as DictKey)}</span></dd>
        <dt>{t('common.status')}</dt>
        <dd>{t(`case.status.${c.status}` as DictKey)}</dd>
        <dt>{t('case.deadline')}</dt>
        <dd className={left < 0 ? 'overdue' : ''}>{left < 0 ? t('case.overdue', { time: duration(t, -left) }) : t('case.remaining', { time: duration(t, left) })}</dd>
      </dl>
      <div className="row">
        <button type="button" className="primary" onClick={() => navigate(`cases/${id}`)}>{t('case.open')}</button>
      </div>
    </>
  );
}

function DeviceCard({ id }: { id: string }) {
  const { t } = useI18n();
  const d = devices.get(id);
  return (
    <>
      <h3>{t('map.sensor.card')} · {d?.name ?? id}</h3>
      <dl className="kv">
        <dt>{t('common.id')}</dt>
        <dd>{id}</dd>
        <dt>{t('common.type')}</dt>
        <dd>{d?.type}</dd>
        <dt>{t('common.status')}</dt>
        <dd>{d?.online ? t('device.online') : t('device.offline')}</dd>
        <dt>{t('device.lastSeen')}</dt>
        <dd>{ago(t, d?.lastSeen)}</dd>
        <dt>{t('common.grid')}</dt>
        <dd>{d?.gridId ?? t('common.none')}</dd>
      </dl>
      <div className="row">
        <button type="button" onClick={() => navigate(`history/sensors?device=${encodeURIComponent(id)}`)}>{t('map.showCharts')}</button>
      </div>
    </>
  );
}

function CameraCard({ id }: { id: string }) {
  const { t } = useI18n();
  const c = cameras.get(id) ?? devices.get(id);
  return (
    <>
      <h3>{t('map.camera.card')} · {c?.name ?? id}</h3>
      <CameraPlayer cameraId={id} title={c?.name} />
      <div className="row">
        <button type="button" onClick={() => navigate(`video?cams=${encodeURIComponent(id)}`)}>{t('nav.video')}</button>
      </div>
    </>
  );
}

function GridCard({ id }: { id: string }) {
  const { t } = useI18n();
  const f = grids.get().features.find((x) => String(x.properties?.id ?? x.id) === id);
  const p = f?.properties;
  return (
    <>
      <h3>{t('map.grid.card')} · {p?.name ?? id}</h3>
      <dl className="kv">
        <dt>{t('map.grid.code')}</dt>
        <dd>{String(p?.code ?? id)}</dd>
        <dt>{t('map.grid.level')}</dt>
        <dd>{['city', 'district', 'street', 'community', 'grid'].includes(String(p?.level)) ? t(`grid.level.${String(p?.level)}` as DictKey) : String(p?.level ?? '')}</dd>
        <dt>{t('map.grid.parent')}</dt>
        <dd>{p?.parentId ?? t('common.none')}</dd>
      </dl>
    </>
  );
}
