/** Case detail: status, SLA, actions allowed for the role, dispatch, progress and path, history, evidence, video. */
import { useEffect, useState } from 'react';
import { items, post } from '../api/client';
import type { CaseAction, CaseStatus, Candidate, CaseSummary, Department } from '../api/types';
import { navigate } from '../hooks/route';
import { useCaseData, type DispatchRecord } from '../hooks/useCaseData';
import { useTick } from '../hooks/useTick';
import { useI18n } from '../i18n';
import { dict, type DictKey } from '../i18n/dict';
import { CasesLayer, FocusPoint, GridLayer, PathLayer, WorkersLayer } from '../map/MapLayers';
import { MapView } from '../map/MapView';
import { grids, positions, workers } from '../store/data';
import { useEntities, useValue } from '../store/entities';
import { allowedActions, canRoute, departmentActions } from '../store/roles';
import { myDepartments } from '../store/data';
import { RoutePanel } from './CaseRoute';
import { session } from '../store/session';
import { CameraPlayer } from '../video/CameraPlayer';
import { Sla } from './CaseList';
import { clipNote, clipReason, clock, distance, duration, errorText } from './format';

const STEPS: CaseStatus[] = ['reported', 'registered', 'dispatched', 'accepted', 'on_scene', 'resolved', 'closed'];

