/** History and evaluation: worker track replay, KPI dashboard, sensor charts. */
import { useEffect, useMemo, useRef, useState } from 'react';
import { get, items } from '../api/client';
import type { DeviceTypeDef } from '@gridlink/devices/catalogue';
import type { CasesPerDay, Kpi as KpiResult, Telemetry, TelemetryPoint, WorkerTrack } from '../api/types';
import { BarChart, LineChart } from '../components/charts';
import { query } from '../hooks/route';
import { useI18n } from '../i18n';
import type { DictKey } from '../i18n/dict';
import { GridLayer, PathLayer } from '../map/MapLayers';
import { MapView } from '../map/MapView';
import { WORKER_COLOR } from '../map/style';
import { devices, grids, workers } from '../store/data';
import { useEntities, useValue } from '../store/entities';
import { session } from '../store/session';
import { clock, distance, duration, errorText } from '../views/format';

type Tab = 'track' | 'kpi' | 'sensors';
const RANGES = { '1h': 3600_000, '6h': 6 * 3600_000, '24h': 24 * 3600_000, '7d': 7 * 24 * 3600_000 } as const;
type Range = keyof typeof RANGES;

export default function HistoryPage({ tab }: { tab?: string }) {
  const { t } = useI18n();
  const role = useValue(session)!.user.role;
  const tabs: Tab[] = role === 'integrator' ? ['sensors'] : ['track', 'kpi', 'sensors'];
  const cur = (tabs.includes(tab as Tab) ? tab : tabs[0]) as Tab;
  return (
    <div className="page">
      <nav className="tabs">
        {tabs.map((x) => (
          <a key={x} href={`#/history/${x}`} className={x === cur ? 'active' : ''}>{t(`history.${x}` as DictKey)}</a>
        ))}
      </nav>
      {cur === 'track' && <TrackReplay />}
      {cur === 'kpi' && <KpiDashboard />}
      {cur === 'sensors' && <SensorCharts />}
    </div>
  );
}

function RangeSelect({ value, onChange }: { value: Range; onChange: (r: Range) => void }) {
  const { t } = useI18n();
  return (
    <select value={value} onChange={(e) => onChange(e.target.value as Range)}>
      {(Object.keys(RANGES) as Range[]).map((r) => (
        <option key={r} value={r}>{t(`history.range.${r}` as DictKey)}</option>
      ))}
    </select>
  );
}

// ------------------------------------------------------------------ track replay

type Track = WorkerTrack;

/** Position on the track at time `ts` (linear between fixes). */
export function positionAt(points: Track['points'], ts: number): { lat: number; lon: number } | null {
  if (!points.length) return null;
  if (ts <= points[0]!.ts) return points[0]!;
  let lo = 0, hi = points.length - 1;
  if (ts >= points[hi]!.ts) return points[hi]!;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (points[mid]!.ts <= ts) lo = mid;
    else hi = mid;
  }
  const a = points[lo]!, b = points[hi]!;
  const k = (ts - a.ts) / Math.max(1, b.ts - a.ts);
  return { lat: a.lat + (b.lat - a.lat) * k, lon: a.lon + (b.lon - a.lon) * k };
}

