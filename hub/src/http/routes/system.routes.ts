import { timingSafeEqual } from 'node:crypto';
import { Health } from '@gridlink/devices/contract';
import { Errors } from '../../core/errors.js';
import type { Metrics } from '../../core/metrics.js';
import type { ClusterHealth } from '../../cluster/index.js';
import type { Db } from '../../store/db.js';
import type { BatchWriter } from '../../store/index.js';
import type { App } from '../app.js';

export function systemRoutes(app: App, deps: { db: Db; writer: BatchWriter; metrics: Metrics; version: string; cluster?: () => ClusterHealth; metricsToken?: string }): void {
  const { db, writer, metrics } = deps;
  app.get('/healthz', {
    schema: {
      tags: ['system'],
      security: [],
      summary: 'Liveness and database health',
      response: { 200: Health },
    },
  }, async () => {
    let ok = writer.dbHealthy;
    if (ok) ok = await db.query('select 1').then(() => true, () => false);
    const cluster = deps.cluster?.();
    // A cluster node without Redis still stores what it takes, but nothing crosses to the other nodes: degraded.
    const status = ok && cluster?.redis !== false ? 'ok' : 'degraded';
    return { status, db: { engine: db.kind, timescale: db.timescale, ok }, pending: writer.pending, version: deps.version, ...(cluster ? { cluster } : {}) };
  });

  const want = deps.metricsToken ? Buffer.from(`Bearer ${deps.metricsToken}`) : null;
  app.get('/metrics', {
    schema: { tags: ['system'], security: [], summary: 'Prometheus metrics (Bearer GRIDLINK_METRICS_TOKEN when configured)', hide: false },
    onRequest: async (req) => {
      if (!want) return;
      const got = Buffer.from(req.headers.authorization ?? '');
      if (got.length !== want.length || !timingSafeEqual(got, want)) throw Errors.unauthorized('metrics token required');
    },
  }, async (_req, reply) => {
    metrics.pendingAcks.set(writer.pending);
    reply.type(metrics.registry.contentType);
    return metrics.registry.metrics();
  });
}
