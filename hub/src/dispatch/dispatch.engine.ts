/**
 * The dispatch loop: follows cases on the bus ('case.changed'), keeps worker
 * status in step, sends `dispatch` / `cancel` downlinks through the outbox
 * (outbox.ts), escalates a dispatch that is declined or not accepted in time
 * to the next candidate (ranking.ts) and raises dispatch alarms. Arrival and
 * geofence are arrival.ts; the SQL is dispatch.repo.ts.
 *
 * Work on one case is serialised (a promise chain per case) so a decline and
 * the re-dispatch it causes are handled in the order the case saw them.
 * Time comes from deps.now() and `tick()`, which the module drives from a
 * timer and tests call directly.
 */
import { randomBytes } from 'node:crypto';
import type { Command } from '@gridlink/devices';
import type { Broker } from '../broker/index.js';
import type { CaseChanged } from '../cases/index.js';
import type { EventBus } from '../core/bus.js';
import type { Config } from '../core/config.js';
import { KeyedQueue } from '../core/keyed-queue.js';
import type { Logger } from '../core/logger.js';
import type { Actor, CaseAction, CaseService, CaseStatus, CaseSummary, GridService, RealtimeService } from '../core/services.js';
import type { StoredMessage } from '../ingest/index.js';
import type { DeviceRegistry } from '../registry/index.js';
import type { Db, Queryable } from '../store/index.js';
import type { Fetch } from './amap.js';
import { ArrivalWatch } from './arrival.js';
import type { Candidate } from './candidates.js';
import { parseAutoDispatch, severityAtLeast, type AutoDispatchRule, type DispatchConfig } from './dispatch.config.js';
import type { PositionEvent } from '@gridlink/devices/contract';
import type { Workers } from './workers.service.js';
import type { Leases } from '../cluster/index.js';
import { DispatchRepo } from './dispatch.repo.js';
import { DispatchErrors } from './errors.js';
import { CommandOutbox } from './outbox.js';
import { CandidateRanker } from './ranking.js';
import { adoptOverdue, claimAutoDispatch, claimTimeout, escalationKey, owedAutoDispatches, owedEscalations } from './timeouts.cluster.js';
import { hasFix, statusOf, type Stage, type WorkerState } from './worker.model.js';

/** The actor dispatch uses for the case actions it takes on its own. */
export const DISPATCH_ACTOR: Actor = { kind: 'system', id: 'dispatch', name: '自动调度' };

export type DispatchAlarmKind = 'dispatch_declined' | 'dispatch_timeout' | 'dispatch_no_candidate' | 'dispatch_exhausted' | 'worker_left_grid';

export interface DispatchAlarm {
  id: string;
  kind: DispatchAlarmKind;
  status: 'active' | 'cleared';
  severity: 'major' | 'warning';
  message: string;
  ts: number;
  caseId: string | null;
  workerId: string | null;
  deviceId: string;
  nextWorkerId?: string | null;
  lat: number | null;
  lon: number | null;
  gridId: string | null;
}

declare module '../core/bus.js' {
  interface EventMap {
    /** Something a dispatcher must look at: a declined / timed-out dispatch, no candidate left, a worker off their grids. */
    'dispatch.alarm': DispatchAlarm;
    /** A command was handed to the broker (first send or re-send). */
    'dispatch.command': { deviceId: string; caseId: string; command: Command; resend: boolean };
  }
}

const ACTIVE: ReadonlySet<CaseStatus> = new Set(['dispatched', 'accepted', 'on_scene']);

/** The outcome a dispatch record ends with when a case action takes the case from its worker. */
function endOutcome(action: CaseAction, status: CaseStatus, timeout: boolean): string {
  switch (action) {
    case 'resolve': return 'resolved';
    // Only dispatch's own decline of an unanswered dispatch is a timeout; a caller's `data` cannot make one.
    case 'decline': return timeout ? 'timeout' : 'declined';
    case 'cancel':
    case 'reject': return 'cancelled';
    case 'dispatch':
    case 'rework': return 'superseded';
    default: return status;
  }
}

export interface DispatchEngineDeps {
  db: Db;
  bus: EventBus;
  logger: Logger;
  broker: Pick<Broker, 'isConnected' | 'sendCommand'>;
  registry: Pick<DeviceRegistry, 'get'>;
  config: Pick<Config, 'amapKey'>;
  now: () => number;
  cases?: CaseService;
  grids?: GridService;
  realtime?: RealtimeService;
  /** True when another module (rules) stores and announces dispatch alarms; dispatch then only emits them on the bus. */
  alarmsStored?: () => boolean;
  /** Cluster: accept timeouts are claimed once across nodes, and the `dispatch.timers` holder adopts orphaned ones (timeouts.cluster.ts). */
  leases?: Leases;
}

interface CaseAttempts {
  tried: Set<string>;
  count: number;
}

