/**
 * Alarm titles as a duty officer says them (`积水 37 cm ≥ 30 cm`, `烟感报警`,
 * `Flooding 37 cm ≥ 30 cm`, `Smoke alarm`), not rule internals
 * (`water_level_cm 37 >= 30`). Built from the alarm's type and the hub's
 * message; anything not recognised falls back to the message.
 */
// The catalogue entry, not the package root: the root compiles payload schemas
// with new Function, which the console's Content-Security-Policy forbids.
import { catalogue, DEVICE_TYPES } from '@gridlink/devices/catalogue';

type Locale = 'zh' | 'en';
type Pair = readonly [zh: string, en: string];

/** What a breach of a metric is called on duty (the incident, not the instrument). */
const METRIC_INCIDENT: Record<string, Pair> = {
  water_level_cm: ['积水', 'Flooding'],
  ch4_pct_lel: ['燃气泄漏', 'Gas leak'],
  smoke_obscuration_pct_per_m: ['烟雾浓度超标', 'Smoke density high'],
  tilt_deg: ['井盖倾斜', 'Manhole cover tilted'],
  battery_pct: ['电量低', 'Battery low'],
};

const EVENT: Record<string, Pair> = {
  smoke_alarm: ['烟感报警', 'Smoke alarm'],
  smoke_alarm_clear: ['烟感复位', 'Smoke alarm cleared'],
  water_level_high: ['积水超限', 'Water level high'],
  tamper: ['设备被拆', 'Device tampered'],
  low_battery: ['电量低', 'Battery low'],
  fault: ['设备故障', 'Device fault'],
  cover_open: ['井盖开启', 'Manhole cover open'],
  gas_alarm: ['燃气报警', 'Gas alarm'],
  // camera alerts (天网 AI)
  fire: ['视频发现火情', 'Fire on camera'],
  smoke: ['视频发现烟雾', 'Smoke on camera'],
  crowd: ['人员聚集', 'Crowd gathering'],
  intrusion: ['非法闯入', 'Intrusion'],
  illegal_parking: ['乱停车', 'Illegal parking'],
  street_vending: ['占道经营', 'Street vending'],
  garbage_overflow: ['垃圾满溢', 'Overflowing bins'],
  fall: ['人员跌倒', 'Person fallen'],
  fight: ['打架斗殴', 'Fight'],
  waterlogging: ['视频发现积水', 'Flooding on camera'],
  road_obstruction: ['道路遗撒障碍', 'Road obstruction'],
};

const OPS: Record<string, string> = { '>=': '≥', '<=': '≤', '>': '>', '<': '<', '==': '=', '!=': '≠' };

const metricDef = (name: string) => {
  for (const t of DEVICE_TYPES) {
    const m = catalogue[t].metrics.find((x) => x.name === name);
    if (m) return m;
  }
  return undefined;
};

export function alarmTitle(a: { type?: string; message?: string | null; rule: string }, locale: Locale): string {
  const i = locale === 'en' ? 1 : 0;
  const msg = a.message ?? '';
  // threshold: "<metric> <value> <op> <limit>[ for Ns][ (n in a row)]"
  const th = /^([a-z0-9_]+) (-?[\d.]+) (>=|<=|==|!=|>|<) (-?[\d.]+)/.exec(msg);
  if (th) {
    const [, metric, value, op, limit] = th as unknown as [string, string, string, string, string];
    const def = metricDef(metric);
    const name = METRIC_INCIDENT[metric]?.[i] ?? (def ? def.label[locale] : metric);
    const unit = def?.unit ? ` ${def.unit}` : '';
    return `${name} ${value}${unit} ${OPS[op]} ${limit}${unit}`;
  }
  if (a.type === 'offline') {
    const s = /no message for (\d+)s/.exec(msg);
    const min = s ? Math.round(Number(s[1]) / 60) : null;
    return locale === 'en' ? `Device offline${min ? ` for ${min} min` : ''}` : `设备离线${min ? ` ${min} 分钟` : ''}`;
  }
  if (a.type === 'correlation') return locale === 'en' ? 'Smoke alarm confirmed by camera' : '烟感与视频联动确认火情';
  const ev = a.type ? EVENT[a.type] : undefined;
  if (ev) {
    const conf = /\((\d+)%\)/.exec(msg);
    return `${ev[i]}${conf ? ` ${conf[1]}%` : ''}`;
  }
  return msg || a.rule;
}
