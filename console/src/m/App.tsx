/** 网格通 shell: login, status bar (hub link, GPS, outbox), four tabs. */
import { useEffect, useState, type FormEvent } from 'react';
import { useI18n } from '../i18n';
import { MApiError } from './api';
import { useAppState, useOutbox, useRoute } from './hooks';
import { unlockAudio } from './notify';
import { HomeScreen } from './screens/Home';
import { MineScreen } from './screens/Mine';
import { ReportScreen } from './screens/Report';
import { TaskDetail, TasksScreen } from './screens/Tasks';
import { login } from './state';

export function MobileApp() {
  const s = useAppState();
  const { t, lang } = useI18n();
  useEffect(() => {
    document.title = t('m.app');
  }, [t, lang]);
  if (!s.token || !s.me) return <Login />;
  return <Shell />;
}

function Login() {
  const { t, lang, setLang } = useI18n();
  const s = useAppState();
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(s.sessionEnded ? t('m.err.session') : null);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    unlockAudio();
    setBusy(true);
    setError(null);
    try {
      await login(username.trim(), password);
    } catch (err) {
      const code = err instanceof MApiError ? err.code : '';
      setError(code === 'NOT_A_WORKER' ? t('m.login.notWorker') : code === 'WORKER_NOT_BOUND' ? t('m.login.notBound') : code === 'NETWORK' ? t('m.login.offline') : t('m.login.failed'));
    } finally {
      setBusy(false);
    }
  };
  return (
    <div className="m-login" data-testid="m-login">
      <div className="m-brand">
        <img className="m-logo" src="./icon.svg" alt="" />
        <h1>{t('m.app')}</h1>
        <p>{t('m.subtitle')}</p>
      </div>
      <form onSubmit={submit}>
        <label className="m-field">
          <span>{t('m.login.username')}</span>
          <input name="username" autoComplete="username" autoCapitalize="none" value={username} onChange={(e) => setUsername(e.target.value)} required />
        </label>
        <label className="m-field">
          <span>{t('m.login.password')}</span>
          <input name="password" type="password" autoComplete="current-password" value={password} onChange={(e) => setPassword(e.target.value)} required />
        </label>
        {error && <p className="m-error" data-testid="m-login-error">{error}</p>}
        <button className="m-btn primary block" type="submit" disabled={busy} data-testid="m-login-submit">{busy ? t('m.login.busy') : t('m.login.submit')}</button>
      </form>
      <button className="m-link" type="button" onClick={() => setLang(lang === 'zh' ? 'en' : 'zh')} lang={lang === 'zh' ? 'en' : 'zh'}>{t('lang.switch')}</button>
    </div>
  );
}

function StatusBar() {
  const { t } = useI18n();
  const s = useAppState();
  const ob = useOutbox();
  return (
    <header className="m-status">
      <span className={`m-dot ${s.live ? 'on' : 'off'}`} data-testid="m-live" data-state={s.live ? 'online' : 'offline'} title={s.live ? t('m.live.online') : t('m.live.offline')} />
      <span className="m-title">{t('m.app')}</span>
      <span className={`m-outbox ${ob.count ? 'busy' : ''}`} data-testid="m-outbox" data-count={ob.count}>
        {ob.count ? t('m.outbox', { n: ob.count }) : t('m.outbox.empty')}
      </span>
    </header>
  );
}

function Shell() {
  const { t } = useI18n();
  const s = useAppState();
  const [route, go] = useRoute();
  const [screen, arg] = route.split('/');
  const current = s.tasks.filter((x) => x.mine && ['dispatched', 'accepted', 'on_scene'].includes(x.status)).length;
  const tabs: Array<[string, string, number]> = [['home', t('m.tab.home'), 0], ['tasks', t('m.tab.tasks'), current], ['report', t('m.tab.report'), 0], ['mine', t('m.tab.mine'), 0]];
  const active = screen === 'task' ? 'tasks' : screen;
  return (
    <div className="m-shell" data-testid="m-shell">
      <StatusBar />
      {!s.online && <div className="m-banner warn" data-testid="m-offline">{t('m.net.offline')}</div>}
      <main className="m-main">
        {screen === 'tasks' && <TasksScreen open={(id) => go(`task/${id}`)} />}
        {screen === 'task' && arg && <TaskDetail id={arg} back={() => go('tasks')} />}
        {screen === 'report' && <ReportScreen />}
        {screen === 'mine' && <MineScreen />}
        {(screen === 'home' || !['tasks', 'task', 'report', 'mine'].includes(screen!)) && <HomeScreen open={(id) => go(`task/${id}`)} />}
      </main>
      <nav className="m-tabs">
        {tabs.map(([id, label, badge]) => (
          <button key={id} type="button" className={active === id ? 'active' : ''} onClick={() => go(id)} data-tab={id}>
            {label}
            {badge > 0 && <b className="m-badge" data-testid={`m-badge-${id}`}>{badge}</b>}
          </button>
        ))}
      </nav>
    </div>
  );
}
