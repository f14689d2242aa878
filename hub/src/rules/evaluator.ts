/**
 * The rule evaluator: pure in-memory state machines, fed one signal at a
 * time, answering effects (raise / clear). The live hub and the backtest run
 * this same code; only where the signals come from and where the effects go
 * differ. Time: threshold durations and alarm times use the message `ts`;
 * absence and auto-clear use the hub clock at arrival (`at`), advanced by
 * `tick(now)`, and report the exact due time so a replay gives the same
 * answer whatever the tick period.
 */
import type { DeviceType, Normalised, Severity } from '@gridlink/devices';
import type { AbsenceRule, CorrelationRule, MatchRule, Op, Rule, ThresholdRule } from './rule.schema.js';
import { haversineM } from '@gridlink/devices/geo';

export interface Signal {
  deviceId: string;
  deviceType: DeviceType;
  gridId: string | null;
  lat: number | null;
  lon: number | null;
  /** Hub clock at arrival. */
  at: number;
  msg: Normalised;
  /**
   * Cluster: the correlation rules this signal is evaluated for (on the
   * rules' owner node); absent, the device's own rules (on the device's
   * owner). The single process evaluates every rule and never sets it.
   */
  rules?: string[];
}

export interface DeviceLite {
  id: string;
  type: DeviceType;
  gridId: string | null;
  /** Baseline for absence when nothing was heard yet (registration or hub start). */
  since: number;
}

export interface RaiseEffect {
  kind: 'raise';
  rule: Rule;
  deviceId: string;
  /** Time of the triggering message (or the due time for absence). */
  ts: number;
  severity: Severity;
  type: string;
  message: string;
  value?: number | string | boolean;
  snapshot?: Uint8Array;
  snapshotUrl?: string;
  /** Correlation: the other devices of the incident. */
  related?: string[];
  /** Where the alarm is, when it is not where the device is registered (dispatch alarms sit at their case). */
  where?: { lat: number | null; lon: number | null; gridId: string | null };
  /**
   * Found by a replay above the alarm book's last trigger when it was read
   * (cluster): it repeats an active alarm only if the row still holds no
   * trigger at or after it when written (another node may have counted the
   * same message meanwhile).
   */
  replayed?: true;
}

export interface ClearEffect {
  kind: 'clear';
  rule: Rule;
  deviceId: string;
  ts: number;
  reason: string;
}

export type Effect = RaiseEffect | ClearEffect;

/** Per (rule, device): what survives a restart. */
export interface KeyState {
  active: boolean;
  pendingSince: number | null;
  count: number;
  /** Hub time of the last trigger (auto-clear). */
  lastAt: number;
  /**
   * Threshold rules: the message time of the last reading that stepped this
   * state (counted, reset, raised, repeated or cleared). Stored with it, so a
   * node taking the device over knows which stored readings the state already
   * holds and replays the ones after (`adopt`, `replay`).
   */
  ts?: number;
}

export interface EvaluatorOptions {
  contains: (regionId: string, gridId: string | null) => boolean;
  devices: () => Iterable<DeviceLite>;
}

export function compare(op: Op, a: number, b: number): boolean {
  switch (op) {
    case '>': return a > b;
    case '>=': return a >= b;
    case '<': return a < b;
    case '<=': return a <= b;
    case '==': return a === b;
    case '!=': return a !== b;
  }
  return false;
}

interface Seen {
  deviceId: string;
  ts: number;
  /** Hub time at arrival (a window rebuilt from stored messages tells what its previous owner had seen). */
  at: number;
  lat: number;
  lon: number;
}

/** A correlation join one signal makes: the raise, and the arrival time of the signal it joined. */
interface Join {
  e: RaiseEffect;
  partnerAt: number;
}

const key = (ruleId: string, deviceId: string) => `${ruleId}\u0000${deviceId}`;

