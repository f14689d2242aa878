/**
 * Rules: rule definitions as data, the in-memory evaluator fed by
 * 'message.stored', the alarm lifecycle, escalation and backtest.
 * Evaluator state in progress is written to `rule_state` every second and
 * on stop; active alarms live in `alarms`; both are read back on start, so a
 * restart neither forgets a pending "for 2 min" nor raises a second alarm.
 * In a cluster each device is evaluated on its owner node (cluster/owners.ts):
 * the others forward its signals there, and a node that becomes a device's
 * owner reads back what the previous one flushed (docs/cluster.md). Both
 * replay the stored readings after what was flushed, and the stored events
 * and alerts after what the alarm rows counted (`replayStored`): at a
 * hand-over for the devices taken over, at start for every device; and a
 * correlation rule's window is rebuilt from the stored events and alerts by
 * the node that takes the rule over, or at start (`replayCorrelations`).
 */
import { deserialize, serialize } from 'node:v8';
import type { Normalised } from '@gridlink/devices';
import type { Auth } from '../auth/index.js';
import type { CaseStore } from '../cases/index.js';
import type { DeviceOwners, Fence, Leases, OwnershipChange } from '../cluster/index.js';
import type { EventBus } from '../core/bus.js';
import { ConfigError, readFields, type Field } from '../core/config.js';
import type { Logger } from '../core/logger.js';
import type { HubModule } from '../core/module.js';
import type { GridService, RealtimeService } from '../core/services.js';
import type { DispatchAlarm } from '../dispatch/index.js';
import type { StoredMessage } from '../ingest/index.js';
import type { DeviceRegistry } from '../registry/index.js';
import type { Db } from '../store/index.js';
import { AlarmService } from './alarms.js';
import { backtest, type BacktestResult } from './backtest.js';
import { RuleEvaluator, type DeviceLite, type Effect, type KeyState, type Signal } from './evaluator.js';
import type { CorrelationRule, MatchRule, Rule } from './rule.schema.js';
import { RuleRepo } from './rules.repo.js';
import { ruleRoutes } from './routes.js';
import { ruleMigrations } from './schema.js';
import type { CameraAlarmEvent } from '../video/index.js';

export { RuleEvaluator, compare, type Effect, type Signal, type KeyState } from './evaluator.js';
export { DEFAULT_RULES, ESCALATE_AFTER_MIN, RuleT, ruleCheck, type Rule, type RuleKind } from './rule.schema.js';
export { AlarmService, type Alarm, type AlarmChange, type AlarmComment } from './alarms.js';
export type { BacktestResult } from './backtest.js';

/**
 * Cluster hand-over: how far back (hub time at ingest) the readings of the
 * devices a node takes over are replayed. It covers the previous owner's last
 * unflushed second, the signals in flight to it and the time until its death
 * is noticed (at most the presence expiry, 6 s), with room for clock skew
 * between the nodes.
 */
export const REPLAY_WINDOW_MS = 30_000;
/** ... and by message time, so the primary key bounds the read: a device whose clock lags more than this is not replayed. */
const REPLAY_TS_SPAN_MS = 10 * 60_000;

export const rulesConfigSchema = {
  stateFlushMs: {
    env: 'GRIDLINK_RULES_STATE_FLUSH_MS', kind: 'int', default: 1_000, min: 0, max: 3_600_000,
    description: 'How often pending rule runs (threshold counts and durations) are written to rule_state; 0: only on stop. A cluster node taking a device over, and a single process at start, replays the readings after what was written (and the events and alerts after what the alarm rows counted)',
  },
} as const satisfies Record<string, Field>;

export interface RulesOptions {
  /** Absence, auto-clear and escalation check period (hub clock decides what is due). */
  tickMs?: number;
  /** How often evaluator state in progress is written. */
  stateFlushMs?: number;
}

export interface RulesModule extends HubModule {
  evaluator: RuleEvaluator;
  alarms: AlarmService;
  repo: RuleRepo;
  /** Runs absence, auto-clear and escalation at deps.now() and waits for the alarm steps. */
  tick(): Promise<void>;
  /** Resolves when every alarm step queued so far is done. */
  idle(): Promise<void>;
  flushState(): Promise<void>;
  backtest(rule: Rule, from: number, to: number, regionId?: string | null): Promise<BacktestResult>;
}

export interface RulesDeps {
  db: Db;
  bus: EventBus;
  logger: Logger;
  auth: Auth;
  registry: DeviceRegistry;
  now: () => number;
  /** Timed work (absence, auto-clear, escalation) runs on the holder of `rules.timers`. */
  leases?: Leases;
  /** Cluster: which node evaluates each device's rules (absent or not shared: this one). */
  owners?: DeviceOwners;
  /** Alarms open and join cases, and rules resolve case categories, when cases is loaded. */
  cases?: CaseStore;
  grids?: GridService;
  realtime?: RealtimeService;
}

