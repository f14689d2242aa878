/**
 * Workers: the in-memory roster (every worker, 20k is a few MB) backed by the
 * workers table, the live positions index, and the WorkerService other
 * domains use. Writes go to the database first, then to memory.
 *
 * Every roster change (create, edit, duty, delete) and every change of
 * assignment (dispatched, en route, on scene, released) is announced on the
 * bus as `worker.changed`; in a cluster the other nodes hear of it through
 * Redis and read the worker back from the database (`refresh`), never from
 * the message (docs/cluster.md). A dispatch takes the worker's row inside
 * the case's transaction (`claim`), so the database, not a node's memory,
 * decides whether the worker is free.
 */
import { randomBytes } from 'node:crypto';
import type { Actor, CaseAction, CaseStatus, CaseSummary, GridService, WorkerInfo, WorkerService, WorkerStatus } from '../core/services.js';
import type { EventBus } from '../core/bus.js';
import type { Db } from '../store/index.js';
import type { DeviceRegistry } from '../registry/index.js';
import type { Queryable } from '../store/index.js';
import { DispatchErrors } from './errors.js';
import { PositionIndex } from './positions.index.js';
import { hasFix, infoOf, statusOf, TEAM_NAMES, type Assignment, type Stage, type Team, type WorkerState } from './worker.model.js';

export interface PublicWorker {
  id: string;
  name: string;
  deviceId: string;
  team: Team;
  teamName: string;
  phone: string | null;
  gridIds: string[];
  userId: string | null;
  onDuty: boolean;
  status: WorkerStatus;
  caseId: string | null;
  online: boolean;
  position: { lat: number; lon: number; ts: number; acc?: number | null; batt?: number | null; gridId?: string | null } | null;
  createdAt: number;
}

export interface WorkerChange {
  workerId: string;
  /** The change was made on another node of a cluster (this node reads the worker back; not to be announced again). */
  remote?: boolean;
}

declare module '../core/bus.js' {
  interface EventMap {
    /** A worker was created, edited, put on or off duty, deleted, dispatched, moved a stage on or released (not emitted for positions). */
    'worker.changed': WorkerChange;
  }
}

interface Row {
  id: string;
  name: string;
  device_id: string;
  team: string;
  phone: string | null;
  grid_ids: string[];
  user_id: string | null;
  on_duty: boolean;
  case_id: string | null;
  stage: string | null;
  stage_since: Date | string | null;
  created_at: Date | string;
}

const ms = (v: Date | string | null): number => (v === null ? NaN : new Date(v).getTime());

/** Judges a caller's right on a worker's grids as stored; throws when refused. */
export type GridCheck = (gridIds: string[]) => void;

/** Statuses in which a case holds its worker. */
const ACTIVE: ReadonlySet<CaseStatus> = new Set(['dispatched', 'accepted', 'on_scene']);
/** Case actions after which a worker row may hold the case no longer (every action that moves a case out of ACTIVE, or to another worker). */
const ENDS: ReadonlySet<CaseAction> = new Set(['dispatch', 'rework', 'resolve', 'decline', 'cancel', 'reject', 'verify', 'route', 'return', 'reply']);

export class Workers implements WorkerService {
  readonly byId = new Map<string, WorkerState>();
  readonly byDeviceId = new Map<string, WorkerState>();
  readonly byUserId = new Map<string, WorkerState>();
  /** grid id → workers responsible for it */
  readonly byGrid = new Map<string, Set<WorkerState>>();
  readonly index = new PositionIndex();
  /** workers whose position or status changed since the last `positions` push */
  readonly dirty = new Set<WorkerState>();
  /**
   * The dispatch's record and command, written in the case's transaction
   * (WorkerService.dispatched); set by the dispatch engine.
   */
  dispatched?: (q: Queryable, d: { case: CaseSummary; workerId: string; actor: Actor; at: number }) => Promise<void>;
  /**
   * Every case action, in its transaction (caseMoved), before the rows are
   * released: the dispatch records and commands follow the case (a stamp, an
   * end, a `cancel` to the handheld); set by the dispatch engine. `holder`
   * is the worker the case is still open with, if any; `ends` whether the
   * action can take the case from a worker; `held` the other workers whose
   * rows held the case.
   */
  recordMoved?: (q: Queryable, d: { case: CaseSummary; action: CaseAction; at: number; actor: Actor; data?: Record<string, unknown>; holder: string | null; ends: boolean; held: ReadonlyArray<{ id: string; deviceId: string }> }) => Promise<void>;
  /**
   * Cluster (set by the module when leases are shared): a rework back to a
   * worker is checked against the row, and a ranking reads the rows first.
   */
  shared = false;
  /** Bumped by every assignment this node writes: a read-back that raced one leaves the assignment alone. */
  private readonly assignSeq = new WeakMap<WorkerState, number>();