export class RuleEvaluator {
  private rules = new Map<string, Rule>();
  private readonly state = new Map<string, KeyState>();
  private readonly dirty = new Set<string>();
  /** Hub time each device was last heard. */
  private readonly lastAt = new Map<string, number>();
  private readonly buffers = new Map<string, Seen[][]>();
  /**
   * Cluster hand-over: per (rule, device), the message time up to which the
   * stored readings are already in the state (what the previous owner stored,
   * then what was replayed). A reading at or below it is not counted again,
   * however late its signal arrives.
   */
  private readonly floors = new Map<string, number>();

  constructor(private readonly opts: EvaluatorOptions) {}

  // ---- rules and state -----------------------------------------------------------------------

  setRules(rules: Iterable<Rule>): void {
    this.rules = new Map([...rules].map((r) => [r.id, r]));
  }

  /** A live edit: the rule's pending state starts over; its active alarms stay active. */
  upsertRule(rule: Rule): void {
    this.rules.set(rule.id, rule);
    this.buffers.delete(rule.id);
    const prefix = `${rule.id}\u0000`;
    for (const [k, s] of this.state) {
      if (!k.startsWith(prefix) || (s.pendingSince === null && s.count === 0)) continue;
      s.pendingSince = null;
      s.count = 0;
      this.dirty.add(k);
    }
  }

  removeRule(id: string): void {
    this.rules.delete(id);
    this.buffers.delete(id);
  }

  get(ruleId: string, deviceId: string): KeyState | undefined {
    return this.state.get(key(ruleId, deviceId));
  }

  private st(ruleId: string, deviceId: string): KeyState {
    const k = key(ruleId, deviceId);
    let s = this.state.get(k);
    if (!s) this.state.set(k, (s = { active: false, pendingSince: null, count: 0, lastAt: 0 }));
    this.dirty.add(k);
    return s;
  }

  /**
   * Keys whose state a flush failed to store: written again by the next
   * flush, with whatever state they hold by then (never an older copy).
   */
  redirty(keys: Iterable<{ ruleId: string; deviceId: string }>): void {
    for (const k of keys) this.dirty.add(key(k.ruleId, k.deviceId));
  }

  /** Restores persisted state (rule_state rows and active alarms). */
  restore(ruleId: string, deviceId: string, s: Partial<KeyState>): void {
    const cur = this.state.get(key(ruleId, deviceId)) ?? { active: false, pendingSince: null, count: 0, lastAt: 0 };
    this.state.set(key(ruleId, deviceId), { ...cur, ...s });
  }

  heard(deviceId: string, at: number): void {
    const prev = this.lastAt.get(deviceId);
    if (prev === undefined || at > prev) this.lastAt.set(deviceId, at);
  }

  /**
   * A device heard on another node of a cluster (its last_seen moved on):
   * absence alarms clear as a message here would have cleared them.
   */
  heardElsewhere(deviceId: string, at: number): Effect[] {
    const prev = this.lastAt.get(deviceId);
    if (prev !== undefined && at <= prev) return [];
    this.heard(deviceId, at);
    const out: Effect[] = [];
    for (const rule of this.rules.values()) {
      if (rule.kind !== 'absence') continue;
      const s = this.state.get(key(rule.id, deviceId));
      if (!s?.active || s.lastAt >= at) continue;
      this.markCleared(rule.id, deviceId);
      out.push({ kind: 'clear', rule, deviceId, ts: at, reason: 'heard again' });
    }
    return out;
  }

