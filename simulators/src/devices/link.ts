/**
 * One device's MQTT connection, configured exactly like a real device must be
 * (CONTRACT 2-3): clientId = username = device id, password = secret, a will
 * message `{online:false}` on its status channel, `{online:true}` on connect,
 * its own command topic subscribed at QoS 1, and reconnects with exponential
 * backoff and jitter so a restarted hub is not hit by every device at once.
 *
 * QoS 1 publishes made while disconnected stay in MQTT.js's queue and are
 * sent (and acknowledged) after the reconnect: nothing is lost across a hub
 * restart.
 */
import { EventEmitter } from 'node:events';
import mqtt, { type MqttClient } from 'mqtt';
import { commandTopic, decodeCommand, uplinkTopic, type Channel, type ChannelPayloads, type Command } from '@gridlink/devices';

export interface LinkOptions {
  url: string;
  deviceId: string;
  secret: string;
  /** Persistent session so QoS 1 commands sent while offline are delivered (handhelds). */
  persistent?: boolean;
  /** Subscribe to the command topic (devices that take commands). */
  commands?: boolean;
  backoffMinMs?: number;
  backoffMaxMs?: number;
  keepaliveS?: number;
  /** Random source for backoff jitter. */
  random?: () => number;
}

export interface LinkStats {
  connects: number;
  disconnects: number;
  published: number;
  acked: number;
  errors: number;
  authFailures: number;
}

export interface LinkEvents {
  connect: [];
  disconnect: [];
  command: [Command];
  error: [Error];
}

export class DeviceLink extends EventEmitter<LinkEvents> {
  readonly stats: LinkStats = { connects: 0, disconnects: 0, published: 0, acked: 0, errors: 0, authFailures: 0 };
  private client: MqttClient | null = null;
  private attempt = 0;
  private closed = false;
  private nextDelay: number | null = null;

  constructor(readonly opts: LinkOptions) {
    super();
  }

  get deviceId(): string {
    return this.opts.deviceId;
  }

  get connected(): boolean {
    return this.client?.connected ?? false;
  }

  /** Starts connecting; resolves on the first CONNACK (or rejects on refusal / timeout). */
  connect(timeoutMs = 15_000): Promise<void> {
    if (this.client) return this.waitConnected(timeoutMs);
    this.closed = false;
    const { deviceId, secret } = this.opts;
    const min = this.opts.backoffMinMs ?? 500;
    const client = mqtt.connect(this.opts.url, {
      clientId: deviceId,
      username: deviceId,
      password: secret,
      protocolVersion: 4,
      clean: !this.opts.persistent,
      keepalive: this.opts.keepaliveS ?? 60,
      connectTimeout: 10_000,
      reconnectPeriod: min,
      resubscribe: true,
      will: { topic: uplinkTopic(deviceId, 'status'), payload: Buffer.from(JSON.stringify({ online: false })), qos: 1, retain: false },
    });
    this.client = client;
    // Runs before MQTT.js schedules its reconnect, so the period it reads is the backoff we chose.
    client.prependListener('close', () => {
      if (this.closed) return;
      if (this.nextDelay !== null) {
        client.options.reconnectPeriod = this.nextDelay;
        this.nextDelay = null;
        return;
      }
      const max = this.opts.backoffMaxMs ?? 30_000;
      const base = Math.min(max, min * 2 ** this.attempt++);
      client.options.reconnectPeriod = Math.round(base * (0.5 + (this.opts.random ?? Math.random)()));
    });
    client.on('connect', () => {
      this.attempt = 0;
      this.stats.connects++;
      if (this.opts.commands) client.subscribe(commandTopic(deviceId), { qos: 1 });
      this.publish('status', { online: true }).catch(() => undefined);
      this.emit('connect');
    });
    client.on('close', () => {
      if (this.stats.connects > this.stats.disconnects) {
        this.stats.disconnects++;
        this.emit('disconnect');
      }
    });
    client.on('error', (err) => {
      this.stats.errors++;
      if ((err as { code?: number }).code === 5 || /not authori[sz]ed/i.test(err.message)) this.stats.authFailures++;
      if (this.listenerCount('error') > 0) this.emit('error', err);
    });
    client.on('message', (_topic, payload) => {
      const cmd = decodeCommand(payload);
      if (cmd) this.emit('command', cmd);
    });
    return this.waitConnected(timeoutMs);
  }

  private waitConnected(timeoutMs: number): Promise<void> {
    const client = this.client!;
    if (client.connected) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const done = (err?: Error) => {
        clearTimeout(timer);
        client.off('connect', ok);
        client.off('error', fail);
        if (err) reject(err);
        else resolve();
      };
      const ok = () => done();
      const fail = (err: Error) => done(new Error(`${this.deviceId}: ${err.message}`));
      const timer = setTimeout(() => done(new Error(`${this.deviceId}: no CONNACK within ${timeoutMs} ms`)), timeoutMs);
      client.on('connect', ok);
      client.on('error', fail);
    });
  }

  /** Publishes on the device's own uplink topic; resolves on PUBACK (QoS 1). */
  async publish<C extends Channel>(channel: C, body: ChannelPayloads[C], qos: 0 | 1 = 1): Promise<void> {
    const client = this.client;
    if (!client) throw new Error(`${this.deviceId}: not started`);
    this.stats.published++;
    try {
      await client.publishAsync(uplinkTopic(this.deviceId, channel), JSON.stringify(body), { qos });
      this.stats.acked++;
    } catch (err) {
      this.stats.errors++;
      throw err;
    }
  }

  /**
   * Drops the TCP connection without DISCONNECT, like a device losing its
   * radio: the hub publishes the will, and the link reconnects after `ms`.
   */
  dropFor(ms: number): void {
    const client = this.client;
    if (!client) return;
    this.nextDelay = Math.max(1, Math.round(ms));
    this.attempt = 0;
    (client.stream as { destroy?: () => void } | undefined)?.destroy?.();
  }

  /** Clean shutdown: announces offline, sends DISCONNECT (no will), stops reconnecting. */
  async close(opts: { announce?: boolean; force?: boolean } = {}): Promise<void> {
    const client = this.client;
    if (!client) return;
    this.closed = true;
    client.options.reconnectPeriod = 0;
    if (opts.announce !== false && client.connected && !opts.force) {
      await Promise.race([this.publish('status', { online: false }).catch(() => undefined), new Promise((r) => setTimeout(r, 1000))]);
    }
    await new Promise<void>((resolve) => client.end(Boolean(opts.force) || !client.connected, {}, () => resolve()));
    this.client = null;
  }
}
