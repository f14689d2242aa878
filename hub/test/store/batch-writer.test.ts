import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { BatchWriter, UnstorableError, isLasting, type TableSpec } from '../../src/store/batch-writer.js';
import { openDb } from '../../src/store/db.js';
import type { Db, Queryable } from '../../src/store/db.js';

const spec: TableSpec = { name: 't', columns: [['ts', 'ts'], ['v', 'float8']] };

/** A database double that records statements and can be told to fail: the writer's logic only, no engine. */
function fakeDb(poison?: number) {
  const calls: Array<{ sql: string; params: unknown[] }> = [];
  const refused: number[] = [];
  let failing = false;
  let commits = 0;
  const q: Queryable = {
    query: async <T>(sql: string, params: unknown[] = []) => {
      if (failing) throw new Error('connection refused');
      // A row the database refuses for good, the way PostgreSQL does: the whole statement fails with a SQLSTATE.
      if (poison !== undefined && (params[1] as unknown[]).includes(poison)) {
        refused.push((params[1] as unknown[]).length);
        throw Object.assign(new Error('new row violates check constraint'), { code: '23514' });
      }
      calls.push({ sql, params });
      commits++;
      return [] as T[];
    },
  };
  const db = {
    kind: 'pglite',
    timescale: false,
    query: q.query,
    exec: async () => undefined,
    tx: async <T>(fn: (q: Queryable) => Promise<T>) => fn(q),
    close: async () => undefined,
  } as Db;
  return { db, calls, refused, setFailing: (f: boolean) => (failing = f), commits: () => commits };
}

/** Wraps a database so each statement waits until the test releases it (commits in flight, on demand). */
function held(db: Db, kind: Db['kind'] = db.kind) {
  const releases: Array<() => void> = [];
  const wrapped = { ...db, kind, query: async <T>(sql: string, params?: unknown[]) => {
    await new Promise<void>((r) => releases.push(r));
    return db.query<T>(sql, params);
  } } as Db;
  return { db: wrapped, releases };
}

