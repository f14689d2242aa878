/**
 * 地图上报: a case opened by hand at a point picked on the map — category
 * (the catalogue, filterable, grouped by 大类), description, optional photos —
 * through the officers' REST (`POST /cases`, source officer). The hub checks
 * everything again (region, category, photo bytes); this only spares a round trip.
 */
import { useEffect, useMemo, useState } from 'react';
import { ApiError, get, post } from '../api/client';
import type { CaseSummary, Category, GridLocation, Page } from '../api/types';
import type { DictKey } from '../i18n/dict';
import { useI18n } from '../i18n';
import { cases, grids } from '../store/data';
import { useValue } from '../store/entities';
import { errorText } from './format';

/** A category as the form offers it. */
export type CategoryItem = Pick<Category, 'code' | 'key' | 'kind' | 'majorCode' | 'majorName' | 'name' | 'nameEn'>;

/** The hub's photo limit: 1,400,000 base64 characters, about 1 MB of image. */
export const MAX_PHOTO_BYTES = 1_000_000;
export const MAX_PHOTOS = 9;
const IMAGE_TYPES = ['image/jpeg', 'image/png'];
/** Refusals the form explains in the console's language; anything else is shown as the hub says it. */
const KNOWN_ERRORS = ['OUTSIDE_REGION', 'CATEGORY_NOT_FOUND', 'EVIDENCE_INVALID'] as const;

let catalogue: Promise<CategoryItem[]> | null = null;
function loadCategories(): Promise<CategoryItem[]> {
  catalogue ??= get<Page<Category>>('/categories').then((r) => r.items).catch((e: unknown) => {
    catalogue = null;
    throw e;
  });
  return catalogue;
}

function readPhoto(f: File): Promise<string> {
  return new Promise((resolve, reject) => {
    const r = new FileReader();
    r.onload = () => resolve(String(r.result));
    r.onerror = () => reject(r.error);
    r.readAsDataURL(f);
  });
}

