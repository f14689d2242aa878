/**
 * Store: the database adapter, migrations, the ingest batch writer and
 * retention. Other domains bring their own migrations and repositories.
 */
import type { Fence } from '../cluster/leases.js';
import type { Config } from '../core/config.js';
import type { Logger } from '../core/logger.js';
import type { Metrics } from '../core/metrics.js';
import { BatchWriter } from './batch-writer.js';
import type { Db } from './db.js';
import { migrate, type Migration } from './migrate.js';
import { applyRetention, storeMigrations } from './schema.js';
import { ingestTables } from './tables.js';

export type { Db, Queryable, Row } from './db.js';
export { openDb } from './db.js';
export type { Migration } from './migrate.js';
export { BatchWriter, UnstorableError, type WriteRequest } from './batch-writer.js';
export { storeMigrations } from './schema.js';

export interface Store {
  db: Db;
  writer: BatchWriter;
  start(): Promise<void>;
  stop(): Promise<void>;
}

export function createStore(deps: { db: Db; config: Config; logger: Logger; metrics: Metrics; migrations: Migration[] | (() => Migration[]); leases?: { holds(name: 'retention'): boolean; fence(name: 'retention'): Fence } }): Store {
  const { db, config, logger, metrics } = deps;
  const writer = new BatchWriter(db, ingestTables, {
    batchSize: config.batchSize,
    batchMs: config.batchMs,
    pendingMax: config.pendingMax,
    pendingMaxBytes: config.pendingMaxBytes,
    ...(config.dbCommits ? { maxInFlight: config.dbCommits } : {}),
    logger,
    onCommit: (_rows, messages, ms) => {
      metrics.batchSize.observe(messages);
      metrics.commitLatency.observe(ms);
    },
    onError: () => metrics.dbErrors.inc(),
    onDuplicate: () => metrics.duplicateBatches.inc(),
  });
  let retentionTimer: NodeJS.Timeout | null = null;
  const runRetention = async () => {
    // In a cluster only the holder of the `retention` lease deletes.
    if (deps.leases && !deps.leases.holds('retention')) return;
    // Its deletes in one transaction fenced by the lease's token (single process: as they always ran).
    const fence = deps.leases?.fence('retention');
    try {
      const r = fence ? await fence.run(db, (q) => applyRetention(db, config.retentionDays, q)) : await applyRetention(db, config.retentionDays);
      if (r.deleted) logger.info(r, 'retention removed old rows');
    } catch (err) {
      if (fence?.refused(err)) return;
      logger.warn({ err: (err as Error).message }, 'retention job failed');
    }
  };
  return {
    db,
    writer,
    async start() {
      const extra = typeof deps.migrations === 'function' ? deps.migrations() : deps.migrations;
      const applied = await migrate(db, [...storeMigrations, ...extra]);
      if (applied.length) logger.info({ applied, engine: db.kind, timescale: db.timescale }, 'migrations applied');
      await runRetention();
      if (!db.timescale) {
        retentionTimer = setInterval(() => void runRetention(), 3600_000);
        retentionTimer.unref();
      }
    },
    async stop() {
      if (retentionTimer) clearInterval(retentionTimer);
      await writer.stop();
    },
  };
}
