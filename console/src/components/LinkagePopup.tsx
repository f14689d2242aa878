/**
 * 视频联动: when the hub links cameras to a visible case (CONTRACT 6
 * `linkage`, sent once the case exists — no timer on either side), the
 * camera that covers the spot best plays at once; the other linked cameras
 * (covering first, then nearest) are one click away, and one click puts the
 * current picture into the case's evidence.
 */
import { useEffect, useState } from 'react';
import { get, post } from '../api/client';
import type { CaseDetail } from '../api/types';
import { useI18n } from '../i18n';
import { cases, linkage } from '../store/data';
import { useEntity, useValue } from '../store/entities';
import { navigate } from '../hooks/route';
import { CameraPlayer } from '../video/CameraPlayer';
import { distance } from '../views/format';

export function LinkagePopup() {
  const l = useValue(linkage);
  const { t } = useI18n();
  const [closed, setClosed] = useState<string | null>(null);
  const [pick, setPick] = useState(0);
  const [snap, setSnap] = useState<{ state: 'idle' | 'busy' | 'done' | 'failed'; text?: string }>({ state: 'idle' });
  // The linkage can arrive before the case reaches the board's store (case events are applied in batches), or for a
  // case the board does not hold: the header names the case by its code and title, never by its internal id.
  const held = useEntity(cases, l?.caseId);
  const [fetched, setFetched] = useState<Pick<CaseDetail, 'id' | 'code' | 'title'> | null>(null);
  useEffect(() => {
    setClosed(null);
    setPick(0);
    setSnap({ state: 'idle' });
  }, [l]);
  const caseId = l?.caseId;
  const missing = !!caseId && !held;
  useEffect(() => {
    if (!caseId || !missing) return;
    let live = true;
    get<CaseDetail>(`/cases/${encodeURIComponent(caseId)}`)
      .then((d) => live && setFetched({ id: d.id, code: d.code, title: d.title }))
      .catch(() => undefined);
    return () => {
      live = false;
    };
  }, [caseId, missing]);
  if (!l || !l.cameras.length || closed === l.caseId) return null;
  const c = held ?? (fetched?.id === l.caseId ? fetched : undefined);
  const cams = l.cameras;
  const cam = cams[Math.min(pick, cams.length - 1)]!;
  const snapshot = async () => {
    setSnap({ state: 'busy' });
    try {
      await post(`/cameras/${encodeURIComponent(cam.id)}/snapshot`, { caseId: l.caseId });
      setSnap({ state: 'done' });
    } catch (err) {
      setSnap({ state: 'failed', text: (err as Error).message });
    }
  };
  return (
    <aside className="linkage-popup" data-testid="linkage-popup" data-case={l.caseId}>
      <header>
        <strong title={c?.code}>{c ? t('video.linkage', { code: `${c.code} · ${c.title}` }) : t('video.linkagePending')}</strong>
        <button type="button" onClick={() => setClosed(l.caseId)} aria-label={t('common.close')}>×</button>
      </header>
      <CameraPlayer key={cam.id} cameraId={cam.id} title={`${cam.name} · ${distance(t, cam.distanceM)}`} />
      {cams.length > 1 && (
        <ul className="linkage-cams" data-testid="linkage-cams">
          {cams.map((x, i) => (
            <li key={x.id}>
              <button type="button" className={i === pick ? 'primary' : ''} onClick={() => setPick(i)} data-testid={`linkage-cam-${x.id}`}>
                {x.name} · {distance(t, x.distanceM)}
                {x.covers === true && <span className="tag live">{t('video.covers')}</span>}
              </button>
            </li>
          ))}
        </ul>
      )}
      <footer className="row">
        <button type="button" className="primary" disabled={snap.state === 'busy'} onClick={() => void snapshot()} data-testid="linkage-snapshot">
          {snap.state === 'done' ? t('video.snapshotDone') : t('video.snapshot')}
        </button>
        <button type="button" onClick={() => navigate(`cases/${l.caseId}`)}>{t('case.open')}</button>
        <button type="button" onClick={() => navigate(`video?cams=${cams.map((x) => x.id).join(',')}`)}>{t('nav.video')}</button>
        {snap.state === 'failed' && <span className="hint">{t('common.error', { message: snap.text ?? '' })}</span>}
      </footer>
    </aside>
  );
}
