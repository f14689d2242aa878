/** Live alarm feed, newest first, filterable; acknowledge with a comment; escalated alarms marked. */
import { useMemo, useState } from 'react';
import { post } from '../api/client';
import { SEVERITIES } from '@gridlink/devices/workflow';
import type { Alarm, AlarmAckBody } from '../api/types';
import { navigate } from '../hooks/route';
import { useI18n } from '../i18n';
import { alarms, grids, missing } from '../store/data';
import { useEntities, useValue } from '../store/entities';
import { AlarmList } from '../views/AlarmList';
import { errorText } from '../views/format';

export default function AlarmsPage() {
  const { t } = useI18n();
  const list = useEntities(alarms);
  const gone = useValue(missing);
  const g = useValue(grids);
  const [sev, setSev] = useState<string>('');
  const [status, setStatus] = useState<string>('active');
  const [grid, setGrid] = useState<string>('');
  const [acking, setAcking] = useState<Alarm | null>(null);
  const [err, setErr] = useState<string | null>(null);

  const items = useMemo(
    () =>
      list
        .filter((a) => (!sev || a.severity === sev) && (!status || a.status === status || (status === 'unacked' && !a.acknowledged)) && (!grid || a.gridId === grid))
        .sort((a, b) => (b.lastTs ?? b.ts) - (a.lastTs ?? a.ts)),
    [list, sev, status, grid],
  );
  const gridIds = useMemo(() => [...new Set([...list.map((a) => a.gridId).filter(Boolean), ...g.features.filter((f) => f.properties.level === 'grid').map((f) => f.properties.id)])] as string[], [list, g]);

  async function clear(a: Alarm) {
    try {
      const r = await post<Alarm>(`/alarms/${encodeURIComponent(a.id)}/clear`);
      alarms.upsert({ ...a, ...(r ?? {}), status: 'cleared' });
    } catch (e) {
      setErr(errorText(t, e));
    }
  }

  return (
    <div className="page page-fill">
      <div className="toolbar">
        <h2>{t('alarm.feed')}</h2>
        <label className="row">
          {t('alarm.filter.severity')}
          <select value={sev} onChange={(e) => setSev(e.target.value)} data-testid="filter-severity">
            <option value="">{t('common.all')}</option>
            {SEVERITIES.map((s) => (
              <option key={s} value={s}>{t(`severity.${s}`)}</option>
            ))}
          </select>
        </label>
        <label className="row">
          {t('alarm.filter.status')}
          <select value={status} onChange={(e) => setStatus(e.target.value)} data-testid="filter-status">
            <option value="">{t('common.all')}</option>
            <option value="active">{t('alarm.status.active')}</option>
            <option value="cleared">{t('alarm.status.cleared')}</option>
            <option value="unacked">{t('alarm.unacked')}</option>
          </select>
        </label>
        <label className="row">
          {t('alarm.filter.grid')}
          <select value={grid} onChange={(e) => setGrid(e.target.value)}>
            <option value="">{t('common.all')}</option>
            {gridIds.map((id) => (
              <option key={id} value={id}>{g.features.find((f) => f.properties.id === id)?.properties.name ?? id}</option>
            ))}
          </select>
        </label>
      </div>
      {gone.has('alarms') && <p className="hint">{t('common.unavailable')}</p>}
      {err && <p className="error">{err}</p>}
      <AlarmList items={items} onAck={setAcking} onClear={(a) => void clear(a)} onOpen={(a) => a.caseId && navigate(`cases/${a.caseId}`)} />
      {acking && <AckDialog alarm={acking} onClose={() => setAcking(null)} />}
    </div>
  );
}

export function AckDialog({ alarm, onClose }: { alarm: Alarm; onClose: () => void }) {
  const { t } = useI18n();
  const [comment, setComment] = useState('');
  const [err, setErr] = useState<string | null>(null);
  async function ack() {
    try {
      const r = await post<Alarm>(`/alarms/${encodeURIComponent(alarm.id)}/ack`, (comment ? { comment } : {}) satisfies AlarmAckBody);
      alarms.upsert({ ...alarm, ...(r ?? {}), acknowledged: true });
      onClose();
    } catch (e) {
      setErr(errorText(t, e));
    }
  }
  return (
    <div className="modal-backdrop" onClick={onClose}>
      <div className="modal" role="dialog" aria-modal="true" onClick={(e) => e.stopPropagation()}>
        <h2>{t('alarm.ack')}</h2>
        <p>{alarm.message ?? alarm.rule}</p>
        <label className="field">
          <span>{t('alarm.comment')}</span>
          <input value={comment} onChange={(e) => setComment(e.target.value)} autoFocus data-testid="ack-dialog-comment" />
        </label>
        {err && <p className="error">{err}</p>}
        <div className="row">
          <button type="button" className="primary" onClick={() => void ack()} data-testid="ack-dialog-submit">{t('alarm.ack')}</button>
          <button type="button" onClick={onClose}>{t('common.cancel')}</button>
        </div>
      </div>
    </div>
  );
}
