/**
 * Realtime: Socket.IO on the hub's HTTP server at /socket.io (CONTRACT 6).
 * The token is checked in the connection middleware and again when it
 * expires (the socket is disconnected; the client logs in again). Each
 * socket joins the one room its user may see: `all` for unscoped users,
 * `region:<gridId>` for a user scoped to a region. An object in grid g is
 * sent to `all` plus the rooms of g and each of its ancestors, so clients
 * never choose rooms and a user outside the region receives nothing.
 * A batch of items of several grids (`sendFiltered`, the positions push)
 * goes to each region room with the items it may see; in a cluster the batch
 * travels once to every node, and each node does that for its own sockets.
 * Everything goes out through one typed `send` (immich event.repository).
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { Server, type ServerOptions, type Socket } from 'socket.io';
import type { Auth, Principal } from '../auth/index.js';
import type { EventBus } from '../core/bus.js';
import type { Config } from '../core/config.js';
import type { HubModule } from '../core/module.js';
import type { GridService, RealtimeService } from '../core/services.js';
import type { App } from '../http/app.js';
import type { DeviceRegistry } from '../registry/index.js';
import type { ServerToClientEvents } from './events.js';

export type { AlarmEvent, CaseEvent, DeviceEvent, LinkageEvent, PositionEvent, ServerEventName, ServerEventPayload, ServerToClientEvents } from './events.js';

export const SOCKET_PATH = '/socket.io';
const ALL = 'all';
/** Cluster: a `sendFiltered` batch on its way to the other nodes (Socket.IO server-side emit). */
const FILTERED = 'gridlink:filtered';
const MAX_TIMER_MS = 2 ** 31 - 1;

interface SocketData {
  principal: Principal;
  /** Set for a socket admitted by a private verifier (a handheld session): it sits only in `rooms`. */
  grant?: PrivateGrant;
}

/**
 * A socket whose token is not a user token but one a module recognises (a
 * handheld session): it joins only the rooms named here and receives nothing
 * sent to regions.
 */
export interface PrivateGrant {
  rooms: string[];
  /** Expiry, epoch seconds (the socket is disconnected then). */
  exp: number;
  onConnect?(): void;
  onDisconnect?(): void;
}
export type PrivateVerifier = (token: string) => Promise<PrivateGrant | null>;

type Io = Server<Record<string, never>, ServerToClientEvents, Record<string, never>, SocketData>;

/** The service other domains use (send, sendFiltered, sendToRoom: typed by the contract's event maps) plus what the hub's owner needs. */
export interface Realtime extends RealtimeService {
  /** Connected sockets (for health and tests). */
  readonly connections: number;
  /** Admits sockets whose token `verify` recognises (tried when the token is not a user token). */
  addPrivateVerifier(verify: PrivateVerifier): void;
  /** Disconnects every socket in a private room (a revoked session). */
  disconnectRoom(room: string): void;
  /** Sockets in a room. */
  roomSize(room: string): number;
}

export const regionRoom = (gridId: string) => `region:${gridId}`;
/** Every socket of one user, so a change to the user (disabled, deleted, new role) drops them at once. */
const userRoom = (userId: string) => `user:${userId}`;

/**
 * Browsers send Origin: a page of another site must not open a socket with
 * the user's token. Allowed: no Origin (not a browser), the hub's own origin,
 * and the configured GRIDLINK_ALLOWED_ORIGINS.
 */
export function originAllowed(origin: string | undefined, host: string | undefined, allowed: readonly string[]): boolean {
  if (!origin) return true;
  if (allowed.includes(origin)) return true;
  try {
    return !!host && new URL(origin).host === host;
  } catch {
    return false;
  }
}

export interface RealtimeDeps {
  app: App;
  auth: Auth;
  bus: EventBus;
  registry: DeviceRegistry;
  config: Pick<Config, 'allowedOrigins'>;
  /** Cluster mode: events reach the sockets of every node (cluster/index.ts). */
  socketAdapter?: ServerOptions['adapter'];
  /** The grid hierarchy, once the cases module has it (an object in a grid goes to the rooms of its ancestors). */
  grids?: () => Pick<GridService, 'ancestors'> | undefined;
}

