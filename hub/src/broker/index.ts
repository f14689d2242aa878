/**
 * The hub's MQTT broker: aedes on TCP (and TLS), and on WebSocket through the
 * HTTP server at /mqtt. Hooks stay thin: authenticate, check the ACL, hand the
 * message to ingest.
 *
 * aedes speaks MQTT 3.1 and 3.1.1; an MQTT 5 connection goes through the
 * bridge in mqtt5-bridge.ts, which translates it to 3.1.1 for aedes and back.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import tls from 'node:tls';
import type { Duplex } from 'node:stream';
import type { IncomingMessage } from 'node:http';
import { Aedes, type AedesOptions, type Client } from 'aedes';
import { commandTopic, type Command } from '@gridlink/devices';
import type { EventBus } from '../core/bus.js';
import type { Config } from '../core/config.js';
import type { Logger } from '../core/logger.js';
import type { Metrics } from '../core/metrics.js';
import type { Ingest } from '../ingest/index.js';
import type { DeviceRegistry } from '../registry/index.js';
import type { BatchWriter } from '../store/index.js';
import { createAuthenticate } from './authenticate.js';
import { createAuthorizePublish, DEAD_LETTER_TOPIC } from './authorize-publish.js';
import { createAuthorizeSubscribe } from './authorize-subscribe.js';
import { fastPublishes, type ParserLike } from './fast-publish.js';
import { HeldAcks } from './held-acks.js';
import { LocalRoutes, type Emitter } from './local-routes.js';
import { ConnGuard } from './conn-guard.js';
import { deliverAfterConnack, releaseOnConnack } from './connack-first.js';
import { acceptMqtt } from './mqtt5-bridge.js';
import { readProxyHeader } from './proxy-protocol.js';

export { DEAD_LETTER_TOPIC };

/**
 * Connections beyond the open-file limit would starve the database and video
 * of file descriptors (an embedded database that cannot open its files is
 * worse than a refused device), so keep 1024 in reserve.
 */
export function defaultMaxConnections(): number {
  const r = spawnSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' });
  const limit = Number(r.stdout?.trim());
  return Number.isFinite(limit) && limit > 0 ? Math.max(100, limit - 1024) : 10_000;
}

export interface Broker {
  start(): Promise<{ mqtt: number; mqtts?: number }>;
  stop(): Promise<void>;
  /** Pipes a WebSocket stream (MQTT over WebSocket) into the broker. */
  handleStream(stream: Duplex, req?: IncomingMessage): void;
  /** QoS 1 downlink to gridlink/v1/{deviceId}/cmd; queued for a persistent session while offline. */
  sendCommand(deviceId: string, command: Command): Promise<void>;
  isConnected(deviceId: string): boolean;
  disconnect(deviceId: string): void;
  readonly connectedCount: number;
  /** Connections admitted on every transport, logged in or not (conn-guard.ts). */
  readonly admitted: number;
}

interface ParserWithLength {
  packet: { length: number; cmd?: string };
  _parseLength(): boolean;
  emit(event: 'error', err: Error): boolean;
}