function TrackReplay() {
  const { t, locale } = useI18n();
  const ws = useEntities(workers);
  const g = useValue(grids);
  const [workerId, setWorkerId] = useState(() => query().get('worker') ?? '');
  const [range, setRange] = useState<Range>('24h');
  const [track, setTrack] = useState<Track | null>(null);
  const [err, setErr] = useState<string | null>(null);
  const [cursor, setCursor] = useState(0);
  const [playing, setPlaying] = useState(false);
  const [speed, setSpeed] = useState(60);
  const cursorRef = useRef(0);
  cursorRef.current = cursor;

  async function load() {
    if (!workerId) return;
    setErr(null);
    setPlaying(false);
    try {
      const to = Date.now();
      const r = await get<Track>(`/workers/${encodeURIComponent(workerId)}/track`, { from: to - RANGES[range], to });
      setTrack(r);
      setCursor(r.points[0]?.ts ?? to);
    } catch (e) {
      setErr(errorText(t, e));
    }
  }
  useEffect(() => {
    if (workerId) void load();
  }, []); // eslint-disable-line react-hooks/exhaustive-deps

  useEffect(() => {
    if (!playing || !track?.points.length) return;
    const end = track.points[track.points.length - 1]!.ts;
    let last = performance.now();
    let raf = 0;
    const step = (now: number) => {
      const next = Math.min(end, cursorRef.current + (now - last) * speed);
      last = now;
      setCursor(next);
      if (next >= end) setPlaying(false);
      else raf = requestAnimationFrame(step);
    };
    raf = requestAnimationFrame(step);
    return () => cancelAnimationFrame(raf);
  }, [playing, speed, track]);

  const points = track?.points ?? [];
  const start = points[0]?.ts ?? 0;
  const end = points[points.length - 1]?.ts ?? 0;
  const markerRef = useRef<() => { lat: number; lon: number } | null>(() => null);
  markerRef.current = () => positionAt(points, cursorRef.current);
  const marker = useMemo(() => () => markerRef.current(), []);

  return (
    <>
      <div className="toolbar">
        <label className="row">
          {t('history.worker')}
          <select value={workerId} onChange={(e) => setWorkerId(e.target.value)} data-testid="track-worker">
            <option value="">—</option>
            {ws.map((w) => (
              <option key={w.id} value={w.id}>{w.name}</option>
            ))}
          </select>
        </label>
        <RangeSelect value={range} onChange={setRange} />
        <button type="button" className="primary" onClick={() => void load()} disabled={!workerId}>{t('history.load')}</button>
        {track && <span className="hint">{t('history.points', { n: track.fixes ?? points.length })} · {distance(t, track.distanceM ?? 0)}</span>}
      </div>
      {err && <p className="error">{err}</p>}
      <div className="replay">
        <div className="map-wrap">
          <MapView>
            <GridLayer data={g} labels fit={!points.length} />
            {points.length > 0 && <PathLayer id="track" points={points} color={WORKER_COLOR.en_route} marker={marker} fit />}
          </MapView>
        </div>
        <div className="panel">
          {points.length ? (
            <>
              <div className="row">
                <button type="button" className="primary" onClick={() => { if (cursor >= end) setCursor(start); setPlaying((p) => !p); }}>
                  {playing ? t('history.pause') : t('history.play')}
                </button>
                <label className="row">
                  {t('history.speed')}
                  <select value={speed} onChange={(e) => setSpeed(Number(e.target.value))}>
                    {[1, 10, 60, 300, 1800].map((s) => (
                      <option key={s} value={s}>{s}×</option>
                    ))}
                  </select>
                </label>
              </div>
              <input type="range" className="slider" min={start} max={end} value={cursor} onChange={(e) => setCursor(Number(e.target.value))} aria-label={t('common.time')} />
              <p>{clock(locale, cursor, true)}</p>
              <h3>{t('history.stops', { n: track?.stops.length ?? 0 })}</h3>
              <ul className="legend">
                {(track?.stops ?? []).map((s) => (
                  <li key={s.from}>
                    <button type="button" className="ghost" onClick={() => setCursor(s.from)}>
                      {clock(locale, s.from)} · {t('history.stop', { time: duration(t, s.durationS * 1000) })}
                    </button>
                  </li>
                ))}
              </ul>
            </>
          ) : (
            <p className="empty">{track ? t('history.noData') : t('common.empty')}</p>
          )}
        </div>
      </div>
    </>
  );
}

// ------------------------------------------------------------------ KPI dashboard