export interface RealtimeModule extends HubModule {
  service: Realtime;
}

export function createRealtime(deps: RealtimeDeps): RealtimeModule {
  let io: Io | null = null;
  const verifiers: PrivateVerifier[] = [];
  let roomsOf: (userId: string) => string[] | null = () => null;
  const timers = new Map<string, NodeJS.Timeout>();
  let offUser: (() => void) | null = null;

  function roomsFor(gridId: string | null | undefined): string[] {
    if (!gridId) return [ALL];
    const chain = deps.grids?.()?.ancestors(gridId) ?? [gridId];
    const rooms = [ALL];
    for (const g of chain.length ? chain : [gridId]) rooms.push(regionRoom(g));
    return rooms;
  }

  /**
   * Sends `items` to `all` and to each region room of `to`'s sockets with the
   * items inside that region; `local` (cluster) reaches only this node's
   * sockets: every node runs this for the sockets it owns.
   */
  function deliverFiltered(server: Io, local: boolean, event: string, items: ReadonlyArray<{ gridId?: string | null }>): void {
    const to = local ? server.local : server;
    const emit = (room: string, p: unknown) => (to.to(room).emit as (e: string, p: unknown) => boolean)(event, p);
    emit(ALL, items);
    // auth.regions is the grid hierarchy once the cases module loads it, exact match before.
    const { regions } = deps.auth;
    // The adapter's rooms are those of this node's sockets.
    for (const room of server.sockets.adapter.rooms.keys()) {
      if (!room.startsWith('region:')) continue;
      const region = room.slice(7);
      const visible = items.filter((i) => regions.contains(region, i.gridId));
      if (visible.length) emit(room, visible);
    }
  }

  const service: Realtime = {
    setRoomsOf(fn) {
      roomsOf = fn;
    },
    send(event, gridId, payload) {
      if (!io) return;
      // socket.io de-duplicates a socket that sits in several target rooms.
      (io.to(roomsFor(gridId)).emit as (e: string, p: unknown) => boolean)(event, payload);
    },
    sendFiltered(event, items) {
      if (!io || items.length === 0) return;
      if (!deps.socketAdapter) return deliverFiltered(io, false, event, items);
      // Cluster: the rooms of this node are not those of the others. The batch goes once through the
      // adapter; every node (this one here) sends it to its own sockets' rooms, filtered per region.
      (io.serverSideEmit as (ev: string, ...args: unknown[]) => boolean)(FILTERED, event, items);
      deliverFiltered(io, true, event, items);
    },
    get connections() {
      return io?.engine.clientsCount ?? 0;
    },
    addPrivateVerifier(verify) {
      verifiers.push(verify);
    },
    sendToRoom(room, event, payload) {
      if (!io || room === ALL || room.startsWith('region:')) return;
      (io.to(room).emit as (e: string, p: unknown) => boolean)(event, payload);
    },
    disconnectRoom(room) {
      if (io && room !== ALL && !room.startsWith('region:')) io.in(room).disconnectSockets(true);
    },
    roomSize(room) {
      return io?.sockets.adapter.rooms.get(room)?.size ?? 0;
    },
    async reroom(userId) {
      if (!io) return;
      // Every node's sockets of this user (cluster adapter included); a handheld session (grant) keeps its rooms.
      for (const s of await io.in(userRoom(userId)).fetchSockets()) {
        const p = s.data.principal;
        if (!p || s.data.grant) continue;
        const want = userRooms(p);
        for (const r of s.rooms) if (r !== s.id && !want.includes(r)) s.leave(r);
        s.join(want);
      }
    },
  };

  /** The rooms a user's socket sits in: their departments' (roomsOf) or else their region's, and their own. */
  function userRooms(p: Principal): string[] {
    const own = roomsOf(p.sub)?.filter((r) => r !== ALL && !r.startsWith('region:'));
    return [...(own?.length ? own : [p.regionId ? regionRoom(p.regionId) : ALL]), userRoom(p.sub)];
  }

  function onConnection(socket: Socket<Record<string, never>, ServerToClientEvents, Record<string, never>, SocketData>): void {
    const p = socket.data.principal;
    const grant = socket.data.grant;
    if (grant) {
      void socket.join(grant.rooms);
      grant.onConnect?.();
      socket.on('disconnect', () => grant.onDisconnect?.());
    } else {
      void socket.join(userRooms(p));
    }
    // fast-jwt `exp` is in seconds; the token's own clock is the wall clock.
    const ms = Math.min(Math.max((grant?.exp ?? p.exp) * 1000 - Date.now(), 0), MAX_TIMER_MS);
    const t = setTimeout(() => socket.disconnect(true), ms);
    t.unref();
    timers.set(socket.id, t);
    socket.on('disconnect', () => {
      clearTimeout(t);
      timers.delete(socket.id);
    });
  }

  return {
    name: 'realtime',
    service,
    async start() {
      const server = deps.app.server;
      // @fastify/websocket routes every upgrade through fastify (404 for /socket.io);
      // take the upgrade listeners over so /socket.io reaches engine.io only.
      const previous = server.listeners('upgrade') as Array<(req: IncomingMessage, socket: Duplex, head: Buffer) => void>;
      server.removeAllListeners('upgrade');
      const allowed = deps.config.allowedOrigins.split(',').map((o) => o.trim()).filter(Boolean);
      io = new Server(server, {
        path: SOCKET_PATH, serveClient: false, destroyUpgrade: false,
        // Cluster mode: events reach the sockets of every node (cluster/index.ts).
        ...(deps.socketAdapter ? { adapter: deps.socketAdapter } : {}),
        cors: { origin: allowed.length ? allowed : false, credentials: true },
        allowRequest: (req, cb) => cb(null, originAllowed(req.headers.origin, req.headers.host, allowed)),
      }) as Io;
      offUser = deps.auth.onUserChanged((userId) => io?.in(userRoom(userId)).disconnectSockets(true));
      server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
        if (req.url?.startsWith(`${SOCKET_PATH}/`)) return;
        for (const l of previous) l.call(server, req, socket, head);
      });
      io.use((socket, next) => {
        const token = (socket.handshake.auth as { token?: unknown } | undefined)?.token;
        if (typeof token !== 'string' || !token) return next(Object.assign(new Error('UNAUTHORIZED'), { data: { code: 'UNAUTHORIZED' } }));
        const invalid = () => next(Object.assign(new Error('TOKEN_INVALID'), { data: { code: 'TOKEN_INVALID' } }));
        try {
          socket.data.principal = deps.auth.verify(token);
          next();
        } catch {
          if (!verifiers.length) return invalid();
          void (async () => {
            for (const v of verifiers) {
              const grant = await v(token).catch(() => null);
              if (grant && grant.rooms.every((r) => r !== ALL && !r.startsWith('region:'))) {
                socket.data.grant = grant;
                return next();
              }
            }
            invalid();
          })();
        }
      });
      io.on('connection', onConnection);
      if (deps.socketAdapter) {
        // Another node's sendFiltered batch: this node's sockets get what their regions may see.
        (io.on as (ev: string, fn: (...args: unknown[]) => void) => Io)(FILTERED, (event, items) => {
          if (io && typeof event === 'string' && Array.isArray(items)) deliverFiltered(io, true, event, items as Array<{ gridId?: string | null }>);
        });
      }
      deps.app.addHook('preClose', (done) => {
        // This node's sockets only: through the cluster adapter a plain disconnectSockets reaches every node's consoles.
        io?.local.disconnectSockets(true);
        done();
      });
      deps.bus.on('device.status', 'realtime', (s) => {
        service.send('device', deps.registry.get(s.deviceId)?.gridId ?? null, { deviceId: s.deviceId, online: s.online, lastSeen: s.lastSeen });
      });
    },
    async stop() {
      deps.bus.removeOwner('realtime');
      offUser?.();
      for (const t of timers.values()) clearTimeout(t);
      timers.clear();
      if (io) {
        io.local.disconnectSockets(true);
        // Not io.close(): that closes the HTTP server, which the hub owns.
        io.engine.close();
        io = null;
      }
    },
  };
}
