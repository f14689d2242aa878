/** Prometheus metrics (prom-client), one registry per hub so tests can run several hubs in one process. */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export function createMetrics(defaults = false) {
  const registry = new Registry();
  if (defaults) collectDefaultMetrics({ register: registry });
  const ms = [1, 2, 5, 10, 20, 35, 50, 100, 250, 500, 1000, 5000];
  return {
    registry,
    messagesIn: new Counter({ name: 'gridlink_messages_in_total', help: 'Device messages received', labelNames: ['channel'] as const, registers: [registry] }),
    messagesStored: new Counter({ name: 'gridlink_messages_stored_total', help: 'Device messages committed to the database', labelNames: ['channel'] as const, registers: [registry] }),
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
