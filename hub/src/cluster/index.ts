/**
 * Cluster mode: several identical hub nodes behind a load balancer, sharing
 * state only through PostgreSQL (data, leases) and Redis (messaging).
 *
 * - MQTT: aedes on every node with mqemitter-redis as its emitter, so a
 *   command published on one node reaches a handheld connected to another,
 *   and a second connection with the same clientId on another node closes
 *   the first (aedes announces new clients on $SYS/<broker>/new/clients);
 *   aedes-persistence-redis keeps subscriptions, retained messages and the
 *   QoS 1 queues of persistent sessions where every node sees them.
 * - Socket.IO: the Redis Streams adapter, so an event emitted on one node
 *   reaches sockets on every node, region rooms included; a stream (not
 *   pub/sub) lets a node that lost Redis for a moment catch up on what it
 *   missed instead of dropping alarms.
 * - Presence: each node keeps a key with its id and ports that expires when
 *   it stops renewing it; the live keys are the peers.
 * - Worker changes (created, edited, on or off duty, deleted, dispatched,
 *   a stage on, released) made on one node are announced on
 *   `gridlink:worker.changed` by id alone; the others read the worker back
 *   from the database.
 * - Handheld sessions (worker app tokens) opened or revoked on one node are
 *   announced on `gridlink:handheld.session` by id alone; the others read the
 *   row back (mobile/sessions.ts), and re-read every held session when the
 *   subscriber is back after a Redis outage (announcements may be lost).
 * - Device liveness: each node announces its own connects and disconnects
 *   (`gridlink:device.status`) and writes them with its id and the connect
 *   time; the holder of `devices.liveness` marks offline the devices of a
 *   node that is gone.
 * - Leases (leases.ts): the singleton jobs, in PostgreSQL.
 * - Device owners (owners.ts): each device's rules are evaluated on one
 *   node, a rendezvous hash of its id over the live peers; the others
 *   forward its signals through Redis.
 *
 * Without GRIDLINK_REDIS_URL `createCluster` returns the single process:
 * no Redis, no emitter or persistence override, every lease held.
 */
import { createRequire } from 'node:module';
import { hostname } from 'node:os';
import { Redis, type RedisOptions } from 'ioredis';
import { createAdapter } from '@socket.io/redis-streams-adapter';
import { Counter, Gauge } from 'prom-client';
import type { EventBus } from '../core/bus.js';
import type { Logger } from '../core/logger.js';
import type { DeviceChange, DeviceRegistry, LivenessMessage } from '../registry/index.js';
import type { WorkerChange } from '../dispatch/workers.service.js';
import type { HandheldSessionChange } from '../mobile/sessions.js';
import type { Metrics } from '../core/metrics.js';
import type { Db } from '../store/index.js';
import { MIGRATION_LOCK } from '../store/migrate.js';
import type { ClusterConfig } from './config.js';
import { LEASES, PgLeases, soleLeases, type LeaseName, type LeaseRole, type Leases } from './leases.js';
import { PgCameraOwners, soleCameraOwners, type CameraOwners } from './cameras.js';
import { PartitionView, soleDeviceOwners, type DeviceOwners } from './owners.js';

export { loadClusterConfig, clusterConfigSchema, type ClusterConfig } from './config.js';
export { LEASES, LeaseLostError, PgLeases, soleLeases, type Fence, type LeaseName, type LeaseRole, type Leases } from './leases.js';
export { PgCameraOwners, soleCameraOwners, type CameraOwner, type CameraOwners } from './cameras.js';
export { rendezvousOwner, soleDeviceOwners, type DeviceOwners, type OwnershipChange } from './owners.js';

const require = createRequire(import.meta.url);

declare module '../core/bus.js' {
  interface EventMap {
    /**
     * Cluster: this node's MQTT routing through Redis is back: its
     * connection dropped at `since` and its subscriptions are in effect
     * again since `at` (wall-clock ms). What was published in between may
     * never have reached a client connected here.
     */
    'cluster.routing': { since: number; at: number };
  }
}

export interface PeerInfo {
  id: string;
  http: number;
  mqtt: number;
  startedAt: number;
}

