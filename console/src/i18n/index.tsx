import { createContext, useCallback, useContext, useEffect, useMemo, useState, type ReactNode } from 'react';
import { dict, type DictKey, type Lang } from './dict';

export type Params = Record<string, string | number>;
export type T = (key: DictKey, params?: Params) => string;

/** Pure lookup, usable outside React (canvas labels, tests). */
export function translate(lang: Lang, key: DictKey, params?: Params): string {
  const entry = dict[key];
  let s: string = entry ? entry[lang === 'zh' ? 0 : 1] : key;
  if (params) for (const [k, v] of Object.entries(params)) s = s.split(`{${k}}`).join(String(v));
  return s;
}

interface I18n {
  lang: Lang;
  t: T;
  setLang(l: Lang): void;
  /** Locale for Intl formatting. */
  locale: string;
}

const Ctx = createContext<I18n | null>(null);
const KEY = 'gridlink.lang';

export function I18nProvider({ children }: { children: ReactNode }) {
  const [lang, setLangState] = useState<Lang>(() => (localStorage.getItem(KEY) === 'en' ? 'en' : 'zh'));
  const setLang = useCallback((l: Lang) => {
    localStorage.setItem(KEY, l);
    setLangState(l);
  }, []);
  useEffect(() => {
    document.documentElement.lang = lang === 'zh' ? 'zh-CN' : 'en';
    document.title = translate(lang, 'app.name');
  }, [lang]);
  const value = useMemo<I18n>(() => ({ lang, setLang, t: (k, p) => translate(lang, k, p), locale: lang === 'zh' ? 'zh-CN' : 'en-GB' }), [lang, setLang]);
  return <Ctx.Provider value={value}>{children}</Ctx.Provider>;
}

export function useI18n(): I18n {
  const v = useContext(Ctx);
  if (!v) throw new Error('useI18n outside I18nProvider');
  return v;
}
