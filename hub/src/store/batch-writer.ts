/**
 * Group-commit batch writer (n8n insights-collection style). Rows of many
 * messages go to the database in one transaction with one multi-row
 * `INSERT ... SELECT FROM unnest(...)` per table; each message's callback runs
 * only after that transaction committed, which is what lets the broker send
 * PUBACK as "it is in the database". A failed batch is kept and retried with
 * backoff, never dropped and never acknowledged.
 */
import type { Logger } from '../core/logger.js';
import type { Db } from './db.js';

export type ColumnType = 'ts' | 'text' | 'float8' | 'int8' | 'bool' | 'jsonb' | 'bytea';

export interface TableSpec {
  name: string;
  columns: ReadonlyArray<readonly [name: string, type: ColumnType]>;
}

/** Column values in spec order: ts as epoch ms, jsonb as a JSON string, bytea as base64. */
export type RowValues = ReadonlyArray<unknown>;

export interface WriteRequest {
  table: string;
  values: RowValues;
}

export type Done = (err?: Error) => void;

interface Buffer {
  columns: Map<string, unknown[][]>;
  rows: number;
  callbacks: Done[];
  /** Order in which the batch was first sent; acknowledgements are released in this order. */
  seq?: number;
}

export interface BatchWriterOptions {
  batchSize: number;
  batchMs: number;
  pendingMax: number;
  logger?: Logger;
  onCommit?: (rows: number, messages: number, ms: number) => void;
  onError?: (err: Error) => void;
  maxBackoffMs?: number;
  /** Concurrent commits (default 3 on PostgreSQL, 1 on PGlite). */
  maxInFlight?: number;
}

const castOf: Record<ColumnType, string> = {
  ts: 'float8[]',
  text: 'text[]',
  float8: 'float8[]',
  int8: 'int8[]',
  bool: 'bool[]',
  jsonb: 'text[]',
  bytea: 'text[]',
};

function selectExpr(name: string, type: ColumnType): string {
  if (type === 'ts') return `to_timestamp(${name} / 1000.0)`;
  if (type === 'jsonb') return `${name}::jsonb`;
  if (type === 'bytea') return `decode(${name}, 'base64')`;
  return name;
}

function emptyBuffer(): Buffer {
  return { columns: new Map(), rows: 0, callbacks: [] };
}

export class BatchWriter {
  private readonly specs = new Map<string, { spec: TableSpec; index: number }>();
  private readonly sqlCache = new Map<string, string>();
  private current: Buffer = emptyBuffer();
  private readonly retryQueue: Buffer[] = [];
  private readonly inFlight = new Set<Buffer>();
  /** Committed batches waiting for an earlier batch, so acks and events keep arrival order. */
  private readonly committed = new Map<number, Buffer>();
  private nextSeq = 0;
  private releaseSeq = 0;
  private readonly idleWaiters: Array<() => void> = [];
  private timer: NodeJS.Timeout | null = null;
  private immediate: NodeJS.Immediate | null = null;
  private backoffMs = 0;
  private backoffTimer: NodeJS.Timeout | null = null;
  private stopped = false;
  private healthy = true;
  private readonly maxInFlight: number;

  constructor(private readonly db: Db, specs: TableSpec[], private readonly opts: BatchWriterOptions) {
    specs.forEach((spec, index) => this.specs.set(spec.name, { spec, index }));
    // PGlite is one connection: concurrent commits would only queue. PostgreSQL
    // overlaps a commit's fsync with building and sending the next batch.
    this.maxInFlight = opts.maxInFlight ?? (db.kind === 'postgres' ? 3 : 1);
  }

  /** Messages accepted but not yet committed (buffered, in flight or waiting for a retry). */
  get pending(): number {
    let n = this.current.callbacks.length;
    for (const b of this.inFlight) n += b.callbacks.length;
    for (const b of this.retryQueue) n += b.callbacks.length;
    for (const b of this.committed.values()) n += b.callbacks.length;
    return n;
  }

  /** Past the memory cap: the caller must refuse new messages (never ack them). */
  get full(): boolean {
    return this.pending >= this.opts.pendingMax;
  }

  /** False while the last commit failed and a retry is pending. */
  get dbHealthy(): boolean {
    return this.healthy;
  }

  /** Adds one message's rows; `done` runs after they are committed (or with an error when the writer is stopped). */
  add(requests: readonly WriteRequest[], done: Done): void {
    if (this.stopped) {
      done(new Error('writer stopped'));
      return;
    }
    const buf = this.current;
    for (const req of requests) {
      const entry = this.specs.get(req.table);
      if (!entry) throw new Error(`unknown table ${req.table}`);
      let cols = buf.columns.get(req.table);
      if (!cols) {
        cols = entry.spec.columns.map(() => []);
        buf.columns.set(req.table, cols);
      }
      for (let i = 0; i < cols.length; i++) cols[i]!.push(req.values[i] ?? null);
      buf.rows++;
    }
    buf.callbacks.push(done);
    // Idle: commit at the end of this event-loop turn, once every socket read
    // in it has been handled (PGlite commits synchronously in this thread, so
    // committing inside add() would send batches of one). Busy: gather until a
    // commit slot frees (group commit) or batchMs passes (use a spare slot).
    if (buf.callbacks.length >= this.opts.batchSize) this.pump();
    else if (this.inFlight.size === 0 && this.retryQueue.length === 0) {
      if (!this.immediate) {
        this.immediate = setImmediate(() => {
          this.immediate = null;
          this.pump();
        });
      }
    } else if (!this.timer) {
      this.timer = setTimeout(() => {
        this.timer = null;
        this.pump();
      }, this.opts.batchMs);
    }
  }