function KpiDashboard() {
  const { t } = useI18n();
  const g = useValue(grids);
  const ws = useEntities(workers);
  const [range, setRange] = useState<Range>('7d');
  const [kpi, setKpi] = useState<KpiResult | null>(null);
  const [byGrid, setByGrid] = useState<KpiResult | null>(null);
  const [byWorker, setByWorker] = useState<KpiResult | null>(null);
  const [perDay, setPerDay] = useState<Array<{ label: string; value: number }>>([]);
  const [err, setErr] = useState<string | null>(null);

  useEffect(() => {
    const to = Date.now();
    const from = to - RANGES[range];
    setErr(null);
    get<KpiResult>('/stats/kpi', { from, to }).then(setKpi).catch((e: unknown) => setErr(errorText(t, e)));
    get<KpiResult>('/stats/kpi', { from, to, groupBy: 'grid' }).then(setByGrid).catch(() => setByGrid(null));
    get<KpiResult>('/stats/kpi', { from, to, groupBy: 'worker' }).then(setByWorker).catch(() => setByWorker(null));
    // Counted by the hub per Asia/Shanghai day, without a cap.
    get<CasesPerDay>('/stats/cases-per-day', { from, to })
      .then((r) => setPerDay(r.items.map((d) => ({ label: d.date.slice(5), value: d.count }))))
      .catch(() => setPerDay([]));
  }, [range, t]);

  const pct = (v: number | null | undefined) => (v == null ? '—' : `${(v * 100).toFixed(1)}%`);
  const secs = (v: number | null | undefined) => (v == null ? '—' : duration(t, v * 1000));
  const gridName = (id: string | null) => g.features.find((f) => f.properties.id === id)?.properties.name ?? id ?? t('common.none');
  const workerName = (id: string | null) => ws.find((w) => w.id === id)?.name ?? id ?? t('common.none');

  return (
    <>
      <div className="toolbar">
        <h2>{t('history.kpi')}</h2>
        <RangeSelect value={range} onChange={setRange} />
      </div>
      {err && <p className="error">{err}</p>}
      {kpi && (
        <>
          <div className="kpis" data-testid="kpis">
            <Kpi label={t('kpi.onTimeRate')} value={pct(kpi.rates.onTimeClose)} />
            <Kpi label={t('kpi.reworkRate')} value={pct(kpi.rates.rework)} />
            <Kpi label={t('kpi.closeRate')} value={pct(kpi.rates.close)} />
            <Kpi label={t('kpi.avgResponse')} value={secs(kpi.avgSeconds.registerToDispatch ?? kpi.avgSeconds.reportToRegister)} />
            <Kpi label={t('kpi.avgHandling')} value={secs(kpi.avgSeconds.arriveToResolve ?? kpi.avgSeconds.reportToClose)} />
            <Kpi label={t('kpi.satisfaction')} value={pct(kpi.rates.satisfaction)} />
            <Kpi label={t('kpi.total')} value={String(kpi.total)} />
          </div>
          <div className="charts">
            <div className="panel chart">
              <h3>{t('kpi.byStatus')}</h3>
              <BarChart bars={Object.entries(kpi.byStatus).map(([k, v]) => ({ label: t(`case.status.${k}` as DictKey), value: v }))} />
            </div>
            <div className="panel chart">
              <h3>{t('kpi.perDay')}</h3>
              <BarChart bars={perDay} />
            </div>
            {byGrid?.groups && (
              <div className="panel chart">
                <h3>{t('kpi.byGrid')} · {t('kpi.onTimeRate')}</h3>
                <BarChart bars={byGrid.groups.slice(0, 16).map((x) => ({ label: gridName(x.key), value: (x.rates.onTimeClose ?? 0) * 100 }))} format={(v) => `${v.toFixed(0)}%`} />
              </div>
            )}
            {byWorker?.groups && (
              <div className="panel chart">
                <h3>{t('kpi.byWorker')} · {t('kpi.total')}</h3>
                <BarChart bars={byWorker.groups.slice(0, 16).map((x) => ({ label: workerName(x.key), value: x.total }))} />
              </div>
            )}
          </div>
        </>
      )}
    </>
  );
}