export class DispatchEngine {
  /** Work on one case runs in the order the case saw it. */
  private readonly chains: KeyedQueue;
  private readonly byCase = new Map<string, WorkerState>();
  private readonly attempts = new Map<string, CaseAttempts>();
  /** cases whose decline dispatch itself is making (an accept timeout): it escalates itself, the decline's handler does not */
  private readonly ownDecline = new Set<string>();
  private readonly busy = new Set<string>();
  /** When the accept window of a dispatch (case, worker, stage since) began, once read: the first send of its command (timeout()). */
  private readonly acceptStart = new Map<string, number>();
  private readonly repo: DispatchRepo;
  private readonly outbox: CommandOutbox;
  private readonly ranker: CandidateRanker;
  private readonly arrival: ArrivalWatch;
  private readonly autoRules;
  private readonly log;
  fetch: Fetch | undefined;
  /**
   * Testing only (GRIDLINK_TEST_HOLD_AUTO_DISPATCH=1, read from the
   * environment at start, not settable through REST or MQTT): this node
   * never makes an automatic dispatch, neither its own nor an adopted one,
   * as if it died between creating the case and dispatching it.
   */
  holdAutoDispatch = false;
  /**
   * Testing only (GRIDLINK_TEST_HOLD_AUTO_DISPATCH=claimed): as above, but
   * the node first claims the automatic dispatch of its own cases, so it
   * holds an unsettled claim as if it died between claiming and dispatching.
   */
  holdAfterClaim = false;
  /**
   * Testing only (GRIDLINK_TEST_KILL_AFTER_DISPATCH_COMMIT=1, read from the
   * environment at start, not settable through REST or MQTT): the process
   * SIGKILLs itself when it hears a dispatch committed, before it does
   * anything after the commit (the worker's roster, the command's publish),
   * so a test finds out what a crash at that moment leaves.
   */
  killAfterDispatchCommit = false;
  /**
   * Testing only (GRIDLINK_TEST_KILL_AFTER_CASE_COMMIT=accept|arrive|resolve|decline|cancel,
   * read from the environment at start, not settable through REST or MQTT):
   * the process SIGKILLs itself when it hears a case action of that kind
   * committed, before it does anything after the commit (the roster, the
   * announcement, the dispatch record, the commands).
   */
  killAfterCaseCommit: string | null = null;

  constructor(
    private readonly deps: DispatchEngineDeps,
    private readonly cfg: DispatchConfig,
    private readonly workers: Workers,
    private readonly name: string,
  ) {
    this.autoRules = parseAutoDispatch(cfg.autoDispatch);
    this.log = deps.logger.child({ module: 'dispatch' });
    this.chains = new KeyedQueue((err, caseId) => this.log.error({ err, caseId }, 'dispatch handler failed'));
    this.repo = new DispatchRepo(deps.db);
    this.outbox = new CommandOutbox({
      repo: this.repo, broker: deps.broker, bus: deps.bus, log: this.log, resendDelayMs: cfg.resendDelayMs,
      isWorkerDevice: (deviceId) => workers.byDeviceId.has(deviceId),
      ...(deps.leases ? { leases: deps.leases } : {}),
      now: deps.now,
      sentLate: (deviceId, _caseId, cmd) => this.sentLate(deviceId, cmd),
    });
    // The case's dispatch writes its record and command in its own transaction (WorkerService.dispatched).
    workers.dispatched = (q, d) => this.writeDispatch(q, d);
    // So does every later action: the record's stamps and end, the dispatch command's close and a `cancel` to the handheld (writeMoved).
    workers.recordMoved = (q, d) => this.writeMoved(q, d);
    this.ranker = new CandidateRanker({
      workers, registry: deps.registry, ...(deps.grids ? { grids: deps.grids } : {}), cfg, now: deps.now, log: this.log,
      amapKey: deps.config.amapKey, fetch: () => this.fetch,
    });
    this.arrival = new ArrivalWatch({
      cfg, ...(deps.grids ? { grids: deps.grids } : {}),
      arrive: (w, caseId, distanceM) => this.serial(caseId, async () => {
        if (w.assignment?.caseId !== caseId || w.assignment.stage !== 'en_route') return;
        try {
          // The case row decides: only an accepted case arrives. Another node that ingests the same handheld may have
          // detected it a moment before, or the worker reported `arrive` themselves: then nothing is written here.
          await this.act(caseId, 'arrive', { workerId: w.id, note: `GPS: within ${distanceM} m for ${cfg.arrivalDwellS} s`, data: { source: 'gps', distanceM }, ifStatus: ['accepted'] });
        } catch (err) {
          if ((err as { code?: string }).code !== 'CASE_TRANSITION_INVALID') throw err;
          this.log.info({ caseId, workerId: w.id, err: (err as Error).message }, 'GPS arrival: the case moved on meanwhile, nothing recorded');
        }
      }),
      geofenceAlarm: (w, status, message) => this.alarm('worker_left_grid', { worker: w, message, ...(status === 'cleared' ? { status } : {}) }),
    });
  }

  // ---- lifecycle --------------------------------------------------------------------------

  async start(): Promise<void> {
    for (const w of this.workers.all()) if (w.assignment) this.byCase.set(w.assignment.caseId, w);
    // Case locations of assignments that survived a restart (arrival detection needs them).
    const cases = this.deps.cases;
    if (cases) {
      // Concurrently: one round-trip per case in sequence slowed start-up with many busy workers.
      await Promise.all([...this.byCase].map(async ([caseId, w]) => {
        const c = await cases.get(caseId).catch(() => null);
        if (c && w.assignment) Object.assign(w.assignment, { lat: c.lat, lon: c.lon, gridId: c.gridId });
      }));
    }
    const { bus } = this.deps;
    bus.on('message.stored', this.name, (m) => this.onStored(m));
    bus.on('device.status', this.name, ({ deviceId, online }) => {
      if (online) this.outbox.scheduleResend(deviceId);
    });
    bus.on('case.changed', this.name, (e) => this.serial(e.case.id, () => this.onCase(e)));
  }

  async stop(): Promise<void> {
    this.outbox.stop();
    await this.chains.settled();
  }

  /** Resolves when every queued case handler has run (tests). */
  idle(): Promise<void> {
    return this.chains.idle();
  }

  private serial(caseId: string, fn: () => Promise<void>): Promise<void> {
    return this.chains.run(caseId, fn);
  }

  // ---- candidates -------------------------------------------------------------------------

  /** The available workers nearest to a case, best first (ranking.ts). */
  candidates(c: Pick<CaseSummary, 'lat' | 'lon' | 'gridId'>, limit: number, exclude?: ReadonlySet<string>): Candidate[] {
    return this.ranker.candidates(c, limit, exclude);
  }

