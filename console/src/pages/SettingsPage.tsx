/** Base map tiles (template, subdomains, datum) and the alarm tone check. */
import { useState } from 'react';
import { testSound } from '../components/alarm-sound';
import { useI18n } from '../i18n';
import type { Datum } from '../map/projection';
import { useValue } from '../store/entities';
import { TILE_PRESETS, tiles } from '../store/settings';

export default function SettingsPage() {
  const { t } = useI18n();
  const cur = useValue(tiles);
  const [form, setForm] = useState(cur);
  return (
    <div className="page" style={{ maxWidth: '48rem' }}>
      <h2>{t('settings.title')}</h2>
      <div className="row" style={{ marginBottom: '0.75rem' }}>
        <span>{t('settings.preset')}</span>
        {(Object.keys(TILE_PRESETS) as (keyof typeof TILE_PRESETS)[]).map((k) => (
          <button key={k} type="button" onClick={() => setForm(TILE_PRESETS[k])}>{t(`settings.preset.${k}`)}</button>
        ))}
      </div>
      <label className="field">
        <span>{t('settings.tiles')}</span>
        <input value={form.template} onChange={(e) => setForm({ ...form, template: e.target.value })} placeholder={t('settings.tilesPlaceholder')} data-testid="tile-template" />
        <small className="hint">{t('settings.tilesHint')}</small>
      </label>
      <label className="field">
        <span>{t('settings.subdomains')}</span>
        <input value={form.subdomains} onChange={(e) => setForm({ ...form, subdomains: e.target.value })} />
      </label>
      <label className="field">
        <span>{t('settings.crs')}</span>
        <select value={form.datum} onChange={(e) => setForm({ ...form, datum: e.target.value as Datum })}>
          <option value="wgs84">{t('settings.crs.wgs84')}</option>
          <option value="gcj02">{t('settings.crs.gcj02')}</option>
        </select>
      </label>
      <div className="row">
        <button type="button" className="primary" onClick={() => tiles.set({ ...form })}>{t('common.save')}</button>
      </div>
      <h2 style={{ marginTop: '2rem' }}>{t('settings.sound')}</h2>
      <button type="button" onClick={testSound}>{t('settings.testSound')}</button>
    </div>
  );
}
