/** 分流: route a registered case to a department; the owner of its category comes first and is preselected (two clicks). */
import { useEffect, useState } from 'react';
import { items } from '../api/client';
import type { Department } from '../api/types';
import { useI18n } from '../i18n';

export function RoutePanel({ caseId, busy, onRoute }: { caseId: string; busy: boolean; onRoute: (departmentId: string) => void }) {
  const { t, locale } = useI18n();
  const [list, setList] = useState<Department[] | null>(null);
  const [pick, setPick] = useState('');
  useEffect(() => {
    let live = true;
    items<Department>('/departments', { caseId })
      .then((r) => {
        if (!live) return;
        setList(r.items);
        setPick(r.items[0]?.id ?? '');
      })
      .catch(() => live && setList([]));
    return () => {
      live = false;
    };
  }, [caseId]);
  if (!list?.length) return null;
  const label = (d: Department) => (locale === 'en' && d.nameEn ? d.nameEn : d.name);
  return (
    <div className="panel" data-testid="route-panel">
      <h3>{t('case.routeTitle')}</h3>
      <div className="row">
        <select value={pick} onChange={(e) => setPick(e.target.value)} data-testid="route-department">
          {list.map((d) => (
            <option key={d.id} value={d.id}>{label(d)}{d.suggested ? ` · ${t('case.routeSuggested')}` : ''}</option>
          ))}
        </select>
        <button type="button" className="primary" disabled={busy || !pick} onClick={() => onRoute(pick)} data-action="route">
          {t('case.action.route')}
        </button>
      </div>
    </div>
  );
}
