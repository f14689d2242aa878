/**
 * Dispatch (网格调度): grid workers and their live positions, the nearest
 * available worker for a case, the handheld downlink, escalation, GPS
 * arrival, history and geofence. Its door hands out the worker registry.
 *
 * Built after the cases module (it follows 'case.changed' and acts on cases
 * through the case service it is given, with the `dispatch` system actor).
 */
import type { Auth } from '../auth/index.js';
import type { HubModule } from '../core/module.js';
import type { Ingest } from '../ingest/index.js';
import { KeyedQueue } from '../core/keyed-queue.js';
import type { DeviceRegistry } from '../registry/index.js';
import type { Fetch } from './amap.js';
import { loadDispatchConfig, type DispatchConfig } from './dispatch.config.js';
import { DispatchEngine, type DispatchEngineDeps } from './dispatch.engine.js';
import { LocationFlagger } from './location.flagger.js';
import { osmandRoutes } from './osmand.routes.js';
import { dispatchMigrations } from './schema.js';
import { hasFix } from './worker.model.js';
import { workerRoutes } from './workers.routes.js';
import { Workers } from './workers.service.js';

export { DISPATCH_ACTOR, type DispatchAlarm, type DispatchAlarmKind } from './dispatch.engine.js';
export { loadDispatchConfig, dispatchConfigSchema, type DispatchConfig } from './dispatch.config.js';
export type { Candidate } from './candidates.js';
export type { PublicWorker, WorkerChange } from './workers.service.js';

export interface DispatchModule extends HubModule {
  readonly cfg: DispatchConfig;
  readonly workers: Workers;
  readonly engine: DispatchEngine;
  readonly flagger: LocationFlagger;
  /** One beat of the module timer: timeouts, arrival dwell, geofence, index rebuild, `positions` push. */
  flush(): void;
}

export interface DispatchOptions {
  /** Overrides of GRIDLINK_DISPATCH_* settings. */
  config?: Partial<DispatchConfig>;
  /** fetch for the AMap distance API (tests). */
  fetch?: Fetch;
}

export interface DispatchDeps extends DispatchEngineDeps {
  auth: Auth;
  registry: DeviceRegistry;
  /** Location fixes are flagged before storage; OsmAnd/Traccar HTTP fixes go through ingest. */
  ingest: Ingest;
}

/** Cluster: how often each node reads its on-duty workers' rows back. */
const ROWS_READ_MS = 5_000;