  constructor(
    private readonly db: Db,
    private readonly registry: DeviceRegistry,
    private readonly grids: () => GridService | undefined,
    private readonly now: () => number,
    private readonly bus?: EventBus,
  ) {}

  private static fromRow(r: Row): WorkerState {
    return {
      id: r.id,
      name: r.name,
      deviceId: r.device_id,
      team: r.team as Team,
      phone: r.phone,
      gridIds: r.grid_ids ?? [],
      userId: r.user_id,
      onDuty: r.on_duty,
      assignment: r.case_id && r.stage
        ? { caseId: r.case_id, stage: r.stage as Stage, since: ms(r.stage_since), lat: NaN, lon: NaN, gridId: null, nearSince: null }
        : null,
      lat: NaN,
      lon: NaN,
      ts: NaN,
      acc: null,
      batt: null,
      gridId: null,
      outsideSince: null,
      geofenceAlarmed: false,
      createdAt: ms(r.created_at),
      removed: false,
    };
  }

  async load(): Promise<void> {
    const rows = await this.db.query<Row>('select * from workers');
    for (const r of rows) this.insert(Workers.fromRow(r));
    if (rows.length === 0) return;
    // Last good fix of every worker's handheld: positions are already stored by ingest.
    const fixes = await this.db.query<{ device_id: string; ts: Date | string; lat: number; lon: number; acc: number | null; batt: number | null }>(
      `select p.device_id, p.ts, p.lat, p.lon, p.acc, p.batt
         from workers w
         cross join lateral (select * from positions p where p.device_id = w.device_id and p.flag is null order by p.ts desc limit 1) p`,
    );
    for (const f of fixes) {
      const w = this.byDeviceId.get(f.device_id);
      if (w) this.setFix(w, f.lat, f.lon, ms(f.ts), f.acc, f.batt);
    }
    this.index.rebuild(this.now());
  }

  private insert(w: WorkerState): void {
    this.byId.set(w.id, w);
    this.byDeviceId.set(w.deviceId, w);
    if (w.userId) this.byUserId.set(w.userId, w);
    this.indexGrids(w);
    this.index.add(w);
  }

  private unindexGrids(w: WorkerState): void {
    for (const g of w.gridIds) this.byGrid.get(g)?.delete(w);
  }

  private indexGrids(w: WorkerState): void {
    for (const g of w.gridIds) {
      let s = this.byGrid.get(g);
      if (!s) this.byGrid.set(g, (s = new Set()));
      s.add(w);
    }
  }

  /** Takes a worker out of memory (its row is gone); a map entry already taken by a newer worker is left alone. */
  private drop(w: WorkerState): void {
    w.removed = true;
    this.unindexGrids(w);
    if (this.byId.get(w.id) === w) this.byId.delete(w.id);
    if (this.byDeviceId.get(w.deviceId) === w) this.byDeviceId.delete(w.deviceId);
    if (w.userId && this.byUserId.get(w.userId) === w) this.byUserId.delete(w.userId);
    this.index.remove(w);
    this.dirty.delete(w);
  }

  /** The roster fields of a row onto the worker in memory (position and assignment stay). */
  private apply(w: WorkerState, r: Row): void {
    this.unindexGrids(w);
    if (this.byDeviceId.get(w.deviceId) === w) this.byDeviceId.delete(w.deviceId);
    if (w.userId && this.byUserId.get(w.userId) === w) this.byUserId.delete(w.userId);
    w.name = r.name;
    w.deviceId = r.device_id;
    w.team = r.team as Team;
    w.phone = r.phone;
    w.gridIds = r.grid_ids ?? [];
    w.userId = r.user_id;
    if (w.onDuty !== r.on_duty) {
      w.onDuty = r.on_duty;
      w.outsideSince = null;
      w.geofenceAlarmed = false;
    }
    this.byDeviceId.set(w.deviceId, w);
    if (w.userId) this.byUserId.set(w.userId, w);
    this.indexGrids(w);
  }

