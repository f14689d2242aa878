/**
 * Backtest: replays stored history through one rule with the live evaluator
 * and a simulated alarm/case book, and answers the alarms and cases the rule
 * would have raised, and when. Messages are replayed in arrival order
 * (received_at); absence and auto-clear are advanced on the arrival clock,
 * exactly as the live hub's tick does. Assumption, stated in the answer:
 * nobody closes a case during the window, so later triggers of the same
 * device join the case its first alarm opened (as they do live until a case
 * is closed).
 */
import type { DeviceType, Normalised, Severity } from '@gridlink/devices';
import type { Db } from '../store/index.js';
import { RuleEvaluator, type DeviceLite, type Signal } from './evaluator.js';
import type { Rule } from './rule.schema.js';

export interface BacktestAlarm {
  deviceId: string;
  ts: number;
  lastTs: number;
  clearedAt: number | null;
  severity: Severity;
  type: string;
  message: string;
  count: number;
  /** Index into `cases`, or null when the rule opens none. */
  caseIndex: number | null;
}

export interface BacktestCase {
  index: number;
  deviceId: string;
  category: string;
  openedAt: number;
  alarms: number;
}

export interface BacktestResult {
  ruleId: string;
  from: number;
  to: number;
  messages: number;
  alarms: BacktestAlarm[];
  cases: BacktestCase[];
  totals: { alarms: number; cases: number; stillActive: number };
  assumptions: string;
}

export interface BacktestDeps {
  db: Db;
  devices: () => Iterable<{ id: string; type: DeviceType; gridId: string | null; lat: number | null; lon: number | null }>;
  contains: (regionId: string, gridId: string | null) => boolean;
  /** Category code for a reference (code, key or name); null when unknown. */
  category: (ref: string) => string | null;
}

interface Row {
  ts: Date;
  at: Date;
  device_id: string;
  kind: 'reading' | 'event' | 'alert' | 'any';
  name: string | null;
  value: number | null;
  value_text: string | null;
  severity: string | null;
  confidence: number | null;
}

/** Rows one backtest may load: enough for a month of a busy district's matching messages, bounded in memory. */
export const MAX_ROWS = 200_000;
/** Longest window one backtest may replay. */
export const MAX_WINDOW_MS = 31 * 24 * 3600_000;

/** `deviceIds`: only these devices' history (a region-scoped caller); null = every device. */
async function history(db: Db, rule: Rule, from: number, to: number, deviceIds: string[] | null): Promise<Row[]> {
  // $1 is the device filter, $2/$3 the window; each query's own parameters follow.
  const range = 'received_at >= to_timestamp($2 / 1000.0) and received_at < to_timestamp($3 / 1000.0) and ($1::text[] is null or device_id = any($1::text[]))';
  const cols = (kind: string, name: string, value = 'null::float8', text = 'null::text', sev = 'null::text', conf = 'null::float8') =>
    `ts, received_at as at, device_id, '${kind}' as kind, ${name} as name, ${value} as value, ${text} as value_text, ${sev} as severity, ${conf} as confidence`;
  const order = `order by at, ts limit ${MAX_ROWS}`;
  const base = [deviceIds, from, to];
  switch (rule.kind) {
    case 'threshold':
      return db.query<Row>(`select ${cols('reading', 'metric', 'value', 'value_text')} from readings where ${range} and metric = $4 ${order}`, [...base, rule.metric]);
    case 'match': {
      const types = [...rule.types, ...(rule.clearTypes ?? [])];
      const typeFilter = rule.types.length ? 'and type = any($4::text[])' : '';
      return rule.channel === 'event'
        ? db.query<Row>(`select ${cols('event', 'type', undefined, undefined, 'severity')} from events where ${range} ${typeFilter} ${order}`, [...base, ...(typeFilter ? [types] : [])])
        : db.query<Row>(`select ${cols('alert', 'type', undefined, undefined, undefined, 'confidence')} from alerts where ${range} ${typeFilter} ${order}`, [...base, ...(typeFilter ? [types] : [])]);
    }
    case 'correlation': {
      const ev = rule.signals.filter((s) => s.channel === 'event').flatMap((s) => s.types);
      const al = rule.signals.filter((s) => s.channel === 'alert').flatMap((s) => s.types);
      return db.query<Row>(
        `select * from (
           select ${cols('event', 'type', undefined, undefined, 'severity')} from events where ${range} and type = any($4::text[])
           union all
           select ${cols('alert', 'type', undefined, undefined, undefined, 'confidence')} from alerts where ${range} and type = any($5::text[])
         ) x ${order}`,
        [...base, ev, al],
      );
    }
    case 'absence':
      // Every stored message of any kind is a sign of life.
      return db.query<Row>(
        `select * from (${['readings', 'events', 'alerts', 'positions', 'device_status', 'device_messages']
          .map((tb) => `select ${cols('any', 'null::text')} from ${tb} where ${range}`).join(' union all ')}) x ${order}`,
        base,
      );
  }
}

