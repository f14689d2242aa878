/** 巡查上报: category (部件/事件 大类 → 小类), photos, description, position adjustable on a small map; my reports and their outcome. */
import { useEffect, useMemo, useRef, useState, type PointerEvent } from 'react';
import { haversineM } from '@gridlink/devices/geo';
import { useI18n } from '../../i18n';
import type { DictKey } from '../../i18n/dict';
import type { Category, Me } from '../api';
import { useAppState, useFmt, useOutbox, useTracker } from '../hooks';
import { newId } from '../outbox';
import { compressPhoto } from '../photo';
import { outbox, submitReport } from '../state';

const M_PER_DEG = 111_320;

/**
 * A tile-free map (works offline): the worker's grids around the point, north
 * up, ~240 m across. Dragging moves the map under the fixed pin.
 */
function PositionMap({ lat, lon, grids, onMove }: { lat: number; lon: number; grids: Me['grids']; onMove: (lat: number, lon: number) => void }) {
  const ref = useRef<HTMLCanvasElement>(null);
  const drag = useRef<{ x: number; y: number; lat: number; lon: number } | null>(null);
  const W = 340;
  const H = 180;
  const mPerPx = 240 / W;
  useEffect(() => {
    const c = ref.current;
    const ctx = c?.getContext('2d');
    if (!c || !ctx) return;
    const dpr = window.devicePixelRatio || 1;
    c.width = W * dpr;
    c.height = H * dpr;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.fillStyle = '#eef2f7';
    ctx.fillRect(0, 0, W, H);
    const cos = Math.cos((lat * Math.PI) / 180);
    const px = (x: number, y: number): [number, number] => [W / 2 + ((x - lon) * M_PER_DEG * cos) / mPerPx, H / 2 - ((y - lat) * M_PER_DEG) / mPerPx];
    ctx.strokeStyle = '#cbd5e1';
    ctx.lineWidth = 1;
    for (let gx = -5; gx <= 5; gx++) {
      ctx.beginPath();
      ctx.moveTo(W / 2 + (gx * 50) / mPerPx, 0);
      ctx.lineTo(W / 2 + (gx * 50) / mPerPx, H);
      ctx.moveTo(0, H / 2 + (gx * 50) / mPerPx);
      ctx.lineTo(W, H / 2 + (gx * 50) / mPerPx);
      ctx.stroke();
    }
    ctx.strokeStyle = '#0284c7';
    ctx.fillStyle = 'rgba(2,132,199,0.08)';
    ctx.lineWidth = 2;
    for (const g of grids) {
      const polys = (g.geometry.type === 'Polygon' ? [g.geometry.coordinates] : g.geometry.coordinates) as number[][][][];
      for (const poly of polys) {
        ctx.beginPath();
        for (const ring of poly) ring.forEach(([x, y], i) => (i ? ctx.lineTo(...px(x!, y!)) : ctx.moveTo(...px(x!, y!))));
        ctx.fill();
        ctx.stroke();
      }
    }
    ctx.fillStyle = '#dc2626';
    ctx.beginPath();
    ctx.arc(W / 2, H / 2 - 14, 8, Math.PI, 0);
    ctx.lineTo(W / 2, H / 2);
    ctx.closePath();
    ctx.fill();
    ctx.fillStyle = '#fff';
    ctx.beginPath();
    ctx.arc(W / 2, H / 2 - 14, 3, 0, Math.PI * 2);
    ctx.fill();
    ctx.fillStyle = '#475569';
    ctx.font = '11px system-ui';
    ctx.fillText('50 m', 8, H - 8);
    ctx.fillRect(40, H - 12, 50 / mPerPx, 2);
  }, [lat, lon, grids, mPerPx]);
  const down = (e: PointerEvent<HTMLCanvasElement>) => {
    e.currentTarget.setPointerCapture(e.pointerId);
    drag.current = { x: e.clientX, y: e.clientY, lat, lon };
  };
  const move = (e: PointerEvent<HTMLCanvasElement>) => {
    const d = drag.current;
    if (!d) return;
    const cos = Math.cos((d.lat * Math.PI) / 180);
    onMove(d.lat + ((e.clientY - d.y) * mPerPx) / M_PER_DEG, d.lon - ((e.clientX - d.x) * mPerPx) / (M_PER_DEG * cos));
  };
  return <canvas ref={ref} className="m-map" style={{ width: W, height: H }} onPointerDown={down} onPointerMove={move} onPointerUp={() => (drag.current = null)} data-testid="m-report-map" />;
}

