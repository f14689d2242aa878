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
import type { Actor, CaseService, CaseStatus, CaseSummary, GridService, RealtimeService } from '../core/services.js';
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
import { adoptOverdue, claimAutoDispatch, claimTimeout, owedAutoDispatches } from './timeouts.cluster.js';
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
  /** outcome to record for the decline dispatch itself causes (timeout) */
  private readonly ownDecline = new Map<string, string>();
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
    // So do a cancel's: the record's end, the dispatch command's close and the `cancel` to the handheld (writeCancel).
    workers.cancelled = (q, d) => this.writeCancel(q, d);
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
  async recover(graceMs: number): Promise<{ commands: number; autoDispatches: number }> {
    const commands = await this.sendUnsent(graceMs);
    const autoDispatches = this.deps.leases?.shared || !this.deps.cases ? 0 : await this.adoptAutoDispatches(0);
    return { commands, autoDispatches };
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
   * In the transaction of a case's `cancel` or `reject` (WorkerService.caseMoved),
   * for each worker whose row held the case, before the row is released: the
   * dispatch record ends `cancelled`, the open `dispatch` command is closed,
   * and the `cancel` command to the handheld is written to the outbox, not
   * sent. onCase() publishes it after the commit; a process killed in between
   * leaves it to recover() on a survivor or to the handheld's reconnect, with
   * the same cmdId.
   */
  private async writeCancel(q: Queryable, d: { case: CaseSummary; at: number; workers: ReadonlyArray<{ id: string; deviceId: string }> }): Promise<void> {
    const c = d.case;
    for (const w of d.workers) {
      await this.repo.endDispatch(c.id, w.id, d.at, 'cancelled', q);
      await this.repo.completeCommands(c.id, w.deviceId, 'dispatch', 'cancelled', q);
      await this.repo.insertCommand(w.deviceId, w.id, c.id, { cmdId: newId('cmd'), type: 'cancel', ts: d.at, caseId: c.id, reason: 'cancelled' }, q);
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
        if (current && current !== w) await this.end(current, c, 'superseded', true);
        if (!w) return;
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
        // So is the command: it goes out now, from the outbox.
        await this.outbox.sendCommitted(c.id, { deviceId: w.deviceId });
        return;
      }
      case 'accept':
        if (!current) return;
        // The row moved on with the case (caseMoved): memory and the other nodes follow.
        this.workers.assign(current, { caseId: c.id, stage: 'en_route', since: now, lat: c.lat, lon: c.lon, gridId: c.gridId });
        await this.repo.stamp(c.id, current.id, 'accepted_at', now);
        await this.outbox.complete(c.id, current.deviceId, 'dispatch', 'accepted');
        return;
      case 'arrive':
        if (!current) return;
        this.workers.assign(current, { caseId: c.id, stage: 'on_scene', since: now, lat: c.lat, lon: c.lon, gridId: c.gridId });
        await this.repo.stamp(c.id, current.id, 'arrived_at', now, this.isOwn(e.actor) ? 'gps' : e.actor.kind);
        await this.outbox.complete(c.id, current.deviceId, 'dispatch', 'arrived');
        return;
      case 'resolve':
        if (current) await this.end(current, c, 'resolved', false);
        return;
      case 'decline': {
        const own = this.ownDecline.get(c.id);
        this.ownDecline.delete(c.id);
        if (current) await this.end(current, c, own ?? 'declined', false);
        if (!own && current) await this.escalate(c, 'declined', current);
        return;
      }
      case 'cancel':
      case 'reject':
        // The record's end and the `cancel` command were committed with the case (writeCancel): memory follows,
        // and the command goes out now, from the outbox.
        if (current) await this.end(current, c, 'cancelled', false);
        await this.outbox.sendCommitted(c.id, { type: 'cancel' });
        return;
      default:
        if (current && !ACTIVE.has(c.status)) await this.end(current, c, c.status, false);
        if (!c.workerId && (c.status === 'reported' || c.status === 'registered')) await this.maybeAutoDispatch(c);
    }
  }

  private async end(w: WorkerState, c: CaseSummary, outcome: string, sendCancel: boolean): Promise<void> {
    const now = this.deps.now();
    if (this.byCase.get(c.id) === w) this.byCase.delete(c.id);
    // The row was released with the case (caseMoved); memory follows. A node that did not follow the assignment
    // still tells the others, which may.
    if (w.assignment?.caseId === c.id) this.workers.release(w);
    else this.workers.announceRow(w);
    await this.repo.endDispatch(c.id, w.id, now, outcome);
    await this.outbox.complete(c.id, w.deviceId, 'dispatch', outcome);
    if (sendCancel) await this.outbox.send(w.deviceId, w.id, c.id, { cmdId: newId('cmd'), type: 'cancel', ts: now, caseId: c.id, reason: outcome });
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

  private async escalate(c: CaseSummary, reason: 'declined' | 'timeout', prev: WorkerState): Promise<void> {
    const st = await this.attemptsOf(c.id);
    const exhausted = st.count >= this.cfg.maxAttempts;
    const verb = reason === 'timeout' ? `未在 ${this.cfg.acceptTimeoutS} 秒内接单` : '拒绝接单';
    // Raised once the re-dispatch is decided, so it names the worker the case went to, not one the row refused.
    const raise = (next: Candidate | null) => this.alarm(reason === 'timeout' ? 'dispatch_timeout' : 'dispatch_declined', {
      worker: prev,
      c,
      nextWorkerId: next?.workerId ?? null,
      message: `${c.code} ${prev.name}${verb}${next ? `，已转派 ${next.name}` : ''}`,
    });
    if (reason === 'timeout') {
      this.ownDecline.set(c.id, 'timeout');
      try {
        // Only while still dispatched: an accept that reached another node a moment before wins.
        await this.act(c.id, 'decline', { workerId: prev.id, note: `accept timeout after ${this.cfg.acceptTimeoutS} s`, ifStatus: ['dispatched'] });
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
    }
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
