import { useEffect, useState, useSyncExternalStore } from 'react';
import { useI18n } from '../i18n';
import { outbox, snapshot, subscribe, tracker } from './state';

export const useAppState = () => useSyncExternalStore(subscribe, snapshot);

export function useOutbox() {
  const [, force] = useState(0);
  useEffect(() => outbox.subscribe(() => force((n) => n + 1)), []);
  return { count: outbox.count, refused: outbox.refused, stalled: outbox.stalled, blocked: outbox.blocked };
}

export function useTracker() {
  const [, force] = useState(0);
  useEffect(() => tracker.subscribe(() => force((n) => n + 1)), []);
  return tracker;
}

export function useNow(everyMs = 1000): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), everyMs);
    return () => clearInterval(t);
  }, [everyMs]);
  return now;
}

export function useRoute(): [string, (r: string) => void] {
  const read = () => location.hash.replace(/^#\/?/, '') || 'home';
  const [route, setRoute] = useState(read);
  useEffect(() => {
    const on = () => setRoute(read());
    window.addEventListener('hashchange', on);
    return () => window.removeEventListener('hashchange', on);
  }, []);
  return [route, (r) => (location.hash = `#/${r}`)];
}

/** Formatting helpers bound to the language. */
export function useFmt() {
  const { t, locale } = useI18n();
  return {
    ago(ms: number): string {
      const s = Math.max(0, Math.round(ms / 1000));
      if (s < 60) return t('m.ago.s', { n: s });
      if (s < 3600) return t('m.ago.m', { n: Math.floor(s / 60) });
      return t('m.ago.h', { n: Math.floor(s / 3600) });
    },
    dist(m: number): string {
      return m < 1000 ? t('m.unit.m', { n: Math.round(m) }) : t('m.unit.km', { n: (m / 1000).toFixed(1) });
    },
    dur(ms: number): string {
      const s = Math.floor(Math.abs(ms) / 1000);
      const h = Math.floor(s / 3600);
      const m = Math.floor((s % 3600) / 60);
      return h > 0 ? t('m.dur.hm', { h, m }) : t('m.dur.ms', { m, s: s % 60 });
    },
    time(ts: number): string {
      return new Date(ts).toLocaleString(locale, { month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit' });
    },
  };
}