  /** Candidates with road ETAs from AMap when a key is configured (ranking.ts). */
  async candidatesWithEta(c: CaseSummary, limit: number): Promise<Candidate[]> {
    await this.currentPositions();
    return this.ranker.candidatesWithEta(c, limit);
  }

  // ---- positions and duty from the handheld ----------------------------------------------

  private onStored(m: StoredMessage): void {
    const w = this.workers.byDeviceId.get(m.deviceId);
    if (!w) return;
    const msg = m.msg;
    if (msg.channel === 'location') {
      if (msg.duty !== undefined && msg.duty !== w.onDuty) void this.workers.setDuty(w, msg.duty).catch((err) => this.log.error({ err }, 'duty update failed'));
      const before = w.ts;
      this.workers.setFix(w, msg.lat, msg.lon, msg.ts, msg.acc, msg.batt);
      if (w.ts !== before) this.onFix(w);
    } else if (msg.channel === 'status' && msg.duty !== undefined && msg.duty !== w.onDuty) {
      void this.workers.setDuty(w, msg.duty).catch((err) => this.log.error({ err }, 'duty update failed'));
    }
  }

  /**
   * A new fix of a worker. An assignment this node heard of from another
   * node (read back from the worker's row), adopted, or holds since a
   * restart may lack the case's place: it is read from the case first, once,
   * then the fix is judged (arrival, docs/cluster.md "Dispatch state").
   */
  private onFix(w: WorkerState): void {
    const a = w.assignment;
    if (!a || a.lat === a.lat || !this.deps.cases) {
      this.arrival.onFix(w);
      return;
    }
    const key = `place:${a.caseId}`;
    if (this.busy.has(key)) return;
    this.busy.add(key);
    void this.deps.cases.get(a.caseId)
      .then((c) => {
        // Still the same assignment, and still without its place: the case's place, then the fix (the latest one).
        if (c && w.assignment === a && a.lat !== a.lat) Object.assign(a, { lat: c.lat, lon: c.lon, gridId: c.gridId });
        if (w.assignment === a && a.lat === a.lat) this.arrival.onFix(w);
      })
      .catch((err: unknown) => this.log.warn({ err, caseId: a.caseId, workerId: w.id }, 'case place for arrival not read'))
      .finally(() => this.busy.delete(key));
  }

  /**
   * Cluster: a dispatch command this node sent for a process that died
   * right after committing it. That process owed the other nodes the
   * assignment's announcement too: the worker is read back and announced
   * (every node then stops offering them), and the place is read on the
   * next fix (onFix).
   */
  private async sentLate(deviceId: string, cmd: Command): Promise<void> {
    if (!this.deps.leases?.shared || cmd.type !== 'dispatch') return;
    const w = this.workers.byDeviceId.get(deviceId);
    if (w) await this.workers.readBack(w.id);
  }

  /**
   * Cluster: before an automatic ranking (an escalation, an owed or own
   * automatic dispatch, a dispatcher's candidates), the positions other
   * nodes ingested and stored are read onto the roster, so the next
   * candidate is chosen by where workers are, not by where this node last
   * heard of them.
   */
  private async currentPositions(): Promise<void> {
    if (!this.deps.leases?.shared) return;
    // The rows first: a worker another node dispatched, and died before announcing it, is no candidate
    // (and one released there is again); then the fixes of those still free.
    await this.workers.readRows()
      .catch((err: unknown) => this.log.warn({ err }, 'worker rows not read before ranking; ranking with this node\'s roster'));
    await this.workers.readFixes(this.deps.now() - this.cfg.candidateMaxFixAgeS * 1000)
      .catch((err: unknown) => this.log.warn({ err }, 'stored positions not read before ranking; ranking with this node\'s own'));
  }

  // ---- time -------------------------------------------------------------------------------

  /** Accept timeouts, arrival dwell without new fixes, geofence. Driven by the module timer. */
  tick(): void {
    const now = this.deps.now();
    const timeout = this.cfg.acceptTimeoutS * 1000;
    for (const w of this.workers.all()) {
      const a = w.assignment;
      if (a && a.stage === 'dispatched' && now - this.acceptFrom(w, a) >= timeout) this.timeout(w, a.caseId);
      else this.arrival.tick(w, now);
    }
  }

  /** When the accept window of `w`'s dispatch began, as far as this node knows: the command's first send once read, else the dispatch. */
  private acceptFrom(w: WorkerState, a: NonNullable<WorkerState['assignment']>): number {
    return this.acceptStart.get(`${a.caseId}:${w.id}:${a.since}`) ?? a.since;
  }

  private timeout(w: WorkerState, caseId: string): void {
    const key = `timeout:${caseId}`;
    if (this.busy.has(key)) return;
    this.busy.add(key);
    void this.serial(caseId, async () => {
      try {
        const a = w.assignment;
        if (a?.caseId !== caseId || a.stage !== 'dispatched' || this.deps.now() - this.acceptFrom(w, a) < this.cfg.acceptTimeoutS * 1000) return;
        const c = await this.deps.cases?.get(caseId);
        if (!c || c.status !== 'dispatched' || c.workerId !== w.id) return;
        // The window counts from the command's first send, wherever it was made: a command sent late (its node died
        // after the commit, or Redis was away) leaves the worker all of it. One not sent yet is looked at a window later.
        const first = await this.repo.dispatchFirstSent(caseId, w.id);
        const now = this.deps.now();
        if (first === null || (first !== undefined && now - first < this.cfg.acceptTimeoutS * 1000)) {
          if (this.acceptStart.size > 10_000) this.acceptStart.clear();
          this.acceptStart.set(`${caseId}:${w.id}:${a.since}`, first ?? now);
          return;
        }
        // Once across nodes: whoever claims the dispatch escalates; a node that loses the claim forgets its copy.
        const claim = await claimTimeout(this.deps, caseId, w.id);
        if (claim === false) {
          if (this.byCase.get(caseId) === w) this.byCase.delete(caseId);
          if (w.assignment?.caseId === caseId) w.assignment = null;
          return;
        }
        await this.escalate(c, 'timeout', w);
        if (claim) await this.deps.leases?.settle(claim);
      } finally {
        this.busy.delete(key);
      }
    });
  }

