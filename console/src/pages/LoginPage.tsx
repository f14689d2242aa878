import { useState, type FormEvent } from 'react';
import { ApiError } from '../api/client';
import { unlockAudio } from '../components/alarm-sound';
import { useI18n } from '../i18n';
import { login } from '../store/session';
import { errorText } from '../views/format';

export function LoginPage() {
  const { t, lang, setLang } = useI18n();
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [busy, setBusy] = useState(false);
  const [err, setErr] = useState<string | null>(null);

  async function submit(e: FormEvent) {
    e.preventDefault();
    // The click that signs in also lets the alarm tone play later.
    unlockAudio();
    setBusy(true);
    setErr(null);
    try {
      await login(username, password);
    } catch (e) {
      setErr(e instanceof ApiError && (e.status === 401 || e.status === 400) ? t('login.failed') : errorText(t, e));
    } finally {
      setBusy(false);
    }
  }

  return (
    <div className="login">
      <form className="login-card" onSubmit={(e) => void submit(e)} data-testid="login-form">
        <div className="login-brand">
          <span className="logo" aria-hidden>◈</span>
          <h1>{t('app.name')}</h1>
          <p>{t('app.subtitle')}</p>
        </div>
        <h2>{t('login.title')}</h2>
        <label className="field">
          <span>{t('login.username')}</span>
          <input name="username" autoComplete="username" value={username} onChange={(e) => setUsername(e.target.value)} required autoFocus />
        </label>
        <label className="field">
          <span>{t('login.password')}</span>
          <input name="password" type="password" autoComplete="current-password" value={password} onChange={(e) => setPassword(e.target.value)} required />
        </label>
        {err && <p className="error" role="alert">{err}</p>}
        <button type="submit" className="primary" disabled={busy} data-testid="login-submit">
          {busy ? t('login.busy') : t('login.submit')}
        </button>
        <button type="button" className="ghost lang" onClick={() => setLang(lang === 'zh' ? 'en' : 'zh')} data-testid="lang-switch" aria-label={t('lang.label')}>
          <span lang={lang === 'zh' ? 'en' : 'zh-CN'}>{t('lang.switch')}</span>
        </button>
      </form>
    </div>
  );
}