export interface ClusterHealth {
  mode: 'single' | 'cluster';
  nodeId: string;
  redis?: boolean;
  /** Live nodes, this one included (presence keys, a killed node's until its key expires). */
  peers: PeerInfo[];
  /** The nodes this node spreads device and rule owners over: the peers less those found gone. */
  owners: string[];
  leases: Record<LeaseName, LeaseRole>;
  /** Cameras this node pulls as their owner (cluster mode). */
  cameras?: number;
}

export interface Cluster {
  readonly enabled: boolean;
  readonly nodeId: string;
  readonly leases: Leases;
  /** Which node pulls each camera (cameras.ts). */
  readonly cameras: CameraOwners;
  /** Which node evaluates each device's rules (owners.ts). */
  readonly owners: DeviceOwners;
  /** aedes `mq` option (undefined: aedes' own in-memory emitter). */
  readonly mq: unknown;
  /** aedes `persistence` option (undefined: in memory). */
  readonly persistence: unknown;
  /** Socket.IO `adapter` option (undefined: in memory). */
  readonly socketAdapter: ReturnType<typeof createAdapter> | undefined;
  /**
   * Device changes (created, disabled, re-keyed, deleted) made on one node
   * reach the registries of the others, which disconnect what they must;
   * worker changes reach the others' bus as remote `worker.changed`, on
   * which dispatch reads the worker back.
   */
  bridge(deps: { bus: EventBus; registry: DeviceRegistry }): void;
  /** Called once the database is migrated: leases start. */
  start(): Promise<void>;
  /** Called once the hub listens: this node shows up among the peers. */
  announce(ports: { http: number; mqtt: number }): Promise<void>;
  stop(): Promise<void>;
  health(): ClusterHealth;
}

const PRESENCE_MS = 2_000;
const KEY_PREFIX = 'gridlink:node:';
const DEVICE_CHANNEL = 'gridlink:device.changed';
/** Rule signals forwarded to a device's owner node: `gridlink:rules:<node>`. */
const RULES_CHANNEL = 'gridlink:rules:';
const STATUS_CHANNEL = 'gridlink:device.status';
const WORKER_CHANNEL = 'gridlink:worker.changed';
const SESSION_CHANNEL = 'gridlink:handheld.session';

/**
 * This node's HTTP address as the other nodes reach it (they proxy video
 * viewers to the node that pulls the camera): GRIDLINK_NODE_URL, else the
 * address it listens on (the host name when it listens on every interface).
 */
export function nodeUrl(httpPort: number, env: Record<string, string | undefined> = process.env): string {
  if (env.GRIDLINK_NODE_URL) return env.GRIDLINK_NODE_URL.replace(/\/+$/, '');
  const host = env.GRIDLINK_HOST && env.GRIDLINK_HOST !== '0.0.0.0' && env.GRIDLINK_HOST !== '::' ? env.GRIDLINK_HOST : hostname();
  return `http://${host.includes(':') ? `[${host}]` : host}:${httpPort}`;
}

/** ioredis options from a redis:// URL. */
export function redisOptions(url: string): RedisOptions {
  const u = new URL(url);
  return {
    host: u.hostname || '127.0.0.1',
    port: u.port ? Number(u.port) : 6379,
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    ...(u.pathname.length > 1 ? { db: Number(u.pathname.slice(1)) } : {}),
    ...(u.protocol === 'rediss:' ? { tls: {} } : {}),
  };
}