  /**
   * Cluster, on the `dispatch.timers` holder: dispatches past their accept
   * timeout (plus `graceMs`) that this node never saw, because another node
   * made them and died, become this node's, so `tick()` times them out.
   */
  async adopt(graceMs: number): Promise<number> {
    return adoptOverdue(this.deps, this.cfg.acceptTimeoutS * 1000 + graceMs, (workerId, caseId, since) => {
      const w = this.workers.byId.get(workerId);
      if (!w || (w.assignment?.caseId === caseId && w.assignment.stage === 'dispatched')) return false;
      w.assignment = { caseId, stage: 'dispatched', since, lat: NaN, lon: NaN, gridId: null, nearSince: null };
      this.byCase.set(caseId, w);
      this.log.info({ workerId, caseId }, 'dispatch adopted for its accept timeout');
      return true;
    });
  }

  /**
   * Recovery after a process died between a commit and its follow-up:
   * commands committed and never sent are sent (older than `graceMs`: a live
   * node's own send goes first; claimed once in a cluster, outbox.ts), and on
   * the single process the automatic dispatches owed since before the start
   * are made (in a cluster the `dispatch.timers` holder does both every
   * round, `adoptAutoDispatches`).
   */
  async recover(graceMs: number): Promise<{ commands: number; autoDispatches: number; escalations: number }> {
    const commands = await this.sendUnsent(graceMs);
    const single = !this.deps.leases?.shared && !!this.deps.cases;
    const autoDispatches = single ? await this.adoptAutoDispatches(0) : 0;
    const escalations = single ? await this.adoptEscalations(0) : 0;
    return { commands, autoDispatches, escalations };
  }

  /** Cluster: this node's MQTT routing through Redis is back (outbox.ts `resendAfterOutage`). */
  resendAfterOutage(since: number, at: number): void {
    this.outbox.resendAfterOutage(since, at);
  }

  /** Commands committed more than `graceMs` ago and never sent go out now (outbox.ts `sendUnsent`). */
  sendUnsent(graceMs: number): Promise<number> {
    return this.outbox.sendUnsent(graceMs);
  }

  /**
   * In the case's transaction (WorkerService.dispatched), after its row: the
   * dispatch's `case_dispatches` row and its `dispatch` command, open in the
   * outbox and not sent. They commit with the case's status and the worker's
   * row, or not at all; onCase() publishes the command after the commit, and
   * recover() what a process that died in between never sent.
   */
  private async writeDispatch(q: Queryable, d: { case: CaseSummary; workerId: string; actor: Actor; at: number }): Promise<void> {
    const c = d.case;
    const rec = await this.repo.recordDispatch(q, { id: newId('cd'), caseId: c.id, workerId: d.workerId, actor: `${d.actor.kind}:${d.actor.id}`, at: d.at });
    if (!rec) throw DispatchErrors.workerNotFound(`worker ${d.workerId} not found`);
    await this.repo.insertCommand(rec.deviceId, d.workerId, c.id, dispatchCommand(c, d.at), q);
  }

  /**
   * In the transaction of every case action (WorkerService.caseMoved), before
   * the worker rows are released: the dispatch records and the commands
   * follow the case in its commit.
   *
   * - `accept`, `arrive`: the open record of the case's worker is stamped
   *   (first accept, first arrival and who judged it: `gps` when dispatch's
   *   own watch did) and their `dispatch` command is closed (answered).
   * - An action that takes the case from a worker (every action the rows are
   *   released on): each open record of a worker other than the one the case
   *   is still open with ends, with the outcome the action gives (`resolved`,
   *   `declined`, `timeout` for dispatch's own decline of an unanswered
   *   dispatch, `cancelled`, `superseded`, else the case's new status), and
   *   their `dispatch` command is closed with it. A cancel, reject or a
   *   dispatch that replaces them also writes the `cancel` command to their
   *   handheld, not sent: onCase() publishes it after the commit, and a
   *   process killed in between leaves it to recover() on a survivor or to
   *   the handheld's reconnect, with the same cmdId. The workers are those
   *   with an open record, and any whose row held the case without one.
   */
  private async writeMoved(q: Queryable, d: { case: CaseSummary; action: CaseAction; at: number; actor: Actor; data?: Record<string, unknown>; holder: string | null; ends: boolean; held: ReadonlyArray<{ id: string; deviceId: string }> }): Promise<void> {
    const c = d.case;
    if (d.action === 'accept' || d.action === 'arrive') {
      if (!d.holder) return;
      const column = d.action === 'accept' ? 'accepted_at' : 'arrived_at';
      const by = d.action === 'arrive' ? (this.isOwn(d.actor) ? 'gps' : d.actor.kind) : undefined;
      // A dispatch recorded before its record committed with the case may have none: its command is still answered.
      const deviceId = (await this.repo.stamp(c.id, d.holder, column, d.at, by, q))
        ?? (await q.query<{ device_id: string }>('select device_id from workers where id = $1', [d.holder]))[0]?.device_id;
      if (deviceId) await this.repo.completeCommands(c.id, deviceId, 'dispatch', d.action === 'accept' ? 'accepted' : 'arrived', q);
      return;
    }
    if (!d.ends) return;
    const outcome = endOutcome(d.action, d.case.status, this.isOwn(d.actor) && d.data?.reason === 'timeout');
    const ended = await this.repo.endOpenDispatches(q, c.id, d.holder, d.at, outcome);
    const workers = new Map(ended.map((r) => [r.workerId, r.deviceId]));
    for (const w of d.held) if (!workers.has(w.id)) workers.set(w.id, w.deviceId);
    const reason = d.action === 'cancel' || d.action === 'reject' ? 'cancelled' : d.action === 'dispatch' || d.action === 'rework' ? 'superseded' : null;
    for (const [workerId, deviceId] of workers) {
      await this.repo.completeCommands(c.id, deviceId, 'dispatch', outcome, q);
      if (reason) await this.repo.insertCommand(deviceId, workerId, c.id, { cmdId: newId('cmd'), type: 'cancel', ts: d.at, caseId: c.id, reason }, q);
    }
  }

