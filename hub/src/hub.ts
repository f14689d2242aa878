/**
 * Builds a hub from a config: the one composition root, used by main.ts, the
 * tests and the benchmarks. It builds the platform parts (database, registry,
 * auth, ingest, broker, HTTP), then each domain with exactly the parts and
 * the other domains' services it uses (`createDispatch({ db, bus, broker,
 * cases, grids, realtime, ... })`); no domain sees the whole. Constructors do
 * nothing; start() brings modules up in order and names the module that
 * failed; stop() takes them down in reverse. An optional module failing to
 * start is logged and skipped: video must never stop ingest.
 */
import type { AddressInfo } from 'node:net';
import { createAuth, type Auth } from './auth/index.js';
import { createBroker, type Broker } from './broker/index.js';
import { createCases, type CasesModule, type CasesOptions } from './cases/index.js';
import { createCluster, loadClusterConfig, type Cluster, type ClusterConfig, type Leases } from './cluster/index.js';
import { EventBus } from './core/bus.js';
import type { Config } from './core/config.js';
import { createLogger, type Logger } from './core/logger.js';
import { createMetrics, type Metrics } from './core/metrics.js';
import type { HubModule } from './core/module.js';
import type { CameraLinkageService, GridService, WorkerService } from './core/services.js';
import { createDispatch, type DispatchModule, type DispatchOptions } from './dispatch/index.js';
import { createApp, type App } from './http/app.js';
import { authenticateAll } from './http/guards.js';
import { authRoutes } from './http/routes/auth.routes.js';
import { deadLetterRoutes } from './http/routes/dead-letters.routes.js';
import { deviceRoutes } from './http/routes/devices.routes.js';
import { ingestRoutes } from './http/routes/ingest.routes.js';
import { systemRoutes } from './http/routes/system.routes.js';
import { createIngest, type Ingest } from './ingest/index.js';
import { createMobile, type MobileModule, type MobileOptions } from './mobile/index.js';
import { createRealtime, type RealtimeModule } from './realtime/index.js';
import { DeviceRegistry } from './registry/index.js';
import { createRules, type RulesModule, type RulesOptions } from './rules/index.js';
import { createStore, openDb, type Db, type Store } from './store/index.js';
import { createVideo, type VideoModule, type VideoOptions } from './video/index.js';

export type { HubModule } from './core/module.js';

export const VERSION = '0.1.0';

/** The platform parts every domain is built from (each domain receives only the ones it uses). */
export interface Platform {
  config: Config;
  logger: Logger;
  bus: EventBus;
  metrics: Metrics;
  db: Db;
  store: Store;
  registry: DeviceRegistry;
  auth: Auth;
  ingest: Ingest;
  broker: Broker;
  app: App;
  /** This node in a cluster (the single process when GRIDLINK_REDIS_URL is unset). */
  cluster: Cluster;
  /** Singleton work (timers that must run once per cluster) asks here first (cluster/leases.ts). */
  leases: Leases;
  now: () => number;
}

/** The domains built so far, by name; a hub started with a subset leaves the others out. */
export interface Domains {
  realtime?: RealtimeModule;
  cases?: CasesModule;
  rules?: RulesModule;
  dispatch?: DispatchModule;
  mobile?: MobileModule;
  video?: VideoModule;
}

/** Builds one module from the platform and the domains built before it (in list order). */
export type ModuleFactory = (platform: Platform, domains: Domains) => HubModule;

// ---- the product's domains, each wired with what it uses -----------------------------------

export function realtimeModule(): ModuleFactory {
  return (p, d) => (d.realtime = createRealtime({
    app: p.app, auth: p.auth, bus: p.bus, registry: p.registry, config: p.config,
    ...(p.cluster.socketAdapter ? { socketAdapter: p.cluster.socketAdapter } : {}),
    // cases is built after realtime.
    grids: () => d.cases?.grids,
  }));
}

export function casesModule(options: CasesOptions = {}): ModuleFactory {
  return (p, d) => (d.cases = createCases({
    db: p.db, bus: p.bus, logger: p.logger, config: p.config, auth: p.auth, registry: p.registry, now: p.now, leases: p.leases,
    ...(d.realtime ? { realtime: d.realtime.service } : {}),
    // dispatch (the worker registry) is built after cases.
    workers: () => d.dispatch?.workers,
  }, options));
}

export function rulesModule(options: RulesOptions = {}): ModuleFactory {
  return (p, d) => (d.rules = createRules({
    db: p.db, bus: p.bus, logger: p.logger, auth: p.auth, registry: p.registry, now: p.now, leases: p.leases, owners: p.cluster.owners,
    ...(d.cases ? { cases: d.cases.store, grids: d.cases.grids } : {}),
    ...(d.realtime ? { realtime: d.realtime.service } : {}),
  }, options));
}