function toMsg(r: Row): Normalised {
  const ts = new Date(r.ts).getTime();
  switch (r.kind) {
    case 'reading':
      return { channel: 'telemetry', ts, values: { [r.name!]: r.value ?? r.value_text ?? Number.NaN } };
    case 'event':
      return { channel: 'event', ts, type: r.name!, ...(r.severity ? { severity: r.severity as Severity } : {}) };
    case 'alert':
      return { channel: 'alert', ts, type: r.name!, ...(r.confidence !== null ? { confidence: r.confidence } : {}) };
    case 'any':
      return { channel: 'status', ts, online: true };
  }
}

/** `regionId`: replay only the devices inside this region (the caller's); null = every device. */
export async function backtest(deps: BacktestDeps, input: Rule, from: number, to: number, regionId: string | null = null): Promise<BacktestResult> {
  const rule = { ...input, enabled: true } as Rule;
  const devices = new Map([...deps.devices()].filter((d) => regionId === null || deps.contains(regionId, d.gridId)).map((d) => [d.id, d]));
  const lite: DeviceLite[] = [...devices.values()].map((d) => ({ id: d.id, type: d.type, gridId: d.gridId, since: from }));
  const ev = new RuleEvaluator({ contains: deps.contains, devices: () => lite });
  ev.setRules([rule]);

  const alarms: BacktestAlarm[] = [];
  const cases: BacktestCase[] = [];
  const active = new Map<string, BacktestAlarm>();
  /** `${deviceId}|${category}` and `${deviceId}|rule` → case index (cases stay open through the window). */
  const caseLinks = new Map<string, number>();
  const categoryOf = (type: string): string | null => {
    if (!rule.case) return null;
    const ref = rule.case.categoryByType?.[type] ?? rule.case.category;
    return deps.category(ref) ?? null;
  };

  const apply = (effects: ReturnType<RuleEvaluator['tick']>) => {
    for (const e of effects) {
      if (e.kind === 'clear') {
        const a = active.get(e.deviceId);
        if (a) {
          a.clearedAt = e.ts;
          active.delete(e.deviceId);
        }
        continue;
      }
      const cur = active.get(e.deviceId);
      if (cur) {
        cur.count++;
        cur.lastTs = Math.max(cur.lastTs, e.ts);
        continue;
      }
      const a: BacktestAlarm = { deviceId: e.deviceId, ts: e.ts, lastTs: e.ts, clearedAt: null, severity: e.severity, type: e.type, message: e.message, count: 1, caseIndex: null };
      alarms.push(a);
      active.set(e.deviceId, a);
      const cat = categoryOf(e.type);
      if (!cat) continue;
      const involved = [e.deviceId, ...(e.related ?? [])];
      let idx = caseLinks.get(`${e.deviceId}|rule`) ?? involved.map((d) => caseLinks.get(`${d}|${cat}`)).find((i) => i !== undefined);
      if (idx === undefined) {
        idx = cases.length;
        cases.push({ index: idx, deviceId: e.deviceId, category: cat, openedAt: e.ts, alarms: 0 });
      }
      cases[idx]!.alarms++;
      a.caseIndex = idx;
      caseLinks.set(`${e.deviceId}|rule`, idx);
      for (const d of involved) caseLinks.set(`${d}|${cat}`, idx);
    }
  };

  const rows = await history(deps.db, rule, from, to, regionId === null ? null : [...devices.keys()]);
  for (const r of rows) {
    const d = devices.get(r.device_id);
    if (!d) continue;
    const at = new Date(r.at).getTime();
    apply(ev.tick(at));
    const sig: Signal = { deviceId: d.id, deviceType: d.type, gridId: d.gridId, lat: d.lat, lon: d.lon, at, msg: toMsg(r) };
    apply(ev.onSignal(sig));
  }
  apply(ev.tick(to));
  return {
    ruleId: rule.id, from, to, messages: rows.length, alarms, cases,
    totals: { alarms: alarms.length, cases: cases.length, stillActive: active.size },
    assumptions: 'Replayed in arrival order through the live evaluator; nobody closes a case during the window; devices at their current location and grid; the rule starts with no state at `from`.',
  };
}