export function NewCaseForm({ at, onClose, onCreated }: { at: { lat: number; lon: number }; onClose: () => void; onCreated: (c: CaseSummary) => void }) {
  const { t, lang } = useI18n();
  const g = useValue(grids);
  const [cats, setCats] = useState<CategoryItem[] | null>(null);
  const [filter, setFilter] = useState('');
  const [category, setCategory] = useState('');
  const [description, setDescription] = useState('');
  const [photos, setPhotos] = useState<Array<{ name: string; data: string }>>([]);
  const [gridId, setGridId] = useState<string | null | undefined>(undefined);
  const [err, setErr] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    loadCategories().then(setCats).catch((e: unknown) => setErr(errorText(t, e)));
  }, [t]);
  useEffect(() => {
    let live = true;
    setGridId(undefined);
    get<GridLocation>('/grids/locate', { lat: at.lat, lon: at.lon }).then((r) => live && setGridId(r.gridId)).catch(() => live && setGridId(null));
    return () => {
      live = false;
    };
  }, [at.lat, at.lon]);

  const label = (c: CategoryItem) => (lang === 'en' ? c.nameEn : c.name);
  // Grouped by 大类, narrowed by what is typed (code, key, either name).
  const groups = useMemo(() => {
    const q = filter.trim().toLowerCase();
    const m = new Map<string, CategoryItem[]>();
    for (const c of cats ?? []) {
      if (q && ![c.code, c.key ?? '', c.name, c.nameEn, c.majorName].some((s) => s.toLowerCase().includes(q))) continue;
      const k = `${c.kind === 'event' ? t('newCase.kind.event') : t('newCase.kind.component')} · ${c.majorName}`;
      m.set(k, [...(m.get(k) ?? []), c]);
    }
    return [...m];
  }, [cats, filter, t]);
  const shown = groups.flatMap(([, list]) => list);
  useEffect(() => {
    if (shown.length && !shown.some((c) => c.code === category)) setCategory(shown[0]!.code);
  }, [shown, category]);

  const gridName = gridId ? g.features.find((f) => f.properties.id === gridId)?.properties.name ?? gridId : null;

  async function addPhotos(files: FileList | null) {
    setErr(null);
    const list = [...(files ?? [])];
    const bad = list.find((f) => !IMAGE_TYPES.includes(f.type));
    if (bad) return setErr(t('newCase.photoType', { name: bad.name }));
    const big = list.find((f) => f.size > MAX_PHOTO_BYTES);
    if (big) return setErr(t('newCase.photoSize', { name: big.name }));
    if (photos.length + list.length > MAX_PHOTOS) return setErr(t('newCase.photoCount', { n: MAX_PHOTOS }));
    const read = await Promise.all(list.map(async (f) => ({ name: f.name, data: await readPhoto(f) })));
    setPhotos((p) => [...p, ...read]);
  }

  async function submit() {
    if (!category) return setErr(t('newCase.pickCategory'));
    if (!description.trim()) return setErr(t('newCase.needDescription'));
    setBusy(true);
    setErr(null);
    try {
      const c = await post<CaseSummary>('/cases', {
        category, lat: at.lat, lon: at.lon, description: description.trim(), source: 'officer',
        ...(photos.length ? { photos: photos.map((p) => p.data) } : {}),
      });
      cases.upsert(c);
      onCreated(c);
    } catch (e) {
      const code = e instanceof ApiError ? e.code : '';
      setErr((KNOWN_ERRORS as readonly string[]).includes(code) ? t(`newCase.err.${code}` as DictKey) : errorText(t, e));
    } finally {
      setBusy(false);
    }
  }

  return (
    <form className="panel new-case" data-testid="new-case-form" onSubmit={(e) => { e.preventDefault(); void submit(); }}>
      <header>
        <h3>{t('newCase.title')}</h3>
        <button type="button" className="close" onClick={onClose} aria-label={t('common.close')}>×</button>
      </header>
      <dl className="kv">
        <dt>{t('newCase.where')}</dt>
        <dd data-testid="new-case-point">{at.lat.toFixed(6)}, {at.lon.toFixed(6)}</dd>
        <dt>{t('map.grid.card')}</dt>
        <dd data-testid="new-case-grid">{gridId === undefined ? '…' : gridName ?? t('newCase.noGrid')}</dd>
      </dl>
      <label className="field">
        <span>{t('newCase.category')}</span>
        <input value={filter} onChange={(e) => setFilter(e.target.value)} placeholder={t('newCase.filter')} data-testid="new-case-filter" />
        <select value={category} onChange={(e) => setCategory(e.target.value)} size={6} data-testid="new-case-category" required>
          {groups.map(([group, list]) => (
            <optgroup key={group} label={group}>
              {list.map((c) => (
                <option key={c.code} value={c.code}>{label(c)} · {c.code}</option>
              ))}
            </optgroup>
          ))}
        </select>
        {cats && !shown.length && <small className="hint">{t('newCase.noMatch')}</small>}
      </label>
      <label className="field">
        <span>{t('newCase.description')}</span>
        <textarea value={description} onChange={(e) => setDescription(e.target.value)} rows={3} maxLength={2000} placeholder={t('newCase.descriptionHint')} data-testid="new-case-description" />
      </label>
      <label className="field">
        <span>{t('newCase.photos')}</span>
        <input type="file" accept={IMAGE_TYPES.join(',')} multiple onChange={(e) => { void addPhotos(e.target.files); e.target.value = ''; }} data-testid="new-case-photos" />
        <small className="hint">{t('newCase.photoHint', { n: MAX_PHOTOS })}</small>
      </label>
      {photos.length > 0 && (
        <div className="evidence" data-testid="new-case-thumbs">
          {photos.map((p, i) => (
            <button type="button" key={`${p.name}-${i}`} className="thumb" title={t('newCase.removePhoto')} onClick={() => setPhotos((x) => x.filter((_, j) => j !== i))}>
              <img src={p.data} alt={p.name} />
            </button>
          ))}
        </div>
      )}
      {err && <p className="error" data-testid="new-case-error">{err}</p>}
      <div className="row">
        <button type="submit" className="primary" disabled={busy || !cats} data-testid="new-case-submit">{t('newCase.submit')}</button>
        <button type="button" onClick={onClose}>{t('common.cancel')}</button>
      </div>
    </form>
  );
}
