/** When the hub links cameras to a visible case (CONTRACT 6 `linkage`), show the nearest one at once. */
import { useEffect, useState } from 'react';
import { useI18n } from '../i18n';
import { cases, linkage } from '../store/data';
import { useValue } from '../store/entities';
import { navigate } from '../hooks/route';
import { CameraPlayer } from '../video/CameraPlayer';

export function LinkagePopup() {
  const l = useValue(linkage);
  const { t } = useI18n();
  const [closed, setClosed] = useState<string | null>(null);
  useEffect(() => setClosed(null), [l]);
  if (!l || !l.cameras.length || closed === l.caseId) return null;
  const c = cases.get(l.caseId);
  const cam = l.cameras[0]!;
  return (
    <aside className="linkage-popup" data-testid="linkage-popup">
      <header>
        <strong>{t('video.linkage', { code: c?.code ?? l.caseId })}</strong>
        <button type="button" onClick={() => setClosed(l.caseId)} aria-label={t('common.close')}>×</button>
      </header>
      <CameraPlayer cameraId={cam.id} title={cam.name} stream={cam.stream} />
      <footer className="row">
        <button type="button" onClick={() => navigate(`cases/${l.caseId}`)}>{t('case.open')}</button>
        <button type="button" onClick={() => navigate(`video?cams=${l.cameras.map((x) => x.id).join(',')}`)}>{t('nav.video')}</button>
      </footer>
    </aside>
  );
}