export function createDispatch(deps: DispatchDeps, options: DispatchOptions = {}): DispatchModule {
  const cfg = loadDispatchConfig(process.env, options.config);
  const name = 'dispatch';
  const workers = new Workers(deps.db, deps.registry, () => deps.grids, deps.now, deps.bus);
  const engine = new DispatchEngine(deps, cfg, workers, name);
  engine.fetch = options.fetch;
  // Testing only: read from the environment, never from a request (docs/dispatch.md, "Testing options").
  engine.holdAutoDispatch = process.env.GRIDLINK_TEST_HOLD_AUTO_DISPATCH === '1' || process.env.GRIDLINK_TEST_HOLD_AUTO_DISPATCH === 'claimed';
  engine.holdAfterClaim = process.env.GRIDLINK_TEST_HOLD_AUTO_DISPATCH === 'claimed';
  engine.killAfterDispatchCommit = process.env.GRIDLINK_TEST_KILL_AFTER_DISPATCH_COMMIT === '1';
  const killAfter = process.env.GRIDLINK_TEST_KILL_AFTER_CASE_COMMIT;
  engine.killAfterCaseCommit = killAfter && ['accept', 'arrive', 'resolve', 'decline', 'cancel'].includes(killAfter) ? killAfter : null;
  workers.shared = !!deps.leases?.shared;
  // A live node's own follow-up of a commit goes first (its send, its automatic dispatch); recovery takes what is older.
  const grace = Math.max(5_000, cfg.positionsIntervalMs * 5);
  let lastUnsentScan = -Infinity;
  /** A round of unsent commands in flight (its publishes may wait for Redis): the next starts after it. */
  let unsentRound = false;
  /** Cluster: when this node last read the on-duty workers' rows back (a stage or release announced by nobody: its node died). */
  let lastRowsRead = -Infinity;
  let rowsRound = false;
  const flagger = new LocationFlagger(cfg, deps.now);
  let timer: NodeJS.Timeout | null = null;
  /**
   * Cluster: workers changed on other nodes are read back one at a time per
   * worker, in the order the changes were heard; those heard before the
   * roster is loaded wait for it.
   */
  const refreshes = new KeyedQueue((err, workerId) => deps.logger.warn({ err, workerId, module: name }, 'worker change from another node not applied'));
  let early: Set<string> | null = new Set();
  const refresh = (workerId: string) => void refreshes.run(workerId, () => workers.refresh(workerId));

  const mod: DispatchModule = {
    name,
    cfg,
    workers,
    engine,
    flagger,
    migrations: dispatchMigrations,
    routes(api) {
      workerRoutes(api, { auth: deps.auth, db: deps.db, workers, engine, cfg, cases: () => deps.cases, now: deps.now });
    },
    rootRoutes(app) {
      osmandRoutes(app, { registry: deps.registry, ingest: deps.ingest });
    },
    async start() {
      deps.bus.on('worker.changed', name, (e) => {
        if (!e.remote) return;
        if (early) early.add(e.workerId);
        else refresh(e.workerId);
      });
      await workers.load();
      const heard = early;
      early = null;
      for (const id of heard ?? []) refresh(id);
      for (const w of workers.all()) if (hasFix(w)) flagger.seed(w.deviceId, w.lat, w.lon, w.ts);
      deps.ingest.setLocationFlagger((deviceId, m) => flagger.check(deviceId, m));
      await engine.start();
      // Cluster: Redis was away; commands published meanwhile may never have reached the handhelds connected here.
      deps.bus.on('cluster.routing', name, (e) => engine.resendAfterOutage(e.since, e.at));
      // What a process that died after a commit left undone: commands never sent, and (single process) automatic dispatches and re-dispatches owed.
      // A failed round does not keep the hub from starting: in a cluster the next holder's round retries it.
      const r = await engine.recover(deps.leases?.shared ? grace : 0).catch((err: unknown) => {
        deps.logger.error({ err, module: name }, 'dispatch recovery at start failed');
        return null;
      });
      if (r && (r.commands || r.autoDispatches || r.escalations)) deps.logger.info({ module: name, ...r }, 'dispatch recovery at start');
      timer = setInterval(() => mod.flush(), cfg.positionsIntervalMs);
      timer.unref();
    },
    async stop() {
      if (timer) clearInterval(timer);
      timer = null;
      deps.ingest.setLocationFlagger(null);
      deps.bus.removeOwner(name);
      await refreshes.idle();
      await engine.stop();
    },
    flush() {
      try {
        // Accept timeouts, arrival dwell and geofence follow this node's own view of its dispatches and
        // positions (the local bus); an accept timeout is claimed once across nodes (docs/cluster.md).
        engine.tick();
        // Cluster: the `dispatch.timers` holder adopts timeouts of dispatches whose node is gone (timeouts.cluster.ts).
        // And the automatic dispatches owed by a node that died before making them.
        // And the commands a node committed and died before sending.
        if (deps.leases?.shared) {
          void engine.adopt(grace).catch((err: unknown) => deps.logger.warn({ err, module: name }, 'dispatch timeout adoption failed'));
          void engine.adoptAutoDispatches(grace).catch((err: unknown) => deps.logger.warn({ err, module: name }, 'auto-dispatch adoption failed'));
          // And the re-dispatches owed after a decline or a timeout whose node died before making them.
          void engine.adoptEscalations(grace).catch((err: unknown) => deps.logger.warn({ err, module: name }, 're-dispatch adoption failed'));
          const t = performance.now();
          if (deps.leases.holds('dispatch.timers') && t - lastUnsentScan >= 2_000 && !unsentRound) {
            lastUnsentScan = t;
            unsentRound = true;
            void engine.sendUnsent(grace)
              .catch((err: unknown) => deps.logger.warn({ err, module: name }, 'sending unsent commands failed'))
              .finally(() => (unsentRound = false));
          }
          // A stage or release is committed with its case but announced after the commit: one whose node died is heard
          // by nobody. Every node reads its on-duty workers' rows back every 5 s, so its roster, the statuses it pushes
          // and its timeout and arrival watch follow within that (one statement; 23-25 ms for 5,000 workers).
          if (t - lastRowsRead >= ROWS_READ_MS && !rowsRound) {
            lastRowsRead = t;
            rowsRound = true;
            void workers.readRows()
              .catch((err: unknown) => deps.logger.warn({ err, module: name }, 'reading the worker rows back failed'))
              .finally(() => (rowsRound = false));
          }
        }
        if (workers.index.dirty) workers.index.rebuild(deps.now());
        const items = engine.drainPositions();
        if (items.length) deps.realtime?.sendFiltered('positions', items);
      } catch (err) {
        deps.logger.error({ err, module: name }, 'dispatch beat failed');
      }
    },
  };
  return mod;
}
