import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { I18nProvider } from '../i18n';
import { MobileApp } from './App';
import { restore } from './state';
import './m.css';

// The service worker caches the app shell so the app opens without network.
if ('serviceWorker' in navigator && location.protocol !== 'file:') {
  void navigator.serviceWorker.register('./sw.js', { scope: './' }).catch(() => undefined);
}

void restore().finally(() => {
  createRoot(document.getElementById('root')!).render(
    <StrictMode>
      <I18nProvider>
        <MobileApp />
      </I18nProvider>
    </StrictMode>,
  );
});
