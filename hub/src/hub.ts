/**
 * Builds a hub from a config: the composition used by main.ts, the tests and
 * the benchmarks. Constructors do nothing; start() brings modules up in
 * order and names the module that failed; stop() takes them down in reverse.
 * An optional module failing to start is logged and skipped: video must never
 * stop ingest.
 */
import type { AddressInfo } from 'node:net';
import { createAuth, type Auth } from './auth/index.js';
import { createBroker, type Broker } from './broker/index.js';
import { createCluster, loadClusterConfig, type Cluster, type ClusterConfig, type Leases } from './cluster/index.js';
import { EventBus } from './core/bus.js';
import type { Config } from './core/config.js';
import { createLogger, type Logger } from './core/logger.js';
import { createMetrics, type Metrics } from './core/metrics.js';
import type { Services } from './core/services.js';
import { createApp, type App } from './http/app.js';
import { authenticateAll } from './http/guards.js';
import { authRoutes } from './http/routes/auth.routes.js';
import { deadLetterRoutes } from './http/routes/dead-letters.routes.js';
import { deviceRoutes } from './http/routes/devices.routes.js';
import { ingestRoutes } from './http/routes/ingest.routes.js';
import { systemRoutes } from './http/routes/system.routes.js';
import { createIngest, type Ingest } from './ingest/index.js';
import { DeviceRegistry } from './registry/index.js';
import { createStore, openDb, type Db, type Migration, type Store } from './store/index.js';

export const VERSION = '0.1.0';

/** What every domain module may use. */
export interface HubContext {
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
  /** Modules by name, for the few cross-domain calls the bus does not cover. */
  modules: Map<string, HubModule>;
  /** Cross-domain services registered by their owning modules (core/services.ts). */
  services: Services;
  now: () => number;
}

export interface HubModule {
  name: string;
  /** An optional module failing to start is logged and skipped. */
  optional?: boolean;
  migrations?: Migration[];
  /** Registers routes under /api/v1 (called before the server listens). */
  routes?(api: App): void;
  /** Registers routes at the server root (e.g. /video, /osmand). */
  rootRoutes?(app: App): void;
  start?(): Promise<void>;
  stop?(): Promise<void>;
}

export type ModuleFactory = (ctx: HubContext) => HubModule;

export interface HubOptions {
  logger?: Logger;
  /** Domain modules, in start order. Defaults to every module of the product. */
  modules?: ModuleFactory[];
  /** Use the TimescaleDB build of PGlite (tests of the hypertable path). */
  pgliteTimescale?: boolean;
  now?: () => number;
  /** Wraps the opened database (tests inject failures and commit gates here). */
  wrapDb?: (db: Db) => Db;
  /** Overrides of GRIDLINK_REDIS_URL / GRIDLINK_NODE_ID / GRIDLINK_LEASE_TTL_MS. */
  cluster?: Partial<ClusterConfig>;
}

export interface Hub {
  ctx: HubContext;
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
  const partial = { config, logger, bus, metrics, db, modules, now, services: {}, cluster, leases: cluster.leases } as HubContext;
  partial.registry = new DeviceRegistry(db, bus, logger, now);
  cluster.bridge({ bus, registry: partial.registry });
  partial.auth = createAuth({ db, config, logger, now });
  // Migrations of every module are collected before the store starts.
  const factories = options.modules ?? (await import('./modules.js')).defaultModules;
  partial.store = createStore({ db, config, logger, metrics, leases: cluster.leases, migrations: () => [...modules.values()].flatMap((m) => m.migrations ?? []) });
  partial.ingest = createIngest({ config, bus, registry: partial.registry, writer: partial.store.writer, metrics, logger, now });
  partial.broker = createBroker({ config, bus, registry: partial.registry, ingest: partial.ingest, writer: partial.store.writer, metrics, logger, mq: cluster.mq, persistence: cluster.persistence });
  partial.app = await createApp({ config, logger, auth: partial.auth, onMqttStream: (s, req) => partial.broker.handleStream(s, req) });
  const ctx = partial;
  for (const f of factories) {
    const m = f(ctx);
    modules.set(m.name, m);
  }

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