export function dispatchModule(options: DispatchOptions = {}): ModuleFactory {
  return (p, d) => (d.dispatch = createDispatch({
    db: p.db, bus: p.bus, logger: p.logger, broker: p.broker, registry: p.registry, ingest: p.ingest, auth: p.auth, config: p.config, now: p.now, leases: p.leases,
    ...(d.cases ? { cases: d.cases.store, grids: d.cases.grids } : {}),
    ...(d.realtime ? { realtime: d.realtime.service } : {}),
    // With the rules module loaded (before or after dispatch) dispatch alarms are stored and announced there.
    alarmsStored: () => d.rules !== undefined,
  }, options));
}

export function mobileModule(options: MobileOptions = {}): ModuleFactory {
  return (p, d) => (d.mobile = createMobile({
    db: p.db, bus: p.bus, logger: p.logger, auth: p.auth, registry: p.registry, ingest: p.ingest, broker: p.broker, now: p.now, shared: p.cluster.enabled,
    ...(d.realtime ? { realtime: d.realtime.service } : {}),
    ...(d.cases ? { cases: d.cases } : {}),
    ...(d.dispatch ? { dispatch: d.dispatch } : {}),
  }, options));
}

export function videoModule(options: Partial<VideoOptions> = {}): ModuleFactory {
  return (p, d) => (d.video = createVideo({
    db: p.db, bus: p.bus, logger: p.logger, config: p.config, auth: p.auth, registry: p.registry, now: p.now, owners: p.cluster.cameras,
    ...(d.cases ? { cases: d.cases.store, grids: d.cases.grids } : {}),
    ...(d.realtime ? { realtime: d.realtime.service } : {}),
  }, options));
}

export interface ProductOptions {
  cases?: CasesOptions;
  rules?: RulesOptions;
  dispatch?: DispatchOptions;
  mobile?: MobileOptions;
  video?: Partial<VideoOptions>;
}

/** The product's domain modules in start order, with per-module options (tests). */
export function productModules(o: ProductOptions = {}): ModuleFactory[] {
  return [
    realtimeModule(),
    casesModule(o.cases),
    rulesModule(o.rules),
    dispatchModule(o.dispatch),
    // the worker app's API (after cases and dispatch).
    mobileModule(o.mobile),
    // optional: video failing (no ffmpeg) never stops ingest.
    videoModule(o.video),
  ];
}

export interface HubOptions {
  logger?: Logger;
  /** Domain modules, in start order. Defaults to every module of the product (productModules()). */
  modules?: ModuleFactory[];
  /** Use the TimescaleDB build of PGlite (tests of the hypertable path). */
  pgliteTimescale?: boolean;
  now?: () => number;
  /** Wraps the opened database (tests inject failures and commit gates here). */
  wrapDb?: (db: Db) => Db;
  /** Overrides of GRIDLINK_REDIS_URL / GRIDLINK_NODE_ID / GRIDLINK_LEASE_TTL_MS. */
  cluster?: Partial<ClusterConfig>;
}

/** The hub as its owner (main.ts, tests, benchmarks) sees it; no domain sees this. */
export interface HubHandle extends Platform {
  /** Modules by name, in start order. */
  modules: Map<string, HubModule>;
  /** The product's domains that were built, typed. */
  domains: Domains;
  /** The cross-domain services of the built domains, for tests, benchmarks and the demo. */
  services: { cases?: CasesModule['store']; grids?: GridService; workers?: WorkerService; realtime?: RealtimeModule['service']; cameras?: CameraLinkageService };
}

export interface Hub {
  ctx: HubHandle;
  start(): Promise<{ http: number; mqtt: number; mqtts?: number }>;
  stop(): Promise<void>;
  readonly ports: { http: number; mqtt: number; mqtts?: number };
}