  /**
   * Cluster hand-over: this node now evaluates the devices `mine` accepts.
   * Whatever it held for them is replaced by what the database says: the
   * state their previous owner flushed (`rows`) and the alarms active now.
   * Nothing becomes dirty: it is what is stored already.
   */
  adopt(mine: (deviceId: string) => boolean, rows: Iterable<{ ruleId: string; deviceId: string; state: KeyState }>, active: Iterable<{ ruleId: string; deviceId: string; lastAt: number }>): void {
    for (const k of this.state.keys()) {
      if (mine(k.slice(k.indexOf('\u0000') + 1))) {
        this.state.delete(k);
        this.dirty.delete(k);
        this.floors.delete(k);
      }
    }
    for (const r of rows) {
      if (!mine(r.deviceId)) continue;
      const k = key(r.ruleId, r.deviceId);
      this.state.set(k, { active: false, pendingSince: r.state.pendingSince ?? null, count: r.state.count ?? 0, lastAt: r.state.lastAt ?? 0, ...(typeof r.state.ts === 'number' ? { ts: r.state.ts } : {}) });
      if (typeof r.state.ts === 'number') this.floors.set(k, r.state.ts);
    }
    for (const a of active) {
      if (!mine(a.deviceId)) continue;
      const k = key(a.ruleId, a.deviceId);
      const s = this.state.get(k);
      if (s) s.active = true;
      else this.state.set(k, { active: true, pendingSince: null, count: 0, lastAt: a.lastAt });
    }
  }

  /**
   * Cluster hand-over, after `adopt`: stored readings of the devices taken
   * over (each one metric, in message-time order) that their previous owner
   * may not have counted — it flushes every second, and a forwarded signal
   * may have died with it. Each threshold rule steps through the readings
   * above its floor (the ones the stored state does not hold yet) exactly as
   * it steps through live ones, and the floor follows, so a signal of one of
   * them that arrives later is not counted twice. What says a raise, a repeat
   * or a clear reached the alarm book is the book: `counted(rule, device)`,
   * the message time of the last trigger its alarm rows hold (their
   * `last_ts`). A step at or below it was applied (a raise or repeat it
   * holds, a clear that came before it) and gives nothing; one above it
   * never reached the book and is returned, in order: a raise (a new alarm,
   * or a repeat of the active one), a clear. `repeats(device)` false (its
   * previous owner lives on and counts the repeats of what it received): a
   * repeat is not returned.
   */
  replay(sigs: Iterable<Signal>, counted: (ruleId: string, deviceId: string) => number | undefined, repeats: (deviceId: string) => boolean = () => true): Effect[] {
    const effects: Effect[] = [];
    for (const sig of sigs) {
      if (sig.msg.channel !== 'telemetry') continue;
      for (const rule of this.rules.values()) {
        if (rule.kind !== 'threshold' || rule.enabled === false || sig.msg.values[rule.metric] === undefined) continue;
        if (!this.inScope(rule, sig.deviceId, sig.deviceType, sig.gridId)) continue;
        const k = key(rule.id, sig.deviceId);
        const out: Effect[] = [];
        const repeat = (this.state.get(k)?.active ?? false) && !repeats(sig.deviceId);
        this.threshold(rule, sig, out);
        this.floors.set(k, Math.max(this.floors.get(k) ?? -Infinity, sig.msg.ts));
        const book = counted(rule.id, sig.deviceId) ?? -Infinity;
        for (const e of out) if (e.ts > book && !(repeat && e.kind === 'raise')) effects.push(e);
      }
    }
    return effects;
  }

  /**
   * Hand-over and start, after `adopt` and `replay`: stored events and alerts
   * of the devices taken over, in message-time order, through their enabled
   * match rules, the ones the previous owner may never have evaluated (in
   * flight to it when it died, or committed by a process killed before its
   * rules ran). `counted(rule, device)`: the message time of the last
   * trigger the alarm book holds for them (the alarm rows' `last_ts`); a
   * message at or below it, or below the rule's floor here, was counted. A
   * message received before `since(rule)` (the rule's last edit) was never
   * the rule's to count. Returns every effect, in order: a raise (a new alarm,
   * or a repeat of the active one the alarm book makes it), a clear; a repeat
   * only when `repeats(device)` (false: its previous owner lives on and counts
   * the repeats of what it received).
   */
  replayEvents(sigs: Iterable<Signal>, counted: (ruleId: string, deviceId: string) => number | undefined, since: (ruleId: string) => number,
    repeats: (deviceId: string) => boolean = () => true): Effect[] {
    const out: Effect[] = [];
    for (const sig of sigs) {
      const m = sig.msg;
      if (m.channel !== 'event' && m.channel !== 'alert') continue;
      for (const rule of this.rules.values()) {
        if (rule.kind !== 'match' || rule.enabled === false || rule.channel !== m.channel || sig.at < since(rule.id)) continue;
        if (!this.inScope(rule, sig.deviceId, sig.deviceType, sig.gridId)) continue;
        const k = key(rule.id, sig.deviceId);
        const floor = Math.max(this.floors.get(k) ?? -Infinity, counted(rule.id, sig.deviceId) ?? -Infinity);
        if (m.ts <= floor) continue;
        const n = out.length;
        const repeat = (this.state.get(k)?.active ?? false) && !repeats(sig.deviceId);
        this.match(rule, sig, out);
        // Counted: a raise (a clear, or a message the rule passes over, leaves the floor where it is). A repeat left to
        // the previous owner leaves it too: a live signal of it that comes here was never sent there.
        if (out.length > n && out[n]!.kind === 'raise') {
          if (repeat) out.length = n;
          else this.floors.set(k, m.ts);
        }
      }
    }
    return out;
  }