describe('BatchWriter', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('should commit at the end of the event-loop turn when idle and gather messages that arrive during a commit into one multi-row insert', async () => {
    const f = fakeDb();
    const { db: slow, releases } = held(f.db, 'pglite');
    const release = () => releases.shift()!();
    const w = new BatchWriter(slow, [spec], { batchSize: 100, batchMs: 20, pendingMax: 1000 });
    const done = vi.fn();
    w.add([{ table: 't', values: [1000, 1.5] }], done);
    await vi.advanceTimersByTimeAsync(0);
    w.add([{ table: 't', values: [2000, 2.5] }], done);
    w.add([{ table: 't', values: [3000, 3.5] }], done);
    await vi.advanceTimersByTimeAsync(50);
    expect(done).not.toHaveBeenCalled();
    release();
    await vi.advanceTimersByTimeAsync(0);
    expect(done).toHaveBeenCalledTimes(1);
    release();
    await vi.advanceTimersByTimeAsync(0);
    expect(done).toHaveBeenCalledTimes(3);
    expect(f.calls).toHaveLength(2);
    expect(f.calls[1]!.sql).toContain('from unnest($1::float8[], $2::float8[])');
    expect(f.calls[1]!.sql).toContain('on conflict do nothing');
    expect(f.calls[1]!.params).toEqual([[2000, 3000], [2.5, 3.5]]);
  });

  it('should use a spare commit slot after batchMs while another commit is in flight (PostgreSQL)', async () => {
    const f = fakeDb();
    const { db: slow, releases } = held(f.db, 'postgres');
    const w = new BatchWriter(slow, [spec], { batchSize: 100, batchMs: 20, pendingMax: 1000 });
    w.add([{ table: 't', values: [1, 1] }], () => undefined);
    await vi.advanceTimersByTimeAsync(0);
    w.add([{ table: 't', values: [2, 2] }], () => undefined);
    await vi.advanceTimersByTimeAsync(19);
    expect(releases).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(2);
    expect(releases).toHaveLength(2);
    releases.forEach((r) => r());
    await vi.advanceTimersByTimeAsync(0);
    expect(w.pending).toBe(0);
  });

  it('should flush by size without waiting for the timer', async () => {
    const f = fakeDb();
    const { db: slow, releases } = held(f.db, 'postgres');
    const w = new BatchWriter(slow, [spec], { batchSize: 3, batchMs: 10_000, pendingMax: 1000 });
    w.add([{ table: 't', values: [0, 0] }], () => undefined);
    await vi.advanceTimersByTimeAsync(0);
    const done = vi.fn();
    for (let i = 1; i <= 3; i++) w.add([{ table: 't', values: [i, i] }], done);
    await vi.advanceTimersByTimeAsync(0);
    expect(releases).toHaveLength(2);
    releases.forEach((r) => r());
    await vi.advanceTimersByTimeAsync(0);
    expect(done).toHaveBeenCalledTimes(3);
    expect(f.calls[1]!.params).toEqual([[1, 2, 3], [1, 2, 3]]);
  });

  it('should hold callbacks while the database fails and commit the same rows when it returns', async () => {
    const f = fakeDb();
    f.setFailing(true);
    const w = new BatchWriter(f.db, [spec], { batchSize: 10, batchMs: 5, pendingMax: 1000 });
    const done = vi.fn();
    w.add([{ table: 't', values: [1, 1] }], done);
    await vi.advanceTimersByTimeAsync(2_000);
    expect(done).not.toHaveBeenCalled();
    expect(w.dbHealthy).toBe(false);
    expect(w.pending).toBe(1);
    w.add([{ table: 't', values: [2, 2] }], done);
    f.setFailing(false);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(done).toHaveBeenCalledTimes(2);
    expect(done.mock.calls.every((c) => c[0] === undefined)).toBe(true);
    expect(w.pending).toBe(0);
    expect(w.dbHealthy).toBe(true);
    const inserted = f.calls.flatMap((c) => c.params[0] as number[]);
    expect(inserted.sort()).toEqual([1, 2]);
  });

  it('should write rows of several tables in one atomic statement', async () => {
    const f = fakeDb();
    const { db: slow, releases } = held(f.db);
    const other: TableSpec = { name: 'u', columns: [['ts', 'ts'], ['j', 'jsonb']] };
    const w = new BatchWriter(slow, [spec, other], { batchSize: 100, batchMs: 10, pendingMax: 10 });
    w.add([{ table: 't', values: [0, 0] }], () => undefined);
    await vi.advanceTimersByTimeAsync(0);
    w.add([{ table: 'u', values: [1, '{"a":1}'] }], () => undefined);
    w.add([{ table: 't', values: [2, 2] }], () => undefined);
    await vi.advanceTimersByTimeAsync(0);
    releases.shift()!();
    await vi.advanceTimersByTimeAsync(0);
    releases.shift()!();
    await vi.advanceTimersByTimeAsync(0);
    expect(f.calls).toHaveLength(2);
    expect(f.calls[1]!.sql).toMatch(/^with w0 as \(insert into u .* returning 1\) insert into t /);
    expect(f.calls[1]!.params).toEqual([[2], [2], [1], ['{"a":1}']]);
  });

  it('should acknowledge overlapping commits in the order their batches were sent', async () => {
    const f = fakeDb();
    const { db: slow, releases } = held(f.db, 'postgres');
    const w = new BatchWriter(slow, [spec], { batchSize: 1, batchMs: 1, pendingMax: 100 });
    const order: number[] = [];
    for (let i = 0; i < 3; i++) w.add([{ table: 't', values: [i, i] }], () => order.push(i));
    await vi.advanceTimersByTimeAsync(0);
    expect(releases).toHaveLength(3);
    releases[2]!();
    releases[1]!();
    await vi.advanceTimersByTimeAsync(0);
    expect(order).toEqual([]);
    releases[0]!();
    await vi.advanceTimersByTimeAsync(0);
    expect(order).toEqual([0, 1, 2]);
  });

  it('should report full at the memory cap', async () => {
    const f = fakeDb();
    f.setFailing(true);
    const w = new BatchWriter(f.db, [spec], { batchSize: 1000, batchMs: 5, pendingMax: 3 });
    for (let i = 0; i < 3; i++) w.add([{ table: 't', values: [i, i] }], () => undefined);
    expect(w.full).toBe(true);
  });

  it('should flush on stop and fail (never ack) what cannot be stored', async () => {
    const f = fakeDb();
    const w = new BatchWriter(f.db, [spec], { batchSize: 1000, batchMs: 10_000, pendingMax: 1000 });
    const ok = vi.fn();
    w.add([{ table: 't', values: [1, 1] }], ok);
    const stopping = w.stop(1000);
    await vi.advanceTimersByTimeAsync(10);
    await stopping;
    expect(ok).toHaveBeenCalledWith();

    const f2 = fakeDb();
    f2.setFailing(true);
    const w2 = new BatchWriter(f2.db, [spec], { batchSize: 1000, batchMs: 1, pendingMax: 1000 });
    const failed = vi.fn();
    w2.add([{ table: 't', values: [1, 1] }], failed);
    const stopping2 = w2.stop(500);
    await vi.advanceTimersByTimeAsync(10_000);
    await stopping2;
    expect(failed).toHaveBeenCalledTimes(1);
    expect(failed.mock.calls[0]![0]).toBeInstanceOf(Error);
  });

  it('should tell lasting errors (SQLSTATE classes 22, 23, 54) from passing ones', () => {
    expect(isLasting(Object.assign(new Error('x'), { code: '22021' }))).toBe(true);
    expect(isLasting(Object.assign(new Error('x'), { code: '23514' }))).toBe(true);
    expect(isLasting(Object.assign(new Error('x'), { code: '54000' }))).toBe(true);
    expect(isLasting(Object.assign(new Error('x'), { code: '08006' }))).toBe(false);
    expect(isLasting(Object.assign(new Error('x'), { code: '57P01' }))).toBe(false);
    expect(isLasting(new Error('connect ECONNREFUSED'))).toBe(false);
  });

  it('should split a batch refused for a lasting reason until the bad message stands alone, commit the rest and keep the order', async () => {
    const f = fakeDb(13);
    const errors: UnstorableError[] = [];
    const w = new BatchWriter(f.db, [spec], { batchSize: 1000, batchMs: 5, pendingMax: 1000, onUnstorable: (e) => errors.push(e) });
    const order: Array<[number, string]> = [];
    for (let i = 0; i < 32; i++) w.add([{ table: 't', values: [i, i] }], (err) => order.push([i, err ? err.name : 'ok']));
    await vi.advanceTimersByTimeAsync(100);
    expect(order.map(([i]) => i)).toEqual(Array.from({ length: 32 }, (_, i) => i));
    expect(order.filter(([, r]) => r !== 'ok')).toEqual([[13, 'UnstorableError']]);
    expect(errors).toHaveLength(1);
    expect(errors[0]!.sqlstate).toBe('23514');
    const committed = f.calls.flatMap((c) => c.params[1] as number[]).sort((a, b) => a - b);
    expect(committed).toEqual(Array.from({ length: 32 }, (_, i) => i).filter((i) => i !== 13));
    // 32 → 16 → 8 → 4 → 2 → 1: one refused statement per level.
    expect(f.refused).toEqual([32, 16, 8, 4, 2, 1]);
    expect(w.pending).toBe(0);
    expect(w.dbHealthy).toBe(true);
  });

  it('should not split on a passing error: the same batch waits whole for the database', async () => {
    const f = fakeDb();
    f.setFailing(true);
    const w = new BatchWriter(f.db, [spec], { batchSize: 1000, batchMs: 5, pendingMax: 1000 });
    const done = vi.fn();
    for (let i = 0; i < 8; i++) w.add([{ table: 't', values: [i, i] }], done);
    await vi.advanceTimersByTimeAsync(3_000);
    expect(done).not.toHaveBeenCalled();
    f.setFailing(false);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(done).toHaveBeenCalledTimes(8);
    expect(f.calls).toHaveLength(1);
  });

  it('should count pending bytes and report full at the byte cap', () => {
    const f = fakeDb();
    const w = new BatchWriter(f.db, [spec], { batchSize: 1000, batchMs: 5, pendingMax: 1000, pendingMaxBytes: 10_000 });
    w.add([{ table: 't', values: [1, 1] }], () => undefined, 6_000);
    expect(w.full).toBe(false);
    expect(w.pendingBytes).toBe(6_000);
    w.add([{ table: 't', values: [2, 2] }], () => undefined, 4_000);
    expect(w.full).toBe(true);
  });
});

describe('BatchWriter on a real engine', () => {
  it('should find a U+0000 string among good rows on PGlite, store the good rows and refuse only that one', async () => {
    const db = await openDb({ url: 'memory://', dataDir: '' });
    await db.exec('create table n (ts timestamptz not null, s text, primary key (ts))');
    const w = new BatchWriter(db, [{ name: 'n', columns: [['ts', 'ts'], ['s', 'text']] }], { batchSize: 1000, batchMs: 5, pendingMax: 1000 });
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => new Promise<string>((resolve) => w.add([{ table: 'n', values: [1_700_000_000_000 + i, i === 7 ? 'a\u0000b' : `ok ${i}`] }], (err) => resolve(err instanceof UnstorableError ? `refused ${err.sqlstate}` : err ? 'error' : 'ok')))),
    );
    expect(results[7]).toBe('refused 22021');
    expect(results.filter((r) => r === 'ok')).toHaveLength(19);
    expect((await db.query<{ n: number }>('select count(*)::int as n from n'))[0]!.n).toBe(19);
    await w.stop();
    await db.close();
  });
});
