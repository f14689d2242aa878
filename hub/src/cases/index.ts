/**
 * Cases: the 数字城管 closed loop (workflow, history, categories, grids,
 * evidence, KPIs). Registers `ctx.services.cases` and `ctx.services.grids`,
 * plugs the grid hierarchy into auth as the region resolver, and turns
 * handheld `report` and `case` messages into cases and transitions.
 */
import type { Normalised } from '@gridlink/devices';
import type { Actor } from '../core/services.js';
import { isGridError } from '../core/errors.js';
import type { HubContext, HubModule } from '../hub.js';
import type { StoredMessage } from '../ingest/index.js';
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
export { EvidenceStore, decodePhoto, imageMime, type Evidence } from './evidence.js';
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

/** The case store of a hub, when the cases module is loaded. */
export function caseStoreOf(ctx: HubContext): CaseStore | undefined {
  const s = ctx.services.cases as (CaseStore & { brand?: string }) | undefined;
  return s?.brand === 'gridlink.cases' ? s : undefined;
}

export function createCases(ctx: HubContext, opts: { overdueEveryMs?: number } = {}): CasesModule {
  const log = ctx.logger.child({ module: 'cases' });
  const categories = new CategoryCatalogue(ctx.db);
  const grids = new GridIndex();
  const evidence = new EvidenceStore(ctx.db, ctx.config);
  const calendar = new CalendarStore(ctx.db);
  const departments = new DepartmentDirectory(ctx.db, (regionId, gridId) => ctx.auth.canSee({ regionId }, gridId));
  const store = new CaseStore({ db: ctx.db, bus: ctx.bus, logger: log, auth: ctx.auth, services: ctx.services, categories, grids, evidence, now: ctx.now, calendar, departments });
  ctx.services.cases = store;
  ctx.services.grids = grids;
  let timer: NodeJS.Timeout | null = null;
  // Per device, handheld messages apply in the order they were stored.
  const queues = new Map<string, Promise<void>>();

  function workerActor(deviceId: string): Actor {
    const w = ctx.services.workers?.byDevice(deviceId);
    // Without the dispatch module a handheld acts as the worker whose id is its device id.
    return w ? { kind: 'worker', id: w.id, name: w.name, deviceId } : { kind: 'worker', id: deviceId, name: ctx.registry.get(deviceId)?.name ?? deviceId, deviceId };
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
      ctx.bus.emit('case.refused', { deviceId, caseId: msg.caseId, action: msg.action, code, message: (err as Error).message });
    }
  }

  function onStored(s: StoredMessage): void {
    const msg = s.msg;
    if (msg.channel !== 'report' && msg.channel !== 'case') return;
    const prev = queues.get(s.deviceId) ?? Promise.resolve();
    const next = prev.then(() => onHandheld(s.deviceId, msg)).catch((err) => log.error({ err, deviceId: s.deviceId }, 'handheld message failed'));
    queues.set(s.deviceId, next);
    void next.finally(() => {
      if (queues.get(s.deviceId) === next) queues.delete(s.deviceId);
    });
  }

  async function tick(): Promise<void> {
    await store.checkOverdue(ctx.now());
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
      caseRoutes(api, { auth: ctx.auth, db: ctx.db, cases: store, categories, grids, evidence, calendar, departments, now: ctx.now });
      departmentRoutes(api, { auth: ctx.auth, cases: store, departments, grids });
      intakeRoutes(api, { auth: ctx.auth, db: ctx.db, cases: store, grids });
      assessmentRoutes(api, { auth: ctx.auth, db: ctx.db, grids, calendar, departments, services: ctx.services, now: ctx.now });
    },
    async start() {
      evidence.init();
      await categories.load();
      await calendar.load();
      await departments.load();
      // A department's members get its cases on their socket, and nothing sent to their region.
      ctx.services.realtime?.setRoomsOf((userId) => {
        const ids = departments.of(userId);
        return ids.length ? ids.map(departmentRoom) : null;
      });
      // Joining or leaving a department moves the user's open sockets at once, not at their next reconnect.
      departments.onMembersChanged = async (userIds) => {
        await Promise.all(userIds.map((u) => ctx.services.realtime?.reroom(u).catch((err: unknown) => log.error({ err, userId: u }, 'reroom failed'))));
      };
      await store.loadLinks();
      grids.load(await loadGrids(ctx.db));
      ctx.auth.setRegionResolver(grids);
      ctx.bus.on('message.stored', 'cases', onStored);
      const every = opts.overdueEveryMs ?? 30_000;
      if (every > 0) {
        // Once per cluster: on the holder of the `cases.overdue` lease (cluster/leases.ts).
        timer = setInterval(() => void (ctx.leases?.holds('cases.overdue') === false ? Promise.resolve() : tick()).catch((err) => log.error({ err }, 'overdue check failed')), every);
        timer.unref();
      }
      log.info({ grids: grids.size, categories: categories.list().length, evidenceDir: evidence.dir }, 'cases started');
    },
    async stop() {
      if (timer) clearInterval(timer);
      timer = null;
      ctx.bus.removeOwner('cases');
      await Promise.allSettled([...queues.values()]);
    },
  };
}
