/** Case board by status with counts and SLA countdowns; #/cases/{id} opens the detail. */
import { useEffect, useMemo, useState } from 'react';
import { get } from '../api/client';
import { CASE_STATUSES, OPEN_STATUSES, type CaseCounts, type CaseStatus } from '../api/types';
import { useI18n } from '../i18n';
import { cases, missing, myDepartments } from '../store/data';
import { useEntities, useValue } from '../store/entities';
import { CaseList } from '../views/CaseList';
import { CaseDetailView } from '../views/CaseDetail';

const SEV_ORDER = { critical: 0, major: 1, minor: 2, warning: 3, info: 4 } as const;

export default function CasesPage({ id }: { id?: string }) {
  const { t } = useI18n();
  const list = useEntities(cases);
  const gone = useValue(missing);
  const depts = useValue(myDepartments);
  const [showClosed, setShowClosed] = useState(false);
  const cols: readonly CaseStatus[] = showClosed ? CASE_STATUSES : OPEN_STATUSES;
  // Column badges are the hub's exact counts (the client may hold fewer cases than exist); refreshed when cases change.
  const [counts, setCounts] = useState<Record<string, number> | null>(null);
  useEffect(() => {
    const timer = setTimeout(() => {
      get<CaseCounts>('/cases/counts').then((r) => setCounts(r.byStatus)).catch(() => setCounts(null));
    }, 500);
    return () => clearTimeout(timer);
  }, [list]);
  const byStatus = useMemo(() => {
    const m = new Map<CaseStatus, typeof list>();
    for (const s of CASE_STATUSES) m.set(s, []);
    for (const c of list) m.get(c.status)?.push(c);
    // Most urgent first: overdue, then severity, then nearest deadline.
    for (const arr of m.values()) arr.sort((a, b) => Number(b.overdue) - Number(a.overdue) || SEV_ORDER[a.severity] - SEV_ORDER[b.severity] || a.deadline - b.deadline);
    return m;
  }, [list]);

  return (
    <div className="page">
      <div className="toolbar">
        <h2 data-testid="board-title">{depts.length ? t('case.deptBoard', { name: depts.map((d) => d.name).join('、') }) : t('case.board')}</h2>
        <label className="check">
          <input type="checkbox" checked={showClosed} onChange={(e) => setShowClosed(e.target.checked)} /> {t('case.showAll')}
        </label>
      </div>
      {gone.has('cases') && <p className="hint">{t('common.unavailable')}</p>}
      <div className="board" style={{ gridTemplateColumns: `repeat(${cols.length}, minmax(11rem, 1fr))` }} data-testid="case-board">
        {cols.map((s) => (
          <section key={s} className="board-col" data-status={s}>
            <h3>
              <span>{t(`case.status.${s}`)}</span>
              <span className="badge" data-testid={`count-${s}`}>{counts?.[s] ?? byStatus.get(s)!.length}</span>
            </h3>
            <CaseList items={byStatus.get(s)!} />
          </section>
        ))}
      </div>
      {id && <CaseDetailView id={id} />}
    </div>
  );
}
