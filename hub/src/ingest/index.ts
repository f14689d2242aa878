/**
 * Ingest: decode → validate → normalise → durable write → fan-out.
 * Each message runs in its own try/catch; a bad payload is counted per device
 * and reason, logged at a bounded rate, and never disturbs the next message.
 * The `done` callback fires only after the rows are committed: the broker
 * releases PUBACK from it.
 */
import { codecs, decodeUplink, type Channel, type DecodeResult, type DeviceType, type Normalised, type RejectReason } from '@gridlink/devices';
import type { EventBus } from '../core/bus.js';
import type { Config } from '../core/config.js';
import { RateLimitedLog, type Logger } from '../core/logger.js';
import type { Metrics } from '../core/metrics.js';
import type { DeviceRegistry } from '../registry/index.js';
import { UnstorableError, type BatchWriter, type WriteRequest } from '../store/index.js';
import { DeviceBudgets } from './budget.js';

export { DeviceBudgets } from './budget.js';

/** Raw payload kept with a dead letter, at most. */
export const DEAD_LETTER_PAYLOAD_MAX = 64 * 1024;

/** What a pending message holds in memory, as counted against GRIDLINK_PENDING_MAX_BYTES: the packet, its decoded form and its rows. */
export function pendingBytes(payloadBytes: number): number {
  return 3 * payloadBytes + 1024;
}

export interface StoredMessage {
  deviceId: string;
  deviceType: DeviceType;
  msg: Normalised;
  receivedAt: number;
}

declare module '../core/bus.js' {
  interface EventMap {
    /** A device message committed to the database (one per normalised item). */
    'message.stored': StoredMessage;
  }
}

export type IngestRejectReason =
  | RejectReason
  | 'unknown_device'
  | 'device_disabled'
  | 'too_large'
  | 'topic'
  | 'rate_limited'
  | 'hub_stopping'
  /** the hub holds as many unstored messages as it may (database away): retry later */
  | 'backpressure'
  /** the database refused the rows for good; kept in dead_letters */
  | 'db_rejected';

/** `owntracks` is the OwnTracks JSON topic family; everything else is a native channel. */
export type IngestFormat = Channel | 'owntracks' | 'alink' | 'iotda';

export type IngestOutcome =
  | { ok: true; stored: number }
  | { ok: false; reason: IngestRejectReason; detail: string; retryable?: boolean };

/** Lets dispatch flag impossible jumps before the row is written (the worker does not move; the row is kept). */
export type LocationFlagger = (deviceId: string, msg: Extract<Normalised, { channel: 'location' }>) => string | null;

export interface Ingest {
  /** The per-device message budget shared by MQTT, HTTP ingest and OsmAnd. */
  readonly budget: DeviceBudgets;
  handle(deviceId: string, format: IngestFormat, payload: Uint8Array, receivedAt: number, done: (outcome: IngestOutcome) => void): void;
  /** Promise form for HTTP. */
  handleAsync(deviceId: string, format: IngestFormat, payload: Uint8Array, receivedAt?: number): Promise<IngestOutcome>;
  /** Counts a rejection decided elsewhere (broker ACL, rate limit) under the same reason codes. */
  reject(deviceId: string, reason: IngestRejectReason, detail: string): void;
  rejectedFor(deviceId: string): Record<string, number>;
  setLocationFlagger(fn: LocationFlagger | null): void;
  start(): Promise<void>;
  stop(): Promise<void>;
}

function tsOrNull(v: number | undefined): number | null {
  return v === undefined ? null : v;
}

function b64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

