/**
 * Alarm lifecycle (ThingsBoard style): active/cleared × acknowledged, one
 * active alarm per (rule, device), repeats fold into it (count, lastTs),
 * escalation when nobody acknowledges in time, comments. A rule with a
 * `case` spec opens a case for a new alarm, or joins the open case of the
 * same rule or category for that device (CONTRACT 4: new triggers attach).
 * Every change is one serialised step so a repeat never races an ack.
 */
import { randomUUID } from 'node:crypto';
import type { Severity } from '@gridlink/devices';
import type { Auth, Principal } from '../auth/index.js';
import { maxSeverity, systemActor, type CaseStore } from '../cases/index.js';
import type { Fence } from '../cluster/index.js';
import type { EventBus } from '../core/bus.js';
import { Errors } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { GridService, RealtimeService } from '../core/services.js';
import type { AlarmEvent } from '../realtime/index.js';
import type { DeviceRegistry } from '../registry/index.js';
import type { Db, Queryable } from '../store/index.js';
import type { Effect, RaiseEffect, RuleEvaluator } from './evaluator.js';
import { ESCALATE_AFTER_MIN, type Rule } from './rule.schema.js';

export type AlarmChange = 'raised' | 'repeated' | 'acked' | 'cleared' | 'escalated' | 'commented' | 'case_linked';

export interface Alarm extends AlarmEvent {
  ackBy: string | null;
  ackAt: number | null;
  caseId: string | null;
  originalSeverity: Severity;
  escalations: number;
  escalatedAt: number | null;
  createdAt: number;
  updatedAt: number;
  clearedAt: number | null;
  clearedBy: string | null;
  value: unknown;
  related: string[] | null;
}

export interface AlarmComment {
  id: number;
  ts: number;
  author: string;
  text: string;
}

declare module '../core/bus.js' {
  interface EventMap {
    'alarm.changed': { alarm: Alarm; change: AlarmChange };
  }
}

interface AlarmRow {
  id: string;
  rule_id: string;
  rule_name: string | null;
  device_id: string;
  type: string;
  severity: Severity;
  original_severity: Severity;
  status: 'active' | 'cleared';
  acknowledged: boolean;
  ack_by: string | null;
  ack_at: Date | null;
  escalated: boolean;
  escalations: number;
  escalated_at: Date | null;
  count: number;
  message: string;
  value: unknown;
  ts: Date;
  last_ts: Date;
  created_at: Date;
  updated_at: Date;
  cleared_at: Date | null;
  cleared_by: string | null;
  lat: number | null;
  lon: number | null;
  grid_id: string | null;
  case_id: string | null;
  related: string[] | null;
}

const t = (d: Date | null) => (d ? new Date(d).getTime() : null);

export function toAlarm(r: AlarmRow): Alarm {
  return {
    id: r.id, rule: r.rule_id, ruleName: r.rule_name ?? r.rule_id, deviceId: r.device_id, type: r.type, severity: r.severity, originalSeverity: r.original_severity,
    status: r.status, acknowledged: r.acknowledged, ackBy: r.ack_by, ackAt: t(r.ack_at), escalated: r.escalated, escalations: r.escalations,
    escalatedAt: t(r.escalated_at), count: r.count, message: r.message, value: r.value ?? null, ts: t(r.ts)!, lastTs: t(r.last_ts)!,
    createdAt: t(r.created_at)!, updatedAt: t(r.updated_at)!, clearedAt: t(r.cleared_at), clearedBy: r.cleared_by,
    lat: r.lat, lon: r.lon, gridId: r.grid_id, caseId: r.case_id, related: r.related ?? null,
  };
}

const ESCALATE_NEXT: Record<Severity, Severity> = { info: 'warning', warning: 'minor', minor: 'major', major: 'critical', critical: 'critical' };

export const AlarmErrors = {
  notFound: () => Errors.alarmNotFound('Alarm not found'),
  notActive: () => Errors.alarmNotActive('the alarm is already cleared'),
};

export interface AlarmQuery {
  status?: 'active' | 'cleared';
  severity?: Severity[];
  gridIds?: string[] | null;
  rule?: string;
  deviceId?: string;
  acknowledged?: boolean;
  limit: number;
}

