/** Alarm rows, newest first (props only). */
import type { Alarm } from '../api/types';
import type { DictKey } from '../i18n/dict';
import { useI18n } from '../i18n';
import { devices } from '../store/data';
import { alarmTitle } from './alarmTitle';
import { clock } from './format';
import { VirtualList } from './VirtualList';

export function AlarmList({ items, compact, onAck, onClear, onOpen }: { items: readonly Alarm[]; compact?: boolean; onAck?: (a: Alarm) => void; onClear?: (a: Alarm) => void; onOpen?: (a: Alarm) => void }) {
  const { t, locale, lang } = useI18n();
  if (!items.length) return <p className="empty">{t('common.empty')}</p>;
  return (
    <VirtualList items={items} estimate={compact ? 58 : 66} listClass={`alarm-list ${compact ? 'compact' : ''}`} rowKey={(a) => a.id} testId="alarm-list">
      {(a) => (
        <li className={`alarm sev-${a.severity} ${a.status} ${a.acknowledged ? 'acked' : 'unacked'}`} data-alarm-id={a.id}>
          <span className={`sev-bar sev-${a.severity}`} />
          <div className="alarm-main" onClick={() => onOpen?.(a)}>
            <div className="alarm-head">
              <span className={`tag sev-${a.severity}`}>{t(`severity.${a.severity}` as DictKey)}</span>
              <strong title={a.message ?? undefined}>{alarmTitle(a, lang === 'en' ? 'en' : 'zh')}</strong>
              {a.escalated && <span className="tag escalated" data-testid="escalated">{t('alarm.escalated')}</span>}
            </div>
            <div className="alarm-meta">
              <span>{clock(locale, a.ts, true)}</span>
              <span>{devices.get(a.deviceId)?.name ?? a.deviceId}</span>
              {a.gridId && <span>{a.gridId}</span>}
              <span>{t(`alarm.status.${a.status}` as DictKey)}</span>
              <span>{a.acknowledged ? (a.ackBy ? t('alarm.ackBy', { name: a.ackBy, time: clock(locale, a.ackAt ?? null) }) : t('alarm.acked')) : t('alarm.unacked')}</span>
            </div>
          </div>
          {!compact && (
            <div className="alarm-actions">
              {!a.acknowledged && onAck && (
                <button type="button" onClick={() => onAck(a)} data-testid="ack">
                  {t('alarm.ack')}
                </button>
              )}
              {a.status === 'active' && onClear && (
                <button type="button" className="ghost" onClick={() => onClear(a)}>
                  {t('alarm.clear')}
                </button>
              )}
            </div>
          )}
        </li>
      )}
    </VirtualList>
  );
}
