/** 我的: who is signed in on this phone, notifications, language, sign out. */
import { useState } from 'react';
import { useI18n } from '../../i18n';
import { useAppState, useFmt, useOutbox } from '../hooks';
import { logout } from '../state';

export function MineScreen() {
  const { t, lang, setLang } = useI18n();
  const s = useAppState();
  const fmt = useFmt();
  const ob = useOutbox();
  const [perm, setPerm] = useState(() => ('Notification' in window ? Notification.permission : 'denied'));
  const me = s.me!;
  return (
    <div className="m-screen" data-testid="m-mine">
      <section className="m-card">
        <div className="m-name">{me.worker.name}</div>
        <div className="m-muted">{t('m.mine.device', { id: me.worker.deviceId })}</div>
        <div className="m-muted">{t('m.mine.session', { t: fmt.time(me.session.createdAt) })}</div>
      </section>
      <section className="m-card">
        {'Notification' in window && (
          <button type="button" className="m-btn block" disabled={perm !== 'default'} onClick={() => void Notification.requestPermission().then(setPerm)}>
            {perm === 'granted' ? t('m.mine.notifyOn') : t('m.mine.notify')}
          </button>
        )}
        <button type="button" className="m-btn block" onClick={() => setLang(lang === 'zh' ? 'en' : 'zh')} lang={lang === 'zh' ? 'en' : 'zh'}>{t('lang.switch')}</button>
        <p className="m-muted">{t('m.mine.version')}</p>
      </section>
      {ob.refused.length > 0 && (
        <section className="m-card">
          <p className="m-error">{t('m.outbox.failed', { n: ob.refused.length })}</p>
          <ul className="m-list">{ob.refused.slice(-5).map((r) => <li key={r.at} className="m-muted">{fmt.time(r.at)} · {r.code}: {r.message}</li>)}</ul>
        </section>
      )}
      <button
        type="button"
        className="m-btn danger block"
        onClick={() => {
          if (!ob.count || confirm(t('m.logout.confirm', { n: ob.count }))) void logout();
        }}
        data-testid="m-logout"
      >
        {t('m.logout')}
      </button>
    </div>
  );
}
