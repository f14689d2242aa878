/** Prometheus metrics (prom-client), one registry per hub so tests can run several hubs in one process. */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * A counter by one label bumped on every device message: counted in a plain
 * map and handed to prom-client when the registry is read. prom-client's own
 * `inc({label})` validates and hashes the labels on every call (about 1 % of
 * the hub's CPU under bench:ingest, for two counters).
 */
export class Tally {
  private readonly pending = new Map<string, number>();
  readonly counter: Counter<string>;

  constructor(opts: { name: string; help: string; label: string; registry: Registry }) {
    const pending = this.pending;
    const label = opts.label;
    this.counter = new Counter({
      name: opts.name,
      help: opts.help,
      labelNames: [label],
      registers: [opts.registry],
      collect() {
        for (const [value, n] of pending) this.inc({ [label]: value }, n);
        pending.clear();
      },
    });
  }

  add(value: string, n = 1): void {
    this.pending.set(value, (this.pending.get(value) ?? 0) + n);
  }
}

export function createMetrics(defaults = false) {
  const registry = new Registry();
  if (defaults) collectDefaultMetrics({ register: registry });
  const ms = [1, 2, 5, 10, 20, 35, 50, 100, 250, 500, 1000, 5000];
  return {
    registry,
    messagesIn: new Tally({ name: 'gridlink_messages_in_total', help: 'Device messages received', label: 'channel', registry }),
    messagesStored: new Tally({ name: 'gridlink_messages_stored_total', help: 'Device messages committed to the database', label: 'channel', registry }),
    messagesRejected: new Counter({ name: 'gridlink_messages_rejected_total', help: 'Device messages dropped, by reason', labelNames: ['reason'] as const, registers: [registry] }),
    batchSize: new Histogram({ name: 'gridlink_batch_messages', help: 'Messages per database commit', buckets: [1, 5, 10, 50, 100, 250, 500, 1000, 2000], registers: [registry] }),
    commitLatency: new Histogram({ name: 'gridlink_commit_ms', help: 'Database commit time of one batch', buckets: ms, registers: [registry] }),
    ackLatency: new Histogram({ name: 'gridlink_ack_ms', help: 'Time from PUBLISH received to PUBACK released (QoS 1)', buckets: ms, registers: [registry] }),
    connectedDevices: new Gauge({ name: 'gridlink_connected_devices', help: 'MQTT clients connected', registers: [registry] }),
    pendingAcks: new Gauge({ name: 'gridlink_pending_messages', help: 'Messages accepted but not yet committed', registers: [registry] }),
    dbErrors: new Counter({ name: 'gridlink_db_errors_total', help: 'Failed database commits (retried)', registers: [registry] }),
    duplicateBatches: new Counter({ name: 'gridlink_batch_duplicates_total', help: 'Batches that met a message already stored (a device re-sending) and ran again tolerating it', registers: [registry] }),
    authFailures: new Counter({ name: 'gridlink_auth_failures_total', help: 'Refused MQTT connections, by reason', labelNames: ['reason'] as const, registers: [registry] }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
