/** 任务: current and recent tasks; the detail with countdown, distance, photos, navigation and the actions. */
import { useEffect, useState } from 'react';
import { haversineM, wgs84ToGcj02 } from '@gridlink/devices/geo';
import { useI18n } from '../../i18n';
import { dict, type DictKey } from '../../i18n/dict';
import { imageUrl, type Task } from '../api';
import { useAppState, useFmt, useNow, useTracker } from '../hooks';
import { newId } from '../outbox';
import { compressPhoto } from '../photo';
import { markSeen, taskAction } from '../state';

const ACTIVE = ['dispatched', 'accepted', 'on_scene'];

function Countdown({ deadline }: { deadline: number }) {
  const { t } = useI18n();
  const fmt = useFmt();
  const now = useNow(1000);
  const left = deadline - now;
  return (
    <span className={left < 0 ? 'm-overdue' : left < 30 * 60_000 ? 'm-soon' : ''} data-testid="m-countdown">
      {left >= 0 ? t('m.task.left', { t: fmt.dur(left) }) : t('m.task.overdue', { t: fmt.dur(left) })}
    </span>
  );
}

function Distance({ lat, lon }: { lat: number; lon: number }) {
  const tr = useTracker();
  const fmt = useFmt();
  if (!tr.last) return <span className="m-muted">—</span>;
  return <span data-testid="m-distance">{fmt.dist(haversineM(tr.last.lat, tr.last.lon, lat, lon))}</span>;
}

export function TaskCard({ task, fresh, onOpen }: { task: Task; fresh?: boolean; onOpen: () => void }) {
  const { t } = useI18n();
  const active = task.mine && ACTIVE.includes(task.status);
  return (
    <button type="button" className={`m-card m-task ${fresh ? 'fresh' : ''} sev-${task.severity}`} onClick={onOpen} data-testid="m-task" data-task-id={task.id} data-status={task.status}>
      <div className="m-row between">
        <strong>{task.category.name}</strong>
        <span className={`m-pill case-${task.status}`}>{t(`m.case.${task.status}` as DictKey)}</span>
      </div>
      <div className="m-muted">{task.code} · {task.address ?? task.title}</div>
      {active && (
        <div className="m-row between">
          <Distance lat={task.lat} lon={task.lon} />
          <Countdown deadline={task.deadline} />
        </div>
      )}
      {fresh && <span className="m-new">{t('m.task.new')}</span>}
    </button>
  );
}

export function TasksScreen({ open }: { open: (id: string) => void }) {
  const { t } = useI18n();
  const s = useAppState();
  const current = s.tasks.filter((x) => x.mine && ACTIVE.includes(x.status));
  const history = s.tasks.filter((x) => !current.includes(x));
  return (
    <div className="m-screen" data-testid="m-tasks">
      {s.cached && s.tasks.length > 0 && !s.live && <p className="m-banner">{t('m.tasks.cached')}</p>}
      <h3 className="m-h">{t('m.tasks.current')}</h3>
      {current.length ? current.map((x) => <TaskCard key={x.id} task={x} fresh={s.fresh.includes(x.id)} onOpen={() => open(x.id)} />) : <p className="m-muted m-empty">{t('m.tasks.none')}</p>}
      <h3 className="m-h">{t('m.tasks.history')}</h3>
      {history.length ? history.map((x) => <TaskCard key={x.id} task={x} onOpen={() => open(x.id)} />) : <p className="m-muted m-empty">{t('m.tasks.none')}</p>}
    </div>
  );
}

function Photo({ id }: { id: string }) {
  const [src, setSrc] = useState<string | null>(null);
  useEffect(() => {
    let url: string | null = null;
    void imageUrl(id).then((u) => setSrc((url = u))).catch(() => undefined);
    return () => {
      if (url) URL.revokeObjectURL(url);
    };
  }, [id]);
  return src ? <img src={src} alt="" /> : <div className="m-photo-ph" />;
}