export function createBroker(deps: {
  config: Config;
  bus: EventBus;
  registry: DeviceRegistry;
  ingest: Ingest;
  writer: BatchWriter;
  metrics: Metrics;
  logger: Logger;
  /** Cluster mode (cluster/index.ts): aedes' emitter and persistence on Redis, shared by every node. */
  mq?: unknown;
  persistence?: unknown;
}): Broker {
  const { config, bus, registry, metrics } = deps;
  const logger = deps.logger.child({ module: 'broker' });
  const held = new HeldAcks(deps.ingest.budget.now);
  // Uplinks are stored, not routed: no one may receive them (local-routes.ts).
  const routes = new LocalRoutes(DEAD_LETTER_TOPIC, deps.mq as Emitter | undefined);
  const aedes = new Aedes({
    mq: routes,
    ...(deps.persistence ? { persistence: deps.persistence as AedesOptions['persistence'] } : {}),
    concurrency: 1000,
    queueLimit: 100,
    connectTimeout: 10_000,
    drainTimeout: 30_000,
    heartbeatInterval: 60_000,
    maxClientsIdLength: 64,
    // A socket that has sent its CONNECT is no longer silent: it stops counting
    // against its address's pending cap while it waits for authentication, so
    // a gateway or a NAT reconnecting hundreds of devices at once is not refused.
    preConnect: (client, _packet, done) => {
      const conn = origin.get(client);
      if (conn) guard.connected(conn);
      done(null, true);
    },
    authenticate: createAuthenticate(registry, metrics),
    authorizePublish: createAuthorizePublish({ ...deps, held }),
    authorizeSubscribe: createAuthorizeSubscribe(),
    // Devices only ever receive their own commands; nothing else is forwarded.
    authorizeForward: (client, packet) => (client?.id && packet.topic === commandTopic(client.id) ? packet : null),
  });
  routes.attach(aedes);
  // The first packet a client gets is its CONNACK, even when a message reaches its restored session first (connack-first.ts).
  releaseOnConnack(aedes);
  // Packet size limit, checked as soon as the fixed header's length is parsed so
  // an oversized PUBLISH is refused before its body is buffered. Room for the
  // topic and properties on top of the payload limit.
  const maxPacket = config.maxPayload + 64 * 1024;
  // Which transport connection an aedes client came in on (the guard counts connections).
  const origin = new WeakMap<object, Duplex>();
  const handleAedes = (conn: Duplex, req?: IncomingMessage): Client => {
    const client = aedes.handle(conn, req);
    deliverAfterConnack(client);
    const parser = (client as unknown as { _parser: ParserWithLength })._parser;
    const parseLength = parser._parseLength;
    parser._parseLength = function (this: ParserWithLength) {
      const ok = parseLength.call(this);
      if (ok && this.packet.length > maxPacket) {
        metrics.messagesRejected.inc({ reason: 'too_large' });
        logger.warn({ clientId: client.id, bytes: this.packet.length }, 'packet larger than the limit; closing connection');
        this.emit('error', new Error(`packet of ${this.packet.length} bytes exceeds ${maxPacket}`));
        return false;
      }
      return ok;
    };
    fastPublishes(parser as unknown as ParserLike, maxPacket);
    return client;
  };
  // Every connection (TCP, TLS, WebSocket) starts here: MQTT 5 through the bridge, 3.1/3.1.1 straight to aedes.
  const bridgeOptions = {
    maxPacket,
    connectTimeoutMs: 10_000,
    // As many unacknowledged QoS 1 messages as the device's bucket holds [MQTT-3.2.2-10].
    receiveMaximum: Math.max(1, Math.min(config.deviceBurst, 1000)),
    onTooLarge: (bytes: number, clientId: string | undefined) => {
      metrics.messagesRejected.inc({ reason: 'too_large' });
      logger.warn({ clientId, bytes }, 'packet larger than the limit; closing connection');
    },
  };
  // Every transport is admitted by one guard (conn-guard.ts): WebSocket counts against the limit, silent sockets per address are capped.
  const handle = (conn: Duplex, req?: IncomingMessage, proxied?: string): void => {
    const address = proxied ?? (req?.socket ?? (conn as net.Socket)).remoteAddress ?? 'unknown';
    if (!guard.admit(conn, address)) return;
    acceptMqtt(conn, bridgeOptions, (stream) => origin.set(handleAedes(stream, req), conn));
  };

  const clients = () => (aedes as unknown as { clients: Record<string, Client | undefined> }).clients;
  aedes.on('client', (client) => {
    const conn = origin.get(client);
    if (conn) guard.connected(conn);
    metrics.connectedDevices.set(aedes.connectedClients);
    registry.setOnline(client.id, true);
  });
  aedes.on('clientDisconnect', (client) => {
    metrics.connectedDevices.set(aedes.connectedClients);
    // The budget stays with the device (reconnects do not refill it); held acks of this connection are never sent.
    held.dropClient(client.id, client);
    // A takeover by a new connection with the same id keeps the device online.
    const current = clients()[client.id];
    if (!current || current === client) registry.setOnline(client.id, false);
  });
  aedes.on('clientError', (client, err) => logger.debug({ clientId: client?.id, err: err.message }, 'client error'));
  aedes.on('connectionError', (client, err) => logger.debug({ clientId: client?.id, err: err.message }, 'connection error'));

  bus.on('device.changed', 'broker', ({ deviceId, change }) => {
    if (change === 'disabled' || change === 'deleted' || change === 'secret_rotated') {
      const c = clients()[deviceId];
      if (c) {
        logger.info({ deviceId, change }, 'disconnecting device');
        c.close();
      }
    }
  });

  let server: net.Server | null = null;
  let tlsServer: tls.Server | null = null;
  const sockets = new Set<net.Socket>();
  const maxConnections = config.maxConnections ?? defaultMaxConnections();
  const guard = new ConnGuard({
    maxConnections,
    maxPendingPerAddress: config.maxPendingPerAddress,
    onRefused: (reason, address) => {
      metrics.authFailures.inc({ reason });
      logger.debug({ reason, address }, 'connection refused');
    },
  });
  const track = (s: net.Server) => {
    s.maxConnections = maxConnections;
    s.on('drop', () => metrics.authFailures.inc({ reason: 'max_connections' }));
    return s.on('connection', (sock: net.Socket) => {
      sockets.add(sock);
      sock.on('close', () => sockets.delete(sock));
    });
  };

  const listen = (s: net.Server, port: number) =>
    new Promise<number>((resolve, reject) => {
      s.once('error', reject);
      s.listen(port, config.host, () => resolve((s.address() as AddressInfo).port));
    });

  return {
    async start() {
      await aedes.listen();
      // Behind a balancer that sends the PROXY protocol (GRIDLINK_MQTT_PROXY_PROTOCOL): the device's address is in its header.
      server = net.createServer(config.mqttProxyProtocol
        ? (c) => readProxyHeader(c, 10_000, (address) => handle(c, undefined, address), (reason) => logger.debug({ reason, peer: c.remoteAddress }, 'connection without a valid PROXY header closed'))
        : (c) => handle(c));
      track(server);
      const mqtt = await listen(server, config.mqttPort);
      let mqtts: number | undefined;
      if (config.mqttsPort !== undefined && config.tlsCert && config.tlsKey) {
        tlsServer = tls.createServer({ cert: readFileSync(config.tlsCert), key: readFileSync(config.tlsKey) }, (c) => handle(c));
        track(tlsServer);
        mqtts = await listen(tlsServer, config.mqttsPort);
      }
      return mqtts === undefined ? { mqtt } : { mqtt, mqtts };
    },
    async stop() {
      bus.removeOwner('broker');
      const closeServer = (s: net.Server | null) => new Promise<void>((r) => (s ? s.close(() => r()) : r()));
      const closing = Promise.all([closeServer(server), closeServer(tlsServer)]);
      for (const c of Object.values(clients())) c?.close();
      for (const s of sockets) s.destroy();
      held.stop();
      await closing;
      await new Promise<void>((r) => aedes.close(() => r()));
    },
    handleStream: (stream, req) => void handle(stream, req),
    get admitted() {
      return guard.connections;
    },
    sendCommand: (deviceId, command) =>
      new Promise((resolve, reject) =>
        aedes.publish(
          { cmd: 'publish', topic: commandTopic(deviceId), payload: Buffer.from(JSON.stringify(command)), qos: 1, retain: false, dup: false },
          (err) => (err ? reject(err) : resolve()),
        ),
      ),
    isConnected: (deviceId) => Boolean(clients()[deviceId]?.connected),
    disconnect: (deviceId) => clients()[deviceId]?.close(),
    get connectedCount() {
      return aedes.connectedClients;
    },
  };
}