  // ---- the case loop ----------------------------------------------------------------------

  private async act(caseId: string, action: 'dispatch' | 'decline' | 'arrive' | 'register', input: { workerId?: string; note?: string; data?: Record<string, unknown>; ifStatus?: readonly CaseStatus[] }): Promise<CaseSummary> {
    const cases = this.deps.cases;
    if (!cases) throw new Error('case module not loaded');
    return cases.act(caseId, action, DISPATCH_ACTOR, input);
  }

  private isOwn(actor: Actor): boolean {
    return actor.kind === 'system' && actor.id === DISPATCH_ACTOR.id;
  }

  /**
   * The worker this node follows for the case. Cluster: the dispatch may
   * have been made, or taken a stage further, through another node (the
   * handheld's accept reached this one, a dispatcher here cancels): when
   * this node does not follow it, the worker's row says who holds the case
   * (for a dispatch, the worker it replaces). The single process keeps its
   * own view alone.
   */
  private async currentOf(e: CaseChanged): Promise<WorkerState | undefined> {
    const c = e.case;
    const cur = this.byCase.get(c.id);
    const fresh = e.action === 'dispatch' || e.action === 'rework';
    // A decline, cancel or reject names the worker it takes the case from: only that worker's dispatch
    // ends, also when the case has meanwhile gone to the next worker (an accept timeout's re-dispatch
    // commits before the decline's handler runs), whose row then holds the case too.
    const named = !fresh && typeof e.data?.workerId === 'string' ? e.data.workerId : undefined;
    const follows = cur?.assignment?.caseId === c.id && (!named || cur.id === named);
    if (!this.deps.leases?.shared) return !named || cur?.id === named ? cur : undefined;
    if (follows) return cur;
    if (cur && !(named && cur.assignment?.caseId === c.id)) this.byCase.delete(c.id);
    if (!fresh && !c.workerId && !named) return undefined;
    const rows = await this.deps.db.query<{ id: string; stage: Stage; since: number | string }>(
      'select id, stage, extract(epoch from stage_since) * 1000 as since from workers where case_id = $1', [c.id]);
    const r = rows.find((x) => (named ? x.id === named : !fresh || x.id !== c.workerId));
    if (!r) {
      // The action released the row in its own transaction (caseMoved): the worker it took the case from is the
      // one it names (decline, cancel, reject) or, for a resolve, the case's worker.
      const id = fresh ? undefined : named ?? (e.action === 'resolve' ? c.workerId : undefined);
      return id ? this.workers.byId.get(id) : undefined;
    }
    const w = this.workers.byId.get(r.id);
    if (!w) return undefined;
    if (w.assignment?.caseId !== c.id) w.assignment = { caseId: c.id, stage: r.stage, since: Number(r.since), lat: c.lat, lon: c.lon, gridId: c.gridId, nearSince: null };
    else if (w.assignment.lat !== w.assignment.lat) Object.assign(w.assignment, { lat: c.lat, lon: c.lon, gridId: c.gridId });
    // The worker the case went to next stays the one this node follows.
    if (!named || !this.byCase.has(c.id)) this.byCase.set(c.id, w);
    return w;
  }