/** geo: for any map app (WGS-84), AMap with GCJ-02 coordinates (what AMap expects in mainland China). */
export function navLinks(task: Pick<Task, 'lat' | 'lon' | 'title' | 'address'>): { geo: string; amap: string } {
  const name = encodeURIComponent(task.address ?? task.title);
  const g = wgs84ToGcj02(task.lat, task.lon);
  return {
    geo: `geo:${task.lat.toFixed(6)},${task.lon.toFixed(6)}?q=${task.lat.toFixed(6)},${task.lon.toFixed(6)}(${name})`,
    amap: `https://uri.amap.com/navigation?to=${g.lon.toFixed(6)},${g.lat.toFixed(6)},${name}&mode=walk&coordinate=gaode&callnative=1`,
  };
}

export function TaskDetail({ id, back }: { id: string; back: () => void }) {
  const { t } = useI18n();
  const fmt = useFmt();
  const s = useAppState();
  const task = s.tasks.find((x) => x.id === id);
  const [declining, setDeclining] = useState(false);
  const [reason, setReason] = useState('');
  const [note, setNote] = useState('');
  const [photos, setPhotos] = useState<Array<{ blob: Blob; url: string }>>([]);
  const [msg, setMsg] = useState<string | null>(null);
  const [opId] = useState(() => ({ accept: newId('op'), decline: newId('op'), arrive: newId('op'), resolve: newId('op') }));
  useEffect(() => markSeen(id), [id]);
  useEffect(() => () => photos.forEach((p) => URL.revokeObjectURL(p.url)), [photos]);
  if (!task) {
    return (
      <div className="m-screen">
        <button type="button" className="m-btn" onClick={back}>{t('m.task.back')}</button>
        <p className="m-muted m-empty">{t('m.tasks.none')}</p>
      </div>
    );
  }
  const act = async (action: 'accept' | 'decline' | 'arrive' | 'resolve') => {
    if (action === 'decline' && !reason.trim()) return setMsg(t('m.task.reasonRequired'));
    if (action === 'resolve' && !photos.length) return setMsg(t('m.task.photoNeeded'));
    setMsg(null);
    await taskAction(task, action, action === 'decline' ? reason.trim() : note.trim() || undefined, action === 'resolve' ? photos.map((p) => p.blob) : [], opId[action]);
    if (!navigator.onLine) setMsg(t('m.task.queued'));
    if (action === 'resolve') setPhotos([]);
    setNote('');
  };
  const addPhotos = async (files: FileList | null) => {
    if (!files) return;
    const out: Array<{ blob: Blob; url: string }> = [];
    for (const f of Array.from(files).slice(0, (s.me?.settings.maxPhotos ?? 6) - photos.length)) {
      try {
        const blob = await compressPhoto(f);
        out.push({ blob, url: URL.createObjectURL(blob) });
      } catch (err) {
        setMsg(t('m.err.generic', { msg: (err as Error).message }));
      }
    }
    setPhotos((p) => [...p, ...out]);
  };
  const nav = navLinks(task);
  const mine = task.mine;
  return (
    <div className="m-screen m-detail" data-testid="m-task-detail" data-task-id={task.id} data-status={task.status}>
      <div className="m-row between">
        <button type="button" className="m-btn ghost" onClick={back}>‹ {t('m.task.back')}</button>
        <span className={`m-pill case-${task.status}`} data-testid="m-task-status">{t(`m.case.${task.status}` as DictKey)}</span>
      </div>
      <h2>{task.title}</h2>
      <dl className="m-dl">
        <dt>{t('m.task.category')}</dt><dd>{task.category.name} <span className="m-muted">{task.category.code}</span></dd>
        <dt>{t('m.task.address')}</dt><dd>{task.address ?? `${task.lat.toFixed(5)}, ${task.lon.toFixed(5)}`}</dd>
        <dt>{t('m.task.distance')}</dt><dd><Distance lat={task.lat} lon={task.lon} /></dd>
        <dt>{t('m.task.deadline')}</dt><dd>{fmt.time(task.deadline)} · <Countdown deadline={task.deadline} /></dd>
        {task.description && (<><dt>{t('m.task.description')}</dt><dd>{task.description}</dd></>)}
      </dl>
      <div className="m-row">
        <a className="m-btn" href={nav.amap} target="_blank" rel="noreferrer" data-testid="m-nav-amap">{t('m.task.navAmap')}</a>
        <a className="m-btn" href={nav.geo} data-testid="m-nav-geo">{t('m.task.navGeo')}</a>
      </div>
      {task.photos.length > 0 && (
        <section>
          <h3 className="m-h">{t('m.task.photos')}</h3>
          <div className="m-photos" data-testid="m-task-photos">{task.photos.map((p) => <Photo key={p.id} id={p.id} />)}</div>
        </section>
      )}
      {!mine && ACTIVE.includes(task.status) && <p className="m-banner">{t('m.task.notMine')}</p>}
      {mine && task.status === 'dispatched' && (
        <section className="m-actions">
          {declining ? (
            <>
              <label className="m-field"><span>{t('m.task.reason')}</span>
                <input value={reason} onChange={(e) => setReason(e.target.value)} data-testid="m-decline-reason" maxLength={500} />
              </label>
              <div className="m-row">
                <button type="button" className="m-btn" onClick={() => setDeclining(false)}>{t('m.task.back')}</button>
                <button type="button" className="m-btn danger" onClick={() => void act('decline')} data-testid="m-decline-confirm">{t('m.task.decline')}</button>
              </div>
            </>
          ) : (
            <div className="m-row">
              <button type="button" className="m-btn big" onClick={() => setDeclining(true)} data-testid="m-decline">{t('m.task.decline')}</button>
              <button type="button" className="m-btn big primary" onClick={() => void act('accept')} data-testid="m-accept">{t('m.task.accept')}</button>
            </div>
          )}
        </section>
      )}
      {mine && task.status === 'accepted' && (
        <section className="m-actions">
          <p className="m-muted">{t('m.task.arriveHint')}</p>
          <button type="button" className="m-btn big primary block" onClick={() => void act('arrive')} data-testid="m-arrive">{t('m.task.arrive')}</button>
        </section>
      )}
      {mine && task.status === 'on_scene' && (
        <section className="m-actions">
          <div className="m-photos">
            {photos.map((p) => <img key={p.url} src={p.url} alt="" data-testid="m-photo-preview" />)}
            <label className="m-photo-add">
              <input type="file" accept="image/*" capture="environment" multiple onChange={(e) => void addPhotos(e.target.files).then(() => (e.target.value = ''))} data-testid="m-photo-input" />
              <span>＋ {t('m.task.addPhoto')}</span>
            </label>
          </div>
          <label className="m-field"><span>{t('m.task.note')}</span>
            <textarea value={note} onChange={(e) => setNote(e.target.value)} rows={2} maxLength={2000} data-testid="m-note" />
          </label>
          <button type="button" className="m-btn big primary block" disabled={!photos.length} onClick={() => void act('resolve')} data-testid="m-resolve">{t('m.task.resolve')}</button>
        </section>
      )}
      {msg && <p className="m-banner warn" data-testid="m-task-msg">{msg}</p>}
      <section>
        <h3 className="m-h">{t('m.task.history')}</h3>
        <ol className="m-timeline">
          {[...task.history].reverse().map((h, i) => (
            <li key={`${h.ts}-${i}`}>
              <span className="m-muted">{fmt.time(h.ts)}</span> {`m.action.${h.action}` in dict ? t(`m.action.${h.action}` as DictKey) : h.action} · {h.by}
              {h.note && <div className="m-note">{h.note}</div>}
            </li>
          ))}
        </ol>
      </section>
    </div>
  );
}