  /**
   * Cluster: a case action on this node released the worker's row while
   * this node did not follow their assignment; the others may, and read the
   * worker back.
   */
  announceRow(w: WorkerState): void {
    if (this.shared) this.announce(w);
  }

  private announce(w: WorkerState): void {
    this.bus?.emit('worker.changed', { workerId: w.id });
  }

  /**
   * Cluster: another node created, edited, deleted, dispatched or released
   * worker `id`. The worker is read back from the database (the message
   * names it and nothing more): its roster fields, duty and assignment (case
   * and stage) come from the row; its position is the newer of this node's
   * and the last good fix stored by any node. An assignment this node wrote
   * while the row was being read is left alone (the row read may be older).
   * Not announced again, and not pushed to consoles (the node that made the
   * change does that).
   */
  async refresh(id: string): Promise<void> {
    const known = this.byId.get(id);
    const seq = known ? this.assignSeq.get(known) ?? 0 : 0;
    const [r] = await this.db.query<Row>('select * from workers where id = $1', [id]);
    const had = this.byId.get(id);
    if (!r) {
      if (had) this.drop(had);
      return;
    }
    let w = had;
    if (w) {
      this.apply(w, r);
      if (w === known && (this.assignSeq.get(w) ?? 0) === seq) this.takeAssignment(w, r);
    } else {
      w = Workers.fromRow(r);
      this.insert(w);
    }
    const [f] = await this.db.query<{ ts: Date | string; lat: number; lon: number; acc: number | null; batt: number | null }>(
      'select ts, lat, lon, acc, batt from positions where device_id = $1 and flag is null order by ts desc limit 1',
      [w.deviceId],
    );
    if (f && !w.removed) {
      const pushed = this.dirty.has(w);
      this.setFix(w, f.lat, f.lon, ms(f.ts), f.acc, f.batt);
      if (!pushed) this.dirty.delete(w);
    }
  }

  /**
   * Cluster: a command this node sent late (its dispatching node died right
   * after the commit, before it announced the assignment) also brings the
   * announcement it owed: the worker is read back here and announced, so
   * every node stops offering them now rather than when it next reads them.
   */
  async readBack(id: string): Promise<void> {
    await this.refresh(id);
    const w = this.byId.get(id);
    if (w) this.announce(w);
  }

  /**
   * Cluster: the last good fix stored by any node of each available worker
   * (on duty, no case) newer than `sinceMs` and newer than the one this
   * node has, onto the roster. Positions reach a node's roster only when it
   * ingests them, so a node ranking candidates for a worker whose handheld
   * talks to another node reads them here first. One statement, one index
   * probe per worker (the positions key is (device_id, ts)). Returns how
   * many moved.
   */
  async readFixes(sinceMs: number): Promise<number> {
    const devices: string[] = [];
    const after: number[] = [];
    for (const w of this.byId.values()) {
      if (w.removed || !w.onDuty || w.assignment) continue;
      devices.push(w.deviceId);
      after.push(hasFix(w) && w.ts > sinceMs ? w.ts : sinceMs);
    }
    if (devices.length === 0) return 0;
    const fixes = await this.db.query<{ device_id: string; ts: Date | string; lat: number; lon: number; acc: number | null; batt: number | null }>(
      `select p.device_id, p.ts, p.lat, p.lon, p.acc, p.batt
         from unnest($1::text[], $2::float8[]) as d(device_id, after)
         cross join lateral (select * from positions p where p.device_id = d.device_id and p.ts > to_timestamp(d.after / 1000.0)
                               and p.flag is null order by p.ts desc limit 1) p`,
      [devices, after],
    );
    let n = 0;
    for (const f of fixes) {
      const w = this.byDeviceId.get(f.device_id);
      if (!w || w.removed) continue;
      const before = w.ts;
      // Not pushed to consoles again: the node that ingested the fix pushed it (to every node's consoles).
      const pushed = this.dirty.has(w);
      this.setFix(w, f.lat, f.lon, ms(f.ts), f.acc, f.batt);
      if (!pushed) this.dirty.delete(w);
      if (w.ts !== before) n++;
    }
    return n;
  }