  /**
   * A correlation rule this node now evaluates (cluster: it became the rule's
   * owner; single process: at start): the rules named in `ruleIds` start
   * their windows again from the stored events and alerts of their two
   * signal kinds (`sigs`, in message-time order, each stepped through the
   * rules its `rules` names), as if their signals had come here. A join
   * neither of whose messages arrived at or after `raiseFrom(rule)` (hub
   * time) was the previous owner's to raise: it only fills the window. A
   * join at or below `counted(rule, anchor)` (the message time of the last
   * join the alarm rows of the rule and the anchor device hold) was raised
   * or repeated already. A message received before `since(rule)` (the rule's
   * last edit) was never in its window. Returns the joins left, in order, as
   * raises.
   */
  replayCorrelations(ruleIds: ReadonlySet<string>, sigs: Iterable<Signal>, raiseFrom: (ruleId: string) => number,
    counted: (ruleId: string, anchorId: string) => number | undefined, since: (ruleId: string) => number): Effect[] {
    const rules = [...this.rules.values()].filter((r): r is CorrelationRule => r.kind === 'correlation' && r.enabled !== false && ruleIds.has(r.id));
    for (const r of rules) this.buffers.delete(r.id);
    const out: Effect[] = [];
    for (const sig of sigs) {
      for (const rule of rules) {
        if (!sig.rules?.includes(rule.id) || sig.at < since(rule.id) || !this.inScope(rule, sig.deviceId, sig.deviceType, sig.gridId)) continue;
        for (const j of this.join(rule, sig)) {
          if (Math.max(sig.at, j.partnerAt) < raiseFrom(rule.id) || j.e.ts <= (counted(rule.id, j.e.deviceId) ?? -Infinity)) continue;
          out.push(this.joined(rule, j.e, sig.at));
        }
      }
    }
    return out;
  }

  /**
   * Whether any enabled rule could act on this signal where the device is
   * evaluated (cluster: only such signals are forwarded to the device's
   * owner). Absence needs no forwarding: the node running the timers hears
   * every device through `devices.last_seen`.
   */
  wants(sig: Signal, correlation = true): boolean {
    const m = sig.msg;
    if (m.channel !== 'telemetry' && m.channel !== 'event' && m.channel !== 'alert') return false;
    for (const rule of this.rules.values()) {
      if (rule.enabled === false || (!correlation && rule.kind === 'correlation')) continue;
      if (rule.kind === 'threshold' ? m.channel !== 'telemetry' || m.values[rule.metric] === undefined : rule.kind === 'absence' || m.channel === 'telemetry') continue;
      if (this.inScope(rule, sig.deviceId, sig.deviceType, sig.gridId)) return true;
    }
    return false;
  }

