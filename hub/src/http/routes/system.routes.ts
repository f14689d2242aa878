import { timingSafeEqual } from 'node:crypto';
import { Type } from '@sinclair/typebox';
import { Errors } from '../../core/errors.js';
import type { Metrics } from '../../core/metrics.js';
import type { ClusterHealth } from '../../cluster/index.js';
import type { Db } from '../../store/db.js';
import type { BatchWriter } from '../../store/index.js';
import type { App } from '../app.js';

const LeaseRoleT = Type.Object({ holder: Type.Union([Type.String(), Type.Null()]), mine: Type.Boolean(), token: Type.Number() });
/** This node in a cluster: its id, the live nodes, and who holds each singleton lease (docs/cluster.md). */
const ClusterHealthT = Type.Object({
  mode: Type.String(),
  nodeId: Type.String(),
  redis: Type.Optional(Type.Boolean()),
  peers: Type.Array(Type.Object({ id: Type.String(), http: Type.Number(), mqtt: Type.Number(), startedAt: Type.Number() })),
  leases: Type.Record(Type.String(), LeaseRoleT),
  cameras: Type.Optional(Type.Number({ description: 'cameras this node pulls as their owner' })),
});

export function systemRoutes(app: App, deps: { db: Db; writer: BatchWriter; metrics: Metrics; version: string; cluster?: () => ClusterHealth; metricsToken?: string }): void {
  const { db, writer, metrics } = deps;
  app.get('/healthz', {
    schema: {
      tags: ['system'],
      security: [],
      summary: 'Liveness and database health',
      response: { 200: Type.Object({ status: Type.String(), db: Type.Object({ engine: Type.String(), timescale: Type.Boolean(), ok: Type.Boolean() }), pending: Type.Number(), version: Type.String(), cluster: Type.Optional(ClusterHealthT) }) },
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
