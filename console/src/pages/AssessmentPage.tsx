/** 月度考核: league table per street, community, grid, worker or department for a month, with a score chart, .xlsx export and a printable view. */
import { useEffect, useState } from 'react';
import { get, getToken } from '../api/client';
import { BarChart } from '../components/charts';
import { useI18n } from '../i18n';
import type { DictKey } from '../i18n/dict';
import { errorText } from '../views/format';
import { ASSESSMENT_METRICS as METRICS } from '@gridlink/devices/workflow';
import type { Assessment, AssessmentLevel, AssessmentRow as Row } from '../api/types';

type Level = AssessmentLevel;
/** Coarse to fine, then people and departments (the order of the tabs). */
const LEVELS: readonly Level[] = ['street', 'community', 'grid', 'worker', 'department'];

/** The current month in China Standard Time. */
function thisMonth(): string {
  return new Date(Date.now() + 8 * 3600_000).toISOString().slice(0, 7);
}

export default function AssessmentPage() {
  const { t } = useI18n();
  const [level, setLevel] = useState<Level>('street');
  const [month, setMonth] = useState(thisMonth());
  const [rows, setRows] = useState<Row[] | null>(null);
  const [err, setErr] = useState<string | null>(null);

  useEffect(() => {
    setErr(null);
    setRows(null);
    get<Assessment>('/stats/assessment', { level, month })
      .then((r) => setRows(r.items))
      .catch((e: unknown) => setErr(errorText(t, e)));
  }, [level, month, t]);

  async function download() {
    const res = await fetch(`/api/v1/stats/assessment.xlsx?level=${level}&month=${month}`, { headers: { authorization: `Bearer ${getToken() ?? ''}` } });
    if (!res.ok) return setErr(`${res.status}`);
    const url = URL.createObjectURL(await res.blob());
    const a = document.createElement('a');
    a.href = url;
    a.download = `考核-${month}-${level}.xlsx`;
    a.click();
    URL.revokeObjectURL(url);
  }

  const pct = (v: number | null) => (v == null ? '—' : `${(v * 100).toFixed(1)}%`);
  const hrs = (v: number | null) => (v == null ? '—' : v.toFixed(2));
  return (
    <div className="page assessment" data-testid="assessment-page">
      <div className="toolbar no-print">
        <h2>{t('assess.title')}</h2>
        <label>
          {t('assess.month')} <input type="month" value={month} onChange={(e) => e.target.value && setMonth(e.target.value)} data-testid="assess-month" />
        </label>
        <div className="tabs" role="tablist">
          {LEVELS.map((l) => (
            <button key={l} type="button" role="tab" aria-selected={l === level} className={l === level ? 'active' : ''} onClick={() => setLevel(l)} data-level={l}>
              {t(`assess.level.${l}` as DictKey)}
            </button>
          ))}
        </div>
        <button type="button" onClick={() => void download()} data-testid="assess-xlsx">{t('assess.xlsx')}</button>
        <button type="button" onClick={() => window.print()}>{t('assess.print')}</button>
      </div>
      <h2 className="print-only">{t('assess.title')} · {month} · {t(`assess.level.${level}` as DictKey)}</h2>
      {err && <p className="hint">{err}</p>}
      {!rows && !err && <p className="empty">{t('common.loading')}</p>}
      {rows && (
        <>
          <div className="panel chart assess-chart">
            <h3>{t('assess.score')}</h3>
            <BarChart testId="assess-chart" format={(v) => v.toFixed(0)} bars={rows.filter((r) => r.score !== null).slice(0, 20).map((r) => ({ label: r.name, value: Math.round(r.score! * 10) / 10 }))} />
          </div>
          <div className="panel">
            <table className="grid-table league" data-testid="league-table">
              <thead>
                <tr>
                  <th>{t('assess.rank')}</th>
                  <th>{t('assess.unit')}</th>
                  <th>{t('assess.score')}</th>
                  <th>{t('assess.cases')}</th>
                  {METRICS.map((m) => <th key={m}>{t(`assess.m.${m}` as DictKey)}</th>)}
                  <th>{t('assess.overdue')}</th>
                  <th>{t('assess.response')}</th>
                  <th>{t('assess.handle')}</th>
                </tr>
              </thead>
              <tbody>
                {rows.map((r) => (
                  <tr key={r.key} data-key={r.key}>
                    <td>{r.rank}</td>
                    <td>{r.name}</td>
                    <td><strong>{r.score == null ? '—' : r.score.toFixed(1)}</strong></td>
                    <td>{r.cases}</td>
                    {METRICS.map((m) => <td key={m}>{pct(r.rates[m])}</td>)}
                    <td>{r.counts.overdue ?? 0}</td>
                    <td>{hrs(r.avgResponseWh)}</td>
                    <td>{hrs(r.avgHandleWh)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
            <p className="hint">{t('assess.formula')}</p>
          </div>
        </>
      )}
    </div>
  );
}
