/**
 * Group-commit batch writer (n8n insights-collection style). Rows of many
 * messages go to the database in one transaction with one multi-row
 * `INSERT ... SELECT FROM unnest(...)` per table; each message's callback runs
 * only after that transaction committed, which is what lets the broker send
 * PUBACK as "it is in the database". A failed batch is kept and retried with
 * backoff, never dropped and never acknowledged.
 *
 * On PostgreSQL up to three commits overlap. A batch gathered while they were
 * busy is shared out over the slots that are free when it goes, in parts of
 * at least PART_MIN messages: PostgreSQL runs each statement in one backend
 * on one core, so two parts of 250 rows commit in about the time of one
 * (docs/benchmarks.md: 8–20 % more messages a second). Parts are released
 * in arrival order like any batch.
 *
 * A message stored twice (a device re-sending what was committed but not yet
 * acknowledged) is stored once. The plain insert is tried first; only a batch
 * that meets a row already there (unique_violation, 23505) runs again as
 * `insert … on conflict do nothing`, and so do the batches of the next second.
 * `on conflict` makes PostgreSQL insert every row speculatively, which cost
 * about 3 µs of its ~11 µs a row (docs/benchmarks.md), for duplicates that
 * only come after a reconnect.
 */
import type { Logger } from '../core/logger.js';
import { binaryArray, type BinaryElement } from './binary-arrays.js';
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

/**
 * The database refused the rows for a reason that retrying cannot cure
 * (SQLSTATE class 22 data exception, 23 integrity constraint, 54 program
 * limit): the message can never be stored.
 */
export class UnstorableError extends Error {
  readonly lasting = true;
  constructor(readonly sqlstate: string, message: string) {
    super(message);
    this.name = 'UnstorableError';
  }
}

/** True for errors that belong to the data, not to the connection or the server's state. */
export function isLasting(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^(22|23|54)/.test(code);
}

interface Entry {
  requests: readonly WriteRequest[];
  done: Done;
  bytes: number;
}

interface Batch {
  entries: Entry[];
  rows: number;
  /** Written with `on conflict do nothing`: a row of it, or of a batch just before, was already stored. */
  tolerant?: boolean;
  /** Set once the batch is settled: committed (null) or, for a single message, refused for good. */
  outcome?: UnstorableError | null;
}

export interface BatchWriterOptions {
  batchSize: number;
  batchMs: number;
  pendingMax: number;
  /** Bytes (as the caller counts them) held unacknowledged at most; unlimited when absent. */
  pendingMaxBytes?: number;
  logger?: Logger;
  onCommit?: (rows: number, messages: number, ms: number) => void;
  onError?: (err: Error) => void;
  /** A message the database refused for good (after the batch was split down to it). */
  onUnstorable?: (err: UnstorableError) => void;
  /** A batch met rows already stored and runs again tolerating them. */
  onDuplicate?: (messages: number) => void;
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

/** How a column's array goes to PostgreSQL in binary (the statement's cast stays the same). */
const binaryOf: Record<ColumnType, BinaryElement> = {
  ts: 'float8',
  text: 'text',
  float8: 'float8',
  int8: 'int8',
  bool: 'bool',
  jsonb: 'text',
  bytea: 'text',
};

function selectExpr(name: string, type: ColumnType): string {
  if (type === 'ts') return `to_timestamp(${name} / 1000.0)`;
  if (type === 'jsonb') return `${name}::jsonb`;
  if (type === 'bytea') return `decode(${name}, 'base64')`;
  return name;
}

/**
 * Messages a statement carries at least when a batch is shared out over free
 * commit slots (below it, a statement's own round trip and planning weigh more).
 */
const PART_MIN = 100;

function emptyBatch(): Batch {
  return { entries: [], rows: 0 };
}

export class BatchWriter {
  private readonly specs = new Map<string, { spec: TableSpec; index: number }>();
  private readonly sqlCache = new Map<string, { sql: string; name: string }>();
  /** Until then (Date.now()) new batches are written tolerating duplicates. */
  private tolerantUntil = 0;
  private current: Batch = emptyBatch();
  private readonly retryQueue: Batch[] = [];
  private readonly inFlight = new Set<Batch>();
  /** Batches sent and not yet released, in send order: acknowledgements keep arrival order. */
  private readonly order: Batch[] = [];
  private pendingCount = 0;
  private pendingBytesCount = 0;
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

  /** Messages accepted but not yet acknowledged (buffered, in flight, waiting for a retry or for an earlier batch). */
  get pending(): number {
    return this.pendingCount;
  }

  /** Bytes of those messages, as counted by the callers of add(). */
  get pendingBytes(): number {
    return this.pendingBytesCount;
  }