export function createRules(deps: RulesDeps, opts: RulesOptions = {}): RulesModule {
  const log = deps.logger.child({ module: 'rules' });
  const problems: string[] = [];
  const settings = readFields(rulesConfigSchema, process.env, {}, problems) as { stateFlushMs: number };
  if (problems.length) throw new ConfigError(problems);
  let startedAt = 0;
  const grids = () => deps.grids;
  // auth.regions is the grid hierarchy once cases loads it, exact match before (the same answer canSee gives).
  const contains = (region: string, gridId: string | null) => deps.auth.regions.contains(region, gridId);
  const gridOf = (d: { gridId: string | null; lat: number | null; lon: number | null }) =>
    d.gridId ?? (d.lat !== null && d.lon !== null ? grids()?.locate(d.lat, d.lon) ?? null : null);

  function* devices(): Iterable<DeviceLite> {
    for (const d of deps.registry.list()) {
      if (!d.enabled) continue;
      // A camera that only has an RTSP URL and never spoke MQTT is watched by the video module's
      // RTSP probes (alarm 摄像头离线), not by silence on MQTT.
      if (d.type === 'camera' && d.lastSeen === null) continue;
      yield { id: d.id, type: d.type, gridId: gridOf(d), since: Math.max(d.createdAt, startedAt) };
    }
  }

  const evaluator = new RuleEvaluator({ contains, devices });
  const owners = deps.owners?.shared ? deps.owners : null;
  const repo = new RuleRepo(deps.db, (rule, id) => {
    if (rule) evaluator.upsertRule(rule);
    else evaluator.removeRule(id);
  }, deps.now);
  const alarms = new AlarmService(owners ? { ...deps, shared: true } : deps, evaluator, () => repo.map());
  let tickTimer: NodeJS.Timeout | null = null;
  let flushTimer: NodeJS.Timeout | null = null;

  function onStored(s: StoredMessage): void {
    const d = deps.registry.get(s.deviceId);
    const sig: Signal = {
      deviceId: s.deviceId, deviceType: s.deviceType, gridId: d ? gridOf(d) : null, lat: d?.lat ?? null, lon: d?.lon ?? null,
      // Absence runs on the hub clock at evaluation, the same clock tick() reads.
      at: deps.now(), msg: s.msg,
    };
    if (owners) return route(sig);
    if (held) {
      held.push(sig);
      return;
    }
    evaluateAll(sig);
  }

  /**
   * Testing only (GRIDLINK_TEST_KILL_BEFORE_RULES=<event or alert type, or a
   * metric>, read from the environment at start, not settable through REST or
   * MQTT): the node that is to evaluate rules (the device's own, or a
   * correlation rule's it owns) for a message of that type, or a reading
   * carrying that metric (committed and acknowledged by then), does not, and
   * SIGKILLs itself a moment later, once the acknowledgement is out: a crash
   * between the commit and the rules, for a test to find out what a restart
   * or a hand-over makes of it.
   */
  const killBefore = process.env.GRIDLINK_TEST_KILL_BEFORE_RULES || null;
  function killedBefore(sig: Signal): boolean {
    const m = sig.msg;
    if (killBefore === null) return false;
    if (m.channel === 'telemetry' ? m.values[killBefore] === undefined : (m.channel !== 'event' && m.channel !== 'alert') || m.type !== killBefore) return false;
    log.warn({ deviceId: sig.deviceId, type: killBefore }, 'message committed, rules not run: killing this process (testing option)');
    setTimeout(() => process.kill(process.pid, 'SIGKILL'), 200);
    return true;
  }

  /** Single process: every rule of the signal, here. */
  function evaluateAll(sig: Signal): void {
    if (killedBefore(sig)) return;
    const effects = evaluator.onSignal(sig);
    if (effects.length) void alarms.applyAll(effects);
  }

  // ---- cluster: one owner evaluates each device ----------------------------------------------

  /** Signals waiting while this node reads back the devices it took over, or replays at start (null: none). */
  let held: Signal[] | null = null;
  let takeovers = 0;
  let handover: Promise<void> = Promise.resolve();

  /** A device's own rules: every rule but correlation, which joins two devices and runs on its rule's owner. */
  const deviceRules = (r: Rule) => r.kind !== 'correlation';

  function evaluate(sig: Signal): void {
    if (held) {
      held.push(sig);
      return;
    }
    if (killedBefore(sig)) return;
    const ids = sig.rules;
    const effects = evaluator.onSignal(sig, ids ? (r) => r.kind === 'correlation' && ids.includes(r.id) : deviceRules);
    if (effects.length) void alarms.applyAll(effects);
  }

  /** The key a correlation rule is owned by: the same rendezvous hash as devices (a NUL never appears in a device id). */
  const ruleOwnerKey = (ruleId: string) => `\u0000rule:${ruleId}`;

  /** Signals for other owners, sent as one message per owner once the current burst of stored messages is handled. */
  const outbox = new Map<string, Signal[]>();
  let sending = false;
  /** Forwards are failing (Redis away): one log line when it starts, one when it ends. */
  let forwardFailing = false;

  /** Evaluates here when this node owns the device (or knows no peers yet), else forwards to its owner. */
  function route(sig: Signal): void {
    const o = owners!;
    if (sig.rules) {
      // Re-routed after its owner was found gone: those rules' owners again.
      for (const [owner, ids] of correlationOwners(sig.rules)) toOwner(owner, { ...sig, rules: ids });
      return;
    }
    const corr = evaluator.correlationsFor(sig);
    if (corr.length) for (const [owner, ids] of correlationOwners(corr)) toOwner(owner, { ...sig, rules: ids });
    const owner = o.ownerOf(sig.deviceId);
    if (owner === null || owner === o.nodeId) return evaluate(sig);
    // Absence: whichever node holds the timers next has heard the device.
    evaluator.heard(sig.deviceId, sig.at);
    if (!evaluator.wants(sig, false)) return;
    toOwner(owner, sig);
  }

  /** Correlation rules grouped by the node that owns each. */
  function correlationOwners(ids: readonly string[]): Map<string | null, string[]> {
    const by = new Map<string | null, string[]>();
    for (const id of ids) {
      const owner = owners!.ownerOf(ruleOwnerKey(id));
      const list = by.get(owner);
      if (list) list.push(id);
      else by.set(owner, [id]);
    }
    return by;
  }

  /** Evaluated here when this node is the owner (or knows no peers yet), else queued for the owner's channel. */
  function toOwner(owner: string | null, sig: Signal): void {
    if (owner === null || owner === owners!.nodeId) return evaluate(sig);
    let box = outbox.get(owner);
    if (!box) outbox.set(owner, (box = []));
    box.push(sig);
    if (!sending) {
      sending = true;
      setImmediate(send);
    }
  }

  function send(): void {
    sending = false;
    const boxes = [...outbox];
    outbox.clear();
    for (const [owner, sigs] of boxes) {
      owners!.forward(owner, serialize(sigs)).then(
        // Nobody received them: the owner is gone and out of this node's view; the next owner takes them, in order.
        (received) => {
          if (forwardFailing) {
            forwardFailing = false;
            log.info('rule signals forwarded to their owners again');
          }
          if (!received) for (const sig of sigs) route(sig);
        },
        (err: Error) => {
          // Redis away: evaluated here, as every node did before owners (docs/cluster.md).
          if (!forwardFailing) log.warn({ err: err.message, owner }, 'rule signals not forwarded; evaluated where they are ingested until Redis is back');
          forwardFailing = true;
          for (const sig of sigs) evaluate(sig);
        },
      );
    }
  }

  function onForwarded(payload: Buffer): void {
    let sigs: Signal[];
    try {
      sigs = deserialize(payload) as Signal[];
      if (!Array.isArray(sigs)) throw new Error('not a list of signals');
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'forwarded rule signals unreadable');
      return;
    }
    for (const sig of sigs) evaluate(sig);
  }

  /**
   * The live nodes changed. Signals wait (in order) while this node flushes
   * the state of the devices it owned until now, for their next owner, and
   * reads back the devices it gains: the state their previous owner flushed,
   * the active alarms and the open cases' links, as a restart would.
   */
  function onOwnersChanged(change: OwnershipChange): Promise<void> {
    const self = owners!.nodeId;
    held ??= [];
    takeovers++;
    log.info({ peers: owners!.peers(), gone: [...change.gone] }, 'device owners changed: handing over and taking over rule state');
    return (handover = handover.then(async () => {
      await flushState((d) => {
        const b = change.before(d);
        return b === null || b === self;
      });
      const gained = (d: string) => change.after(d) === self && change.before(d) !== self;
      const rows = await deps.db.query<{ rule_id: string; device_id: string; state: KeyState }>('select rule_id, device_id, state from rule_state');
      await alarms.sync();
      if (deps.cases) await alarms.serial(() => deps.cases!.loadLinks());
      const active = [...alarms.activeAlarms()].map((a) => ({ ruleId: a.rule, deviceId: a.deviceId, lastAt: Math.max(a.updatedAt, a.createdAt) }));
      evaluator.adopt(gained, rows.map((r) => ({ ruleId: r.rule_id, deviceId: r.device_id, state: r.state })), active);
      // Whether the previous owner of a device or rule is gone (died or left; a node starting alone follows its own
      // previous process), so that nobody else counts what was sent to it.
      const orphaned = (k: string) => {
        const before = change.before(k);
        return before === null ? owners!.peers().length <= 1 : change.gone.has(before);
      };
      // Correlation rules this node now owns: their windows, from the stored events and alerts. A rule whose previous
      // owner lives on (a node joined) had every signal sent there evaluated there: its window is filled, nothing raised.
      // First, as live: a joined alarm's case is there before each device's own alarm looks for one.
      const rulesGained = new Map<string, boolean>();
      for (const r of repo.rules()) {
        if (r.kind !== 'correlation' || r.enabled === false) continue;
        const k = ruleOwnerKey(r.id);
        if (change.after(k) !== self || change.before(k) === self) continue;
        rulesGained.set(r.id, orphaned(k));
      }
      await replayCorrelations(rulesGained, 'correlation windows of the rules taken over rebuilt');
      // What the previous owner counted after its last flush, or never got to count (a forward in flight when it died).
      // The repeats of a device whose previous owner lives on (a node joined) are that owner's to count.
      await replayStored(gained, undefined, undefined, orphaned);
      // An owner that died between an alarm's row and its case left it without one.
      if (deps.cases && change.gone.size) await alarms.linkMissingCases((d) => gained(d) && change.gone.has(change.before(d)!));
    }).catch((err: Error) => log.error({ err: err.message }, 'devices taken over without their stored state')).finally(() => {
      if (--takeovers > 0) return;
      const waiting = held ?? [];
      held = null;
      for (const sig of waiting) evaluate(sig);
    }));
  }

  /**
   * Cluster hand-over, and the single process at start (every device): the
   * readings of the devices this node gains, stored
   * within the last REPLAY_WINDOW_MS (hub time at ingest), go through the
   * evaluator's threshold rules above what the stored state holds
   * (`evaluator.replay`); a run they complete raises its alarm now, through
   * the alarm book (a row another node raised meanwhile makes it a repeat),
   * and a raise, repeat or clear the alarm rows do not hold yet (above their
   * last trigger) is made now. Readings whose signals already wait on this
   * node are left to them. Every acknowledged reading is in `readings`, so a
   * run never loses a step to a dead owner: neither its unflushed last
   * second nor a signal in flight. A single process killed (SIGKILL) and
   * started again is its own previous owner: its last unflushed second is
   * replayed the same way. `repeats(device)` false: the device's previous
   * owner lives on (a node joined) and counts the repeats of what it got.
   */
  async function replayStored(gained: (deviceId: string) => boolean, why = 'readings of the devices taken over replayed', since?: number,
    repeats: (deviceId: string) => boolean = () => true): Promise<void> {
    const ids = deps.registry.list().filter((d) => d.enabled && gained(d.id)).map((d) => d.id);
    if (!ids.length) return;
    const from = replayFrom(since);
    await replayReadings(ids, why, from, repeats);
    await replayEvents(ids, why, from, repeats);
  }

  /** How far back (hub time at ingest) a replay reads: the hand-over's window, or further back at start. */
  const replayFrom = (since?: number) => Math.min(since ?? Infinity, deps.now() - REPLAY_WINDOW_MS);

  /**
   * The alarm book of rules and devices (null: every device): per rule and
   * device, the message time of the last trigger its alarm rows hold
   * (`last_ts`, raised or repeated, active or cleared since), younger than `minTs`.
   */
  async function counted(ruleIds: string[], deviceIds: string[] | null, minTs: number): Promise<(ruleId: string, deviceId: string) => number | undefined> {
    const book = new Map<string, number>();
    if (ruleIds.length) {
      for (const r of await deps.db.query<{ rule_id: string; device_id: string; ts: number }>(
        `select rule_id, device_id, round(extract(epoch from max(last_ts)) * 1000)::float8 as ts from alarms
         where rule_id = any($1::text[]) and ($2::text[] is null or device_id = any($2::text[])) and last_ts > to_timestamp($3 / 1000.0) group by rule_id, device_id`,
        [ruleIds, deviceIds, minTs])) book.set(`${r.rule_id}\u0000${r.device_id}`, r.ts);
    }
    return (ruleId, deviceId) => book.get(`${ruleId}\u0000${deviceId}`);
  }

  /** Effects a replay found above the alarm book: in a cluster each repeat is counted only if its row still lacks it when written. */
  function applyReplayed(effects: Effect[]): Promise<void> {
    for (const e of effects) if (e.kind === 'raise') e.replayed = true;
    return alarms.applyAll(effects);
  }

  async function replayReadings(ids: string[], why: string, from: number, repeats: (deviceId: string) => boolean): Promise<void> {
    const rules = repo.rules().filter((r) => r.kind === 'threshold' && r.enabled !== false);
    const metrics = [...new Set(rules.flatMap((r) => (r.kind === 'threshold' ? [r.metric] : [])))];
    if (!metrics.length) return;
    const now = deps.now();
    const rows = await deps.db.query<{ device_id: string; metric: string; value: number; ts: number; at: number; seq: string | null }>(
      `select device_id, metric, value, round(extract(epoch from ts) * 1000)::float8 as ts, (extract(epoch from received_at) * 1000)::float8 as at, seq
       from readings
       where device_id = any($1::text[]) and metric = any($2::text[]) and value is not null
         and ts > to_timestamp($3 / 1000.0) and received_at >= to_timestamp($4 / 1000.0)
       order by device_id, ts`,
      [ids, metrics, now - REPLAY_TS_SPAN_MS, from]);
    if (!rows.length) return;
    // Readings whose signals wait here (held while taking over) are evaluated as they are, after: not replayed.
    const waiting = new Set<string>();
    for (const sig of held ?? []) if (sig.msg.channel === 'telemetry' && !sig.rules) waiting.add(`${sig.deviceId}\u0000${sig.msg.ts}`);
    const sigs: Signal[] = [];
    for (const r of rows) {
      const d = deps.registry.get(r.device_id);
      if (!d || waiting.has(`${r.device_id}\u0000${r.ts}`)) continue;
      const msg = { channel: 'telemetry', ts: r.ts, values: { [r.metric]: r.value }, ...(r.seq !== null ? { seq: Number(r.seq) } : {}) } as Normalised;
      sigs.push({ deviceId: d.id, deviceType: d.type, gridId: gridOf(d), lat: d.lat, lon: d.lon, at: r.at, msg });
    }
    const book = await counted(rules.map((r) => r.id), [...new Set(sigs.map((x) => x.deviceId))], now - REPLAY_TS_SPAN_MS);
    const effects = evaluator.replay(sigs, book, repeats);
    log.info({ readings: sigs.length, devices: ids.length, raised: effects.filter((e) => e.kind === 'raise').length, cleared: effects.filter((e) => e.kind === 'clear').length }, why);
    if (effects.length) await applyReplayed(effects);
  }

  /**
   * The same for match rules: the stored events and alerts of the devices
   * (same window), above what the alarm book counted of them — the greatest
   * `last_ts` (message time of the last trigger an alarm row holds) of the
   * rule and device — go through `evaluator.replayEvents`. An event a dead
   * owner (or a killed process) committed but never evaluated raises its
   * alarm and case now; one it turned into an alarm is at or below that row's
   * `last_ts` and raises nothing, and counts nothing again.
   */
  async function replayEvents(ids: string[], why: string, from: number, repeats: (deviceId: string) => boolean): Promise<void> {
    const rules = repo.rules().filter((r): r is MatchRule => r.kind === 'match' && r.enabled !== false);
    if (!rules.length) return;
    const channels = [...new Set(rules.map((r) => r.channel))];
    const now = deps.now();
    const minTs = now - REPLAY_TS_SPAN_MS;
    // The types some rule takes or clears by (null: a rule of that channel takes any).
    const typesOf = (channel: 'event' | 'alert') => {
      const of = rules.filter((r) => r.channel === channel);
      return of.some((r) => !r.types.length) ? null : [...new Set(of.flatMap((r) => [...r.types, ...(r.clearTypes ?? [])]))];
    };
    const read = (channel: 'event' | 'alert') => !channels.includes(channel) ? Promise.resolve([] as StoredRow[]) : readStored(channel, ids, typesOf(channel), minTs, from);
    const [events, alerts] = await Promise.all([read('event'), read('alert')]);
    if (!events.length && !alerts.length) return;
    const book = await counted(rules.map((r) => r.id), [...new Set([...events, ...alerts].map((r) => r.device_id))], minTs);
    // Messages whose signals wait here are evaluated as they are, after: not replayed.
    const waiting = new Set<string>();
    for (const sig of held ?? []) if ((sig.msg.channel === 'event' || sig.msg.channel === 'alert') && !sig.rules) waiting.add(`${sig.deviceId}\u0000${sig.msg.channel}\u0000${sig.msg.type}\u0000${sig.msg.ts}`);
    const sigs: Signal[] = [];
    for (const [channel, list] of [['event', events], ['alert', alerts]] as const) {
      for (const r of list) {
        if (waiting.has(`${r.device_id}\u0000${channel}\u0000${r.type}\u0000${r.ts}`)) continue;
        const sig = storedSignal(channel, r);
        if (sig) sigs.push(sig);
      }
    }
    // Message-time order, per device as the live path meets them (a clear after its alarm).
    sigs.sort(byMessageTime);
    const effects = evaluator.replayEvents(sigs, book, (rule) => repo.get(rule)?.updatedAt ?? Infinity, repeats);
    // The snapshot of an alert that raises, read now (a replay of many camera alerts does not read their pictures).
    for (const e of effects) {
      if (e.kind !== 'raise' || e.snapshot !== NO_BYTES) continue;
      const [row] = await deps.db.query<{ snapshot: Uint8Array | null }>('select snapshot from alerts where device_id = $1 and type = $2 and ts >= to_timestamp(($3 - 0.5) / 1000.0) and ts < to_timestamp(($3 + 0.5) / 1000.0) limit 1', [e.deviceId, e.type, e.ts]);
      if (row?.snapshot) e.snapshot = new Uint8Array(row.snapshot);
      else delete e.snapshot;
    }
    log.info({ messages: sigs.length, devices: ids.length, raised: effects.filter((e) => e.kind === 'raise').length, cleared: effects.filter((e) => e.kind === 'clear').length },
      why.replace('readings', 'events and alerts'));
    if (effects.length) await applyReplayed(effects);
  }

  /**
   * Correlation rules this node now evaluates (`rules`: id → whether it may
   * raise; false when the rule's previous owner lives on and evaluated what
   * was sent to it): each rule's window is rebuilt from the stored events and
   * alerts of its two signal kinds, received within the replay's window or
   * the rule's own before it (`evaluator.replayCorrelations`). A join the
   * previous owner never made (a signal in flight to it when it died, or
   * committed by a process killed before its rules ran) raises now, once: a
   * join at or below the last one the alarm rows of the rule and its anchor
   * device hold was made already. Signals waiting here are evaluated after,
   * as they come, with the window rebuilt.
   */
  async function replayCorrelations(rules: ReadonlyMap<string, boolean>, why: string, since?: number): Promise<void> {
    const defs = repo.rules().filter((r): r is CorrelationRule => r.kind === 'correlation' && r.enabled !== false && rules.has(r.id));
    if (!defs.length) return;
    const now = deps.now();
    const from = replayFrom(since);
    // The window a message received at `from` joins within, and never older than the replay's span by message time.
    const minTs = Math.max(now - REPLAY_TS_SPAN_MS, from - Math.max(...defs.map((r) => r.windowS * 1000)));
    const typesOf = (channel: 'event' | 'alert') => [...new Set(defs.flatMap((r) => r.signals.filter((x) => x.channel === channel).flatMap((x) => x.types)))];
    const read = (channel: 'event' | 'alert') => {
      const types = typesOf(channel);
      return types.length ? readStored(channel, null, types, minTs, minTs) : Promise.resolve([] as StoredRow[]);
    };
    const [events, alerts] = await Promise.all([read('event'), read('alert')]);
    // Signals waiting here for these rules are evaluated after, as they come: not replayed.
    const waiting = new Set<string>();
    for (const sig of held ?? []) {
      if (sig.msg.channel !== 'event' && sig.msg.channel !== 'alert') continue;
      for (const id of owners ? sig.rules ?? [] : [...rules.keys()]) waiting.add(`${id}\u0000${sig.deviceId}\u0000${sig.msg.channel}\u0000${sig.msg.type}\u0000${sig.msg.ts}`);
    }
    const sigs: Signal[] = [];
    for (const [channel, list] of [['event', events], ['alert', alerts]] as const) {
      for (const r of list) {
        const sig = storedSignal(channel, r);
        if (!sig) continue;
        const ids = evaluator.correlationsFor(sig).filter((id) => rules.has(id) && !waiting.has(`${id}\u0000${r.device_id}\u0000${channel}\u0000${r.type}\u0000${r.ts}`));
        if (ids.length) sigs.push({ ...sig, rules: ids });
      }
    }
    sigs.sort(byMessageTime);
    const book = await counted(defs.map((r) => r.id), null, minTs);
    const raiseFrom = (id: string) => (rules.get(id) ? from : Infinity);
    const effects = evaluator.replayCorrelations(new Set(defs.map((r) => r.id)), sigs, raiseFrom, book, (rule) => repo.get(rule)?.updatedAt ?? Infinity);
    log.info({ messages: sigs.length, rules: defs.length, raised: effects.length }, why);
    if (effects.length) await applyReplayed(effects);
  }

  type StoredRow = { device_id: string; type: string; ts: number; at: number; seq: string | null; severity: string | null; data: unknown; confidence: number | null; snapshot: boolean; snapshot_url: string | null; objects: unknown };

  /** Stored events or alerts (of `ids`, null: every device; of `types`, null: any) younger than `minTs` by message time, received at or after `from`. */
  function readStored(channel: 'event' | 'alert', ids: string[] | null, types: string[] | null, minTs: number, from: number): Promise<StoredRow[]> {
    return deps.db.query<StoredRow>(
      `select device_id, type, round(extract(epoch from ts) * 1000)::float8 as ts, (extract(epoch from received_at) * 1000)::float8 as at, seq,
         ${channel === 'event' ? 'severity, data, null::float8 as confidence, false as snapshot, null::text as snapshot_url, null::jsonb as objects' : 'null::text as severity, null::jsonb as data, confidence, snapshot is not null as snapshot, snapshot_url, objects'}
       from ${channel === 'event' ? 'events' : 'alerts'}
       where ($1::text[] is null or device_id = any($1::text[])) and ts > to_timestamp($2 / 1000.0) and received_at >= to_timestamp($3 / 1000.0)
         and ($4::text[] is null or type = any($4::text[]))`, [ids, minTs, from, types]);
  }

  /** A stored event or alert as the signal it was (its device as registered now; null: the device is gone). */
  function storedSignal(channel: 'event' | 'alert', r: StoredRow): Signal | null {
    const d = deps.registry.get(r.device_id);
    if (!d) return null;
    const seq = r.seq !== null ? { seq: Number(r.seq) } : {};
    const msg = (channel === 'event'
      ? { channel, ts: r.ts, type: r.type, ...(r.severity ? { severity: r.severity } : {}), ...(r.data != null ? { data: r.data } : {}), ...seq }
      : { channel, ts: r.ts, type: r.type, ...(r.confidence !== null ? { confidence: r.confidence } : {}), ...(r.snapshot ? { snapshot: NO_BYTES } : {}),
        ...(r.snapshot_url ? { snapshotUrl: r.snapshot_url } : {}), ...(r.objects != null ? { objects: r.objects } : {}), ...seq }) as Normalised;
    return { deviceId: d.id, deviceType: d.type, gridId: gridOf(d), lat: d.lat, lon: d.lon, at: r.at, msg };
  }

  const byMessageTime = (x: Signal, y: Signal) => x.msg.ts - y.msg.ts || (x.deviceId < y.deviceId ? -1 : x.deviceId > y.deviceId ? 1 : 0);

  /** Stands for a replayed alert's snapshot until the alert raises and its bytes are read. */
  const NO_BYTES = new Uint8Array(0);

  const DISPATCH_ALARM_NAMES: Record<DispatchAlarm['kind'], string> = {
    dispatch_declined: '派遣被拒 (dispatch declined)',
    dispatch_timeout: '派遣超时未接单 (dispatch not accepted in time)',
    dispatch_no_candidate: '无可派遣网格员 (no worker available)',
    dispatch_exhausted: '候选网格员已用尽 (every candidate tried)',
    worker_left_grid: '网格员离开责任网格 (worker left their grids)',
  };

  /**
   * Dispatch problems become alarms like any other: stored, listed by GET
   * /alarms, acknowledged and escalated, one active per (kind, worker).
   */
  function onDispatchAlarm(a: DispatchAlarm): void {
    const rule: MatchRule = { id: `dispatch.${a.kind}`, name: DISPATCH_ALARM_NAMES[a.kind], enabled: true, kind: 'match', channel: 'event', types: [a.kind], severity: a.severity };
    const deviceId = a.deviceId || `case:${a.caseId ?? 'none'}`;
    void alarms.applyAll([
      a.status === 'cleared'
        ? { kind: 'clear', rule, deviceId, ts: a.ts, reason: a.message }
        : { kind: 'raise', rule, deviceId, ts: a.ts, severity: a.severity, type: a.kind, message: a.message, where: { lat: a.lat, lon: a.lon, gridId: a.gridId } },
    ]);
  }

  /** The video module's RTSP probes: a camera offline for its configured time, and its return. */
  function onCameraAlarm(a: CameraAlarmEvent): void {
    const rule: MatchRule = { id: 'camera.offline', name: '摄像头离线 (camera offline)', enabled: true, kind: 'match', channel: 'event', types: ['camera_offline'], severity: 'major' };
    void alarms.applyAll([
      a.status === 'cleared'
        ? { kind: 'clear', rule, deviceId: a.cameraId, ts: a.ts, reason: a.reason }
        : { kind: 'raise', rule, deviceId: a.cameraId, ts: a.ts, severity: 'major', type: 'camera_offline', message: `摄像头离线: ${a.reason}`, where: { lat: a.lat, lon: a.lon, gridId: a.gridId } },
    ]);
  }

  /** Cluster: the owner writes a device's state (`mine` says which devices are this node's to write). */
  const ownedHere = (d: string) => {
    const o = owners!.ownerOf(d);
    return o === null || o === owners!.nodeId;
  };

  /**
   * Flushes run one after another: two in flight on two pool connections
   * could commit out of order and leave an older count in rule_state, the
   * one the next owner reads.
   */
  let flushing: Promise<void> = Promise.resolve();
  function flushState(mine: ((deviceId: string) => boolean) | null = owners ? ownedHere : null): Promise<void> {
    const run = flushing.then(() => writeState(mine));
    flushing = run.catch(() => undefined);
    return run;
  }

  async function writeState(mine: ((deviceId: string) => boolean) | null): Promise<void> {
    let dirty = evaluator.takeDirty();
    if (mine) dirty = dirty.filter((d) => mine(d.deviceId));
    if (!dirty.length) return;
    // A state that holds a reading's time stays stored even when empty: the next owner replays only the readings after it.
    const keep = dirty.filter((d) => d.state && (d.state.active || d.state.pendingSince !== null || d.state.count > 0 || d.state.ts !== undefined));
    const drop = dirty.filter((d) => !keep.includes(d));
    try {
      if (keep.length) {
        await deps.db.query(
          `insert into rule_state (rule_id, device_id, state, updated_at)
           select u.r, u.d, u.s::jsonb, now() from unnest($1::text[], $2::text[], $3::text[]) as u(r, d, s)
           on conflict (rule_id, device_id) do update set state = excluded.state, updated_at = now()`,
          [keep.map((k) => k.ruleId), keep.map((k) => k.deviceId), keep.map((k) => JSON.stringify(k.state))],
        );
      }
      if (drop.length) {
        await deps.db.query('delete from rule_state r using unnest($1::text[], $2::text[]) as u(r, d) where r.rule_id = u.r and r.device_id = u.d',
          [drop.map((k) => k.ruleId), drop.map((k) => k.deviceId)]);
      }
    } catch (err) {
      // The in-memory state is the truth: the keys are written again, as they are then, by the next flush.
      log.warn({ err: (err as Error).message, keys: dirty.length }, 'rule state not stored; will retry');
      evaluator.redirty(dirty);
    }
  }

  /**
   * Cluster: devices heard on other nodes (their last_seen, flushed by every
   * node's registry) and alarms other nodes changed, read back before the
   * holder's timed work, so absence neither fires for a device talking to
   * another node nor stays raised after it spoke again there.
   */
  let seenSince = 0;
  async function catchUp(fence: Fence | undefined): Promise<void> {
    const rows = await deps.db.query<{ id: string; seen: number }>(
      'select id, (extract(epoch from last_seen) * 1000)::float8 as seen from devices where last_seen > to_timestamp($1 / 1000.0)', [seenSince]);
    await alarms.sync();
    const effects = [];
    for (const r of rows) {
      seenSince = Math.max(seenSince, r.seen - 1);
      effects.push(...evaluator.heardElsewhere(r.id, r.seen));
    }
    if (effects.length) await alarms.applyAll(effects, fence);
  }

  /** Cluster: a rule edited on another node is picked up here at the next tick. */
  let rulesStamp = '';
  async function syncRules(): Promise<void> {
    const [r] = await deps.db.query<{ stamp: string }>("select count(*)::text || '/' || coalesce(sum(version), 0)::text || '/' || coalesce(max(updated_at)::text, '') as stamp from rules");
    if (!r || r.stamp === rulesStamp) return;
    const first = rulesStamp === '';
    rulesStamp = r.stamp;
    if (!first) evaluator.setRules(await repo.load());
  }

  async function tick(): Promise<void> {
    if (deps.leases?.shared) await syncRules();
    // Absence, auto-clear and escalation run once per cluster: on the holder of this lease.
    if (deps.leases?.holds('rules.timers') === false) return;
    // Each row this run decides is written under the token the lease is held by now: a run that stalls past
    // the lease (GC pause, SIGSTOP) has its writes refused instead of doubling the next holder's.
    const fence = deps.leases?.fence('rules.timers');
    if (deps.leases?.shared) await catchUp(fence);
    const now = deps.now();
    await alarms.applyAll(evaluator.tick(now), fence);
    await alarms.escalate(now, fence);
  }

  const runBacktest = (rule: Rule, from: number, to: number, regionId: string | null = null) =>
    backtest({
      db: deps.db,
      devices: () => deps.registry.list().map((d) => ({ id: d.id, type: d.type, gridId: gridOf(d), lat: d.lat, lon: d.lon })),
      contains,
      category: (ref) => deps.cases?.categories.resolve(ref)?.code ?? null,
    }, rule, from, to, regionId);

  return {
    name: 'rules',
    evaluator,
    alarms,
    repo,
    tick,
    idle: () => alarms.idle(),
    flushState,
    backtest: runBacktest,
    migrations: ruleMigrations,
    routes(api) {
      ruleRoutes(api, { auth: deps.auth, repo, alarms, grids, backtest: runBacktest, now: deps.now });
    },
    async start() {
      startedAt = deps.now();
      evaluator.setRules(await repo.load());
      if (deps.leases?.shared) await syncRules();
      // What was stored, read back as a node taking every device over reads it: the state (with the time of
      // the last reading it holds) and the active alarms.
      const rows = await deps.db.query<{ rule_id: string; device_id: string; state: KeyState }>('select rule_id, device_id, state from rule_state');
      const loaded = await alarms.load();
      if (owners) {
        // Cluster: every node starts from what was stored; a device's owner takes it over through the hand-over.
        for (const row of rows) evaluator.restore(row.rule_id, row.device_id, row.state);
        for (const a of loaded) evaluator.restore(a.rule, a.deviceId, { active: true, lastAt: Math.max(a.updatedAt, a.createdAt) });
      } else {
        const active = loaded.map((a) => ({ ruleId: a.rule, deviceId: a.deviceId, lastAt: Math.max(a.updatedAt, a.createdAt) }));
        evaluator.adopt(() => true, rows.map((r) => ({ ruleId: r.rule_id, deviceId: r.device_id, state: r.state })), active);
      }
      for (const d of deps.registry.list()) if (d.lastSeen !== null) evaluator.heard(d.id, d.lastSeen);
      evaluator.takeDirty();
      if (owners) {
        owners.onChange(onOwnersChanged);
        await owners.onSignal(onForwarded);
      } else {
        // Single process: signals of readings stored from now on wait (in order) while the stored ones are replayed.
        held = [];
      }
      deps.bus.on('message.stored', 'rules', onStored);
      if (!owners) {
        // A process killed before its last flush lost the steps it counted since: the readings after each state's
        // reading time step the threshold rules again, as at a cluster hand-over (a clean stop flushed: nothing to step).
        try {
          // Back to the last write of rule state (less the hand-over's margin), however long the process was
          // down, and never further than the message-time span: a restart a minute after the kill loses nothing.
          const [w] = await deps.db.query<{ at: number | null }>('select (extract(epoch from max(updated_at)) * 1000)::float8 as at from rule_state');
          const lastWrite = w?.at ?? null;
          const since = Math.max(deps.now() - REPLAY_TS_SPAN_MS, (lastWrite ?? -Infinity) - REPLAY_WINDOW_MS);
          // The correlation windows (minutes long, never stored) from the events and alerts, as a node taking the rules
          // over; first, as live: a joined alarm's case is there before each device's own alarm looks for one.
          const corr = new Map(repo.rules().filter((r) => r.kind === 'correlation' && r.enabled !== false).map((r) => [r.id, true] as const));
          await replayCorrelations(corr, 'correlation windows rebuilt at start', since);
          await replayStored(() => true, 'readings stored since the last rule state replayed at start', since);
        } catch (err) {
          log.error({ err: (err as Error).message }, 'stored readings not replayed at start');
        } finally {
          const waiting = held ?? [];
          held = null;
          for (const sig of waiting) evaluateAll(sig);
        }
      }
      deps.bus.on('dispatch.alarm', 'rules', onDispatchAlarm);
      deps.bus.on('camera.alarm', 'rules', onCameraAlarm);
      const tickMs = opts.tickMs ?? 5_000;
      if (tickMs > 0) {
        tickTimer = setInterval(() => void tick().catch((err) => log.error({ err }, 'rules tick failed')), tickMs);
        tickTimer.unref();
      }
      const flushMs = opts.stateFlushMs ?? settings.stateFlushMs;
      if (flushMs > 0) {
        flushTimer = setInterval(() => void flushState(), flushMs);
        flushTimer.unref();
      }
      log.info({ rules: repo.list().length }, 'rules started');
    },
    async stop() {
      if (tickTimer) clearInterval(tickTimer);
      if (flushTimer) clearInterval(flushTimer);
      tickTimer = flushTimer = null;
      deps.bus.removeOwner('rules');
      if (owners) {
        // What this node owns goes to the database first, then forwards stop reaching it and its devices move on.
        await alarms.idle();
        await flushState();
        await owners.close();
        await handover;
      }
      await alarms.idle();
      await flushState();
    },
  };
}