  /**
   * Cluster: before a ranking, the rows of the workers this node holds on
   * duty (free or busy), in one statement. A dispatch, a stage or a release
   * is written with its case, but announced after the commit: a node killed
   * in between leaves the others offering a worker whose row is busy, or
   * holding one whose row was released. Here the row decides: a worker whose
   * row holds another case that is still open with them, or who is off duty
   * in the row, is no candidate; a worker whose row holds nothing is free. A
   * row still holding a case no longer open with the worker (written before
   * releases committed with the case) changes nothing, as it blocks no
   * dispatch. An assignment this node wrote while the rows were read is left
   * alone. A worker that changed is pushed to consoles with the next
   * `positions` (not announced: every node reads the same rows). Returns
   * how many workers changed. Also run every 5 s on each node (dispatch
   * module beat), for a stage or release whose announcement died with its
   * node.
   */
  async readRows(): Promise<number> {
    const ids: string[] = [];
    const seq = new Map<WorkerState, number>();
    for (const w of this.byId.values()) {
      if (w.removed || !w.onDuty) continue;
      ids.push(w.id);
      seq.set(w, this.assignSeq.get(w) ?? 0);
    }
    if (ids.length === 0) return 0;
    const rows = await this.db.query<{ id: string; case_id: string | null; stage: string | null; stage_since: Date | string | null; on_duty: boolean; open: boolean }>(
      `select w.id, w.case_id, w.stage, w.stage_since, w.on_duty,
              exists (select 1 from cases c where c.id = w.case_id and c.worker_id = w.id and c.status in ('dispatched', 'accepted', 'on_scene')) as open
         from workers w where w.id = any($1::text[])`,
      [ids],
    );
    let n = 0;
    for (const r of rows) {
      const w = this.byId.get(r.id);
      if (!w || w.removed || seq.get(w) !== (this.assignSeq.get(w) ?? 0)) continue;
      const before = n;
      if (!r.on_duty && w.onDuty) {
        w.onDuty = false;
        w.outsideSince = null;
        w.geofenceAlarmed = false;
        n++;
      }
      if (r.case_id && r.stage && r.open) {
        if (w.assignment?.caseId !== r.case_id || w.assignment.stage !== r.stage) {
          this.takeAssignment(w, { case_id: r.case_id, stage: r.stage, stage_since: r.stage_since } as Row);
          n++;
        }
      } else if (!r.case_id && w.assignment) {
        w.assignment = null;
        n++;
      }
      if (n > before) this.dirty.add(w);
    }
    return n;
  }

  /** The row's case and stage onto the worker in memory; the case's place (arrival) stays when the case is the same. */
  private takeAssignment(w: WorkerState, r: Row): void {
    if (!r.case_id || !r.stage) {
      w.assignment = null;
      return;
    }
    const a = w.assignment;
    if (a?.caseId === r.case_id) {
      if (a.stage !== r.stage) Object.assign(a, { stage: r.stage as Stage, since: ms(r.stage_since), nearSince: null });
      return;
    }
    w.assignment = { caseId: r.case_id, stage: r.stage as Stage, since: ms(r.stage_since), lat: NaN, lon: NaN, gridId: null, nearSince: null };
  }

  get(id: string): WorkerInfo | undefined {
    const w = this.byId.get(id);
    return w ? infoOf(w) : undefined;
  }

  byDevice(deviceId: string): WorkerInfo | undefined {
    const w = this.byDeviceId.get(deviceId);
    return w ? infoOf(w) : undefined;
  }

  byUser(userId: string): WorkerInfo | undefined {
    const w = this.byUserId.get(userId);
    return w ? infoOf(w) : undefined;
  }

  assertDispatchable(workerId: string): void {
    const w = this.byId.get(workerId);
    if (!w) throw DispatchErrors.workerNotFound(`worker ${workerId} not found`);
    const status = statusOf(w);
    // Cluster: this node's roster can be behind the row (a node killed after a commit never announced a release or a
    // duty change): the row decides, in the dispatch's transaction (claim), with the same 409.
    if (status !== 'available' && !this.shared) throw DispatchErrors.workerUnavailable(`worker ${workerId} is ${status}`, { status });
    const device = this.registry.get(w.deviceId);
    if (!device || !device.enabled) throw DispatchErrors.workerUnavailable(`worker ${workerId}'s handheld is missing or disabled`);
  }

