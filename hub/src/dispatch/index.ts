/**
 * Dispatch (网格调度): grid workers and their live positions, the nearest
 * available worker for a case, the handheld downlink, escalation, GPS
 * arrival, history and geofence. Registers `ctx.services.workers`.
 *
 * Runs after the cases module (it follows 'case.changed' and acts on cases
 * through ctx.services.cases with the `dispatch` system actor).
 */
import type { HubContext, HubModule, ModuleFactory } from '../hub.js';
import type { Fetch } from './amap.js';
import { loadDispatchConfig, type DispatchConfig } from './dispatch.config.js';
import { DispatchEngine } from './dispatch.engine.js';
import { LocationFlagger } from './location.flagger.js';
import { osmandRoutes } from './osmand.routes.js';
import { dispatchMigrations } from './schema.js';
import { hasFix } from './worker.model.js';
import { workerRoutes } from './workers.routes.js';
import { Workers } from './workers.service.js';

export { DISPATCH_ACTOR, type DispatchAlarm, type DispatchAlarmKind } from './dispatch.engine.js';
export { loadDispatchConfig, dispatchConfigSchema, type DispatchConfig } from './dispatch.config.js';
export type { Candidate } from './candidates.js';
export type { PublicWorker } from './workers.service.js';

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

export function createDispatchModule(options: DispatchOptions = {}): ModuleFactory {
  return (ctx: HubContext): DispatchModule => {
    const cfg = loadDispatchConfig(process.env, options.config);
    const name = 'dispatch';
    const workers = new Workers(ctx.db, ctx.bus, ctx.registry, () => ctx.services.grids, ctx.now);
    const engine = new DispatchEngine(ctx, cfg, workers, name);
    engine.fetch = options.fetch;
    const flagger = new LocationFlagger(cfg, ctx.now);
    ctx.services.workers = workers;
    let timer: NodeJS.Timeout | null = null;

    const mod: DispatchModule = {
      name,
      cfg,
      workers,
      engine,
      flagger,
      migrations: dispatchMigrations,
      routes(api) {
        workerRoutes(api, { auth: ctx.auth, db: ctx.db, workers, engine, cfg, cases: () => ctx.services.cases, now: ctx.now });
      },
      rootRoutes(app) {
        osmandRoutes(app, { registry: ctx.registry, ingest: ctx.ingest });
      },
      async start() {
        await workers.load();
        for (const w of workers.all()) if (hasFix(w)) flagger.seed(w.deviceId, w.lat, w.lon, w.ts);
        ctx.ingest.setLocationFlagger((deviceId, m) => flagger.check(deviceId, m));
        await engine.start();
        timer = setInterval(() => mod.flush(), cfg.positionsIntervalMs);
        timer.unref();
      },
      async stop() {
        if (timer) clearInterval(timer);
        timer = null;
        ctx.ingest.setLocationFlagger(null);
        ctx.bus.removeOwner(name);
        await engine.stop();
      },
      flush() {
        try {
          // Accept timeouts, arrival dwell and geofence follow this node's own view of its dispatches and
          // positions (the local bus), so they run where that view lives, not on a lease (docs/cluster.md).
          engine.tick();
          if (workers.index.dirty) workers.index.rebuild(ctx.now());
          const items = engine.drainPositions();
          if (items.length) ctx.services.realtime?.sendFiltered('positions', items);
        } catch (err) {
          ctx.logger.error({ err, module: name }, 'dispatch beat failed');
        }
      },
    };
    return mod;
  };
}

export const dispatchModule: ModuleFactory = createDispatchModule();
