/**
 * 网格通, the grid worker's handheld app: its API under /api/v1/m, handheld
 * sessions, and its share of Socket.IO. The app itself (console/src/m) is
 * served by the hub at /m/ with the console build.
 *
 * Transport: authenticated REST + Socket.IO (docs/mobile.md says why). The
 * app's socket joins only the private rooms of its handheld and of its
 * session (which a revoke cuts); dispatch commands (`dispatch.command`) and
 * changes of the worker's tasks and reports are relayed to the first. While
 * the app's socket is up the handheld counts as online, as it would over
 * MQTT.
 *
 * Built after cases and dispatch, which it is given.
 */
import type { TaskEvent } from '@gridlink/devices/contract';
import type { Auth } from '../auth/index.js';
import type { Broker } from '../broker/index.js';
import type { CasesModule } from '../cases/index.js';
import type { EventBus } from '../core/bus.js';
import type { Logger } from '../core/logger.js';
import type { HubModule } from '../core/module.js';
import type { DispatchModule } from '../dispatch/index.js';
import type { Ingest } from '../ingest/index.js';
import type { Realtime } from '../realtime/index.js';
import type { DeviceRegistry } from '../registry/index.js';
import type { Db } from '../store/index.js';
import { loadMobileConfig, type MobileConfig } from './mobile.config.js';
import { mobileRoutes } from './mobile.routes.js';
import { mobileMigrations } from './schema.js';
import { SessionStore } from './sessions.js';

export { loadMobileConfig, mobileConfigSchema, type MobileConfig } from './mobile.config.js';
export { SessionStore, MobileErrors, type HandheldSession, type HandheldSessionChange } from './sessions.js';

export const handheldRoom = (deviceId: string) => `handheld:${deviceId}`;
/**
 * Every app socket of one session: a revoke cuts these, not the handheld's, so a socket the phone opened with its
 * new session before the old one's revoke reached this node stays up.
 */
export const sessionRoom = (sessionId: string) => `handheld-session:${sessionId}`;

export interface MobileModule extends HubModule {
  readonly cfg: MobileConfig;
  readonly sessions: SessionStore;
}

export interface MobileModuleDeps {
  db: Db;
  bus: EventBus;
  logger: Logger;
  auth: Auth;
  registry: DeviceRegistry;
  ingest: Ingest;
  broker: Pick<Broker, 'isConnected'>;
  now: () => number;
  realtime?: Realtime;
  cases?: CasesModule;
  dispatch?: DispatchModule;
  /** Cluster mode: other nodes open and revoke sessions too (sessions.ts). */
  shared?: boolean;
}

/**
 * Cluster: the held sessions are checked against the database this often, so an app socket whose session was revoked
 * with its announcement lost, and which sends no request meanwhile, is cut within it (every request and socket
 * connect reads the session's row: sessions.ts `fresh`).
 */
export const SESSION_RESYNC_MS = 5_000;

export interface MobileOptions {
  /** Overrides of GRIDLINK_MOBILE_* settings. */
  config?: Partial<MobileConfig>;
}