/** Rows for one normalised message. */
function rowsFor(deviceId: string, m: Normalised, receivedAt: number, flag: string | null): WriteRequest[] {
  switch (m.channel) {
    case 'telemetry': {
      const out: WriteRequest[] = [];
      for (const metric in m.values) {
        const v = m.values[metric];
        const num = typeof v === 'number' ? v : typeof v === 'boolean' ? (v ? 1 : 0) : null;
        out.push({ table: 'readings', values: [m.ts, deviceId, metric, num, typeof v === 'string' ? v : null, tsOrNull(m.seq), receivedAt] });
      }
      return out;
    }
    case 'event':
      return [{ table: 'events', values: [m.ts, deviceId, m.type, m.severity ?? null, m.data === undefined ? null : JSON.stringify(m.data), tsOrNull(m.seq), receivedAt] }];
    case 'alert':
      return [{
        table: 'alerts',
        values: [m.ts, deviceId, m.type, m.confidence ?? null, m.snapshot ? b64(m.snapshot) : null, m.snapshotUrl ?? null, m.objects ? JSON.stringify(m.objects) : null, tsOrNull(m.seq), receivedAt],
      }];
    case 'location':
      return [{
        table: 'positions',
        values: [m.ts, deviceId, m.lat, m.lon, m.acc ?? null, m.alt ?? null, m.spd ?? null, m.hdg ?? null, m.batt ?? null, flag, tsOrNull(m.seq), receivedAt],
      }];
    case 'status':
      return [{ table: 'device_status', values: [m.ts, deviceId, m.online, m.duty ?? null, receivedAt] }];
    case 'report':
      return [{
        table: 'device_messages',
        values: [m.ts, deviceId, 'report', m.reportId, JSON.stringify({ ...m, photos: m.photos?.map(b64) }), receivedAt],
      }];
    case 'case':
      return [{
        table: 'device_messages',
        values: [m.ts, deviceId, 'case', `${m.caseId}:${m.action}`, JSON.stringify({ ...m, photos: m.photos?.map(b64) }), receivedAt],
      }];
  }
}