export interface AlarmDeps {
  db: Db;
  bus: EventBus;
  logger: Logger;
  auth: Pick<Auth, 'canSee'>;
  registry: Pick<DeviceRegistry, 'get'>;
  now: () => number;
  /** Alarms open and join cases when the cases module is loaded. */
  cases?: CaseStore;
  grids?: Pick<GridService, 'locate'>;
  realtime?: RealtimeService;
  /**
   * Cluster: other nodes write the same alarm book. Each raise, repeat and
   * clear is decided by its row first (one active alarm per rule and device,
   * the partial unique index) and announced after, so a trigger two nodes
   * see is one alarm, one case and one `raised` event (docs/cluster.md).
   */
  shared?: boolean;
}

export class AlarmService {
  /** Active alarms by `${rule}\0${device}`. */
  private readonly active = new Map<string, Alarm>();
  /** Raised and announced, row not written yet. */
  private readonly pending = new Set<string>();
  private chain: Promise<unknown> = Promise.resolve();
  private readonly log: Logger;

  constructor(
    private readonly deps: AlarmDeps,
    private readonly evaluator: RuleEvaluator,
    private readonly rules: () => ReadonlyMap<string, Rule>,
  ) {
    this.log = deps.logger.child({ module: 'alarms' });
  }

  private get db(): Db {
    return this.deps.db;
  }

  private get bus(): EventBus {
    return this.deps.bus;
  }

  private get cases(): CaseStore | undefined {
    return this.deps.cases;
  }