  /** The enabled correlation rules one of whose two signal kinds this signal is (cluster: they are evaluated on each rule's owner). */
  correlationsFor(sig: Signal): string[] {
    const m = sig.msg;
    if ((m.channel !== 'event' && m.channel !== 'alert') || sig.lat === null || sig.lon === null) return [];
    const out: string[] = [];
    for (const rule of this.rules.values()) {
      if (rule.kind !== 'correlation' || rule.enabled === false) continue;
      if (!rule.signals.some((spec) => spec.channel === m.channel && spec.types.includes(m.type))) continue;
      if (this.inScope(rule, sig.deviceId, sig.deviceType, sig.gridId)) out.push(rule.id);
    }
    return out;
  }

  /** An alarm cleared or removed outside the evaluator (REST clear). */
  markCleared(ruleId: string, deviceId: string): void {
    const s = this.state.get(key(ruleId, deviceId));
    if (!s) return;
    s.active = false;
    s.pendingSince = null;
    s.count = 0;
    this.dirty.add(key(ruleId, deviceId));
  }

  /** Keys changed since the last call, with their state (null: gone). */
  takeDirty(): Array<{ ruleId: string; deviceId: string; state: KeyState | null }> {
    const out: Array<{ ruleId: string; deviceId: string; state: KeyState | null }> = [];
    for (const k of this.dirty) {
      const [ruleId, deviceId] = k.split('\u0000') as [string, string];
      out.push({ ruleId, deviceId, state: this.state.get(k) ?? null });
    }
    this.dirty.clear();
    return out;
  }

  // ---- evaluation ----------------------------------------------------------------------------

  inScope(rule: Rule, deviceId: string, deviceType: string, gridId: string | null): boolean {
    const s = rule.scope;
    if (!s) return true;
    if (s.deviceTypes?.length && !s.deviceTypes.includes(deviceType as never)) return false;
    if (s.deviceIds?.length && !s.deviceIds.includes(deviceId)) return false;
    if (s.gridIds?.length && !s.gridIds.some((g) => this.opts.contains(g, gridId))) return false;
    return true;
  }

  /**
   * Effects of one stored message, correlation first so a correlated case
   * exists before the single-signal rules look for one. `only` limits the
   * rules evaluated (a cluster splits a device's own rules from correlation
   * rules, which join two devices and run on one node per rule).
   */
  onSignal(sig: Signal, only?: (rule: Rule) => boolean): Effect[] {
    const out: Effect[] = [];
    const later: Effect[] = [];
    this.heard(sig.deviceId, sig.at);
    for (const rule of this.rules.values()) {
      if (rule.enabled === false || (only && !only(rule)) || !this.inScope(rule, sig.deviceId, sig.deviceType, sig.gridId)) continue;
      switch (rule.kind) {
        case 'threshold': this.threshold(rule, sig, later); break;
        case 'match': this.match(rule, sig, later); break;
        case 'absence': this.absenceHeard(rule, sig, later); break;
        case 'correlation': for (const j of this.join(rule, sig)) out.push(this.joined(rule, j.e, sig.at)); break;
      }
    }
    for (const e of later) out.push(e);
    return out;
  }

  private threshold(rule: ThresholdRule, sig: Signal, out: Effect[]): void {
    if (sig.msg.channel !== 'telemetry') return;
    const raw = sig.msg.values[rule.metric];
    if (raw === undefined) return;
    const v = typeof raw === 'number' ? raw : typeof raw === 'boolean' ? (raw ? 1 : 0) : Number.NaN;
    if (Number.isNaN(v)) return;
    const ts = sig.msg.ts;
    // Taken over: a reading the state already holds (stored by the previous owner, or replayed) is not counted again.
    const floor = this.floors.size ? this.floors.get(key(rule.id, sig.deviceId)) : undefined;
    if (floor !== undefined && ts <= floor) return;
    const breach = compare(rule.op, v, rule.value);
    // The common case (in range, nothing pending) touches no state and writes nothing.
    const existing = this.state.get(key(rule.id, sig.deviceId));
    if (!breach && (!existing || (!existing.active && existing.pendingSince === null && existing.count === 0))) return;
    const s = this.st(rule.id, sig.deviceId);
    if (s.ts === undefined || ts > s.ts) s.ts = ts;
    if (s.active) {
      if (breach) {
        s.lastAt = sig.at;
        out.push(this.raise(rule, sig.deviceId, ts, rule.severity, rule.metric, `${rule.metric} ${v} ${rule.op} ${rule.value}`, v));
      } else if (rule.clear ? compare(rule.clear.op, v, rule.clear.value) : true) {
        s.active = false;
        s.pendingSince = null;
        s.count = 0;
        out.push({ kind: 'clear', rule, deviceId: sig.deviceId, ts, reason: `${rule.metric} ${v}` });
      }
      return;
    }
    if (!breach) {
      s.pendingSince = null;
      s.count = 0;
      return;
    }
    if (s.pendingSince === null) s.pendingSince = ts;
    s.count++;
    if (s.count >= (rule.count ?? 1) && ts - s.pendingSince >= (rule.forS ?? 0) * 1000) {
      s.active = true;
      s.lastAt = sig.at;
      out.push(this.raise(rule, sig.deviceId, ts, rule.severity, rule.metric, `${rule.metric} ${v} ${rule.op} ${rule.value}${rule.forS ? ` for ${rule.forS}s` : ''}${rule.count && rule.count > 1 ? ` (${s.count} in a row)` : ''}`, v));
    }
  }