export function createIngest(deps: { config: Config; bus: EventBus; registry: DeviceRegistry; writer: BatchWriter; metrics: Metrics; logger: Logger; now?: () => number }): Ingest {
  const { config, bus, registry, writer, metrics, logger } = deps;
  const budget = new DeviceBudgets(config.deviceRate, config.deviceBurst, config.floodDisconnect, deps.now ?? Date.now);
  let pruneTimer: NodeJS.Timeout | null = null;
  const log = new RateLimitedLog(logger.child({ module: 'ingest' }));
  const rejected = new Map<string, Map<string, number>>();
  let flagger: LocationFlagger | null = null;
  let stopping = false;

  function reject(deviceId: string, reason: IngestRejectReason, detail: string): void {
    metrics.messagesRejected.inc({ reason });
    let per = rejected.get(deviceId);
    if (!per) {
      if (rejected.size > 100_000) rejected.clear();
      rejected.set(deviceId, (per = new Map()));
    }
    per.set(reason, (per.get(reason) ?? 0) + 1);
    log.warn(`${deviceId}:${reason}`, { deviceId, reason, detail }, 'message rejected');
  }

  function decode(format: IngestFormat, type: DeviceType, payload: Uint8Array, receivedAt: number): DecodeResult {
    if (format === 'owntracks' || format === 'alink' || format === 'iotda') {
      const codec = codecs[format];
      if (!codec) return { ok: false, reason: 'schema', detail: `no codec ${format}` };
      return codec.decode(payload, { deviceType: type, receivedAt });
    }
    return decodeUplink(format, payload, { deviceType: type, receivedAt });
  }

  function handle(deviceId: string, format: IngestFormat, payload: Uint8Array, receivedAt: number, done: (o: IngestOutcome) => void): void {
    metrics.messagesIn.add(format);
    let outcome: IngestOutcome | null = null;
    const requests: WriteRequest[] = [];
    let messages: Normalised[] = [];
    let flags: Array<string | null> | null = null;
    const device = registry.get(deviceId);
    try {
      if (stopping) outcome = { ok: false, reason: 'hub_stopping', detail: 'hub is shutting down', retryable: true };
      else if (!device) outcome = { ok: false, reason: 'unknown_device', detail: `device ${deviceId} is not registered` };
      else if (!device.enabled) outcome = { ok: false, reason: 'device_disabled', detail: `device ${deviceId} is disabled` };
      else if (payload.byteLength > config.maxPayload) outcome = { ok: false, reason: 'too_large', detail: `payload ${payload.byteLength} bytes > ${config.maxPayload}` };
      else if (writer.full) {
        metrics.messagesRejected.inc({ reason: 'backpressure' });
        outcome = { ok: false, reason: 'backpressure', detail: 'hub is holding too many unstored messages', retryable: true };
      } else {
        const result = decode(format, device.type, payload, receivedAt);
        if (!result.ok) outcome = { ok: false, reason: result.reason, detail: result.detail };
        else {
          messages = result.messages;
          for (let i = 0; i < messages.length; i++) {
            const m = messages[i]!;
            const flag = m.channel === 'location' && flagger ? flagger(deviceId, m) : null;
            if (flag) (flags ??= new Array<string | null>(messages.length).fill(null))[i] = flag;
            for (const r of rowsFor(deviceId, m, receivedAt, flag)) requests.push(r);
          }
        }
      }
    } catch (err) {
      outcome = { ok: false, reason: 'schema', detail: `decoder failed: ${(err as Error).message}` };
    }
    if (outcome) {
      if (!outcome.retryable) reject(deviceId, outcome.reason as IngestRejectReason, outcome.detail);
      done(outcome);
      return;
    }
    if (messages.length === 0 || requests.length === 0) {
      // e.g. an OwnTracks `transition` or `lwt`: understood, nothing to store.
      registry.seen(deviceId, receivedAt);
      done({ ok: true, stored: 0 });
      return;
    }
    writer.add(requests, (err) => {
      if (err instanceof UnstorableError) return deadLetter(deviceId, format, payload, receivedAt, err, done);
      if (err) {
        done({ ok: false, reason: 'hub_stopping', detail: err.message, retryable: true });
        return;
      }
      metrics.messagesStored.add(format, messages.length);
      registry.seen(deviceId, receivedAt);
      done({ ok: true, stored: messages.length });
      for (let i = 0; i < messages.length; i++) {
        const msg = messages[i]!;
        if (flags?.[i]) continue; // stored, flagged, and does not move the worker
        bus.emit('message.stored', { deviceId, deviceType: device!.type, msg, receivedAt });
      }
    }, pendingBytes(payload.byteLength));
  }

  /**
   * The database refused this message for good (its batch was split down to
   * it): keep it in dead_letters with the reason and the raw payload (bounded),
   * count it, and answer as for any invalid message; the rest of the batch has
   * committed. Acknowledged only once the dead letter itself is stored.
   */
  function deadLetter(deviceId: string, format: IngestFormat, payload: Uint8Array, receivedAt: number, err: UnstorableError, done: (o: IngestOutcome) => void): void {
    const detail = `database refused the message (SQLSTATE ${err.sqlstate}): ${err.message}`.slice(0, 1000);
    const kept = payload.byteLength > DEAD_LETTER_PAYLOAD_MAX ? payload.subarray(0, DEAD_LETTER_PAYLOAD_MAX) : payload;
    const row: WriteRequest = { table: 'dead_letters', values: [receivedAt, deviceId, format, 'db_rejected', detail, b64(kept), payload.byteLength] };
    writer.add([row], (e) => {
      if (e && !(e instanceof UnstorableError)) {
        done({ ok: false, reason: 'hub_stopping', detail: e.message, retryable: true });
        return;
      }
      reject(deviceId, 'db_rejected', detail);
      done({ ok: false, reason: 'db_rejected', detail });
    }, pendingBytes(kept.byteLength));
  }

  return {
    budget,
    handle,
    handleAsync: (deviceId, format, payload, receivedAt = Date.now()) => new Promise((resolve) => handle(deviceId, format, payload, receivedAt, resolve)),
    reject,
    rejectedFor: (deviceId) => Object.fromEntries(rejected.get(deviceId) ?? []),
    setLocationFlagger: (fn) => {
      flagger = fn;
    },
    async start() {
      stopping = false;
      pruneTimer = setInterval(() => budget.prune(), 60_000);
      pruneTimer.unref();
    },
    async stop() {
      stopping = true;
      if (pruneTimer) clearInterval(pruneTimer);
      await writer.flush();
    },
  };
}
