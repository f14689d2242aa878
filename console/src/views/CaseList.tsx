/** Case rows with SLA countdown (props only). */
import type { CaseSummary } from '../api/types';
import type { DictKey } from '../i18n/dict';
import { useI18n } from '../i18n';
import { navigate } from '../hooks/route';
import { useTick } from '../hooks/useTick';
import { duration } from './format';

export function Sla({ c, now }: { c: CaseSummary; now: number }) {
  const { t } = useI18n();
  if (c.status === 'closed' || c.status === 'rejected') return null;
  const left = c.deadline - now;
  const over = left < 0 || c.overdue;
  return (
    <span className={`sla ${over ? 'overdue' : left < 30 * 60_000 ? 'soon' : ''}`} data-testid="sla" data-overdue={over ? '1' : '0'}>
      {over ? t('case.overdue', { time: duration(t, Math.abs(left)) }) : t('case.remaining', { time: duration(t, left) })}
    </span>
  );
}

export function CaseList({ items, compact }: { items: readonly CaseSummary[]; compact?: boolean }) {
  const { t } = useI18n();
  const now = useTick(1000);
  if (!items.length) return <p className="empty">{t('case.none')}</p>;
  return (
    <ul className={`case-list ${compact ? 'compact' : ''}`}>
      {items.map((c) => (
        <li key={c.id} className={`case-row sev-${c.severity} ${c.deadline < now ? 'is-overdue' : ''}`} onClick={() => navigate(`cases/${c.id}`)} data-case-id={c.id}>
          <span className={`sev-bar sev-${c.severity}`} />
          <div>
            <div className="case-head">
              <span className="code">{c.code}</span> <strong>{c.title}</strong>
            </div>
            <div className="case-meta">
              <span>{t(`case.status.${c.status}` as DictKey)}</span>
              <span>{c.category.name}</span>
              <Sla c={c} now={now} />
            </div>
          </div>
        </li>
      ))}
    </ul>
  );
}
