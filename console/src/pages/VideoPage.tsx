/** Video wall: 1, 4 or 9 tiles, each a CameraPlayer; the layout and cameras survive a reload. */
import { useEffect, useMemo, useState } from 'react';
import { query } from '../hooks/route';
import { useI18n } from '../i18n';
import { cameras, devices } from '../store/data';
import { useEntities, useValue } from '../store/entities';
import { lowLatency } from '../store/settings';
import { CameraPlayer } from '../video/CameraPlayer';

const KEY = 'gridlink.wall';
type Layout = 1 | 4 | 9;

function loadWall(): { n: Layout; slots: (string | null)[] } {
  try {
    const v = JSON.parse(localStorage.getItem(KEY) ?? 'null') as { n: Layout; slots: (string | null)[] } | null;
    if (v && [1, 4, 9].includes(v.n)) return v;
  } catch {
    /* default */
  }
  return { n: 4, slots: [] };
}

export default function VideoPage() {
  const { t } = useI18n();
  const cams = useEntities(cameras);
  const ll = useValue(lowLatency);
  const devs = useEntities(devices);
  const options = useMemo(() => (cams.length ? cams : devs.filter((d) => d.type === 'camera')).map((c) => ({ id: c.id, name: c.name || c.id })), [cams, devs]);
  const [wall, setWall] = useState(() => {
    const w = loadWall();
    // #/video?cams=a,b (from a linkage popup or a map card) fills the first tiles.
    const fromUrl = query().get('cams')?.split(',').filter(Boolean) ?? [];
    if (fromUrl.length) {
      const n: Layout = fromUrl.length > 4 ? 9 : fromUrl.length > 1 ? 4 : w.n;
      return { n, slots: [...fromUrl, ...w.slots.filter((s) => !fromUrl.includes(s ?? ''))].slice(0, n) };
    }
    return w;
  });
  useEffect(() => localStorage.setItem(KEY, JSON.stringify(wall)), [wall]);
  // Empty wall and cameras known: fill it with the first ones.
  useEffect(() => {
    if (wall.slots.every((s) => !s) && options.length) setWall((w) => ({ ...w, slots: options.slice(0, w.n).map((o) => o.id) }));
  }, [options.length]); // eslint-disable-line react-hooks/exhaustive-deps

  const setSlot = (i: number, id: string | null) =>
    setWall((w) => {
      const slots = [...w.slots];
      while (slots.length <= i) slots.push(null);
      slots[i] = id;
      return { ...w, slots };
    });

  return (
    <div className="page">
      <div className="toolbar">
        <h2>{t('video.wall')}</h2>
        {([1, 4, 9] as const).map((n) => (
          <button key={n} type="button" className={wall.n === n ? 'primary' : ''} onClick={() => setWall((w) => ({ ...w, n }))} data-testid={`layout-${n}`}>
            {t('video.layout', { n })}
          </button>
        ))}
        <label className="check">
          <input type="checkbox" checked={ll} onChange={(e) => lowLatency.set(e.target.checked)} data-testid="low-latency" /> {t('video.lowLatency')}
        </label>
        {!options.length && <span className="hint">{t('video.noCameras')}</span>}
      </div>
      <div className={`wall n${wall.n}`} data-testid="video-wall">
        {Array.from({ length: wall.n }, (_, i) => {
          const id = wall.slots[i] ?? null;
          const name = options.find((o) => o.id === id)?.name;
          return (
            <div className="wall-tile" key={i}>
              <select value={id ?? ''} onChange={(e) => setSlot(i, e.target.value || null)} aria-label={t('video.pick')} data-testid={`tile-select-${i}`}>
                <option value="">{t('video.pick')}</option>
                {options.map((o) => (
                  <option key={o.id} value={o.id}>{o.name}</option>
                ))}
              </select>
              {id ? <CameraPlayer key={id} cameraId={id} title={name} /> : <div className="wall-empty">{t('video.empty')}</div>}
            </div>
          );
        })}
      </div>
    </div>
  );
}