  private async onCase(e: CaseChanged): Promise<void> {
    const c = e.case;
    if (this.killAfterDispatchCommit && (e.action === 'dispatch' || e.action === 'rework')) {
      this.log.warn({ caseId: c.id }, 'dispatch committed: killing this process (testing option)');
      process.kill(process.pid, 'SIGKILL');
      return;
    }
    if (this.killAfterCaseCommit !== null && e.action === this.killAfterCaseCommit) {
      this.log.warn({ caseId: c.id, action: e.action }, 'case action committed: killing this process (testing option)');
      process.kill(process.pid, 'SIGKILL');
      return;
    }
    const current = await this.currentOf(e);
    const now = this.deps.now();
    switch (e.action) {
      case 'dispatch':
      case 'rework': {
        const w = c.workerId ? this.workers.byId.get(c.workerId) : undefined;
        // The worker it replaces: their record ended and their `cancel` was written with the case (writeMoved).
        if (current && current !== w) this.end(current, c);
        if (!w) {
          await this.outbox.sendCommitted(c.id, {});
          return;
        }
        // Cluster: the row took the worker for this case in its transaction, so another case this node still had for them is stale.
        if (w.assignment && w.assignment.caseId !== c.id && !this.deps.leases?.shared) {
          // assertDispatchable should have prevented this; the newer case wins and the dispatcher is told.
          this.log.warn({ workerId: w.id, caseId: c.id, busyWith: w.assignment.caseId }, 'worker dispatched while busy with another case');
        }
        // The row took the case in the case's transaction (claim): memory follows it, and the other nodes hear of it.
        this.workers.assign(w, { caseId: c.id, stage: 'dispatched', since: now, lat: c.lat, lon: c.lon, gridId: c.gridId });
        this.byCase.set(c.id, w);
        // The record is committed with the case (writeDispatch): the attempts are read again from it when next needed.
        this.attempts.delete(c.id);
        // So is the command (and the `cancel` to a worker it replaced): they go out now, from the outbox, in the order written.
        await this.outbox.sendCommitted(c.id, {});
        return;
      }
      case 'accept':
        if (!current) return;
        // The row, the record's stamp and the command's close moved on with the case (caseMoved): memory and the other nodes follow.
        this.workers.assign(current, { caseId: c.id, stage: 'en_route', since: now, lat: c.lat, lon: c.lon, gridId: c.gridId });
        return;
      case 'arrive':
        if (!current) return;
        this.workers.assign(current, { caseId: c.id, stage: 'on_scene', since: now, lat: c.lat, lon: c.lon, gridId: c.gridId });
        return;
      case 'resolve':
        if (current) this.end(current, c);
        return;
      case 'decline': {
        const own = this.ownDecline.has(c.id);
        this.ownDecline.delete(c.id);
        if (current) this.end(current, c);
        if (!own && current) await this.escalate(c, 'declined', current);
        return;
      }
      case 'cancel':
      case 'reject':
        // The record's end and the `cancel` command were committed with the case (writeMoved): memory follows,
        // and the command goes out now, from the outbox.
        if (current) this.end(current, c);
        await this.outbox.sendCommitted(c.id, { type: 'cancel' });
        return;
      default:
        if (current && !ACTIVE.has(c.status)) this.end(current, c);
        if (!c.workerId && (c.status === 'reported' || c.status === 'registered')) await this.maybeAutoDispatch(c);
    }
  }

  /**
   * The worker's hold on the case ends in memory. Its row, its record's end
   * and its commands were written with the case (caseMoved, writeMoved). A
   * node that did not follow the assignment still tells the others, which may.
   */
  private end(w: WorkerState, c: CaseSummary): void {
    if (this.byCase.get(c.id) === w) this.byCase.delete(c.id);
    if (w.assignment?.caseId === c.id) this.workers.release(w);
    else this.workers.announceRow(w);
  }

  private async attemptsOf(caseId: string): Promise<CaseAttempts> {
    let st = this.attempts.get(caseId);
    // Cluster: other nodes dispatch and escalate the case too; a count this node cached earlier can be behind, so read it again.
    if (!st || this.deps.leases?.shared) {
      const tried = await this.repo.dispatchedWorkers(caseId);
      st = { tried: new Set(tried), count: tried.length };
      if (this.attempts.size > 10_000) this.attempts.clear();
      this.attempts.set(caseId, st);
    }
    return st;
  }

  /**
   * The re-dispatch a decline or an accept timeout owes its case: for a
   * timeout, first the decline itself (`owed`: it is committed already, by a
   * process that died before going on). Once the decline is committed the
   * re-dispatch is decided exactly once: claimed in a cluster (the record's
   * `dispatch.escalate` key), and the record marked `escalated_at` once
   * decided, whatever the outcome (a new worker, none, exhausted); a record
   * left unmarked is owed and made by adoptEscalations().
   */
  private async escalate(c: CaseSummary, reason: 'declined' | 'timeout', prev: WorkerState, owed = false): Promise<void> {
    const st = await this.attemptsOf(c.id);
    const exhausted = st.count >= this.cfg.maxAttempts;
    // An owed timeout's window was the dead process's setting, which this one may not share.
    const verb = reason === 'timeout' ? (owed ? '未按时接单' : `未在 ${this.cfg.acceptTimeoutS} 秒内接单`) : '拒绝接单';
    // Raised once the re-dispatch is decided, so it names the worker the case went to, not one the row refused.
    const raise = (next: Candidate | null) => this.alarm(reason === 'timeout' ? 'dispatch_timeout' : 'dispatch_declined', {
      worker: prev,
      c,
      nextWorkerId: next?.workerId ?? null,
      message: `${c.code} ${prev.name}${verb}${next ? `，已转派 ${next.name}` : ''}`,
    });
    if (reason === 'timeout' && !owed) {
      this.ownDecline.add(c.id);
      try {
        // Only while still dispatched: an accept that reached another node a moment before wins.
        // `reason: timeout` ends the record `timeout` (writeMoved), in the decline's commit.
        await this.act(c.id, 'decline', { workerId: prev.id, note: `accept timeout after ${this.cfg.acceptTimeoutS} s`, data: { reason: 'timeout' }, ifStatus: ['dispatched'] });
      } catch (err) {
        this.ownDecline.delete(c.id);
        if ((err as { code?: string }).code === 'CASE_TRANSITION_INVALID') {
          this.log.info({ caseId: c.id, workerId: prev.id, err: (err as Error).message }, 'accept timeout: the case moved on meanwhile, nothing to withdraw');
          return;
        }
        this.log.warn({ err: (err as Error).message, caseId: c.id }, 'could not withdraw a timed-out dispatch');
        raise(null);
        return;
      }
      if (this.killAfterCaseCommit === 'decline') {
        this.log.warn({ caseId: c.id, action: 'decline' }, 'case action committed: killing this process (testing option)');
        process.kill(process.pid, 'SIGKILL');
        return;
      }
    }
    const claim = owed ? null : await this.claimEscalation(c.id, prev.id);
    if (claim === false) return; // the `dispatch.timers` holder took it as owed meanwhile (this node was that late)
    try {
      if (exhausted) {
        raise(null);
        this.alarm('dispatch_exhausted', { c, message: `${c.code} 已自动派遣 ${st.count} 次，请人工调度` });
        return;
      }
      let next: Candidate | null = null;
      let failure: Error | null = null;
      try {
        await this.currentPositions();
        next = await this.dispatchFirstFree(c, st.tried, `auto re-dispatch after ${reason}`);
      } catch (err) {
        failure = err as Error;
        this.log.warn({ err: failure.message, caseId: c.id }, 'automatic re-dispatch failed');
      }
      raise(next);
      if (failure) this.alarm('dispatch_no_candidate', { c, message: `${c.code} 自动转派失败：${failure.message}` });
      else if (!next) this.alarm('dispatch_no_candidate', { c, message: `${c.code} 没有可派遣的网格员` });
    } finally {
      await this.repo.markEscalated(c.id).catch((err: unknown) => this.log.warn({ err, caseId: c.id }, 'escalation not marked made; it may be made again'));
      if (claim) await this.deps.leases?.settle(claim);
    }
  }