function Kpi({ label, value }: { label: string; value: string }) {
  return (
    <div className="panel kpi">
      <div className="v">{value}</div>
      <div className="l">{label}</div>
    </div>
  );
}

// ------------------------------------------------------------------ sensor charts

type TypeDef = Pick<DeviceTypeDef, 'type' | 'label' | 'metrics'>;

const BUCKETS = ['1m', '5m', '15m', '1h', '1d'] as const;
const BUCKET_LABEL: Record<(typeof BUCKETS)[number], [DictKey, number]> = { '1m': ['common.min', 1], '5m': ['common.min', 5], '15m': ['common.min', 15], '1h': ['common.hours', 1], '1d': ['common.days', 1] };

function SensorCharts() {
  const { t, lang, locale } = useI18n();
  const devs = useEntities(devices);
  const sensors = useMemo(() => devs.filter((d) => d.type.startsWith('sensor.')), [devs]);
  const [types, setTypes] = useState<TypeDef[]>([]);
  const [deviceId, setDeviceId] = useState(() => query().get('device') ?? '');
  const [range, setRange] = useState<Range>('24h');
  const [bucket, setBucket] = useState<(typeof BUCKETS)[number]>('15m');
  const [series, setSeries] = useState<Record<string, TelemetryPoint[]>>({});
  const [err, setErr] = useState<string | null>(null);

  useEffect(() => {
    items<TypeDef>('/device-types').then((r) => setTypes(r.items)).catch(() => undefined);
  }, []);
  const dev = devs.find((d) => d.id === deviceId);
  const metrics = types.find((x) => x.type === dev?.type)?.metrics.filter((m) => m.kind === 'number') ?? [];

  useEffect(() => {
    if (!deviceId || !metrics.length) return;
    const to = Date.now();
    const from = to - RANGES[range];
    setErr(null);
    Promise.all(
      metrics.map((m) =>
        get<Telemetry>(`/devices/${encodeURIComponent(deviceId)}/telemetry`, { metric: m.name, from, to, bucket }).then((r) => [m.name, r.points] as const),
      ),
    )
      .then((all) => setSeries(Object.fromEntries(all)))
      .catch((e: unknown) => setErr(errorText(t, e)));
  }, [deviceId, range, bucket, metrics.length, t]); // eslint-disable-line react-hooks/exhaustive-deps

  return (
    <>
      <div className="toolbar">
        <label className="row">
          {t('history.device')}
          <select value={deviceId} onChange={(e) => setDeviceId(e.target.value)} data-testid="sensor-device">
            <option value="">—</option>
            {sensors.map((d) => (
              <option key={d.id} value={d.id}>{d.name || d.id}</option>
            ))}
          </select>
        </label>
        <RangeSelect value={range} onChange={setRange} />
        <label className="row">
          {t('history.bucket')}
          <select value={bucket} onChange={(e) => setBucket(e.target.value as (typeof BUCKETS)[number])}>
            {BUCKETS.map((b) => (
              <option key={b} value={b}>{t(BUCKET_LABEL[b][0], { n: BUCKET_LABEL[b][1] })}</option>
            ))}
          </select>
        </label>
      </div>
      {err && <p className="error">{err}</p>}
      <div className="charts">
        {deviceId &&
          metrics.map((m) => {
            const pts = (series[m.name] ?? []).filter((p) => typeof p.value === 'number') as Array<{ ts: number; value: number; min?: number; max?: number }>;
            return (
              <div key={m.name} className="panel chart">
                <h3>{m.label[lang]}</h3>
                {pts.length ? <LineChart points={pts} unit={m.unit} locale={locale} testId={`chart-${m.name}`} /> : <p className="empty">{t('history.noData')}</p>}
              </div>
            );
          })}
      </div>
    </>
  );
}