export function CaseDetailView({ id }: { id: string }) {
  const { t, locale } = useI18n();
  const s = useValue(session)!;
  const now = useTick(1000);
  const data = useCaseData(id);
  const c = data.summary;
  const [note, setNote] = useState('');
  const [rating, setRating] = useState(5);
  const [busy, setBusy] = useState(false);
  const [msg, setMsg] = useState<string | null>(null);
  const g = useValue(grids);

  const depts = useValue(myDepartments);
  async function act(action: CaseAction, workerId?: string, departmentId?: string) {
    setBusy(true);
    setMsg(null);
    try {
      await post(`/cases/${encodeURIComponent(id)}/actions`, { action, ...(workerId ? { workerId } : {}), ...(departmentId ? { departmentId } : {}), ...(note ? { note } : {}), ...(action === 'rate' ? { rating } : {}) });
      setNote('');
      if (action === 'dispatch' && workerId) setMsg(t('dispatch.sent', { name: workers.get(workerId)?.name ?? workerId }));
      data.reload();
    } catch (e) {
      setMsg(errorText(t, e));
    } finally {
      setBusy(false);
    }
  }

  if (!c) {
    return (
      <div className="case-detail" data-testid="case-detail">
        <div>
          <button type="button" onClick={() => navigate('cases')}>{t('common.close')}</button>
          <p className="empty">{data.error ? t('common.error', { message: data.error }) : t('common.loading')}</p>
        </div>
      </div>
    );
  }
  const deptUser = depts.length > 0;
  const actions = deptUser ? departmentActions(c.status) : allowedActions(s.user.role, c.status).filter((a) => a !== 'dispatch');
  const canDispatch = !deptUser && allowedActions(s.user.role, c.status).includes('dispatch');
  const current = data.dispatches[data.dispatches.length - 1];
  const gridName = g.features.find((f) => f.properties.id === c.gridId)?.properties.name;
  const worker = c.workerId ? workers.get(c.workerId) : undefined;
  const stepIdx = STEPS.indexOf(c.status);

  return (
    <div className="case-detail" data-testid="case-detail" data-case-id={c.id} data-status={c.status}>
      <div>
        <div className="panel">
          <div className="row" style={{ justifyContent: 'space-between' }}>
            <h2>
              <span className="code">{c.code}</span> {c.title}
            </h2>
            <button type="button" onClick={() => navigate('cases')} aria-label={t('common.close')}>{t('common.close')}</button>
          </div>
          <div className="row">
            <span className={`tag sev-${c.severity}`}>{t(`severity.${c.severity}` as DictKey)}</span>
            <span className="tag" data-testid="case-status">{t(`case.status.${c.status}` as DictKey)}</span>
            <Sla c={c} now={now} />
          </div>
          {c.status !== 'rejected' && (
            <ol className="steps" aria-label={t('case.progress')}>
              {STEPS.map((st, i) => (
                <li key={st} className={i < stepIdx ? 'done' : i === stepIdx ? 'current' : ''}>{t(`case.status.${st}` as DictKey)}</li>
              ))}
            </ol>
          )}
          {(actions.length > 0 || canDispatch) && (
            <>
              <label className="field">
                <span>{t('case.actionNote')}</span>
                <input value={note} onChange={(e) => setNote(e.target.value)} data-testid="action-note" />
              </label>
              {actions.includes('rate') && (
                <label className="field">
                  <span>{t('case.rating')} · {t('case.rateHint')}</span>
                  <select value={rating} onChange={(e) => setRating(Number(e.target.value))} data-testid="rating">
                    {[5, 4, 3, 2, 1].map((n) => <option key={n} value={n}>{t('case.ratingScore', { n })}</option>)}
                  </select>
                </label>
              )}
              <div className="row">
                {actions.map((a) => (
                  <button key={a} type="button" className={a === 'cancel' || a === 'reject' ? 'danger' : 'primary'} disabled={busy} onClick={() => void act(a)} data-action={a}>
                    {t(`case.action.${a}` as DictKey)}
                  </button>
                ))}
              </div>
            </>
          )}
          {msg && <p className="hint" data-testid="action-msg">{msg}</p>}
        </div>
        {!deptUser && canRoute(s.user.role, c.status) && <RoutePanel caseId={c.id} busy={busy} onRoute={(d) => void act('route', undefined, d)} />}
        {canDispatch && c.status === 'registered' && <Candidates list={data.candidates} busy={busy} onDispatch={(w) => void act('dispatch', w)} />}
        <div className="panel">
          <h3>{t('case.progress')}</h3>
          {current ? <DispatchProgress d={current} now={now} /> : <p className="empty">{t('common.none')}</p>}
          <div className="detail-map">
            <MapView>
              <GridLayer data={g} labels fit={false} selected={c.gridId} />
              <CasesLayer items={[c]} selected={c.id} />
              <WorkersLayer selected={c.workerId} />
              {current?.path && current.path.points.length > 0 && <PathLayer id="dispatch-path" points={current.path.points} color="#38bdf8" />}
              <FocusPoint lat={c.lat} lon={c.lon} zoom={16} />
            </MapView>
          </div>
        </div>
      </div>
      <div>
        <div className="panel">
          <dl className="kv">
            <dt>{t('case.category')}</dt>
            <dd>{c.category.name} <span className="code">{c.category.code}</span></dd>
            <dt>{t('common.grid')}</dt>
            <dd>{gridName ? `${gridName} (${c.gridId})` : c.gridId ?? t('common.none')}</dd>
            <dt>{t('case.source')}</dt>
            <dd>{t(`case.source.${c.source}` as DictKey)}</dd>
            <dt>{t('case.location')}</dt>
            <dd>{c.lat.toFixed(6)}, {c.lon.toFixed(6)}{c.address ? ` · ${c.address}` : ''}</dd>
            <dt>{t('case.created')}</dt>
            <dd>{clock(locale, c.createdAt, true)}</dd>
            <dt>{t('case.deadline')}</dt>
            <dd>{clock(locale, c.deadline, true)}</dd>
            <dt>{t('case.worker')}</dt>
            <dd>{worker?.name ?? c.workerId ?? t('common.none')}</dd>
            {c.departmentId && (
              <>
                <dt>{t('case.department')}</dt>
                <dd data-testid="case-department"><DepartmentName id={c.departmentId} /></dd>
              </>
            )}
            {c.escalatedTo && (
              <>
                <dt>{t('case.escalatedTo')}</dt>
                <dd data-testid="case-escalated">{g.features.find((f) => f.properties.id === c.escalatedTo)?.properties.name ?? c.escalatedTo}</dd>
              </>
            )}
            {c.rating != null && (
              <>
                <dt>{t('case.rating')}</dt>
                <dd data-testid="case-rating">{'★'.repeat(c.rating)}{'☆'.repeat(5 - c.rating)} {t('case.ratingScore', { n: c.rating })}</dd>
              </>
            )}
          </dl>
          {data.detail?.description && <p>{data.detail.description}</p>}
        </div>
        <div className="panel">
          <h3>{t('case.history')}</h3>
          <ol className="timeline" data-testid="timeline">
            {(data.detail?.history ?? []).map((h, i) => (
              <li key={h.id ?? i}>
                <div>
                  <strong>{`case.action.${h.action}` in dict ? t(`case.action.${h.action}` as DictKey) : h.action}</strong>
                  {h.to && <> → {t(`case.status.${h.to}` as DictKey)}</>} · {h.actor?.name ?? t('case.system')}
                </div>
                <div className="when">{clock(locale, h.ts, true)}</div>
                {h.note && <div>“{h.note}”</div>}
              </li>
            ))}
          </ol>
        </div>
        {(data.detail?.evidence?.length ?? 0) > 0 && (
          <div className="panel">
            <h3>{t('case.evidence')}</h3>
            <div className="evidence">
              {data.detail!.evidence!.map((e, i) => (
                <a key={e.id ?? i} href={String(e.url)} target="_blank" rel="noreferrer">
                  <img src={String(e.url)} alt={String(e.kind ?? '')} loading="lazy" />
                </a>
              ))}
            </div>
          </div>
        )}
        {data.clips.length > 0 && (
          <div className="panel">
            <h3>{t('case.clip')}</h3>
            {data.clips.filter((x) => x.status === 'ready').slice(0, 2).map((x) => (
              <div key={x.id}>
                <video className="clip" controls preload="metadata" src={x.video} poster={x.hasSnapshot ? x.snapshot : undefined} style={{ width: '100%' }} />
                {clipNote(t, x.note) && <p className="hint">{clipNote(t, x.note)}</p>}
              </div>
            ))}
            {/* A clip still being cut, or one that could not be: the officer sees which and why rather than nothing. */}
            {data.clips.filter((x) => x.status !== 'ready').map((x) => (
              <p key={x.id} className={x.status === 'failed' ? 'error' : 'hint'}>
                {x.status === 'failed' ? t('clip.failed', { reason: clipReason(t, x.error) }) : t('clip.recording')}
              </p>
            ))}
          </div>
        )}
        <div className="panel">
          <h3>{t('case.cameras')}</h3>
          {data.cameras.length ? (
            <div className="evidence" style={{ display: 'grid', gridTemplateColumns: '1fr 1fr' }}>
              {data.cameras.slice(0, 2).map((cam) => (
                <div key={cam.id}>
                  <CameraPlayer cameraId={cam.id} title={`${cam.name} · ${distance(t, cam.distanceM)}`} />
                </div>
              ))}
            </div>
          ) : (
            <p className="empty">{t('video.noCameras')}</p>
          )}
        </div>
      </div>
    </div>
  );
}