  /** Runs steps one at a time, in order; a failing step is logged and never blocks the next. */
  serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.chain.then(fn, fn);
    this.chain = run.catch((err) => this.log.error({ err }, 'alarm step failed'));
    return run;
  }

  idle(): Promise<void> {
    return this.chain.then(() => undefined);
  }

  async load(): Promise<Alarm[]> {
    const rows = await this.db.query<AlarmRow>("select * from alarms where status = 'active'");
    this.active.clear();
    for (const r of rows) {
      const a = toAlarm(r);
      this.active.set(`${a.rule}\u0000${a.deviceId}`, a);
    }
    return [...this.active.values()];
  }

  /**
   * Cluster: the database is the alarm book every node writes. Before timed
   * work the lease holder takes in what other nodes raised, acknowledged,
   * escalated or cleared; an alarm of this node still waiting for its row
   * stays.
   */
  sync(): Promise<void> {
    return this.serial(async () => {
      const rows = await this.db.query<AlarmRow>("select * from alarms where status = 'active'");
      const seen = new Set<string>();
      for (const r of rows) {
        const a = toAlarm(r);
        const k = `${a.rule}\u0000${a.deviceId}`;
        seen.add(k);
        const mine = this.active.get(k);
        if (mine && mine.id === a.id && mine.updatedAt > a.updatedAt) continue;
        this.active.set(k, a);
        if (!mine) this.evaluator.restore(a.rule, a.deviceId, { active: true, lastAt: Math.max(a.updatedAt, a.createdAt) });
      }
      for (const [k, a] of this.active) {
        if (seen.has(k) || this.pending.has(a.id)) continue;
        this.active.delete(k);
        this.evaluator.markCleared(a.rule, a.deviceId);
      }
    });
  }

  activeFor(ruleId: string, deviceId: string): Alarm | undefined {
    return this.active.get(`${ruleId}\u0000${deviceId}`);
  }

  /** Every active alarm this node knows of. */
  activeAlarms(): Iterable<Alarm> {
    return this.active.values();
  }

  private emit(alarm: Alarm, change: AlarmChange): void {
    this.bus.emit('alarm.changed', { alarm, change });
    this.deps.realtime?.send('alarm', alarm.gridId, { ...alarm, change });
  }

  /**
   * The write that decides a step of timed work (`fence`: the rules tick's,
   * under the `rules.timers` lease): in the fence's transaction, refused when
   * this node's token is stale (cluster/leases.ts). Without a fence, or on the
   * single process, the plain query it always was.
   */
  private write<T>(fence: Fence | undefined, fn: (q: Queryable) => Promise<T>): Promise<T> {
    return fence ? fence.run(this.db, fn) : fn(this.db);
  }

  /**
   * Applies effects: the in-memory alarm book changes and the `alarm` event
   * goes out at once (the officer's popup does not wait for the database);
   * rows, snapshots and cases follow in order on the serial queue. `fence`:
   * the effects are timed work of a lease holder (absence, auto-clear), and
   * each row they decide is written through it.
   */
  applyAll(effects: Effect[], fence?: Fence): Promise<void> {
    if (effects.length === 0) return Promise.resolve();
    const jobs: Array<{ e: Effect; job: () => Promise<void> }> = [];
    for (const e of effects) {
      try {
        const job = e.kind === 'raise' ? (this.deps.shared ? this.raiseShared(e, 0, fence) : this.raiseNow(e)) : this.clearNow(e.rule.id, e.deviceId, e.ts, `rule: ${e.reason}`, fence);
        if (job) jobs.push({ e, job });
      } catch (err) {
        this.log.error({ err, rule: e.rule.id, deviceId: e.deviceId }, 'alarm effect failed');
      }
    }
    return this.serial(async () => {
      for (const { e, job } of jobs) {
        try {
          await job();
        } catch (err) {
          this.log.error({ err, rule: e.rule.id, deviceId: e.deviceId, kind: e.kind }, 'alarm effect failed');
        }
      }
    });
  }

  private where(deviceId: string): { lat: number | null; lon: number | null; gridId: string | null } {
    const d = this.deps.registry.get(deviceId);
    const lat = d?.lat ?? null;
    const lon = d?.lon ?? null;
    const gridId = d?.gridId ?? (lat !== null && lon !== null ? this.deps.grids?.locate(lat, lon) ?? null : null);
    return { lat, lon, gridId };
  }

  /** Synchronous part of a raise; returns the write-behind job. */
  private raiseNow(e: RaiseEffect): () => Promise<void> {
    const now = this.deps.now();
    const k = `${e.rule.id}\u0000${e.deviceId}`;
    const existing = this.active.get(k);
    if (existing) {
      existing.count++;
      existing.lastTs = Math.max(existing.lastTs, e.ts);
      existing.severity = maxSeverity(existing.severity, e.severity);
      existing.message = e.message;
      existing.updatedAt = now;
      if (e.related?.length) existing.related = [...new Set([...(existing.related ?? []), ...e.related])];
      this.emit(existing, 'repeated');
      const snap = { count: existing.count, lastTs: existing.lastTs, severity: existing.severity, message: existing.message, related: existing.related };
      return async () => {
        await this.db.query(
          'update alarms set count = $2, last_ts = to_timestamp($3 / 1000.0), severity = $4, message = $5, updated_at = to_timestamp($6 / 1000.0), related = $7 where id = $1',
          [existing.id, snap.count, snap.lastTs, snap.severity, snap.message, now, snap.related ? JSON.stringify(snap.related) : null],
        );
        // The alarm's case was closed while the alarm stayed active: a new trigger opens or joins another.
        await this.relink(existing, e);
      };
    }
    const alarm = this.newAlarm(e, now);
    this.active.set(k, alarm);
    this.pending.add(alarm.id);
    this.emit(alarm, 'raised');
    return async () => {
      // The row, the snapshot and the case go to the database side by side; only
      // the alarm's case_id waits for its row.
      const inserted = this.insertRow(alarm, e).finally(() => this.pending.delete(alarm.id));
      const snapshot = e.snapshot && this.cases
        ? this.cases.evidence.save({ bytes: e.snapshot, kind: 'snapshot', alarmId: alarm.id, deviceId: e.deviceId, gridId: alarm.gridId, at: now })
          .catch((err: Error) => this.log.warn({ err: err.message, alarmId: alarm.id }, 'snapshot not stored'))
        : null;
      const linked = e.rule.case ? this.linkCase(alarm, e, inserted, snapshot) : null;
      await Promise.all([inserted, snapshot, linked]);
    };
  }

  /** A new active alarm for a raise effect, placed where the effect or its device is. */
  private newAlarm(e: RaiseEffect, now: number): Alarm {
    const where = e.where ?? this.where(e.deviceId);
    return {
      id: randomUUID(), rule: e.rule.id, ruleName: e.rule.name, deviceId: e.deviceId, type: e.type, severity: e.severity, originalSeverity: e.severity,
      status: 'active', acknowledged: false, ackBy: null, ackAt: null, escalated: false, escalations: 0, escalatedAt: null, count: 1, message: e.message,
      value: e.value ?? null, ts: e.ts, lastTs: e.ts, createdAt: now, updatedAt: now, clearedAt: null, clearedBy: null,
      lat: where.lat, lon: where.lon, gridId: where.gridId, caseId: null, related: e.related ?? null,
    };
  }

  /** A repeat of an active alarm: its case was closed meanwhile → a new trigger opens or joins another; else related devices join its case. */
  private async relink(existing: Alarm, e: RaiseEffect): Promise<void> {
    if (e.rule.case && (!existing.caseId || !(await this.caseOpen(existing.caseId)))) await this.linkCase(existing, e);
    else if (e.related?.length && existing.caseId) await this.linkRelated(existing.caseId, existing, e);
  }

  /**
   * Cluster form of raiseNow: the row decides, then the event goes out. A
   * repeat adds to the active row (`count + 1` in SQL, so two nodes' repeats
   * both count); a repeat whose row another node cleared meanwhile raises a
   * new alarm; a raise that finds another node's alarm already active for
   * (rule, device) becomes a repeat of it: no second row, case or `raised`.
   * Two nodes evaluate a device at once only for a moment (a node joining),
   * and the new owner replays what the old one may be counting: a replayed
   * trigger repeats only a row whose last trigger is older than it, and a
   * raise that found another node's alarm (`found`) only one whose last
   * trigger is not this very message time, so the message both counted is
   * counted once whichever row write lands first.
   */
  private raiseShared(e: RaiseEffect, attempt = 0, fence?: Fence, found = false): () => Promise<void> {
    const now = this.deps.now();
    const k = `${e.rule.id}\u0000${e.deviceId}`;
    const existing = this.active.get(k);
    if (existing) {
      return async () => {
        const severity = maxSeverity(existing.severity, e.severity);
        const related = e.related?.length ? [...new Set([...(existing.related ?? []), ...e.related])] : existing.related;
        let row: AlarmRow | undefined;
        try {
          [row] = await this.write(fence, (q) => q.query<AlarmRow>(
            `update alarms set count = count + 1, last_ts = greatest(last_ts, to_timestamp($2 / 1000.0)), severity = $3, message = $4, updated_at = to_timestamp($5 / 1000.0), related = $6
              where id = $1 and status = 'active' ${e.replayed ? 'and last_ts < to_timestamp($2 / 1000.0)' : found ? 'and last_ts <> to_timestamp($2 / 1000.0)' : ''} returning *`,
            [existing.id, e.ts, severity, e.message, now, related ? JSON.stringify(related) : null],
          ));
        } catch (err) {
          // A stale holder of the timers: the lease's new holder counts this trigger, not this node.
          if (fence?.refused(err)) return;
          throw err;
        }
        if (!row && (e.replayed || found)) {
          // A trigger the row holds by now (the other node counted the same message): nothing to add.
          const [held] = await this.db.query<AlarmRow>("select * from alarms where id = $1 and status = 'active'", [existing.id]);
          if (held) {
            Object.assign(existing, toAlarm(held), { caseId: existing.caseId ?? held.case_id });
            return;
          }
        }
        if (!row) {
          // Cleared on another node (auto-clear, an officer): this trigger starts a new alarm.
          if (this.active.get(k) === existing) this.active.delete(k);
          if (attempt < 3) await this.raiseShared(e, attempt + 1, fence)();
          return;
        }
        Object.assign(existing, toAlarm(row), { caseId: existing.caseId ?? row.case_id });
        this.emit(existing, 'repeated');
        await this.relink(existing, e);
      };
    }
    const alarm = this.newAlarm(e, now);
    this.active.set(k, alarm);
    this.pending.add(alarm.id);
    return async () => {
      let won: boolean;
      let refused = false;
      try {
        won = await this.write(fence, (q) => this.insertRow(alarm, e, true, q));
      } catch (err) {
        // A stale holder of the timers: the raise is the lease's new holder's to make.
        if (!fence?.refused(err)) throw err;
        won = false;
        refused = true;
      } finally {
        this.pending.delete(alarm.id);
      }
      if (!won) {
        // Another node's alarm is active for (rule, device): this trigger repeats it (refused: the book only learns of it).
        const [row] = await this.db.query<AlarmRow>("select * from alarms where rule_id = $1 and device_id = $2 and status = 'active'", [e.rule.id, e.deviceId]);
        if (this.active.get(k) === alarm) {
          if (row) this.active.set(k, toAlarm(row));
          else this.active.delete(k);
        }
        if (!refused && attempt < 3) await this.raiseShared(e, attempt + 1, fence, true)();
        return;
      }
      this.emit(alarm, 'raised');
      const snapshot = e.snapshot && this.cases
        ? this.cases.evidence.save({ bytes: e.snapshot, kind: 'snapshot', alarmId: alarm.id, deviceId: e.deviceId, gridId: alarm.gridId, at: now })
          .catch((err: Error) => this.log.warn({ err: err.message, alarmId: alarm.id }, 'snapshot not stored'))
        : null;
      const linked = e.rule.case ? this.linkCase(alarm, e, undefined, snapshot) : null;
      await Promise.all([snapshot, linked]);
    };
  }

  /**
   * Cluster hand-over: an active alarm of a rule with a case spec whose
   * owner died between its row and its case gets its case now (the open
   * case of its rule or category for the device when there is one, as a
   * new trigger would).
   */
  linkMissingCases(mine: (deviceId: string) => boolean): Promise<void> {
    return this.serial(async () => {
      const rules = this.rules();
      for (const a of [...this.active.values()]) {
        const rule = rules.get(a.rule);
        if (a.caseId || !rule?.case || !mine(a.deviceId) || this.pending.has(a.id)) continue;
        try {
          await this.linkCase(a, { kind: 'raise', rule, deviceId: a.deviceId, ts: a.ts, severity: a.originalSeverity, type: a.type, message: a.message });
        } catch (err) {
          this.log.warn({ err: (err as Error).message, alarmId: a.id }, 'case of a taken-over alarm not linked');
        }
      }
    });
  }

  private async caseOpen(caseId: string): Promise<boolean> {
    return this.cases?.isOpenLinked(caseId) ?? false;
  }

  private async linkRelated(caseId: string, alarm: Alarm, e: RaiseEffect): Promise<void> {
    const cases = this.cases!;
    const actor = systemActor(`rule:${e.rule.id}`, e.rule.name);
    for (const d of e.related ?? []) await cases.attach(caseId, { deviceId: d, ruleId: null, alarmId: alarm.id, actor, note: 'correlated' });
  }

  /** Opens a case for the alarm or joins the open one for (rule | category, device). */
  private async linkCase(alarm: Alarm, e: RaiseEffect, rowWritten?: Promise<unknown>, snapshotWritten?: Promise<unknown> | null): Promise<void> {
    const cases = this.cases;
    const spec = e.rule.case;
    if (!cases || !spec) return;
    const catRef = spec.categoryByType?.[e.type] ?? spec.category;
    const category = cases.categories.resolve(catRef);
    if (!category) {
      this.log.warn({ rule: e.rule.id, category: catRef }, 'rule names an unknown case category; alarm only');
      return;
    }
    const severity = spec.severity ? maxSeverity(spec.severity, e.severity) : e.severity;
    const actor = systemActor(`rule:${e.rule.id}`, e.rule.name);
    const devices = [e.deviceId, ...(e.related ?? [])];
    const open = e.related?.length ? cases.openCaseForDevices(devices, category.code) : cases.openCaseFor(e.deviceId, e.rule.id, category.code);
    let caseId: string;
    let gridId = alarm.gridId;
    if (open) {
      const c = await cases.attach(open, { deviceId: e.deviceId, ruleId: e.rule.id, alarmId: alarm.id, severity, actor, note: e.message });
      caseId = c.id;
      gridId = c.gridId;
    } else {
      let { lat, lon } = alarm;
      if ((lat === null || lon === null) && alarm.gridId) ({ lat, lon } = cases.grids.centre(alarm.gridId) ?? { lat: null, lon: null });
      if (lat === null || lon === null) {
        this.log.warn({ rule: e.rule.id, deviceId: e.deviceId }, 'device has no location and no grid; alarm without a case');
        return;
      }
      const dev = this.deps.registry.get(e.deviceId);
      const { case: c } = await cases.create({
        title: `${category.name} · ${dev?.name ?? e.deviceId}`, description: e.message, category: category.code, severity, lat, lon, gridId: alarm.gridId,
        source: 'rule', actor, ruleId: e.rule.id, deviceId: e.deviceId, alarmId: alarm.id, data: { alarmId: alarm.id, rule: e.rule.id, type: e.type },
      });
      caseId = c.id;
      gridId = c.gridId;
    }
    for (const d of e.related ?? []) {
      if (d !== e.deviceId) await cases.attach(caseId, { deviceId: d, ruleId: null, alarmId: alarm.id, actor, note: 'correlated' });
    }
    alarm.caseId = caseId;
    await rowWritten;
    await Promise.all([
      e.snapshot ? Promise.resolve(snapshotWritten).then(() => cases.evidence.linkAlarm(alarm.id, caseId, gridId)) : null,
      this.db.query('update alarms set case_id = $2 where id = $1', [alarm.id, caseId]),
    ]);
    this.emit(alarm, 'case_linked');
  }

  /** Writes the alarm's row; `once`: not when an alarm of (rule, device) is active already (answers false then). */
  private async insertRow(alarm: Alarm, e: RaiseEffect, once = false, q: Queryable = this.db): Promise<boolean> {
    const rows = await q.query(
      `insert into alarms (id, rule_id, rule_name, device_id, type, severity, original_severity, status, message, value, ts, last_ts, created_at, updated_at, lat, lon, grid_id, related)
       values ($1, $2, $3, $4, $5, $6, $6, 'active', $7, $8, to_timestamp($9 / 1000.0), to_timestamp($9 / 1000.0), to_timestamp($10 / 1000.0), to_timestamp($10 / 1000.0), $11, $12, $13, $14)
       ${once ? "on conflict (rule_id, device_id) where status = 'active' do nothing returning id" : ''}`,
      [alarm.id, e.rule.id, e.rule.name, e.deviceId, e.type, e.severity, e.message, e.value === undefined ? null : JSON.stringify(e.value), e.ts, alarm.createdAt,
        alarm.lat, alarm.lon, alarm.gridId, e.related ? JSON.stringify(e.related) : null],
    );
    return !once || rows.length === 1;
  }

  /** Synchronous part of a clear; returns the write-behind job, or null when nothing is active. */
  private clearNow(ruleId: string, deviceId: string, ts: number, by: string, fence?: Fence): (() => Promise<void>) | null {
    const k = `${ruleId}\u0000${deviceId}`;
    const a = this.active.get(k);
    if (!a) return null;
    this.active.delete(k);
    a.status = 'cleared';
    a.clearedAt = ts;
    a.clearedBy = by;
    a.updatedAt = this.deps.now();
    const at = a.updatedAt;
    if (this.deps.shared) {
      // Cluster: announced once, by the node whose update cleared the row.
      return async () => {
        let rows: unknown[];
        try {
          rows = await this.write(fence, (q) => q.query("update alarms set status = 'cleared', cleared_at = to_timestamp($2 / 1000.0), cleared_by = $3, updated_at = to_timestamp($4 / 1000.0) where id = $1 and status = 'active' returning id", [a.id, ts, by, at]));
        } catch (err) {
          if (!fence?.refused(err)) throw err;
          // A stale holder of the timers: the alarm stays as the database has it, in this node's book too.
          Object.assign(a, { status: 'active', clearedAt: null, clearedBy: null });
          if (!this.active.has(k)) this.active.set(k, a);
          return;
        }
        if (rows.length) this.emit(a, 'cleared');
      };
    }
    this.emit(a, 'cleared');
    return async () => {
      await this.db.query("update alarms set status = 'cleared', cleared_at = to_timestamp($2 / 1000.0), cleared_by = $3, updated_at = to_timestamp($4 / 1000.0) where id = $1", [a.id, ts, by, at]);
    };
  }

  // ---- operator actions ----------------------------------------------------------------------

  async get(id: string): Promise<Alarm | null> {
    if (!/^[0-9a-f-]{36}$/.test(id)) return null;
    if (this.pending.has(id)) {
      // Announced before its row exists: wait for the write-behind step.
      await this.idle();
    }
    const r = (await this.db.query<AlarmRow>('select * from alarms where id = $1', [id]))[0];
    return r ? toAlarm(r) : null;
  }

  /** The alarm when `p` may see it (its region holds the alarm's grid); ALARM_NOT_FOUND otherwise. */
  async visible(id: string, p: Principal): Promise<Alarm> {
    const a = await this.get(id);
    if (!a || !this.deps.auth.canSee(p, a.gridId)) throw AlarmErrors.notFound();
    return a;
  }

  async comments(id: string): Promise<AlarmComment[]> {
    const rows = await this.db.query<{ id: number; ts: Date; author: string; text: string }>('select * from alarm_comments where alarm_id = $1 order by id', [id]);
    return rows.map((r) => ({ id: Number(r.id), ts: t(r.ts)!, author: r.author, text: r.text }));
  }

  private async addComment(id: string, author: string, text: string): Promise<void> {
    await this.db.query('insert into alarm_comments (alarm_id, ts, author, text) values ($1, to_timestamp($2 / 1000.0), $3, $4)', [id, this.deps.now(), author, text]);
  }

  ack(id: string, p: Principal, comment?: string): Promise<Alarm> {
    return this.serial(async () => {
      const a = await this.visible(id, p);
      if (a.acknowledged) return a;
      const now = this.deps.now();
      await this.db.query('update alarms set acknowledged = true, ack_by = $2, ack_at = to_timestamp($3 / 1000.0), updated_at = to_timestamp($3 / 1000.0) where id = $1', [id, p.username, now]);
      if (comment) await this.addComment(id, p.username, comment);
      const live = this.active.get(`${a.rule}\u0000${a.deviceId}`);
      const out = { ...(live?.id === id ? live : a), acknowledged: true, ackBy: p.username, ackAt: now, updatedAt: now };
      if (live?.id === id) Object.assign(live, out);
      this.emit(out, 'acked');
      return out;
    });
  }

  clear(id: string, p: Principal): Promise<Alarm> {
    return this.serial(async () => {
      const a = await this.visible(id, p);
      if (a.status !== 'active') throw AlarmErrors.notActive();
      this.evaluator.markCleared(a.rule, a.deviceId);
      const live = this.active.get(`${a.rule}\u0000${a.deviceId}`);
      const job = this.clearNow(a.rule, a.deviceId, this.deps.now(), p.username);
      await job?.();
      return live ?? a;
    });
  }

  comment(id: string, p: Principal, text: string): Promise<AlarmComment[]> {
    return this.serial(async () => {
      const a = await this.visible(id, p);
      await this.addComment(id, p.username, text);
      this.emit(a, 'commented');
      return this.comments(id);
    });
  }

  async list(q: AlarmQuery): Promise<Alarm[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    const p = (v: unknown) => {
      params.push(v);
      return `$${params.length}`;
    };
    if (q.status) where.push(`status = ${p(q.status)}`);
    if (q.severity?.length) where.push(`severity = any(${p(q.severity)}::text[])`);
    if (q.gridIds) where.push(`grid_id = any(${p(q.gridIds)}::text[])`);
    if (q.rule) where.push(`rule_id = ${p(q.rule)}`);
    if (q.deviceId) where.push(`device_id = ${p(q.deviceId)}`);
    if (q.acknowledged !== undefined) where.push(`acknowledged = ${p(q.acknowledged)}`);
    const rows = await this.db.query<AlarmRow>(`select * from alarms ${where.length ? `where ${where.join(' and ')}` : ''} order by created_at desc, id limit ${p(q.limit)}`, params);
    return rows.map(toAlarm);
  }

  /**
   * Unacknowledged active alarms past their severity's limit go one severity
   * up (critical re-notifies). `fence`: the rules tick's lease; a stale
   * holder's escalation is refused and the rest of its pass skipped.
   */
  escalate(now: number, fence?: Fence): Promise<void> {
    return this.serial(async () => {
      const rules = this.rules();
      for (const a of this.active.values()) {
        if (a.acknowledged) continue;
        const rule = rules.get(a.rule);
        const mins = rule && rule.escalateAfterMin !== undefined ? rule.escalateAfterMin : ESCALATE_AFTER_MIN[a.severity];
        if (mins === null || mins === undefined) continue;
        if (now - (a.escalatedAt ?? a.createdAt) < mins * 60_000) continue;
        const before = { severity: a.severity, escalated: a.escalated, escalations: a.escalations, escalatedAt: a.escalatedAt, updatedAt: a.updatedAt };
        a.severity = ESCALATE_NEXT[a.severity];
        a.escalated = true;
        a.escalations++;
        a.escalatedAt = now;
        a.updatedAt = now;
        try {
          await this.write(fence, (q) => q.query('update alarms set severity = $2, escalated = true, escalations = $3, escalated_at = to_timestamp($4 / 1000.0), updated_at = to_timestamp($4 / 1000.0) where id = $1', [a.id, a.severity, a.escalations, now]));
        } catch (err) {
          if (!fence?.refused(err)) throw err;
          Object.assign(a, before);
          return;
        }
        this.emit(a, 'escalated');
      }
    });
  }
}
