/** 首页: duty, grids, live status, position health, the task to act on now. */
import { useI18n } from '../../i18n';
import type { DictKey } from '../../i18n/dict';
import { useAppState, useFmt, useNow, useOutbox, useTracker } from '../hooks';
import { setDuty } from '../state';
import { TaskCard } from './Tasks';

export function GpsIndicator() {
  const { t } = useI18n();
  const tr = useTracker();
  const fmt = useFmt();
  const now = useNow(1000);
  const age = tr.last ? fmt.ago(now - tr.last.ts) : '';
  const text = {
    idle: t('m.gps.idle'),
    waiting: t('m.gps.waiting'),
    ok: t('m.gps.ok', { acc: Math.round(tr.last?.acc ?? 0), age }),
    stale: t('m.gps.stale', { age }),
    denied: t('m.gps.denied'),
    unavailable: t('m.gps.unavailable'),
  }[tr.state];
  return (
    <div className={`m-gps ${tr.state}`} data-testid="m-gps" data-state={tr.state}>
      <span className="m-gps-icon" aria-hidden>◎</span>
      <span>{text}</span>
      {tr.battery !== null && <span className="m-muted">{t('m.gps.battery', { n: tr.battery })}</span>}
    </div>
  );
}

export function HomeScreen({ open }: { open: (id: string) => void }) {
  const { t } = useI18n();
  const s = useAppState();
  const ob = useOutbox();
  const me = s.me!;
  const w = me.worker;
  const active = s.tasks.filter((x) => x.mine && ['dispatched', 'accepted', 'on_scene'].includes(x.status));
  return (
    <div className="m-screen" data-testid="m-home">
      <section className="m-card m-me">
        <div>
          <div className="m-name">{w.name}</div>
          <div className="m-muted">{w.teamName} · {w.deviceId}</div>
        </div>
        <span className={`m-pill status-${w.status}`} data-testid="m-worker-status" data-status={w.status}>{t(`m.status.${w.status}` as DictKey)}</span>
      </section>
      <button
        type="button"
        className={`m-duty ${w.onDuty ? 'on' : 'off'}`}
        data-testid="m-duty"
        data-on-duty={w.onDuty ? 'true' : 'false'}
        onClick={() => void setDuty(!w.onDuty)}
      >
        <span className="m-duty-state">{w.onDuty ? t('m.duty.onNow') : t('m.duty.offNow')}</span>
        <span className="m-duty-action">{w.onDuty ? t('m.duty.off') : t('m.duty.on')}</span>
      </button>
      <GpsIndicator />
      <section className="m-card">
        <div className="m-row">
          <span className={`m-dot ${s.live ? 'on' : 'off'}`} />
          <span data-testid="m-live-text">{s.live ? t('m.live.online') : t('m.live.offline')}</span>
        </div>
        <div className="m-row m-muted">{ob.count ? t('m.outbox', { n: ob.count }) : t('m.outbox.empty')}{ob.refused.length ? ` · ${t('m.outbox.failed', { n: ob.refused.length })}` : ''}</div>
      </section>
      <section className="m-card">
        <h3>{t('m.grids')}</h3>
        {me.grids.length ? (
          <div className="m-chips">{me.grids.map((g) => <span key={g.id} className="m-chip">{g.name}</span>)}</div>
        ) : (
          <p className="m-muted">{w.gridIds.length ? w.gridIds.join('、') : t('m.grids.none')}</p>
        )}
      </section>
      {active.length > 0 && (
        <section>
          <h3 className="m-h">{t('m.tasks.current')}</h3>
          {active.map((x) => <TaskCard key={x.id} task={x} fresh={s.fresh.includes(x.id)} onOpen={() => open(x.id)} />)}
        </section>
      )}
    </div>
  );
}