function Candidates({ list, busy, onDispatch }: { list: Candidate[] | null; busy: boolean; onDispatch: (workerId: string) => void }) {
  const { t } = useI18n();
  useEntities(workers);
  if (!list) return <div className="panel"><p className="empty">{t('common.loading')}</p></div>;
  return (
    <div className="panel candidates" data-testid="candidates">
      <h3>{t('dispatch.candidates')}</h3>
      {!list.length && <p className="empty">{t('dispatch.none')}</p>}
      {list.map((c, i) => (
        <div key={c.workerId} className="cand" data-worker-id={c.workerId} data-rank={i}>
          <span>
            <strong>{c.name ?? workers.get(c.workerId)?.name ?? c.workerId}</strong> {c.ownGrid && <span className="tag">{t('dispatch.ownGrid')}</span>}
          </span>
          <span title={t('dispatch.distance')}>{distance(t, c.distanceM)}</span>
          <span title={t('dispatch.eta')}>{t('dispatch.eta')} {duration(t, c.etaS * 1000)}</span>
          <span className={`tag ws-${c.status}`}>{t(`worker.status.${c.status}` as DictKey)}</span>
          <button type="button" className="primary" disabled={busy} onClick={() => onDispatch(c.workerId)} data-testid="dispatch-btn">
            {t('dispatch.send')}
          </button>
        </div>
      ))}
    </div>
  );
}

function DispatchProgress({ d }: { d: DispatchRecord; now: number }) {
  const { t, locale } = useI18n();
  const w = workers.get(d.workerId);
  const p = positions.byId.get(d.workerId);
  const rows: Array<[DictKey, number | null]> = [
    ['case.status.dispatched', d.dispatchedAt],
    ['case.status.accepted', d.acceptedAt],
    ['case.status.on_scene', d.arrivedAt],
    ['case.status.resolved', d.resolvedAt],
  ];
  return (
    <div data-testid="dispatch-progress">
      <p>
        <strong>{w?.name ?? d.workerId}</strong>
        {p && <> · {t(`worker.status.${p.status}` as DictKey)}</>}
        {d.path && <> · {t('dispatch.path')} {distance(t, d.path.distanceM)}</>}
      </p>
      <ol className="steps">
        {rows.map(([k, ts]) => (
          <li key={k} className={ts ? 'done' : ''}>
            {t(k)}
            <br />
            {ts ? clock(locale, ts) : '—'}
          </li>
        ))}
      </ol>
    </div>
  );
}

export type { CaseSummary };

let departmentNames: Promise<Map<string, Pick<Department, 'name' | 'nameEn'>>> | null = null;
/** A department's name in the console's language (the list is read once; its id until then, or when it cannot be read). */
function DepartmentName({ id }: { id: string }) {
  const { lang } = useI18n();
  const [d, setD] = useState<Pick<Department, 'name' | 'nameEn'> | null>(null);
  useEffect(() => {
    let live = true;
    departmentNames ??= items<Department>('/departments').then((r) => new Map(r.items.map((x) => [x.id, x])));
    departmentNames.then((m) => live && setD(m.get(id) ?? null)).catch(() => {
      departmentNames = null;
    });
    return () => {
      live = false;
    };
  }, [id]);
  return <>{d ? (lang === 'en' ? d.nameEn ?? d.name : d.name) : id}</>;
}