export async function createHub(config: Config, options: HubOptions = {}): Promise<Hub> {
  const logger = options.logger ?? createLogger(config.logLevel);
  const now = options.now ?? Date.now;
  const bus = new EventBus(logger);
  const metrics = createMetrics(true);
  const opened = await openDb({ url: config.databaseUrl, dataDir: config.dataDir, logger, pgliteTimescale: options.pgliteTimescale ?? false });
  const db = options.wrapDb ? options.wrapDb(opened) : opened;
  const modules = new Map<string, HubModule>();
  const cluster = createCluster({ config: loadClusterConfig(process.env, options.cluster), db, logger, metrics });
  const registry = new DeviceRegistry(db, bus, logger, now);
  cluster.bridge({ bus, registry });
  const auth = createAuth({ db, config, logger, now });
  // Migrations of every module are collected before the store starts.
  const factories = options.modules ?? productModules();
  const store = createStore({ db, config, logger, metrics, leases: cluster.leases, migrations: () => [...modules.values()].flatMap((m) => m.migrations ?? []) });
  const ingest = createIngest({ config, bus, registry, writer: store.writer, metrics, logger, now });
  const broker = createBroker({ config, bus, registry, ingest, writer: store.writer, metrics, logger, mq: cluster.mq, persistence: cluster.persistence });
  const app = await createApp({ config, logger, auth, onMqttStream: (s, req) => broker.handleStream(s, req) });
  const platform: Platform = { config, logger, bus, metrics, db, store, registry, auth, ingest, broker, app, cluster, leases: cluster.leases, now };
  const domains: Domains = {};
  for (const f of factories) {
    const m = f(platform, domains);
    modules.set(m.name, m);
  }
  const ctx: HubHandle = {
    ...platform,
    modules,
    domains,
    services: {
      get cases() { return domains.cases?.store; },
      get grids() { return domains.cases?.grids; },
      get workers() { return domains.dispatch?.workers; },
      get realtime() { return domains.realtime?.service; },
      get cameras() { return domains.video?.nearestCameras; },
    },
  };

  let ports = { http: 0, mqtt: 0 } as { http: number; mqtt: number; mqtts?: number };
  const started: Array<{ name: string; stop: () => Promise<void> }> = [];

  /** Starts one part; on success its stop joins the shutdown list. An optional part that fails is logged and skipped. */
  async function step(name: string, start: () => Promise<void>, stop?: () => Promise<void>, optional = false): Promise<void> {
    try {
      await start();
    } catch (err) {
      if (optional) {
        logger.error({ err, module: name }, `optional module ${name} failed to start; continuing without it`);
        return;
      }
      throw new Error(`module ${name} failed to start: ${(err as Error).message}`, { cause: err });
    }
    if (stop) started.push({ name, stop });
  }

  return {
    ctx,
    get ports() {
      return ports;
    },
    async start() {
      await step('store', () => ctx.store.start(), () => ctx.store.stop());
      await step('cluster', () => cluster.start(), () => cluster.stop());
      await step('registry', () => ctx.registry.start({ shared: cluster.enabled }), () => ctx.registry.stop());
      await step('auth', () => ctx.auth.start());
      await step('ingest', () => ctx.ingest.start(), () => ctx.ingest.stop());

      const { app } = ctx;
      const health = () => cluster.health();
      systemRoutes(app, { db, writer: ctx.store.writer, metrics, version: VERSION, metricsToken: config.metricsToken, cluster: health });
      await app.register(async (api) => {
        const a = api as unknown as App;
        // Every API route is authenticated before its body is read (http/guards.ts).
        a.addHook('onRequest', authenticateAll(ctx.auth));
        systemRoutes(a, { db, writer: ctx.store.writer, metrics, version: VERSION, metricsToken: config.metricsToken, cluster: health });
        authRoutes(a, { auth: ctx.auth });
        deviceRoutes(a, { auth: ctx.auth, registry: ctx.registry, ingest: ctx.ingest, db });
        ingestRoutes(a, { registry: ctx.registry, ingest: ctx.ingest });
        deadLetterRoutes(a, { auth: ctx.auth, registry: ctx.registry, db });
        for (const m of modules.values()) m.routes?.(a);
      }, { prefix: '/api/v1' });
      for (const m of modules.values()) m.rootRoutes?.(app);

      for (const m of modules.values()) {
        if (m.start) await step(m.name, () => m.start!(), m.stop && (() => m.stop!()), m.optional);
      }

      await app.listen({ port: config.httpPort, host: config.host });
      const http = (app.server.address() as AddressInfo).port;
      const mq = await ctx.broker.start();
      started.push({ name: 'broker', stop: () => ctx.broker.stop() });
      ports = { http, ...mq };
      await cluster.announce({ http, mqtt: mq.mqtt });
      logger.info({ ...ports, db: db.kind, timescale: db.timescale }, 'hub started');
      return ports;
    },
    async stop() {
      // Stop taking traffic first, then drain, then close the database.
      // Cluster: this node's devices' rules move to the other nodes first, with their state.
      await cluster.owners.leave().catch((err) => logger.error({ err }, 'rule hand-over failed'));
      const order = [...started].reverse();
      const broker = order.find((s) => s.name === 'broker');
      if (broker) await broker.stop().catch((err) => logger.error({ err }, 'broker stop failed'));
      await ctx.app.close().catch((err) => logger.error({ err }, 'http stop failed'));
      for (const s of order) {
        if (s.name === 'broker') continue;
        await s.stop().catch((err) => logger.error({ err, module: s.name }, 'module stop failed'));
      }
      // A database that is gone must not hang shutdown.
      await Promise.race([db.close().catch(() => undefined), new Promise((r) => setTimeout(r, 5_000).unref())]);
    },
  };
}
