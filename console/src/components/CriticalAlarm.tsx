/** Forced popup for new critical alarms: stays, and beeps, until acknowledged. */
import { useEffect, useState } from 'react';
import { post } from '../api/client';
import type { Alarm, AlarmAckBody } from '../api/types';
import { useI18n } from '../i18n';
import { forcedIds } from '../store/alarm-queue';
import { alarms, devices } from '../store/data';
import { useEntities, useValue } from '../store/entities';
import { navigate } from '../hooks/route';
import { clock, errorText } from '../views/format';
import { soundState, startAlarmSound, stopAlarmSound, unlockAudio, type SoundState } from './alarm-sound';

export function CriticalAlarm() {
  const ids = useValue(forcedIds);
  useEntities(alarms);
  const alarm = ids.length ? alarms.get(ids[0]) : undefined;
  const [sound, setSound] = useState<SoundState>('off');

  useEffect(() => {
    if (!alarm) {
      stopAlarmSound();
      setSound('off');
      return;
    }
    setSound(startAlarmSound());
    // The context may resume later (first click); keep the flag honest.
    const iv = setInterval(() => setSound(soundState()), 400);
    return () => clearInterval(iv);
  }, [alarm?.id]);

  useEffect(() => () => stopAlarmSound(), []);

  if (!alarm) return null;
  return <CriticalAlarmView alarm={alarm} more={ids.length - 1} sound={sound} />;
}

function CriticalAlarmView({ alarm, more, sound }: { alarm: Alarm; more: number; sound: SoundState }) {
  const { t, locale } = useI18n();
  const [comment, setComment] = useState('');
  const [busy, setBusy] = useState(false);
  const [err, setErr] = useState<string | null>(null);
  const dev = devices.get(alarm.deviceId);

  async function ack() {
    setBusy(true);
    setErr(null);
    try {
      const r = await post<Alarm | undefined>(`/alarms/${encodeURIComponent(alarm.id)}/ack`, (comment ? { comment } : {}) satisfies AlarmAckBody);
      alarms.upsert({ ...alarm, ...(r && typeof r === 'object' && 'id' in r ? r : {}), acknowledged: true });
      setComment('');
    } catch (e) {
      setErr(errorText(t, e));
    } finally {
      setBusy(false);
    }
  }

  return (
    <div className="modal-backdrop critical" onClick={unlockAudio}>
      <div className="modal critical-modal" role="alertdialog" aria-modal="true" aria-labelledby="crit-title" data-testid="critical-alarm" data-sound={sound} data-alarm-id={alarm.id}>
        <h2 id="crit-title">
          <span className="pulse-dot" /> {t('alarm.critical.title')}
          {alarm.escalated && <span className="tag escalated">{t('alarm.escalated')}</span>}
        </h2>
        <p className="crit-message">{alarm.message ?? alarm.rule}</p>
        <dl className="kv">
          <dt>{t('alarm.device')}</dt>
          <dd>{dev?.name ? `${dev.name} (${alarm.deviceId})` : alarm.deviceId}</dd>
          <dt>{t('alarm.rule')}</dt>
          <dd>{alarm.rule}</dd>
          <dt>{t('common.grid')}</dt>
          <dd>{alarm.gridId ?? t('common.none')}</dd>
          <dt>{t('common.time')}</dt>
          <dd>{clock(locale, alarm.ts, true)}</dd>
        </dl>
        {sound === 'blocked' && <p className="hint warn">{t('alarm.sound.blocked')}</p>}
        <p className="hint">{t('alarm.critical.hint')}</p>
        <label className="field">
          <span>{t('alarm.comment')}</span>
          <input value={comment} onChange={(e) => setComment(e.target.value)} data-testid="ack-comment" />
        </label>
        {err && <p className="error">{err}</p>}
        <div className="row">
          <button type="button" className="primary danger" disabled={busy} onClick={() => void ack()} data-testid="ack-critical">
            {t('alarm.ack')}
          </button>
          {alarm.caseId && (
            <button type="button" onClick={() => navigate(`cases/${alarm.caseId}`)}>
              {t('alarm.case')}
            </button>
          )}
        </div>
        {more > 0 && <p className="hint">{t('alarm.critical.more', { n: more })}</p>}
      </div>
    </div>
  );
}
