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
}

export interface BatchWriterOptions {
  batchSize: number;
  batchMs: number;
  pendingMax: number;
  logger?: Logger;
  onCommit?: (rows: number, messages: number, ms: number) => void;
  onError?: (err: Error) => void;
  maxBackoffMs?: number;
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

function insertSql(spec: TableSpec): string {
  const names = spec.columns.map(([n]) => n);
  const params = spec.columns.map(([, t], i) => `$${i + 1}::${castOf[t]}`);
  const aliases = names.map((n) => `u_${n}`);
  const selects = spec.columns.map(([n, t]) => selectExpr(`u_${n}`, t));
  return `insert into ${spec.name} (${names.join(', ')}) select ${selects.join(', ')} from unnest(${params.join(', ')}) as u(${aliases.join(', ')}) on conflict do nothing`;
}

function emptyBuffer(): Buffer {
  return { columns: new Map(), rows: 0, callbacks: [] };
}

export class BatchWriter {
  private readonly specs = new Map<string, { spec: TableSpec; sql: string }>();
  private current: Buffer = emptyBuffer();
  private retry: Buffer | null = null;
  private inFlight = 0;
  private flushing: Promise<void> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private backoffMs = 0;
  private stopped = false;
  private healthy = true;

  constructor(private readonly db: Db, specs: TableSpec[], private readonly opts: BatchWriterOptions) {
    for (const spec of specs) this.specs.set(spec.name, { spec, sql: insertSql(spec) });
  }

  /** Messages accepted but not yet committed (buffered, in flight or waiting for a retry). */
  get pending(): number {
    return this.current.callbacks.length + this.inFlight + (this.retry?.callbacks.length ?? 0);
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
    if (buf.callbacks.length >= this.opts.batchSize) this.kick(0);
    else if (!this.timer) this.kick(this.opts.batchMs);
  }

  private kick(delay: number): void {
    if (this.flushing) return; // the running loop picks up what is buffered
    if (delay <= 0) {
      if (this.timer) clearTimeout(this.timer);
      this.timer = null;
      this.flushing = this.loop().finally(() => (this.flushing = null));
      return;
    }
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.kick(0);
    }, delay);
  }

  private async loop(): Promise<void> {
    for (;;) {
      let batch: Buffer;
      if (this.retry) {
        batch = this.retry;
        this.retry = null;
      } else if (this.current.callbacks.length > 0) {
        batch = this.current;
        this.current = emptyBuffer();
      } else return;
      this.inFlight = batch.callbacks.length;
      const t0 = performance.now();
      try {
        await this.db.tx(async (q) => {
          for (const [table, cols] of batch.columns) {
            const entry = this.specs.get(table)!;
            await q.query(entry.sql, cols);
          }
        });
        this.inFlight = 0;
        this.healthy = true;
        this.backoffMs = 0;
        this.opts.onCommit?.(batch.rows, batch.callbacks.length, performance.now() - t0);
        for (const cb of batch.callbacks) cb();
      } catch (err) {
        this.inFlight = 0;
        this.retry = batch;
        this.healthy = false;
        this.opts.onError?.(err as Error);
        this.backoffMs = Math.min(this.opts.maxBackoffMs ?? 5_000, this.backoffMs ? this.backoffMs * 2 : 50);
        this.opts.logger?.warn({ err: (err as Error).message, messages: batch.callbacks.length, retryInMs: this.backoffMs }, 'batch commit failed; holding acknowledgements and retrying');
        if (this.stopped) return;
        await new Promise((r) => setTimeout(r, this.backoffMs * (0.8 + Math.random() * 0.4)));
        if (this.stopped) return;
      }
      // Flush by size right away; otherwise let the next batch gather for batchMs.
      if (!this.retry && this.current.callbacks.length < this.opts.batchSize) {
        if (this.current.callbacks.length > 0) {
          this.timer ??= setTimeout(() => {
            this.timer = null;
            this.kick(0);
          }, this.opts.batchMs);
        }
        return;
      }
    }
  }

  /** Commits everything buffered (used on shutdown and by tests). */
  async flush(): Promise<void> {
    while (this.pending > 0) {
      if (this.flushing) await this.flushing;
      else this.kick(0);
      if (this.flushing) await this.flushing;
      if (!this.healthy && this.stopped) break;
    }
  }

  /**
   * Flushes, then refuses new rows. If the database is down at shutdown the
   * remaining messages are failed (never acknowledged) after `graceMs`.
   */
  async stop(graceMs = 5_000): Promise<void> {
    const deadline = Date.now() + graceMs;
    while (this.pending > 0 && Date.now() < deadline) {
      if (this.flushing) await Promise.race([this.flushing, new Promise((r) => setTimeout(r, 100))]);
      else this.kick(0);
    }
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const err = new Error('hub stopped before commit');
    for (const b of [this.retry, this.current]) b?.callbacks.forEach((cb) => cb(err));
    this.retry = null;
    this.current = emptyBuffer();
  }
}