export function ReportScreen() {
  const { t, lang } = useI18n();
  const s = useAppState();
  const tr = useTracker();
  const fmt = useFmt();
  useOutbox();
  const [kind, setKind] = useState<Category['kind']>('event');
  const [major, setMajor] = useState('');
  const [code, setCode] = useState('');
  const [description, setDescription] = useState('');
  const [photos, setPhotos] = useState<Array<{ blob: Blob; url: string }>>([]);
  const [pos, setPos] = useState<{ lat: number; lon: number } | null>(null);
  const [msg, setMsg] = useState<string | null>(null);
  const [reportId, setReportId] = useState(() => newId('rep'));
  const gps = tr.last ? { lat: tr.last.lat, lon: tr.last.lon } : s.me?.worker.position ?? null;
  const at = pos ?? gps;
  const majors = useMemo(() => {
    const m = new Map<string, string>();
    for (const c of s.categories) if (c.kind === kind) m.set(c.majorCode, c.majorName);
    return [...m];
  }, [s.categories, kind]);
  const minors = s.categories.filter((c) => c.kind === kind && c.majorCode === major);
  const cat = s.categories.find((c) => c.code === code);
  const name = (c: Category) => (lang === 'zh' ? c.name : c.nameEn);
  const addPhotos = async (files: FileList | null) => {
    if (!files) return;
    const out: Array<{ blob: Blob; url: string }> = [];
    for (const f of Array.from(files).slice(0, (s.me?.settings.maxPhotos ?? 6) - photos.length)) {
      const blob = await compressPhoto(f).catch(() => null);
      if (blob) out.push({ blob, url: URL.createObjectURL(blob) });
    }
    setPhotos((p) => [...p, ...out]);
  };
  const submit = async () => {
    if (!cat) return setMsg(t('m.report.needCategory'));
    if (!at) return setMsg(t('m.report.noPosition'));
    await submitReport({ reportId, category: cat, description: description.trim() || undefined, lat: at.lat, lon: at.lon, photos: photos.map((p) => p.blob) });
    setMsg(navigator.onLine ? t('m.report.sent') : t('m.report.queued'));
    photos.forEach((p) => URL.revokeObjectURL(p.url));
    setPhotos([]);
    setDescription('');
    setCode('');
    setPos(null);
    setReportId(newId('rep'));
  };
  const pending = outbox.pending.flatMap((p) => (p.entry.kind === 'report' ? [p.entry] : []));
  return (
    <div className="m-screen" data-testid="m-report">
      <h2>{t('m.report.title')}</h2>
      <div className="m-seg">
        {(['event', 'component'] as const).map((k) => (
          <button key={k} type="button" className={kind === k ? 'active' : ''} onClick={() => { setKind(k); setMajor(''); setCode(''); }} data-kind={k}>{t(`m.report.kind.${k}` as DictKey)}</button>
        ))}
      </div>
      <label className="m-field"><span>{t('m.report.major')}</span>
        <select value={major} onChange={(e) => { setMajor(e.target.value); setCode(''); }} data-testid="m-report-major">
          <option value="">{t('m.report.choose')}</option>
          {majors.map(([c, n]) => <option key={c} value={c}>{n}</option>)}
        </select>
      </label>
      {major && (
        <div className="m-chips" data-testid="m-report-minors">
          {minors.map((c) => (
            <button key={c.code} type="button" className={`m-chip ${code === c.code ? 'active' : ''}`} onClick={() => setCode(c.code)} data-code={c.code}>{name(c)}</button>
          ))}
        </div>
      )}
      <div className="m-photos">
        {photos.map((p) => <img key={p.url} src={p.url} alt="" data-testid="m-report-photo-preview" />)}
        <label className="m-photo-add">
          <input type="file" accept="image/*" capture="environment" multiple onChange={(e) => void addPhotos(e.target.files).then(() => (e.target.value = ''))} data-testid="m-report-photo" />
          <span>＋ {t('m.task.addPhoto')}</span>
        </label>
      </div>
      <label className="m-field"><span>{t('m.report.description')}</span>
        <textarea value={description} onChange={(e) => setDescription(e.target.value)} rows={3} maxLength={2000} data-testid="m-report-description" />
      </label>
      <div className="m-field">
        <span>{t('m.report.position')}</span>
        {at ? (
          <>
            <PositionMap lat={at.lat} lon={at.lon} grids={s.me?.grids ?? []} onMove={(lat, lon) => setPos({ lat, lon })} />
            <div className="m-row between m-muted">
              <span data-testid="m-report-pos">{at.lat.toFixed(6)}, {at.lon.toFixed(6)}</span>
              {pos && gps && (
                <button type="button" className="m-link" onClick={() => setPos(null)}>{t('m.report.moved', { m: Math.round(haversineM(gps.lat, gps.lon, pos.lat, pos.lon)) })} · {t('m.report.resetPos')}</button>
              )}
            </div>
          </>
        ) : <p className="m-muted">{t('m.report.noPosition')}</p>}
      </div>
      {msg && <p className="m-banner" data-testid="m-report-msg">{msg}</p>}
      <button type="button" className="m-btn big primary block" onClick={() => void submit()} data-testid="m-report-submit">{t('m.report.submit')}</button>

      <h3 className="m-h">{t('m.report.mine')}</h3>
      <ul className="m-list" data-testid="m-my-reports">
        {pending.map((r) => (
          <li key={r.reportId} data-report-id={r.reportId} data-status="pending">
            <div className="m-row between"><strong>{r.categoryName}</strong><span className="m-pill">{t('m.report.pending')}</span></div>
            <div className="m-muted">{fmt.time(r.ts)}</div>
          </li>
        ))}
        {s.reports.filter((r) => !pending.some((p) => p.reportId === r.reportId)).map((r) => (
          <li key={r.caseId} data-report-id={r.reportId ?? ''} data-case-id={r.caseId} data-status={r.status}>
            <div className="m-row between"><strong>{r.category.name}</strong><span className={`m-pill case-${r.status}`}>{t(`m.case.${r.status}` as DictKey)}</span></div>
            <div className="m-muted">{r.code} · {fmt.time(r.createdAt)}</div>
            {r.outcome && <div className="m-note">{t('m.report.outcome', { note: r.outcome })}</div>}
          </li>
        ))}
        {!pending.length && !s.reports.length && <li className="m-muted m-empty">{t('m.report.none')}</li>}
      </ul>
    </div>
  );
}