  /** Past the memory cap (messages or bytes): the caller must refuse new messages (never ack them). */
  get full(): boolean {
    return this.pendingCount >= this.opts.pendingMax || (this.opts.pendingMaxBytes !== undefined && this.pendingBytesCount >= this.opts.pendingMaxBytes);
  }

  /** False while the last commit failed and a retry is pending. */
  get dbHealthy(): boolean {
    return this.healthy;
  }

  /**
   * Adds one message's rows; `done` runs after they are committed, with an
   * UnstorableError when the database refuses them for good, or with an
   * error when the writer is stopped. `bytes` counts towards pendingMaxBytes.
   */
  add(requests: readonly WriteRequest[], done: Done, bytes = 0): void {
    if (this.stopped) {
      done(new Error('writer stopped'));
      return;
    }
    for (const req of requests) if (!this.specs.has(req.table)) throw new Error(`unknown table ${req.table}`);
    const buf = this.current;
    buf.entries.push({ requests, done, bytes });
    buf.rows += requests.length;
    this.pendingCount++;
    this.pendingBytesCount += bytes;
    // Idle: commit at the end of this event-loop turn, once every socket read
    // in it has been handled (PGlite commits synchronously in this thread, so
    // committing inside add() would send batches of one). Busy: gather until a
    // commit slot frees (group commit) or batchMs passes (use a spare slot).
    if (buf.entries.length >= this.opts.batchSize) this.pump();
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
      let batch: Batch | undefined = this.retryQueue.shift();
      if (!batch) {
        if (this.current.entries.length === 0) break;
        batch = this.current;
        this.current = emptyBatch();
        if (Date.now() < this.tolerantUntil) batch.tolerant = true;
        if (this.timer) clearTimeout(this.timer);
        this.timer = null;
        // A large batch with commit slots free goes out as parts, one statement each, run side by side
        // by PostgreSQL's backends (each statement runs on one core). A message's rows stay in one part.
        const parts = Math.min((this.healthy ? this.maxInFlight : 1) - this.inFlight.size, Math.floor(batch.entries.length / PART_MIN));
        if (parts >= 2) {
          const size = Math.ceil(batch.entries.length / parts);
          for (let i = 0; i < batch.entries.length; i += size) {
            const entries = batch.entries.slice(i, i + size);
            const part: Batch = { entries, rows: entries.reduce((n, e) => n + e.requests.length, 0), tolerant: batch.tolerant };
            this.order.push(part);
            this.commit(part);
          }
          continue;
        }
        this.order.push(batch);
      }
      this.commit(batch);
    }
    if (this.pendingCount === 0) this.idleWaiters.splice(0).forEach((w) => w());
  }

  /** One statement: a CTE with one unnest insert per table, atomic without an explicit transaction (one round trip). */
  private sqlFor(tables: string[], tolerant: boolean): { sql: string; name: string } {
    const key = `${tolerant ? 'tolerant:' : ''}${tables.join(',')}`;
    const cached = this.sqlCache.get(key);
    if (cached) return cached;
    let p = 0;
    const parts = tables.map((t) => {
      const spec = this.specs.get(t)!.spec;
      const names = spec.columns.map(([n]) => n);
      const params = spec.columns.map(([, type]) => `$${++p}::${castOf[type]}`);
      const selects = spec.columns.map(([n, type]) => selectExpr(`u_${n}`, type));
      return `insert into ${spec.name} (${names.join(', ')}) select ${selects.join(', ')} from unnest(${params.join(', ')}) as u(${names.map((n) => `u_${n}`).join(', ')})${tolerant ? ' on conflict do nothing' : ''}`;
    });
    const sql = parts.length === 1 ? parts[0]! : `with ${parts.slice(1).map((q, i) => `w${i} as (${q} returning 1)`).join(', ')} ${parts[0]}`;
    // One prepared statement per set of tables: PostgreSQL parses and plans it once per connection.
    const entry = { sql, name: `gridlink_batch_${this.sqlCache.size}` };
    this.sqlCache.set(key, entry);
    return entry;
  }

  /** Column arrays per table, built when the batch is sent (a split batch builds its halves anew). */
  private statement(batch: Batch): { sql: string; name: string; params: unknown[] } {
    const columns = new Map<string, unknown[][]>();
    for (const e of batch.entries) {
      for (const req of e.requests) {
        let cols = columns.get(req.table);
        if (!cols) columns.set(req.table, (cols = this.specs.get(req.table)!.spec.columns.map(() => [])));
        for (let i = 0; i < cols.length; i++) cols[i]!.push(req.values[i] ?? null);
      }
    }
    const tables = [...columns.keys()].sort((a, b) => this.specs.get(a)!.index - this.specs.get(b)!.index);
    // PostgreSQL: each column as a binary array where its values allow (PGlite takes the arrays as they are).
    const binary = this.db.kind === 'postgres';
    const params = tables.flatMap((t) => {
      const cols = columns.get(t)!;
      if (!binary) return cols;
      const types = this.specs.get(t)!.spec.columns;
      return cols.map((values, i) => binaryArray(binaryOf[types[i]![1]], values) ?? values);
    });
    return { ...this.sqlFor(tables, batch.tolerant === true), params };
  }