  /**
   * Cluster: the claim on the re-dispatch the case's latest declined or
   * timed-out record owes: its key when won, false when another node holds
   * or settled it, null on the single process or when no record is owed.
   */
  private async claimEscalation(caseId: string, workerId: string): Promise<string | false | null> {
    const l = this.deps.leases;
    if (!l?.shared) return null;
    const id = await this.repo.owedRecord(caseId, workerId);
    if (!id) return null;
    const key = escalationKey(id);
    return (await l.claim(key)) ? key : false;
  }

  /**
   * The re-dispatches owed by a process that committed a decline or a
   * timeout and died before making it (timeouts.cluster.ts
   * `owedEscalations`): on the `dispatch.timers` holder every round, each
   * under its claim, and once at start on the single process (recover()).
   * Read again under the claim: a case handled since (dispatched, routed,
   * cancelled) is only marked.
   */
  async adoptEscalations(graceMs: number, windowMs = 15 * 60_000): Promise<number> {
    const owed = await owedEscalations(this.deps, graceMs, windowMs);
    let n = 0;
    for (const o of owed) {
      const key = this.deps.leases?.shared ? escalationKey(o.recordId) : null;
      if (key && !(await this.deps.leases!.claim(key))) continue;
      n++;
      void this.serial(o.caseId, async () => {
        try {
          const c = await this.deps.cases?.get(o.caseId);
          const prev = this.workers.byId.get(o.workerId);
          if (c && prev && !c.workerId && !c.departmentId && c.status === 'registered' && (await this.repo.owedRecord(o.caseId, o.workerId)) === o.recordId) {
            this.log.info({ caseId: c.id, workerId: prev.id, outcome: o.outcome }, key ? 're-dispatch owed by another node made' : 're-dispatch owed since before the restart made');
            await this.escalate(c, o.outcome, prev, true);
          } else {
            await this.repo.markEscalated(o.caseId);
          }
        } finally {
          if (key) await this.deps.leases?.settle(key);
        }
      });
    }
    return n;
  }

  /**
   * An automatic dispatch: the best-ranked candidate not in `exclude` (or
   * `first`, already ranked), and when the worker's row (or the roster)
   * refuses them because they were taken a moment before (through another
   * node, a dispatcher, or another escalation on the same beat), the next
   * one, until the row accepts one: that candidate, or null when none is
   * left. A refused worker is skipped for this dispatch only (they never had
   * the case). Any other failure (the case moved on meanwhile) is thrown.
   */
  private async dispatchFirstFree(c: CaseSummary, exclude: ReadonlySet<string>, note: string, first?: Candidate): Promise<Candidate | null> {
    const skip = new Set(exclude);
    for (let next = first ?? this.candidates(c, 1, skip)[0]; next; next = this.candidates(c, 1, skip)[0]) {
      try {
        await this.act(c.id, 'dispatch', { workerId: next.workerId, note });
        return next;
      } catch (err) {
        if (!takenMeanwhile(err)) throw err;
        this.log.info({ caseId: c.id, workerId: next.workerId, reason: (err as Error).message }, 'automatic dispatch refused, worker taken meanwhile: trying the next candidate');
        skip.add(next.workerId);
      }
    }
    return null;
  }

  /** The auto-dispatch rule (GRIDLINK_DISPATCH_AUTO) a case of this category and severity falls under, if any. */
  private autoRuleFor(category: { code: string; name: string; nameEn?: string | null }, severity: string): AutoDispatchRule | undefined {
    const names = [category.code, category.name, category.nameEn ?? ''].map((s) => s.toLowerCase());
    return this.autoRules.find((r) => names.includes(r.category.toLowerCase()) && severityAtLeast(severity, r.minSeverity));
  }

  private async maybeAutoDispatch(c: CaseSummary): Promise<void> {
    if (this.autoRules.length === 0) return;
    const rule = this.autoRuleFor(c.category, c.severity);
    if (!rule) return;
    if (this.holdAutoDispatch && !this.holdAfterClaim) {
      this.log.info({ caseId: c.id }, 'automatic dispatch held (testing option)');
      return;
    }
    // Cluster: decided once; a node that dies before deciding leaves the claim unsettled for the `dispatch.timers` holder.
    const claim = await claimAutoDispatch(this.deps, c.id);
    if (claim === false) return;
    if (this.holdAfterClaim) {
      this.log.info({ caseId: c.id }, 'automatic dispatch claimed and held (testing option)');
      return;
    }
    await this.autoDispatch(c, rule);
    if (claim && claim !== 'settled') await this.deps.leases?.settle(claim.key);
  }