  /**
   * Starts commits while there is work and room. While commits are in flight
   * new messages gather into the next batch (group commit), so batches grow
   * with load and latency stays at about one commit.
   */
  private pump(): void {
    while (this.inFlight.size < (this.healthy ? this.maxInFlight : 1) && !this.backoffTimer) {
      let batch: Buffer | undefined = this.retryQueue.shift();
      if (!batch) {
        if (this.current.callbacks.length === 0) break;
        batch = this.current;
        this.current = emptyBuffer();
        if (this.timer) clearTimeout(this.timer);
        this.timer = null;
      }
      this.commit(batch);
    }
    if (this.pending === 0) this.idleWaiters.splice(0).forEach((w) => w());
  }

  /** One statement: a CTE with one unnest insert per table, atomic without an explicit transaction (one round trip). */
  private sqlFor(tables: string[]): string {
    const key = tables.join(',');
    let sql = this.sqlCache.get(key);
    if (sql) return sql;
    let p = 0;
    const parts = tables.map((t) => {
      const spec = this.specs.get(t)!.spec;
      const names = spec.columns.map(([n]) => n);
      const params = spec.columns.map(([, type]) => `$${++p}::${castOf[type]}`);
      const selects = spec.columns.map(([n, type]) => selectExpr(`u_${n}`, type));
      return `insert into ${spec.name} (${names.join(', ')}) select ${selects.join(', ')} from unnest(${params.join(', ')}) as u(${names.map((n) => `u_${n}`).join(', ')}) on conflict do nothing`;
    });
    sql = parts.length === 1 ? parts[0]! : `with ${parts.slice(1).map((q, i) => `w${i} as (${q} returning 1)`).join(', ')} ${parts[0]}`;
    this.sqlCache.set(key, sql);
    return sql;
  }

  private commit(batch: Buffer): void {
    batch.seq ??= this.nextSeq++;
    this.inFlight.add(batch);
    const tables = [...batch.columns.keys()].sort((a, b) => this.specs.get(a)!.index - this.specs.get(b)!.index);
    const params = tables.flatMap((t) => batch.columns.get(t)!);
    const t0 = performance.now();
    // One statement is its own transaction on both engines.
    this.db.query(this.sqlFor(tables), params).then(
      () => {
        this.inFlight.delete(batch);
        this.healthy = true;
        this.backoffMs = 0;
        this.opts.onCommit?.(batch.rows, batch.callbacks.length, performance.now() - t0);
        // Commits overlap on PostgreSQL and may finish out of order; a device's
        // messages must still be acknowledged and announced in the order they came.
        this.committed.set(batch.seq!, batch);
        this.release();
        // Let the event loop read sockets before the next commit: PGlite runs
        // in this thread, so nothing arrives while it commits, and pumping
        // straight from this callback would send batches of one.
        setImmediate(() => this.pump());
      },
      (err: Error) => {
        this.inFlight.delete(batch);
        this.retryQueue.unshift(batch);
        this.healthy = false;
        this.opts.onError?.(err);
        this.backoffMs = Math.min(this.opts.maxBackoffMs ?? 5_000, this.backoffMs ? this.backoffMs * 2 : 50);
        this.opts.logger?.warn({ err: err.message, messages: batch.callbacks.length, retryInMs: this.backoffMs }, 'batch commit failed; holding acknowledgements and retrying');
        if (this.stopped || this.backoffTimer) return;
        this.backoffTimer = setTimeout(() => {
          this.backoffTimer = null;
          this.pump();
        }, this.backoffMs * (0.8 + Math.random() * 0.4));
      },
    );
  }

  private release(): void {
    for (let b = this.committed.get(this.releaseSeq); b; b = this.committed.get(this.releaseSeq)) {
      this.committed.delete(this.releaseSeq++);
      for (const cb of b.callbacks) cb();
    }
  }

  /** Commits everything buffered (used on shutdown and by tests). */
  async flush(): Promise<void> {
    if (this.pending === 0) return;
    await new Promise<void>((resolve) => {
      this.idleWaiters.push(resolve);
      this.pump();
    });
  }

  /**
   * Flushes, then refuses new rows. If the database is down at shutdown the
   * remaining messages are failed (never acknowledged) after `graceMs`.
   */
  async stop(graceMs = 5_000): Promise<void> {
    let timeout: NodeJS.Timeout | undefined;
    await Promise.race([this.flush(), new Promise<void>((r) => (timeout = setTimeout(r, graceMs)))]);
    clearTimeout(timeout);
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.backoffTimer) clearTimeout(this.backoffTimer);
    if (this.immediate) clearImmediate(this.immediate);
    this.immediate = null;
    this.timer = null;
    this.backoffTimer = null;
    // Stored batches stuck behind one that could not be stored: they are in the database, so acknowledge them.
    for (const b of this.committed.values()) b.callbacks.forEach((cb) => cb());
    this.committed.clear();
    const err = new Error('hub stopped before commit');
    for (const b of [...this.retryQueue, this.current]) b.callbacks.forEach((cb) => cb(err));
    this.retryQueue.length = 0;
    this.current = emptyBuffer();
    this.idleWaiters.splice(0).forEach((w) => w());
  }
}
