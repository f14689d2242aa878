/**
 * Tiny SVG charts (line with min/max band, bars). A chart library would
 * cost more than the whole console; these need only scales and paths.
 */
import { useMemo } from 'react';

const W = 640;
const H = 220;
const PAD = { l: 48, r: 12, t: 12, b: 28 };

function ticks(min: number, max: number, n = 4): number[] {
  if (!(max > min)) return [min];
  const step = (max - min) / n;
  return Array.from({ length: n + 1 }, (_, i) => min + step * i);
}

const fmt = (v: number) => (Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 10 ? v.toFixed(1) : v.toFixed(2));

export function LineChart({ points, unit, locale, testId }: { points: ReadonlyArray<{ ts: number; value: number; min?: number; max?: number }>; unit?: string; locale: string; testId?: string }) {
  const m = useMemo(() => {
    if (!points.length) return null;
    const t0 = points[0]!.ts;
    const t1 = points[points.length - 1]!.ts;
    let lo = Infinity, hi = -Infinity;
    for (const p of points) {
      lo = Math.min(lo, p.min ?? p.value);
      hi = Math.max(hi, p.max ?? p.value);
    }
    if (lo === hi) {
      lo -= 1;
      hi += 1;
    }
    const x = (ts: number) => PAD.l + ((ts - t0) / Math.max(1, t1 - t0)) * (W - PAD.l - PAD.r);
    const y = (v: number) => PAD.t + (1 - (v - lo) / (hi - lo)) * (H - PAD.t - PAD.b);
    const line = points.map((p, i) => `${i ? 'L' : 'M'}${x(p.ts).toFixed(1)},${y(p.value).toFixed(1)}`).join('');
    const hasBand = points.some((p) => p.min !== undefined);
    const band = hasBand
      ? points.map((p, i) => `${i ? 'L' : 'M'}${x(p.ts).toFixed(1)},${y(p.max ?? p.value).toFixed(1)}`).join('') +
        [...points].reverse().map((p) => `L${x(p.ts).toFixed(1)},${y(p.min ?? p.value).toFixed(1)}`).join('') + 'Z'
      : null;
    return { t0, t1, lo, hi, x, y, line, band };
  }, [points]);
  if (!m) return null;
  const timeFmt = (ts: number) => new Date(ts).toLocaleString(locale, { month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', hour12: false });
  return (
    <svg viewBox={`0 0 ${W} ${H}`} role="img" data-testid={testId}>
      {ticks(m.lo, m.hi).map((v) => (
        <g key={v}>
          <line x1={PAD.l} x2={W - PAD.r} y1={m.y(v)} y2={m.y(v)} stroke="#1e3350" />
          <text x={PAD.l - 6} y={m.y(v) + 4} textAnchor="end">{fmt(v)}</text>
        </g>
      ))}
      <text x={PAD.l} y={H - 8}>{timeFmt(m.t0)}</text>
      <text x={W - PAD.r} y={H - 8} textAnchor="end">{timeFmt(m.t1)}</text>
      {unit && <text x={PAD.l + 4} y={PAD.t + 10}>{unit}</text>}
      {m.band && <path d={m.band} fill="rgba(56,189,248,0.15)" />}
      <path d={m.line} fill="none" stroke="#38bdf8" strokeWidth={2} />
    </svg>
  );
}

export function BarChart({ bars, format = String, testId }: { bars: ReadonlyArray<{ label: string; value: number; color?: string }>; format?: (v: number) => string; testId?: string }) {
  const max = Math.max(1, ...bars.map((b) => b.value));
  const bw = (W - PAD.l - PAD.r) / Math.max(1, bars.length);
  return (
    <svg viewBox={`0 0 ${W} ${H}`} role="img" data-testid={testId}>
      {ticks(0, max).map((v) => (
        <g key={v}>
          <line x1={PAD.l} x2={W - PAD.r} y1={PAD.t + (1 - v / max) * (H - PAD.t - PAD.b)} y2={PAD.t + (1 - v / max) * (H - PAD.t - PAD.b)} stroke="#1e3350" />
          <text x={PAD.l - 6} y={PAD.t + (1 - v / max) * (H - PAD.t - PAD.b) + 4} textAnchor="end">{format(v)}</text>
        </g>
      ))}
      {bars.map((b, i) => {
        const h = (b.value / max) * (H - PAD.t - PAD.b);
        const x = PAD.l + i * bw + bw * 0.15;
        return (
          <g key={b.label + i}>
            <rect x={x} y={H - PAD.b - h} width={bw * 0.7} height={h} fill={b.color ?? '#0284c7'} rx={2} />
            <text x={x + bw * 0.35} y={H - PAD.b - h - 4} textAnchor="middle">{format(b.value)}</text>
            {bars.length <= 16 && <text x={x + bw * 0.35} y={H - 8} textAnchor="middle">{b.label.length > 8 ? b.label.slice(0, 8) + '…' : b.label}</text>}
          </g>
        );
      })}
    </svg>
  );
}