export function createMobile(deps: MobileModuleDeps, options: MobileOptions = {}): MobileModule {
  const name = 'mobile';
  let offUser: (() => void) | null = null;
  const cfg = loadMobileConfig(process.env, options.config);
  const sessions = new SessionStore(deps.db, deps.now, { shared: deps.shared ?? false });
  let resyncTimer: NodeJS.Timeout | null = null;
  const log = deps.logger.child({ module: name });
  const cases = () => deps.cases;
  const dispatch = () => deps.dispatch;
  const realtime = () => deps.realtime;
  /** App sockets per handheld. */
  const sockets = new Map<string, number>();
  /** Reporting handheld of worker-reported cases (filled lazily). */
  const reporterOf = new Map<string, string | null>();

  function setSockets(deviceId: string, delta: number): void {
    const n = Math.max(0, (sockets.get(deviceId) ?? 0) + delta);
    if (n) sockets.set(deviceId, n);
    else sockets.delete(deviceId);
    deps.registry.setOnline(deviceId, n > 0 || deps.broker.isConnected(deviceId));
  }

  sessions.onRevoke = (s, remote) => {
    // The session's own sockets only, on every node (through the cluster's Socket.IO adapter).
    realtime()?.disconnectRoom(sessionRoom(s.id));
    log.info({ sessionId: s.id, workerId: s.workerId, by: s.revokedBy, reason: s.revokeReason, ...(remote ? { remote } : {}) }, 'handheld session revoked');
  };
  // Announced by id alone; in a cluster cluster/index.ts carries it to the other nodes, which read the row back.
  sessions.onChange = (sessionId) => deps.bus.emit('handheld.session', { sessionId });
  const resync = () => void sessions.resync().catch((err: Error) => log.warn({ err: err.message }, 'handheld sessions not checked against the database'));

  async function notifyCase(caseId: string, workerIds: Array<string | null | undefined>, source: string, payload: TaskEvent): Promise<void> {
    const rt = realtime();
    if (!rt || sockets.size === 0) return;
    const devices = new Set<string>();
    const d = dispatch();
    for (const id of workerIds) {
      const w = id ? d?.workers.byId.get(id) : undefined;
      if (w) devices.add(w.deviceId);
    }
    if (source === 'worker') {
      if (!reporterOf.has(caseId)) {
        const r = await deps.db.query<{ device_id: string | null }>('select device_id from cases where id = $1', [caseId]);
        reporterOf.set(caseId, r[0]?.device_id ?? null);
        if (reporterOf.size > 10_000) reporterOf.delete(reporterOf.keys().next().value!);
      }
      const dev = reporterOf.get(caseId);
      if (dev) devices.add(dev);
    }
    for (const dev of devices) if (sockets.has(dev)) rt.sendToRoom(handheldRoom(dev), 'task', payload);
  }

  return {
    name,
    cfg,
    sessions,
    migrations: mobileMigrations,
    routes(api) {
      mobileRoutes(api, { auth: deps.auth, db: deps.db, registry: deps.registry, ingest: deps.ingest, sessions, cfg, cases, dispatch, now: deps.now });
    },
    rootRoutes(app) {
      app.get('/m', { schema: { hide: true } }, async (_req, reply) => reply.redirect('/m/', 301));
    },
    async start() {
      await sessions.load();
      realtime()?.addPrivateVerifier(async (token) => {
        // An app socket is admitted on the session's row (cluster), not on a copy a lost announcement left standing.
        const s = await sessions.check(token, { fresh: true });
        if (!s) return null;
        const w = dispatch()?.workers.byId.get(s.workerId);
        if (!w || w.deviceId !== s.deviceId) return null;
        return {
          rooms: [handheldRoom(s.deviceId), sessionRoom(s.id)],
          exp: Math.floor(s.expiresAt / 1000),
          onConnect: () => {
            setSockets(s.deviceId, 1);
            // Revoked while the socket was being admitted: the revoke's cut came before the socket joined its
            // session's room, so it is cut now (after its disconnect handler is in place, which counts it off).
            if (!sessions.holds(s.id)) queueMicrotask(() => realtime()?.disconnectRoom(sessionRoom(s.id)));
          },
          onDisconnect: () => setSockets(s.deviceId, -1),
        };
      });
      if (deps.shared) {
        deps.bus.on('handheld.session', name, (e) => {
          if (!e.remote) return;
          if (e.sessionId === undefined) resync();
          else void sessions.refresh(e.sessionId).catch((err: Error) => log.warn({ err: err.message, sessionId: e.sessionId }, 'handheld session change from another node not applied'));
        });
        resyncTimer = setInterval(resync, SESSION_RESYNC_MS);
        resyncTimer.unref();
      }
      // Dispatch commands reach the app the moment dispatch hands them out (the app dedupes by cmdId).
      deps.bus.on('dispatch.command', name, ({ deviceId, command }) => {
        if (sockets.has(deviceId)) realtime()?.sendToRoom(handheldRoom(deviceId), 'command', command);
      });
      deps.bus.on('case.changed', name, (e) => {
        const previous = typeof e.data?.workerId === 'string' ? e.data.workerId : null;
        void notifyCase(e.case.id, [e.case.workerId, previous], e.case.source, { caseId: e.case.id, status: e.case.status, change: e.action, workerId: e.case.workerId })
          .catch((err) => log.warn({ err: (err as Error).message }, 'task notification failed'));
      });
      // A change to the user behind a session (disabled, deleted, role, region, password) ends it, as it ends their console sessions.
      offUser = deps.auth.onUserChanged((userId, change) => {
        void sessions.revokeUser(userId, 'system', `user ${change}`).catch((err) => log.error({ err }, 'session revoke failed'));
      });
      deps.bus.on('device.changed', name, ({ deviceId, change }) => {
        if (change === 'disabled' || change === 'deleted' || change === 'secret_rotated') {
          void sessions.revokeDevice(deviceId, 'system', `device ${change}`).catch((err) => log.error({ err }, 'session revoke failed'));
        }
      });
    },
    async stop() {
      if (resyncTimer) clearInterval(resyncTimer);
      resyncTimer = null;
      offUser?.();
      deps.bus.removeOwner(name);
    },
  };
}
