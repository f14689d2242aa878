/** Case rows with SLA countdown (props only). */
import type { CaseSummary } from '../api/types';
import type { DictKey } from '../i18n/dict';
import { useI18n } from '../i18n';
import { navigate } from '../hooks/route';
import { useTick } from '../hooks/useTick';
import { calendar } from '../store/data';
import { useValue } from '../store/entities';
import { duration } from './format';
import { VirtualList } from './VirtualList';

/** Countdown to the deadline, in working time when the category's limit is in working hours (the hub's calendar). */
export function Sla({ c, now }: { c: CaseSummary; now: number }) {
  const { t } = useI18n();
  const cal = useValue(calendar);
  if (c.status === 'closed' || c.status === 'rejected') return null;
  const working = c.category.limitUnit === 'working';
  const left = cal.remainingMs(now, c.deadline, working ? 'working' : 'calendar');
  const over = now > c.deadline || c.overdue;
  const ackLeft = c.ackDeadline ? cal.remainingMs(now, c.ackDeadline, working ? 'working' : 'calendar') : null;
  const card = over ? 'red' : c.warned ? 'yellow' : null;
  return (
    <span className={`sla ${over ? 'overdue' : left < 30 * 60_000 || c.warned ? 'soon' : ''}`} data-testid="sla" data-overdue={over ? '1' : '0'} data-card={card ?? ''}>
      {card && <span className={`card card-${card}`} title={t(card === 'red' ? 'case.action.overdue' : 'case.action.warn')} />}
      {over ? t('case.overdue', { time: duration(t, Math.abs(left)) }) : t('case.remaining', { time: duration(t, left) })}
      {working && <small> {t('case.workingTime')}</small>}
      {ackLeft !== null && <small data-testid="ack-sla"> · {ackLeft < 0 || c.ackOverdue ? t('case.ackOverdue') : t('case.ackLeft', { time: duration(t, ackLeft) })}</small>}
    </span>
  );
}

export function CaseList({ items, compact, testId }: { items: readonly CaseSummary[]; compact?: boolean; testId?: string }) {
  const { t } = useI18n();
  const now = useTick(1000);
  if (!items.length) return <p className="empty">{t('case.none')}</p>;
  // Only the rows on screen are in the DOM: a column may hold 10,000 open cases.
  return (
    <VirtualList items={items} estimate={compact ? 58 : 62} listClass={`case-list ${compact ? 'compact' : ''}`} rowKey={(c) => c.id} testId={testId ?? 'case-scroll'}>
      {(c) => (
        <li className={`case-row sev-${c.severity} ${c.deadline < now ? 'is-overdue' : ''}`} onClick={() => navigate(`cases/${c.id}`)} data-case-id={c.id}>
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
      )}
    </VirtualList>
  );
}