  /**
   * The dispatch's write, in the case's transaction: the worker's row is
   * locked, and refused (409, as `assertDispatchable`) when it is off duty
   * or holds another case that is still open with this worker; otherwise it
   * now holds this case. Two dispatches of one worker through two nodes
   * queue on the row lock, and the second reads the first's committed case.
   * A row left holding a case that is no longer open with the worker (its
   * node died between the case action and the release) does not block.
   */
  async claim(q: Queryable, workerId: string, caseId: string, at: number, opts: { rework?: boolean } = {}): Promise<void> {
    const [r] = await q.query<{ case_id: string | null; stage: string | null; on_duty: boolean }>('select case_id, stage, on_duty from workers where id = $1 for update', [workerId]);
    if (!r) throw DispatchErrors.workerNotFound(`worker ${workerId} not found`);
    // A rework goes back to the worker whatever their duty, as on one node; only another open case refuses it, and only
    // in a cluster (the single process keeps its roster's answer: the newer case wins, a warning is logged).
    if (!opts.rework && !r.on_duty) throw DispatchErrors.workerUnavailable(`worker ${workerId} is off_duty`, { status: 'off_duty' });
    if (r.case_id && r.case_id !== caseId && (!opts.rework || this.shared)) {
      // A statement of its own: under READ COMMITTED it sees the case the other dispatch committed.
      const open = await q.query<{ id: string }>("select id from cases where id = $1 and worker_id = $2 and status in ('dispatched', 'accepted', 'on_scene')", [r.case_id, workerId]);
      if (open[0]) throw DispatchErrors.workerUnavailable(`worker ${workerId} is ${r.stage ?? 'busy'} with case ${r.case_id}`, { status: r.stage ?? 'dispatched' });
    }
    await q.query("update workers set case_id = $2, stage = 'dispatched', stage_since = to_timestamp($3 / 1000.0), updated_at = now() where id = $1", [workerId, caseId, at]);
  }

  /**
   * In the transaction of every case action, after the case row: the
   * worker rows follow the case in the same commit. `accept` and `arrive`
   * move the row of the case's worker on (`en_route`, `on_scene`) while it
   * holds the case; a case no longer open with a worker (resolved, declined,
   * cancelled, closed, routed) leaves no row holding it, nor does a dispatch
   * or rework leave the row of a worker it replaced. A row holding another
   * case is never touched.
   */
  async caseMoved(q: Queryable, d: { case: CaseSummary; action: CaseAction; at: number; actor: Actor; data?: Record<string, unknown> }): Promise<void> {
    const c = d.case;
    const stage: Stage | null = d.action === 'accept' ? 'en_route' : d.action === 'arrive' ? 'on_scene' : null;
    const holder = c.workerId && ACTIVE.has(c.status) ? c.workerId : null;
    if (stage && holder) {
      await q.query('update workers set stage = $3, stage_since = to_timestamp($4 / 1000.0), updated_at = now() where id = $1 and case_id = $2', [holder, c.id, stage, d.at]);
    }
    // Only the actions that can end a worker's hold on the case look for rows to release.
    const ends = ENDS.has(d.action);
    const held = ends
      ? (await q.query<{ id: string; device_id: string }>('select id, device_id from workers where case_id = $1 and id is distinct from $2 order by id', [c.id, holder])).map((r) => ({ id: r.id, deviceId: r.device_id }))
      : [];
    // The records and commands commit with the case too, before the rows that say whom they were for are released.
    await this.recordMoved?.(q, { ...d, holder, ends, held });
    if (held.length > 0) {
      await q.query('update workers set case_id = null, stage = null, stage_since = null, updated_at = now() where case_id = $1 and id is distinct from $2', [c.id, holder]);
    }
  }

  toPublic(w: WorkerState): PublicWorker {
    return {
      id: w.id,
      name: w.name,
      deviceId: w.deviceId,
      team: w.team,
      teamName: TEAM_NAMES[w.team],
      phone: w.phone,
      gridIds: w.gridIds,
      userId: w.userId,
      onDuty: w.onDuty,
      status: statusOf(w),
      caseId: w.assignment?.caseId ?? null,
      online: this.registry.get(w.deviceId)?.online ?? false,
      position: hasFix(w) ? { lat: w.lat, lon: w.lon, ts: w.ts, acc: w.acc, batt: w.batt, gridId: w.gridId } : null,
      createdAt: w.createdAt,
    };
  }

  /** The device a worker would be bound to (routes check its region before binding). */
  device(id: string): { id: string; gridId: string | null } | undefined {
    return this.registry.get(id);
  }

  /** Grid used to decide who may see a worker: where they stand, else their first own grid. */
  visibilityGrid(w: WorkerState): string | null {
    return w.gridId ?? w.gridIds[0] ?? null;
  }

