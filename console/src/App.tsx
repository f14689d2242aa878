/**
 * The shell: login gate, role-aware navigation, connection indicator,
 * language switch, the forced critical-alarm popup and the linkage popup.
 */
import { lazy, Suspense, useEffect } from 'react';
import { CriticalAlarm } from './components/CriticalAlarm';
import { LinkagePopup } from './components/LinkagePopup';
import { navigate, useRoute } from './hooks/route';
import { useI18n } from './i18n';
import type { DictKey } from './i18n/dict';
import { LoginPage } from './pages/LoginPage';
import { MapPage } from './pages/MapPage';
import { alarms, cases, connection, lastSync } from './store/data';
import { useEntities, useValue } from './store/entities';
import { PAGES_BY_ROLE, type Page } from './store/roles';
import { logout, session } from './store/session';
import { OPEN_STATUSES } from './api/types';
import { clock } from './views/format';
import { useTick } from './hooks/useTick';

const AlarmsPage = lazy(() => import('./pages/AlarmsPage'));
const CasesPage = lazy(() => import('./pages/CasesPage'));
const VideoPage = lazy(() => import('./pages/VideoPage'));
const HistoryPage = lazy(() => import('./pages/HistoryPage'));
const AssessmentPage = lazy(() => import('./pages/AssessmentPage'));
const AdminPage = lazy(() => import('./pages/AdminPage'));
const SettingsPage = lazy(() => import('./pages/SettingsPage'));

const NAV_LABEL: Record<Page, DictKey> = {
  map: 'nav.map',
  alarms: 'nav.alarms',
  cases: 'nav.cases',
  video: 'nav.video',
  history: 'nav.history',
  assessment: 'nav.assessment',
  admin: 'nav.admin',
  settings: 'nav.settings',
};

export function App() {
  const s = useValue(session);
  if (!s) return <LoginPage />;
  return <Shell />;
}

function Shell() {
  const s = useValue(session)!;
  const { t, lang, setLang } = useI18n();
  const route = useRoute();
  const allowed = PAGES_BY_ROLE[s.user.role];
  const page = (allowed.includes(route[0] as Page) ? route[0] : allowed[0]) as Page;
  useEffect(() => {
    if (route[0] !== page) navigate(page);
  }, [route, page]);

  return (
    <div className="shell" data-role={s.user.role}>
      <header className="topbar">
        <div className="brand">
          <span className="logo" aria-hidden>◈</span>
          <span>{t('app.name')}</span>
        </div>
        <nav className="nav" aria-label={t('app.name')}>
          {allowed.map((p) => (
            <a key={p} href={`#/${p}`} className={p === page ? 'active' : ''} data-nav={p}>
              {t(NAV_LABEL[p])}
              {p === 'alarms' && <AlarmBadge />}
              {p === 'cases' && <CaseBadge />}
            </a>
          ))}
        </nav>
        <div className="topbar-right">
          <ConnIndicator />
          <Clock />
          <span className="user" title={s.user.username}>
            {s.user.displayName} · {t(`role.${s.user.role}` as DictKey)}
          </span>
          <button type="button" className="ghost" onClick={() => setLang(lang === 'zh' ? 'en' : 'zh')} data-testid="lang-switch" aria-label={t('lang.label')}>
            <span lang={lang === 'zh' ? 'en' : 'zh-CN'}>{t('lang.switch')}</span>
          </button>
          <button type="button" className="ghost" onClick={logout} data-testid="logout">
            {t('login.logout')}
          </button>
        </div>
      </header>
      <main className="content">
        <Suspense fallback={<div className="loading">{t('common.loading')}</div>}>
          {page === 'map' && <MapPage />}
          {page === 'alarms' && <AlarmsPage />}
          {page === 'cases' && <CasesPage id={route[1]} />}
          {page === 'video' && <VideoPage />}
          {page === 'history' && <HistoryPage tab={route[1]} />}
          {page === 'assessment' && <AssessmentPage />}
          {page === 'admin' && <AdminPage tab={route[1]} />}
          {page === 'settings' && <SettingsPage />}
        </Suspense>
      </main>
      <CriticalAlarm />
      <LinkagePopup />
    </div>
  );
}

function ConnIndicator() {
  const c = useValue(connection);
  const synced = useValue(lastSync);
  const { t, locale } = useI18n();
  const label = c === 'online' ? t('conn.online') : c === 'connecting' ? t('conn.connecting') : t('conn.offline');
  return (
    <span className={`conn conn-${c}`} data-testid="conn" data-state={c} title={synced ? `${t('conn.resynced')} ${clock(locale, synced)}` : label}>
      <span className="dot" /> {label}
    </span>
  );
}

function Clock() {
  const { locale } = useI18n();
  const now = useTick(1000);
  return <span className="clock">{clock(locale, now, true)}</span>;
}

function AlarmBadge() {
  const list = useEntities(alarms);
  const n = list.filter((a) => a.status === 'active' && !a.acknowledged).length;
  return n ? <span className="badge danger">{n}</span> : null;
}

function CaseBadge() {
  const list = useEntities(cases);
  const n = list.filter((c) => OPEN_STATUSES.includes(c.status)).length;
  return n ? <span className="badge">{n}</span> : null;
}