  private commit(batch: Batch): void {
    this.inFlight.add(batch);
    const { sql, name, params } = this.statement(batch);
    const t0 = performance.now();
    // One statement is its own transaction on both engines.
    this.db.query(sql, params, { name }).then(
      () => {
        this.inFlight.delete(batch);
        this.healthy = true;
        this.backoffMs = 0;
        this.opts.onCommit?.(batch.rows, batch.entries.length, performance.now() - t0);
        // Commits overlap on PostgreSQL and may finish out of order; a device's
        // messages must still be acknowledged and announced in the order they came.
        batch.outcome = null;
        this.release();
        // Let the event loop read sockets before the next commit: PGlite runs
        // in this thread, so nothing arrives while it commits, and pumping
        // straight from this callback would send batches of one.
        setImmediate(() => this.pump());
      },
      (err: Error) => {
        this.inFlight.delete(batch);
        if (!batch.tolerant && (err as { code?: unknown }).code === '23505') return this.duplicate(batch);
        if (isLasting(err)) return this.refused(batch, err);
        this.retryQueue.unshift(batch);
        this.healthy = false;
        this.opts.onError?.(err);
        this.backoffMs = Math.min(this.opts.maxBackoffMs ?? 5_000, this.backoffMs ? this.backoffMs * 2 : 50);
        this.opts.logger?.warn({ err: err.message, messages: batch.entries.length, retryInMs: this.backoffMs }, 'batch commit failed; holding acknowledgements and retrying');
        if (this.stopped || this.backoffTimer) return;
        this.backoffTimer = setTimeout(() => {
          this.backoffTimer = null;
          this.pump();
        }, this.backoffMs * (0.8 + Math.random() * 0.4));
      },
    );
  }

  /** A row of the batch is already stored: nothing of it was (one statement), so run it again tolerating that. */
  private duplicate(batch: Batch): void {
    batch.tolerant = true;
    this.tolerantUntil = Date.now() + 1_000;
    this.opts.onDuplicate?.(batch.entries.length);
    this.retryQueue.unshift(batch);
    setImmediate(() => this.pump());
  }

  /**
   * The database refused the batch for good: one bad message must not block
   * the others, so split the batch in halves (in place in the release order)
   * until the refused messages stand alone; the rest commits. k bad messages
   * in a batch of n cost about 2·k·log2(n) extra statements.
   */
  private refused(batch: Batch, err: Error): void {
    const sqlstate = String((err as { code?: unknown }).code);
    if (batch.entries.length === 1) {
      const e = new UnstorableError(sqlstate, err.message);
      this.opts.onUnstorable?.(e);
      batch.outcome = e;
      this.release();
    } else {
      const mid = batch.entries.length >> 1;
      const halves = [batch.entries.slice(0, mid), batch.entries.slice(mid)].map((entries) => ({
        entries,
        rows: entries.reduce((n, e) => n + e.requests.length, 0),
        tolerant: batch.tolerant,
      }));
      this.order.splice(this.order.indexOf(batch), 1, ...halves);
      this.retryQueue.unshift(...halves);
    }
    setImmediate(() => this.pump());
  }

  private release(): void {
    while (this.order.length > 0 && this.order[0]!.outcome !== undefined) {
      const b = this.order.shift()!;
      for (const e of b.entries) {
        this.pendingCount--;
        this.pendingBytesCount -= e.bytes;
        if (b.outcome) e.done(b.outcome);
        else e.done();
      }
    }
    if (this.pendingCount === 0) this.idleWaiters.splice(0).forEach((w) => w());
  }

  /** Commits everything buffered (used on shutdown and by tests). */
  async flush(): Promise<void> {
    if (this.pendingCount === 0) return;
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
    // Settled batches stuck behind one that could not be stored: they are settled, so answer them.
    const err = new Error('hub stopped before commit');
    const all = [...this.order, this.current];
    this.order.length = 0;
    this.retryQueue.length = 0;
    this.current = emptyBatch();
    for (const b of all) {
      for (const e of b.entries) {
        if (b.outcome === null) e.done();
        else e.done(b.outcome ?? err);
      }
    }
    this.pendingCount = 0;
    this.pendingBytesCount = 0;
    this.idleWaiters.splice(0).forEach((w) => w());
  }
}