  async create(input: { id?: string; name: string; deviceId: string; team?: Team; phone?: string | null; gridIds?: string[]; userId?: string | null }): Promise<WorkerState> {
    const id = input.id ?? `w-${randomBytes(6).toString('hex')}`;
    if (this.byId.has(id)) throw DispatchErrors.workerExists(`worker ${id} already exists`);
    const device = this.registry.get(input.deviceId);
    if (!device) throw DispatchErrors.deviceNotFound(`device ${input.deviceId} not found`);
    if (device.type !== 'handheld') throw DispatchErrors.notHandheld(`device ${input.deviceId} is a ${device.type}`);
    if (this.byDeviceId.has(input.deviceId)) throw DispatchErrors.deviceBound(`device ${input.deviceId} is bound to worker ${this.byDeviceId.get(input.deviceId)!.id}`);
    const gridIds = [...new Set(input.gridIds ?? [])];
    const team = input.team ?? 'grid_worker';
    const userId = input.userId ?? null;
    if (userId && this.byUserId.has(userId)) throw DispatchErrors.workerExists(`user ${userId} already acts as worker ${this.byUserId.get(userId)!.id}`);
    const rows = await this.db.query<{ created_at: Date | string }>(
      `insert into workers (id, name, device_id, team, phone, grid_ids, user_id) values ($1, $2, $3, $4, $5, $6, $7)
       on conflict do nothing returning created_at`,
      [id, input.name, input.deviceId, team, input.phone ?? null, gridIds, userId],
    );
    if (!rows[0]) throw DispatchErrors.workerExists(`worker ${id}, device ${input.deviceId} or user already taken`);
    const w: WorkerState = {
      id, name: input.name, deviceId: input.deviceId, team, phone: input.phone ?? null, gridIds, userId, onDuty: false, assignment: null,
      lat: NaN, lon: NaN, ts: NaN, acc: null, batt: null, gridId: null, outsideSince: null, geofenceAlarmed: false,
      createdAt: ms(rows[0].created_at), removed: false,
    };
    this.insert(w);
    // The handheld may have sent fixes before it was bound (ingest stored them): start from the last good one, as a restart or another node would.
    const [f] = await this.db.query<{ ts: Date | string; lat: number; lon: number; acc: number | null; batt: number | null }>(
      'select ts, lat, lon, acc, batt from positions where device_id = $1 and flag is null order by ts desc limit 1',
      [w.deviceId],
    );
    if (f && !w.removed) this.setFix(w, f.lat, f.lon, ms(f.ts), f.acc, f.batt);
    this.changed(w, null);
    this.announce(w);
    return w;
  }

  /**
   * `check`, when given, judges the caller's right on the worker's grids as
   * stored (a scoped caller's region, CONTRACT 5), not on this node's view,
   * which another node's edit may have left a moment old: the write is made
   * only while the row still has the grids it was judged on, and judged
   * again when they changed in between. Throws what `check` throws.
   */
  async update(id: string, patch: { name?: string; team?: Team; phone?: string | null; gridIds?: string[] }, check?: GridCheck): Promise<WorkerState> {
    const w = this.require(id);
    // Only the fields the patch names are written: a field another node changed meanwhile is not put back.
    const args: unknown[] = [id];
    const sets: string[] = [];
    const set = (column: string, value: unknown) => {
      args.push(value);
      sets.push(`${column} = $${args.length}`);
    };
    if (patch.name !== undefined) set('name', patch.name);
    if (patch.team !== undefined) set('team', patch.team);
    if (patch.phone !== undefined) set('phone', patch.phone);
    if (patch.gridIds) set('grid_ids', [...new Set(patch.gridIds)]);
    const r = await this.checkedWrite(w, check, async (judged) => (await this.db.query<Row>(
      `update workers set ${[...sets, 'updated_at = now()'].join(', ')} where id = $1 and ($${args.length + 1}::text[] is null or grid_ids = $${args.length + 1}::text[]) returning *`,
      [...args, judged],
    ))[0]);
    this.apply(w, r);
    this.changed(w, statusOf(w));
    this.announce(w);
    return w;
  }