  private match(rule: MatchRule, sig: Signal, out: Effect[]): void {
    const m = sig.msg;
    if (m.channel !== rule.channel || (m.channel !== 'event' && m.channel !== 'alert')) return;
    if (m.channel === 'event' && rule.clearTypes?.includes(m.type)) {
      const s = this.state.get(key(rule.id, sig.deviceId));
      if (s?.active) {
        this.markCleared(rule.id, sig.deviceId);
        out.push({ kind: 'clear', rule, deviceId: sig.deviceId, ts: m.ts, reason: m.type });
      }
      return;
    }
    if (rule.types.length && !rule.types.includes(m.type)) return;
    const confidence = m.channel === 'alert' ? m.confidence : undefined;
    if (rule.minConfidence !== undefined && (confidence ?? 0) < rule.minConfidence) return;
    // Replayed at a take-over (or at start): a later signal of a message the replay counted is not counted again.
    const floor = this.floors.size ? this.floors.get(key(rule.id, sig.deviceId)) : undefined;
    if (floor !== undefined && m.ts <= floor) return;
    const severity = rule.severityMap?.[m.type] ?? (rule.useMessageSeverity && m.channel === 'event' ? m.severity : undefined) ?? rule.severity;
    const s = this.st(rule.id, sig.deviceId);
    s.active = true;
    s.lastAt = sig.at;
    const e = this.raise(rule, sig.deviceId, m.ts, severity, m.type, `${m.type}${confidence !== undefined ? ` (${Math.round(confidence * 100)}%)` : ''}`, confidence);
    if (m.channel === 'alert') {
      if (m.snapshot) e.snapshot = m.snapshot;
      if (m.snapshotUrl) e.snapshotUrl = m.snapshotUrl;
    }
    out.push(e);
  }

  private absenceHeard(rule: AbsenceRule, sig: Signal, out: Effect[]): void {
    const s = this.state.get(key(rule.id, sig.deviceId));
    if (!s?.active) return;
    this.markCleared(rule.id, sig.deviceId);
    out.push({ kind: 'clear', rule, deviceId: sig.deviceId, ts: sig.at, reason: 'heard again' });
  }