export function createCluster(deps: { config: ClusterConfig; db: Db; logger: Logger; metrics: Metrics }): Cluster {
  const { config, db, metrics } = deps;
  const logger = deps.logger.child({ module: 'cluster', node: config.nodeId });
  const registerMetrics = (leases: Leases, peers: () => number) => {
    new Gauge({ name: 'gridlink_cluster_node_info', help: 'This node (value 1), labelled with its id and mode', labelNames: ['node_id', 'mode'] as const, registers: [metrics.registry] })
      .set({ node_id: config.nodeId, mode: config.redisUrl ? 'cluster' : 'single' }, 1);
    new Gauge({ name: 'gridlink_cluster_peers', help: 'Live hub nodes seen in the cluster, this one included', registers: [metrics.registry], collect() { this.set(peers()); } });
    new Gauge({
      name: 'gridlink_cluster_lease_held', help: '1 while this node holds the lease', labelNames: ['lease'] as const, registers: [metrics.registry],
      collect() {
        for (const n of Object.keys(LEASES) as LeaseName[]) this.set({ lease: n }, leases.holds(n) ? 1 : 0);
      },
    });
    new Counter({
      name: 'gridlink_cluster_lease_fenced_writes_total', help: 'Writes of lease-guarded work refused because this node\'s lease token was no longer the current one (a stale holder)',
      labelNames: ['lease'] as const, registers: [metrics.registry],
      collect() {
        // The lease objects keep the count: set it, labelled by lease (0 on the single process).
        const refused = leases.refusals();
        this.reset();
        for (const n of Object.keys(LEASES) as LeaseName[]) this.inc({ lease: n }, refused[n]);
      },
    });
  };

  if (!config.redisUrl) {
    const leases = soleLeases(config.nodeId);
    let self: PeerInfo | null = null;
    registerMetrics(leases, () => 1);
    return {
      enabled: false, nodeId: config.nodeId, leases, cameras: soleCameraOwners(config.nodeId), owners: soleDeviceOwners(config.nodeId), mq: undefined, persistence: undefined, socketAdapter: undefined,
      bridge() {},
      async start() {},
      async announce(ports) {
        self = { id: config.nodeId, ...ports, startedAt: Date.now() };
      },
      async stop() {},
      health: () => ({ mode: 'single', nodeId: config.nodeId, peers: self ? [self] : [], owners: [config.nodeId], leases: leases.roles() }),
    };
  }

  const opts = redisOptions(config.redisUrl);
  // CommonJS packages without ESM entry points.
  const MQEmitterRedis = require('mqemitter-redis') as (o: Record<string, unknown>) => { close(cb: () => void): void; state: { on(e: string, f: (err: Error) => void): void } };
  // aedes 1.x takes the callback face of a persistence (it pipes the retained-message stream).
  const redisPersistence = require('aedes-persistence-redis') as (o: Record<string, unknown>) => { destroy(): Promise<void> };

  /**
   * Every Redis connection of this node, by role, each with its error
   * handler (an ioredis connection without one prints "Unhandled error
   * event" on every reconnect attempt) and its status in /healthz. While
   * Redis is away the MQTT emitter and sessions keep ioredis' retry budget
   * (about 10 s of reconnects) and then fail their commands: aedes closes
   * the connections concerned and devices reconnect, re-sending what was
   * not acknowledged; the console stream and device-change subscriber wait
   * for Redis without limit; presence gives up at once so /healthz notices.
   */
  const conns: Record<string, Redis> = {};
  const outage = new Set<string>();
  /** When each connection dropped, until it is ready again (wall clock: compared with times the database stamps). */
  const droppedAt = new Map<string, number>();
  const connection = (role: string, extra: RedisOptions): Redis => {
    const c = new Redis({ ...opts, ...extra, connectionName: `gridlink:${config.nodeId}:${role}` });
    c.on('close', () => {
      if (!droppedAt.has(role)) droppedAt.set(role, Date.now());
    });
    // ioredis reports every failed reconnect; one line when a connection drops, one when it is back.
    c.on('error', (err: Error) => {
      if (outage.has(role)) return;
      outage.add(role);
      logger.warn({ err: err.message, role }, 'redis connection lost');
    });
    c.on('ready', () => {
      if (outage.delete(role)) logger.info({ role }, 'redis connection back');
      const since = droppedAt.get(role);
      droppedAt.delete(role);
      if (since === undefined || role !== 'mqtt.sub') return;
      // ioredis re-subscribes right after 'ready', on this connection: a PING answered after that means the
      // subscriptions are in effect, so a command sent from now on reaches the clients connected here.
      setImmediate(() => {
        c.ping()
          .then(() => bridged?.bus.emit('cluster.routing', { since, at: Date.now() }))
          .catch((err: Error) => logger.warn({ err: err.message }, 'MQTT routing back, but its subscriptions were not confirmed'));
      });
    });
    conns[role] = c;
    return c;
  };
  const mq = MQEmitterRedis({
    ...opts, concurrency: 1000, matchEmptyLevels: true,
    pubConn: connection('mqtt.pub', { enableAutoPipelining: true }),
    subConn: connection('mqtt.sub', {}),
  });
  // Connection errors are logged above, once per outage.
  mq.state.on('error', () => undefined);
  const persistence = redisPersistence({ maxSessionDelivery: 1000, conn: connection('mqtt.sessions', {}) });
  // The adapter blocks on XREAD: a connection of its own.
  const adapterConn = connection('socket.io', { maxRetriesPerRequest: null });
  const socketAdapter = createAdapter(adapterConn, { streamName: 'gridlink:socket.io', maxLen: 100_000 });
  const conn = connection('presence', { maxRetriesPerRequest: 2 });
  const sub = connection('device.changes', { maxRetriesPerRequest: null });
  // Forwarded rule signals: a subscriber of their own (binary payloads, hot path).
  const rulesSub = connection('rules.signals', { maxRetriesPerRequest: null });
  const rulesChannel = `${RULES_CHANNEL}${config.nodeId}`;
  const owners = new PartitionView(config.nodeId, PRESENCE_MS * 3, {
    publish: (node, payload) => conn.publish(`${RULES_CHANNEL}${node}`, payload),
    // When the rules module listens: before this node shows up among the peers, so nothing forwarded to it is lost.
    subscribe: async (deliver) => {
      rulesSub.on('messageBuffer', (channel: Buffer, payload: Buffer) => {
        if (channel.toString() === rulesChannel) deliver(payload);
      });
      await rulesSub.subscribe(rulesChannel);
    },
    unsubscribe: async () => {
      await rulesSub.unsubscribe(rulesChannel).catch(() => undefined);
    },
  }, () => void presence());
  let bridged: { bus: EventBus; registry: DeviceRegistry } | null = null;
  const leases = new PgLeases(db, config.nodeId, config.leaseTtlMs, logger);
  const cameras = new PgCameraOwners(db, config.nodeId, config.leaseTtlMs, logger);
  let self: PeerInfo | null = null;
  let peers: PeerInfo[] = [];
  let redisOk = false;
  let timer: NodeJS.Timeout | null = null;
  /**
   * When each node was last known to be there (its presence key, or a word
   * from it about a device), on this node's monotonic clock. A node missing
   * for `gone` is dead to the device liveness sweep: longer than a renewal
   * gap, so a Redis restart (every presence key lost at once, renewed within
   * 2 s) does not mark the devices of live nodes offline.
   */
  const lastPresent = new Map<string, number>();
  const gone = Math.max(config.leaseTtlMs, PRESENCE_MS * 2);
  /** Since when this node's presence rounds have succeeded without a break: a peer counts as gone only if it stayed away that long. */
  let healthySince = Infinity;
  let sweeping = false;
  /** The live set the table was last swept for, and when: the table is read again when it changes, or every 30 s. */
  let sweptFor = '';
  let sweptAt = -Infinity;
  registerMetrics(leases, () => peers.length);
  new Gauge({ name: 'gridlink_cluster_cameras_owned', help: 'Cameras this node pulls as their owner', registers: [metrics.registry], collect() { this.set(cameras.owned()); } });

  /** A round in flight, and whether another was asked for meanwhile: rounds never overlap, so an older read never lands last. */
  let round: Promise<void> | null = null;
  let stopped = false;
  let again = false;
  function presence(): Promise<void> {
    if (round) {
      again = true;
      return round;
    }
    round = (async () => {
      do {
        again = false;
        await presenceRound();
      } while (again);
    })().finally(() => (round = null));
    return round;
  }

  async function presenceRound(): Promise<void> {
    if (!self || stopped) return;
    try {
      const wasOk = redisOk;
      const had = await conn.set(`${KEY_PREFIX}${self.id}`, JSON.stringify(self), 'PX', PRESENCE_MS * 3, 'GET');
      // Our key had expired (Redis restarted, or this node stalled) or our words were lost while Redis was away:
      // tell the others again which devices this node holds.
      if (had === null || !wasOk) bridged?.registry.reassertLiveness();
      const keys: string[] = [];
      let cursor = '0';
      do {
        const [next, batch] = await conn.scan(cursor, 'MATCH', `${KEY_PREFIX}*`, 'COUNT', 100);
        cursor = next;
        keys.push(...batch);
      } while (cursor !== '0');
      const values = keys.length ? await conn.mget(...keys) : [];
      peers = values.flatMap((v) => (v ? [JSON.parse(v) as PeerInfo] : [])).sort((a, b) => a.id.localeCompare(b.id));
      redisOk = true;
      owners.setPresent(peers);
      const t = performance.now();
      if (!wasOk) healthySince = t;
      for (const p of peers) lastPresent.set(p.id, t);
    } catch (err) {
      if (redisOk) logger.warn({ err: (err as Error).message }, 'presence not renewed');
      redisOk = false;
      healthySince = Infinity;
      return;
    }
    if (!sweeping) {
      sweeping = true;
      // Not awaited: a peer's join notice should not wait behind a sweep's UPDATE.
      void sweep().catch((err: Error) => logger.warn({ err: err.message }, 'device liveness sweep failed')).finally(() => (sweeping = false));
    }
  }

  /**
   * Devices held by a node that is gone go offline: in this node's view on
   * every node, and in the table (with one console event each) on the holder
   * of `devices.liveness`. A device that reconnected elsewhere meanwhile has
   * another holder and is left alone.
   */
  async function sweep(): Promise<void> {
    const registry = bridged?.registry;
    const t = performance.now();
    // After a start or a Redis outage, peers get one `gone` period to renew their keys first.
    if (!registry || t - healthySince < gone) return;
    const alive = new Set<string>();
    for (const [id, at] of lastPresent) if (t - at < gone) alive.add(id);
    alive.add(config.nodeId);
    const swept = registry.sweepLiveness(alive);
    const key = [...alive].sort().join(' ');
    if (!leases.holds('devices.liveness')) {
      sweptFor = '';
      return;
    }
    if (key === sweptFor && t - sweptAt < 30_000 && swept.length === 0) return;
    sweptFor = key;
    sweptAt = t;
    // Fenced: a holder that stalled here past its lease judges "gone" from a view that is old by then.
    const fence = leases.fence('devices.liveness');
    let rows: Array<{ id: string; holder: string }>;
    try {
      rows = await fence.run(db, (q) => q.query<{ id: string; holder: string }>(
        `update devices d set online = false, holder_node = null
         from (select id, holder_node from devices where online and holder_node is not null and not (holder_node = any($1::text[])) for update) old
         where d.id = old.id returning d.id, old.holder_node as holder`,
        [[...alive]],
      ));
    } catch (err) {
      if (fence.refused(err)) {
        sweptFor = '';
        return;
      }
      throw err;
    }
    const ids = new Set([...swept, ...rows.map((r) => r.id)]);
    if (ids.size) {
      logger.info({ devices: ids.size, nodes: [...new Set(rows.map((r) => r.holder))] }, 'devices of nodes that are gone marked offline');
      registry.announceOffline(ids);
    }
  }

  return {
    enabled: true, nodeId: config.nodeId, leases, cameras, owners, mq, persistence, socketAdapter,
    bridge(d) {
      bridged = d;
      d.registry.linkLiveness({
        nodeId: config.nodeId,
        publish: (m) => {
          conn.publish(STATUS_CHANNEL, JSON.stringify(m)).catch((err: Error) => logger.debug({ err: err.message }, 'device liveness not announced to the other nodes'));
        },
      });
      d.bus.on('device.changed', 'cluster', (e) => {
        if (e.remote) return;
        conn.publish(DEVICE_CHANNEL, JSON.stringify({ node: config.nodeId, deviceId: e.deviceId, change: e.change }))
          .catch((err: Error) => logger.warn({ err: err.message, deviceId: e.deviceId }, 'device change not announced to the other nodes'));
      });
      d.bus.on('worker.changed', 'cluster', (e) => {
        if (e.remote) return;
        conn.publish(WORKER_CHANNEL, JSON.stringify({ node: config.nodeId, workerId: e.workerId }))
          .catch((err: Error) => logger.warn({ err: err.message, workerId: e.workerId }, 'worker change not announced to the other nodes'));
      });
      d.bus.on('handheld.session', 'cluster', (e) => {
        if (e.remote || !e.sessionId) return;
        conn.publish(SESSION_CHANNEL, JSON.stringify({ node: config.nodeId, sessionId: e.sessionId }))
          .catch((err: Error) => logger.warn({ err: err.message, sessionId: e.sessionId }, 'handheld session change not announced to the other nodes'));
      });
      // Back after an outage: announcements made meanwhile may be lost, so every held session is read again.
      let subLost = false;
      sub.on('close', () => (subLost = true));
      sub.on('ready', () => {
        if (!subLost) return;
        subLost = false;
        const change: HandheldSessionChange = { remote: true };
        d.bus.emit('handheld.session', change);
      });
    },
    async start() {
      // Who holds each device's connection, and since when (registry/index.ts writes them).
      await db.tx(async (q) => {
        await q.query('select pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
        await q.query('alter table devices add column if not exists holder_node text, add column if not exists connected_us bigint');
        await q.query('create index if not exists devices_holder_idx on devices (holder_node) where online');
      });
      sub.on('message', (channel: string, text: string) => {
        if (channel === STATUS_CHANNEL) {
          let s: LivenessMessage;
          try {
            s = JSON.parse(text) as LivenessMessage;
          } catch {
            return;
          }
          if (typeof s?.node !== 'string' || s.node === config.nodeId) return;
          lastPresent.set(s.node, performance.now());
          bridged?.registry.applyLiveness(s);
          return;
        }
        if (channel === WORKER_CHANNEL) {
          // Only "worker X changed" is taken from the message: the worker itself is read from the database.
          let w: { node?: unknown; workerId?: unknown };
          try {
            w = JSON.parse(text) as typeof w;
          } catch {
            return;
          }
          if (typeof w?.workerId !== 'string' || w.node === config.nodeId || !bridged) return;
          const change: WorkerChange = { workerId: w.workerId, remote: true };
          bridged.bus.emit('worker.changed', change);
          return;
        }
        if (channel === SESSION_CHANNEL) {
          // Only "session X changed" is taken from the message: the session itself is read from the database.
          let h: { node?: unknown; sessionId?: unknown };
          try {
            h = JSON.parse(text) as typeof h;
          } catch {
            return;
          }
          if (typeof h?.sessionId !== 'string' || !/^[0-9a-f]{16}$/.test(h.sessionId) || h.node === config.nodeId || !bridged) return;
          const change: HandheldSessionChange = { sessionId: h.sessionId, remote: true };
          bridged.bus.emit('handheld.session', change);
          return;
        }
        let m: { node: string; deviceId: string; change: DeviceChange['change'] };
        try {
          m = JSON.parse(text) as typeof m;
        } catch {
          return;
        }
        if (m.node === config.nodeId || !bridged) return;
        bridged.registry.refresh(m.deviceId, m.change).catch((err: Error) => logger.warn({ err: err.message, deviceId: m.deviceId }, 'device change from another node not applied'));
      });
      await sub.subscribe(DEVICE_CHANNEL, STATUS_CHANNEL, WORKER_CHANNEL, SESSION_CHANNEL);
      await leases.start();
    },
    async announce(ports) {
      self = { id: config.nodeId, ...ports, startedAt: Date.now() };
      await cameras.start(nodeUrl(ports.http));
      await presence();
      await owners.join();
      timer = setInterval(() => void presence(), PRESENCE_MS);
      timer.unref();
      logger.info({ peers: peers.map((p) => p.id), leases: Object.entries(leases.roles()).filter(([, r]) => r.mine).map(([n]) => n) }, 'cluster node up');
    },
    async stop() {
      stopped = true;
      if (timer) clearInterval(timer);
      timer = null;
      await leases.stop();
      await cameras.stop();
      bridged?.bus.removeOwner('cluster');
      sub.disconnect();
      rulesSub.disconnect();
      if (self) await conn.del(`${KEY_PREFIX}${self.id}`).catch(() => undefined);
      await persistence.destroy().catch(() => undefined);
      // aedes closes its emitter when the broker stops; this covers a hub that never started its broker.
      await Promise.race([new Promise<void>((r) => mq.close(() => r())), new Promise((r) => setTimeout(r, 1_000).unref())]).catch(() => undefined);
      adapterConn.disconnect();
      conn.disconnect();
    },
    health: () => ({ mode: 'cluster', nodeId: config.nodeId, redis: redisOk && Object.values(conns).every((c) => c.status === 'ready'), peers, owners: [...owners.peers()], leases: leases.roles(), cameras: cameras.owned() }),
  };
}
