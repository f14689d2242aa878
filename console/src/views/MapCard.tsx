/** The card for whatever was clicked on the map. Props only; live data read from the stores by id. */
import { Fragment, type ReactNode } from 'react';
import type { DictKey } from '../i18n/dict';
import { useI18n } from '../i18n';
import type { Hit } from '../map/engine';
import { cameras, cases, devices, grids, positions, workers } from '../store/data';
import { useEntities } from '../store/entities';
import { navigate } from '../hooks/route';
import { useTick } from '../hooks/useTick';
import { ago, clock, duration, gridLevel } from './format';
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

type Row = [label: string, value: ReactNode, className?: string];

/** The card's facts as label/value rows; `false` rows are left out. */
function Facts({ rows }: { rows: Array<Row | false> }) {
  return (
    <dl className="kv">
      {rows.filter((r): r is Row => !!r).map(([label, value, className]) => (
        <Fragment key={label}>
          <dt>{label}</dt>
          <dd className={className}>{value}</dd>
        </Fragment>
      ))}
    </dl>
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
      <Facts
        rows={[
          [t('common.status'), <span className={`tag ws-${status}`}>{t(`worker.status.${status}` as DictKey)}</span>],
          [t('worker.device'), w?.deviceId ?? '—'],
          [t('worker.grids'), w?.gridIds?.join(', ') || t('common.none')],
          [t('worker.lastFix'), p ? `${clock(locale, p.ts)} (${ago(t, p.ts)})` : t('common.never')],
          p?.hdg != null && [t('worker.heading'), `${Math.round(p.hdg)}°`],
        ]}
      />
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
      <Facts
        rows={[
          [t('case.category'), c.category.name],
          [t('case.severity'), <span className={`tag sev-${c.severity}`}>{t(`severity.${c.severity}` as DictKey)}</span>],
          [t('common.status'), t(`case.status.${c.status}` as DictKey)],
          left < 0
            ? [t('case.deadline'), t('case.overdue', { time: duration(t, -left) }), 'overdue']
            : [t('case.deadline'), t('case.remaining', { time: duration(t, left) })],
        ]}
      />
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
      <Facts
        rows={[
          [t('common.id'), id],
          [t('common.type'), d?.type],
          [t('common.status'), d?.online ? t('device.online') : t('device.offline')],
          [t('device.lastSeen'), ago(t, d?.lastSeen)],
          [t('common.grid'), d?.gridId ?? t('common.none')],
        ]}
      />
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
      <Facts
        rows={[
          [t('map.grid.code'), String(p?.code ?? id)],
          [t('map.grid.level'), gridLevel(t, p?.level)],
          [t('map.grid.parent'), p?.parentId ?? t('common.none')],
        ]}
      />
    </>
  );
}
