/**
 * Cases: the 数字城管 closed loop (workflow, history, categories, grids,
 * evidence, KPIs). Its door hands out the case store and the grid index
 * (the composition root passes them to the domains that use them), plugs the
 * grid hierarchy into auth as the region resolver, and turns handheld
 * `report` and `case` messages into cases and transitions.
 */
import type { Normalised } from '@gridlink/devices';
import type { Auth } from '../auth/index.js';
import type { Leases } from '../cluster/index.js';
import type { EventBus } from '../core/bus.js';
import type { Config } from '../core/config.js';
import { isGridError } from '../core/errors.js';
import { KeyedQueue } from '../core/keyed-queue.js';
import type { Logger } from '../core/logger.js';
import type { HubModule } from '../core/module.js';
import type { Actor, RealtimeService, WorkerService } from '../core/services.js';
import type { StoredMessage } from '../ingest/index.js';
import type { DeviceRegistry } from '../registry/index.js';
import type { Db } from '../store/index.js';
import { CalendarStore } from './calendar.store.js';
import { CategoryCatalogue } from './categories.js';
import { DepartmentDirectory, departmentRoom } from './departments.js';
import { departmentRoutes } from './departments.routes.js';
import { assessmentRoutes } from './assessment.routes.js';
import { intakeRoutes } from './intake.routes.js';
import { EvidenceStore } from './evidence.js';
import { GridIndex, loadGrids } from './grids.js';
import { caseRoutes } from './routes.js';
import { caseMigrations } from './schema.js';
import { CaseStore } from './service.js';

export { CaseStore, CaseErrors, SEVERITY_RANK, maxSeverity, systemActor, userActor, type CaseChanged, type CaseChange, type CaseDetail, type CreateCaseInput, type HistoryEntry } from './service.js';
export { WORKFLOW, OPEN_STATUSES, CASE_STATUSES, CASE_ACTIONS, isOpen, workflowTable, type Transition } from './workflow.js';
export { SEED_CATEGORIES, type Category } from './categories.js';
export { WorkCalendar, DEFAULT_CALENDAR, type CalendarData, type LimitUnit } from '@gridlink/devices/calendar';
export { CalendarStore } from './calendar.store.js';
export { DepartmentDirectory, SEED_DEPARTMENTS, departmentRoom, type Department } from './departments.js';
export { computeAssessment, ASSESSMENT_FORMULAS, DEFAULT_WEIGHTS, type Assessment, type AssessmentRow } from './assessment.js';
export { GridIndex, normaliseGrids, pointInGeometry, type GridCollection, type GridFeature, type GridProps } from './grids.js';
export { EvidenceStore, decodePhoto, imageMime, MAX_EVIDENCE_BYTES, type Evidence } from './evidence.js';
export { MediaParts, sendMedia, PART_BYTES, type StoredMedia } from './stored-media.js';
export { computeKpi, KPI_DESCRIPTION, type KpiResult, type KpiFigures } from './kpi.js';

export interface CasesModule extends HubModule {
  store: CaseStore;
  grids: GridIndex;
  categories: CategoryCatalogue;
  evidence: EvidenceStore;
  calendar: CalendarStore;
  departments: DepartmentDirectory;
  /** Runs overdue detection now (the timer calls it every `overdueEveryMs`). */
  tick(): Promise<void>;
}

export interface CasesDeps {
  db: Db;
  bus: EventBus;
  logger: Logger;
  config: Config;
  auth: Auth;
  registry: DeviceRegistry;
  now: () => number;
  /** Work that must run once per cluster (the overdue check) asks here. */
  leases?: Leases;
  realtime?: RealtimeService;
  /** The worker registry, when dispatch is loaded (it is built after cases). */
  workers?: () => WorkerService | undefined;
}

export interface CasesOptions {
  overdueEveryMs?: number;
}