  /**
   * The joins a correlation signal makes with the other kind's signals in the
   * rule's window (the window keeps it either way). A message the window
   * holds already (the same device and message time: a window rebuilt from
   * the stored messages, then the live signal of one of them) joins nothing
   * again. A join's time is the later of its two messages', whichever
   * arrived last, so a replay in message-time order gives it the same time
   * as the live evaluation gave it.
   */
  private join(rule: CorrelationRule, sig: Signal): Join[] {
    const m = sig.msg;
    if ((m.channel !== 'event' && m.channel !== 'alert') || sig.lat === null || sig.lon === null) return [];
    let bufs = this.buffers.get(rule.id);
    if (!bufs) this.buffers.set(rule.id, (bufs = [[], []]));
    const windowMs = rule.windowS * 1000;
    const out: Join[] = [];
    rule.signals.forEach((spec, i) => {
      if (spec.channel !== m.channel || !spec.types.includes(m.type)) return;
      if (spec.minConfidence !== undefined && (m.channel === 'alert' ? m.confidence ?? 0 : 0) < spec.minConfidence) return;
      if (spec.deviceTypes?.length && !spec.deviceTypes.includes(sig.deviceType)) return;
      const mine = bufs![i]!;
      const other = bufs![1 - i]!;
      if (mine.some((x) => x.ts === m.ts && x.deviceId === sig.deviceId)) return;
      // Windows are minutes long: a linear scan over a short, pruned list.
      const pruneBefore = m.ts - windowMs;
      for (const b of [mine, other]) while (b.length && b[0]!.ts < pruneBefore) b.shift();
      mine.push({ deviceId: sig.deviceId, ts: m.ts, at: sig.at, lat: sig.lat!, lon: sig.lon! });
      const match = other.find((o) => o.deviceId !== sig.deviceId && Math.abs(o.ts - m.ts) <= windowMs && haversineM(o.lat, o.lon, sig.lat!, sig.lon!) <= rule.withinM);
      if (!match) return;
      // One alarm per incident, keyed by the device of the first signal kind.
      const anchor = i === 0 ? sig.deviceId : match.deviceId;
      const related = i === 0 ? match.deviceId : sig.deviceId;
      const d = Math.round(haversineM(match.lat, match.lon, sig.lat!, sig.lon!));
      const e = this.raise(rule, anchor, Math.max(m.ts, match.ts), rule.severity, 'correlation', `${rule.signals[0].types.join('/')} + ${rule.signals[1].types.join('/')} within ${d} m and ${Math.round(Math.abs(match.ts - m.ts) / 1000)} s`);
      out.push({ e: { ...e, related: [related] }, partnerAt: match.at });
    });
    return out;
  }

  /** A join that raises: its alarm's state is active from `at` (auto-clear). */
  private joined(rule: CorrelationRule, e: RaiseEffect, at: number): RaiseEffect {
    const s = this.st(rule.id, e.deviceId);
    s.active = true;
    s.lastAt = at;
    return e;
  }

  private raise(rule: Rule, deviceId: string, ts: number, severity: Severity, type: string, message: string, value?: number | string | boolean): RaiseEffect {
    return { kind: 'raise', rule, deviceId, ts, severity, type, message, ...(value !== undefined ? { value } : {}) };
  }

  /** Time-driven effects due at or before `now`: absence and auto-clear. */
  tick(now: number): Effect[] {
    const out: Effect[] = [];
    for (const rule of this.rules.values()) {
      if (rule.enabled === false) continue;
      if (rule.kind === 'absence') {
        const after = rule.offlineAfterS * 1000;
        for (const d of this.opts.devices()) {
          if (!this.inScope(rule, d.id, d.type, d.gridId)) continue;
          const s = this.state.get(key(rule.id, d.id));
          if (s?.active) continue;
          const last = this.lastAt.get(d.id) ?? d.since;
          if (now - last < after) continue;
          const st = this.st(rule.id, d.id);
          st.active = true;
          st.lastAt = last + after;
          out.push(this.raise(rule, d.id, last + after, rule.severity, 'offline', `no message for ${rule.offlineAfterS}s`));
        }
      } else if ((rule.kind === 'match' || rule.kind === 'correlation') && rule.autoClearS) {
        const prefix = `${rule.id}\u0000`;
        const after = rule.autoClearS * 1000;
        for (const [k, s] of this.state) {
          if (!s.active || !k.startsWith(prefix) || now - s.lastAt < after) continue;
          s.active = false;
          this.dirty.add(k);
          out.push({ kind: 'clear', rule, deviceId: k.slice(prefix.length), ts: s.lastAt + after, reason: `no repeat for ${rule.autoClearS}s` });
        }
      }
    }
    return out;
  }
}