  /**
   * Cluster, on the `dispatch.timers` holder: cases owed an automatic
   * dispatch that no node decided within `graceMs` of their creation (their
   * node died first) are dispatched here, each under its claim, through the
   * same path as on the node that created them (timeouts.cluster.ts). The
   * single process runs it once at start (recover()), without claims: the
   * cases its previous run committed and was killed before dispatching.
   */
  async adoptAutoDispatches(graceMs: number, windowMs = 15 * 60_000): Promise<number> {
    if (this.autoRules.length === 0 || this.holdAutoDispatch) return 0;
    const owed = await owedAutoDispatches(this.deps, this.autoRules.map((r) => r.category), graceMs, windowMs);
    let n = 0;
    for (const o of owed) {
      const rule = this.autoRuleFor(o, o.severity);
      if (!rule) continue;
      // Claimed one after the other, oldest first, before any is worked on (the single process claims nothing: null).
      const claim = await claimAutoDispatch(this.deps, o.id);
      if (claim === false || claim === 'settled') continue;
      n++;
      void this.serial(o.id, async () => {
        const c = await this.deps.cases?.get(o.id);
        // Read again under the claim: a dispatcher may have handled the case since the scan.
        if (c && !c.workerId && !c.departmentId && (c.status === 'reported' || c.status === 'registered')) {
          this.log.info({ caseId: c.id }, claim ? 'automatic dispatch owed by another node adopted' : 'automatic dispatch owed since before the restart made');
          await this.autoDispatch(c, rule);
        }
        if (claim) await this.deps.leases?.settle(claim.key);
      });
    }
    return n;
  }

  private async autoDispatch(c: CaseSummary, rule: AutoDispatchRule): Promise<void> {
    const st = await this.attemptsOf(c.id);
    if (st.count > 0) return; // auto-dispatch only once; later it is the dispatcher's call
    await this.currentPositions();
    const first = this.candidates(c, 1)[0];
    if (!first) {
      this.alarm('dispatch_no_candidate', { c, message: `${c.code} 自动派遣：没有可派遣的网格员` });
      return;
    }
    try {
      if (c.status === 'reported') await this.act(c.id, 'register', { note: 'auto-dispatch' });
      const next = await this.dispatchFirstFree(c, new Set(), `auto-dispatch (${rule.category})`, first);
      if (!next) this.alarm('dispatch_no_candidate', { c, message: `${c.code} 自动派遣：没有可派遣的网格员` });
    } catch (err) {
      this.log.warn({ err: (err as Error).message, caseId: c.id }, 'auto-dispatch failed');
    }
  }

  // ---- alarms -----------------------------------------------------------------------------

  private alarm(kind: DispatchAlarmKind, o: { worker?: WorkerState; c?: CaseSummary; message: string; nextWorkerId?: string | null; status?: 'active' | 'cleared' }): void {
    const { worker: w, c } = o;
    const a: DispatchAlarm = {
      id: kind === 'worker_left_grid' && w ? `geofence:${w.id}` : newId('da'),
      kind,
      status: o.status ?? 'active',
      severity: kind === 'worker_left_grid' ? 'warning' : 'major',
      message: o.message,
      ts: this.deps.now(),
      caseId: c?.id ?? null,
      workerId: w?.id ?? null,
      deviceId: w?.deviceId ?? '',
      ...(o.nextWorkerId !== undefined ? { nextWorkerId: o.nextWorkerId } : {}),
      lat: c?.lat ?? (w && hasFix(w) ? w.lat : null),
      lon: c?.lon ?? (w && hasFix(w) ? w.lon : null),
      gridId: c?.gridId ?? (w ? this.workers.visibilityGrid(w) : null),
    };
    this.log.info({ alarm: a }, 'dispatch alarm');
    this.deps.bus.emit('dispatch.alarm', a);
    // With the rules module loaded the alarm is stored there and announced by it.
    if (this.deps.alarmsStored?.()) return;
    // Console shape of CONTRACT 6 `alarm`, so the dispatcher sees it where every alarm shows.
    this.deps.realtime?.send('alarm', a.gridId, {
      id: a.id,
      rule: `dispatch.${kind}`,
      deviceId: a.deviceId,
      severity: a.severity,
      status: a.status,
      acknowledged: false,
      escalated: false,
      count: 1,
      type: kind,
      message: a.message,
      ts: a.ts,
      lastTs: a.ts,
      lat: a.lat,
      lon: a.lon,
      gridId: a.gridId,
      caseId: a.caseId,
      change: a.status === 'active' ? 'raised' : 'cleared',
    });
  }

  /** Items of one `positions` push: changed workers that have a fix. */
  drainPositions(): PositionEvent[] {
    const items: PositionEvent[] = [];
    for (const w of this.workers.dirty) {
      if (w.removed || !hasFix(w)) continue;
      items.push({ workerId: w.id, deviceId: w.deviceId, lat: w.lat, lon: w.lon, ts: w.ts, status: statusOf(w), gridId: this.workers.visibilityGrid(w) });
    }
    this.workers.dirty.clear();
    return items;
  }
}

/** The row (or the roster) refused a worker for being busy, off duty or gone since they were ranked: another candidate may take the case. */
function takenMeanwhile(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === 'WORKER_UNAVAILABLE' || code === 'WORKER_NOT_FOUND';
}

/** The `dispatch` command of a case (CONTRACT: the handheld's `cmd` topic), stamped at the dispatch. */
function dispatchCommand(c: CaseSummary, at: number): Command {
  return {
    cmdId: newId('cmd'),
    type: 'dispatch',
    ts: at,
    case: {
      id: c.id,
      code: c.code,
      title: c.title.slice(0, 200) || c.code,
      category: c.category.code,
      lat: c.lat,
      lon: c.lon,
      ...(c.address ? { address: c.address.slice(0, 500) } : {}),
      deadline: c.deadline,
    },
  };
}

export function newId(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}${randomBytes(5).toString('hex')}`;
}