export function createCases(deps: CasesDeps, opts: CasesOptions = {}): CasesModule {
  const workers = deps.workers ?? (() => undefined);
  const log = deps.logger.child({ module: 'cases' });
  const categories = new CategoryCatalogue(deps.db);
  const grids = new GridIndex();
  // In a cluster (GRIDLINK_REDIS_URL) evidence bytes live in PostgreSQL so every node serves them (docs/cluster.md).
  const evidence = new EvidenceStore(deps.db, deps.config, { shared: deps.leases?.shared ?? false });
  const calendar = new CalendarStore(deps.db);
  const departments = new DepartmentDirectory(deps.db, (regionId, gridId) => deps.auth.canSee({ regionId }, gridId));
  const store = new CaseStore({ db: deps.db, bus: deps.bus, logger: log, auth: deps.auth, ...(deps.realtime ? { realtime: deps.realtime } : {}), workers, categories, grids, evidence, now: deps.now, calendar, departments });
  let timer: NodeJS.Timeout | null = null;
  // Per device, handheld messages apply in the order they were stored.
  const queues = new KeyedQueue((err, deviceId) => log.error({ err, deviceId }, 'handheld message failed'));

  function workerActor(deviceId: string): Actor {
    const w = workers()?.byDevice(deviceId);
    // Without the dispatch module a handheld acts as the worker whose id is its device id.
    return w ? { kind: 'worker', id: w.id, name: w.name, deviceId } : { kind: 'worker', id: deviceId, name: deps.registry.get(deviceId)?.name ?? deviceId, deviceId };
  }

  async function onHandheld(deviceId: string, msg: Extract<Normalised, { channel: 'report' | 'case' }>): Promise<void> {
    const actor = workerActor(deviceId);
    if (msg.channel === 'report') {
      const cat = categories.resolve(msg.category) ?? categories.resolve('other')!;
      await store.create({
        category: cat.code, description: msg.description, lat: msg.lat, lon: msg.lon, source: 'worker', actor, deviceId,
        reportKey: `${deviceId}:${msg.reportId}`, photos: msg.photos, title: `${cat.name}（网格员上报）`,
        data: { reportId: msg.reportId, deviceTs: msg.ts, ...(cat.code !== msg.category && !categories.resolve(msg.category) ? { reportedCategory: msg.category } : {}) },
      } as Parameters<CaseStore['create']>[0]);
      return;
    }
    try {
      await store.act(msg.caseId, msg.action, actor, { ts: msg.ts, ...(msg.note ? { note: msg.note } : {}), ...(msg.photos?.length ? { photos: msg.photos } : {}) });
    } catch (err) {
      const code = isGridError(err) ? err.code : 'INTERNAL';
      log.warn({ deviceId, caseId: msg.caseId, action: msg.action, code, err: (err as Error).message }, 'handheld case action refused');
      deps.bus.emit('case.refused', { deviceId, caseId: msg.caseId, action: msg.action, code, message: (err as Error).message });
    }
  }

  function onStored(s: StoredMessage): void {
    const msg = s.msg;
    if (msg.channel !== 'report' && msg.channel !== 'case') return;
    void queues.run(s.deviceId, () => onHandheld(s.deviceId, msg));
  }

  async function tick(): Promise<void> {
    // Fenced by the `cases.overdue` token held now: a pass that stalls past the lease writes nothing.
    const fence = deps.leases?.fence('cases.overdue');
    try {
      await store.checkOverdue(deps.now(), fence);
    } catch (err) {
      if (!fence?.refused(err)) throw err;
    }
  }

  return {
    name: 'cases',
    store,
    grids,
    categories,
    evidence,
    calendar,
    departments,
    tick,
    migrations: caseMigrations,
    routes(api) {
      caseRoutes(api, { auth: deps.auth, db: deps.db, cases: store, categories, grids, evidence, calendar, departments, now: deps.now });
      departmentRoutes(api, { auth: deps.auth, cases: store, departments, grids });
      intakeRoutes(api, { auth: deps.auth, db: deps.db, cases: store, grids });
      assessmentRoutes(api, { auth: deps.auth, db: deps.db, grids, calendar, departments, workers, now: deps.now });
    },
    async start() {
      evidence.init();
      await categories.load();
      await calendar.load();
      await departments.load();
      // A department's members get its cases on their socket, and nothing sent to their region.
      deps.realtime?.setRoomsOf((userId) => {
        const ids = departments.of(userId);
        return ids.length ? ids.map(departmentRoom) : null;
      });
      // Joining or leaving a department moves the user's open sockets at once, not at their next reconnect.
      departments.onMembersChanged = async (userIds) => {
        await Promise.all(userIds.map((u) => deps.realtime?.reroom(u).catch((err: unknown) => log.error({ err, userId: u }, 'reroom failed'))));
      };
      await store.loadLinks();
      grids.load(await loadGrids(deps.db));
      deps.auth.setRegionResolver(grids);
      deps.bus.on('message.stored', 'cases', onStored);
      const every = opts.overdueEveryMs ?? 30_000;
      if (every > 0) {
        // Once per cluster: on the holder of the `cases.overdue` lease (cluster/leases.ts).
        timer = setInterval(() => void (deps.leases?.holds('cases.overdue') === false ? Promise.resolve() : tick()).catch((err) => log.error({ err }, 'overdue check failed')), every);
        timer.unref();
      }
      log.info({ grids: grids.size, categories: categories.list().length, evidenceDir: evidence.shared ? 'database' : evidence.dir }, 'cases started');
    },
    async stop() {
      if (timer) clearInterval(timer);
      timer = null;
      deps.bus.removeOwner('cases');
      await queues.settled();
    },
  };
}