  /**
   * A write conditioned on the worker's stored grids (`judged`, or null
   * without a check): the grids are read and checked, the write made while
   * they are still the same; when they changed in between (another node's
   * edit) they are read and checked again. A row gone (deleted through
   * another node) is 404 here too.
   */
  private async checkedWrite<T>(w: WorkerState, check: GridCheck | undefined, write: (judged: string[] | null) => Promise<T | undefined>): Promise<T> {
    for (let attempt = 0; attempt < 5; attempt++) {
      let judged: string[] | null = null;
      if (check) {
        const [row] = await this.db.query<{ grid_ids: string[] | null }>('select grid_ids from workers where id = $1', [w.id]);
        if (!row) break;
        judged = row.grid_ids ?? [];
        check(judged);
      }
      const done = await write(judged);
      if (done !== undefined) return done;
      if (!check) break;
    }
    // Deleted through another node meanwhile (or its grids kept changing under the write: as good as gone to this caller).
    const [still] = await this.db.query<{ id: string }>('select id from workers where id = $1', [w.id]);
    if (!still) this.drop(w);
    throw DispatchErrors.workerNotFound(`worker ${w.id} not found`);
  }

  async remove(id: string, check?: GridCheck): Promise<void> {
    const w = this.require(id);
    if (w.assignment) throw DispatchErrors.workerUnavailable(`worker ${id} is busy with case ${w.assignment.caseId}`);
    // The row decides (another node may have dispatched the worker): a busy worker stays.
    await this.checkedWrite(w, check, async (judged) => {
      const gone = await this.db.query<{ id: string }>('delete from workers where id = $1 and case_id is null and ($2::text[] is null or grid_ids = $2::text[]) returning id', [id, judged]);
      if (gone[0]) return true;
      const [row] = await this.db.query<{ case_id: string | null }>('select case_id from workers where id = $1', [id]);
      if (row?.case_id) throw DispatchErrors.workerUnavailable(`worker ${id} is busy with case ${row.case_id}`);
      return undefined;
    });
    this.drop(w);
    this.announce(w);
  }

  require(id: string): WorkerState {
    const w = this.byId.get(id);
    if (!w) throw DispatchErrors.workerNotFound(`worker ${id} not found`);
    return w;
  }

  async setDuty(w: WorkerState, onDuty: boolean, check?: GridCheck): Promise<void> {
    if (w.onDuty === onDuty && !check) return;
    await this.checkedWrite(w, check, async (judged) =>
      (await this.db.query<{ id: string }>('update workers set on_duty = $2, updated_at = now() where id = $1 and ($3::text[] is null or grid_ids = $3::text[]) returning id', [w.id, onDuty, judged]))[0]);
    if (w.onDuty === onDuty) return;
    const before = statusOf(w);
    w.onDuty = onDuty;
    w.outsideSince = null;
    w.geofenceAlarmed = false;
    this.changed(w, before);
    this.announce(w);
  }

  /**
   * The worker's assignment in memory, announced. The row was written in the
   * case action's transaction (`claim`, `caseMoved`), so nothing is left to
   * write after the commit.
   */
  assign(w: WorkerState, a: Omit<Assignment, 'nearSince'>): void {
    const before = statusOf(w);
    this.assignSeq.set(w, (this.assignSeq.get(w) ?? 0) + 1);
    w.assignment = { ...a, nearSince: w.assignment?.caseId === a.caseId ? w.assignment.nearSince : null };
    this.changed(w, before);
    this.announce(w);
  }

  /** Ends the worker's assignment in memory, announced; the row was released in the case action's transaction (`caseMoved`). */
  release(w: WorkerState): void {
    if (!w.assignment) return;
    const before = statusOf(w);
    this.assignSeq.set(w, (this.assignSeq.get(w) ?? 0) + 1);
    w.assignment = null;
    this.changed(w, before);
    this.announce(w);
  }

  /** Moves the live position (the fix already passed the flagger and is stored). */
  setFix(w: WorkerState, lat: number, lon: number, ts: number, acc: number | null | undefined, batt: number | null | undefined): void {
    if (hasFix(w) && ts <= w.ts) return; // out of order within an accepted batch
    w.lat = lat;
    w.lon = lon;
    w.ts = ts;
    if (acc !== undefined) w.acc = acc;
    if (batt !== undefined) w.batt = batt;
    const grids = this.grids();
    w.gridId = grids ? grids.locate(lat, lon) : null;
    this.index.touch(w);
    this.dirty.add(w);
  }

  private changed(w: WorkerState, previous: WorkerStatus | null): void {
    this.dirty.add(w);
  }

  all(): IterableIterator<WorkerState> {
    return this.byId.values();
  }
}
