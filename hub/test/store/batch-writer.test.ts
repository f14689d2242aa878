import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { BatchWriter, UnstorableError, isLasting, type TableSpec } from '../../src/store/batch-writer.js';
import { openDb } from '../../src/store/db.js';
import { engines, freshPostgresUrl } from '../../src/testing.js';
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

/** The values of a binary float8[] parameter (one dimension, no nulls). */
function float8s(param: unknown): number[] {
  const b = param as Buffer;
  return Array.from({ length: b.readInt32BE(12) }, (_, i) => b.readDoubleBE(20 + i * 12 + 4));
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
    // No row was there before: the plain insert, without on conflict's speculative insertion.
    expect(f.calls[1]!.sql).not.toContain('on conflict');
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
    // PostgreSQL gets the columns as binary float8 arrays.
    expect(f.calls[1]!.params.map(float8s)).toEqual([[1, 2, 3], [1, 2, 3]]);
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

  it('should share a large batch out over the free commit slots and acknowledge its parts in arrival order (PostgreSQL)', async () => {
    const f = fakeDb();
    const { db: slow, releases } = held(f.db, 'postgres');
    const w = new BatchWriter(slow, [spec], { batchSize: 10_000, batchMs: 20, pendingMax: 10_000 });
    const order: number[] = [];
    w.add([{ table: 't', values: [0, 0] }], () => order.push(0));
    await vi.advanceTimersByTimeAsync(0);
    // 250 messages gather while the first commit holds a slot; two slots are free when they go: two parts.
    for (let i = 1; i <= 250; i++) w.add([{ table: 't', values: [i, i] }], () => order.push(i));
    await vi.advanceTimersByTimeAsync(21);
    expect(releases).toHaveLength(3);
    releases[2]!();
    await vi.advanceTimersByTimeAsync(0);
    // The second part is stored, but the first part and the first commit came before it.
    expect(order).toEqual([]);
    releases[0]!();
    await vi.advanceTimersByTimeAsync(0);
    expect(order).toEqual([0]);
    releases[1]!();
    await vi.advanceTimersByTimeAsync(0);
    expect(order).toEqual(Array.from({ length: 251 }, (_, i) => i));
    // In the order the statements finished: the second part, the single message, the first part.
    expect(f.calls.map((c) => float8s(c.params[1]))).toEqual([Array.from({ length: 125 }, (_, i) => 126 + i), [0], Array.from({ length: 125 }, (_, i) => 1 + i)]);
  });

  it('should send a batch whole when its parts would be smaller than the minimum', async () => {
    const f = fakeDb();
    const { db: slow, releases } = held(f.db, 'postgres');
    const w = new BatchWriter(slow, [spec], { batchSize: 10_000, batchMs: 20, pendingMax: 10_000 });
    w.add([{ table: 't', values: [0, 0] }], () => undefined);
    await vi.advanceTimersByTimeAsync(0);
    for (let i = 1; i <= 150; i++) w.add([{ table: 't', values: [i, i] }], () => undefined);
    await vi.advanceTimersByTimeAsync(21);
    expect(releases).toHaveLength(2);
    releases.forEach((r) => r());
    await vi.advanceTimersByTimeAsync(0);
    expect(f.calls.map((c) => float8s(c.params[1]).length).sort((a, b) => a - b)).toEqual([1, 150]);
    expect(w.pending).toBe(0);
  });

  it('should never share a batch out on PGlite (one connection)', async () => {
    const f = fakeDb();
    const w = new BatchWriter(f.db, [spec], { batchSize: 10_000, batchMs: 20, pendingMax: 10_000 });
    for (let i = 0; i < 500; i++) w.add([{ table: 't', values: [i, i] }], () => undefined);
    await vi.advanceTimersByTimeAsync(0);
    expect(f.calls.map((c) => (c.params[1] as unknown[]).length)).toEqual([500]);
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
  it.each(engines())('should store a message re-sent after its commit once, acknowledge both copies and the rest of the batch, and tolerate duplicates for the next second ($name)', async (engine) => {
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      const db = await openDb({ url: engine.url.startsWith('postgres') ? await freshPostgresUrl(engine.url) : engine.url, dataDir: '' });
      await db.exec('create table d (ts timestamptz not null, k text not null, v float8, primary key (k, ts))');
      const statements: string[] = [];
      const spy = { ...db, query: <T>(sql: string, params?: unknown[], opts?: { name?: string }) => {
        if (sql.startsWith('insert into d')) statements.push(sql.includes('on conflict') ? 'tolerant' : 'plain');
        return db.query<T>(sql, params, opts);
      } } as Db;
      let duplicates = 0;
      const w = new BatchWriter(spy, [{ name: 'd', columns: [['ts', 'ts'], ['k', 'text'], ['v', 'float8']] }], { batchSize: 1000, batchMs: 5, pendingMax: 1000, onDuplicate: () => duplicates++ });
      const add = (ts: number, k: string, v: number) => new Promise<string>((resolve) => w.add([{ table: 'd', values: [ts, k, v] }], (err) => resolve(err ? err.name : 'ok')));
      expect(await add(1_700_000_000_000, 'a', 1)).toBe('ok');
      // The device did not get its PUBACK and sends the same message again, among new ones and twice in one batch.
      const again = await Promise.all([add(1_700_000_000_001, 'b', 2), add(1_700_000_000_000, 'a', 1), add(1_700_000_000_002, 'c', 3), add(1_700_000_000_002, 'c', 3)]);
      expect(again).toEqual(['ok', 'ok', 'ok', 'ok']);
      expect(duplicates).toBe(1);
      expect(statements).toEqual(['plain', 'plain', 'tolerant']);
      expect(await db.query('select k, v from d order by ts, k')).toEqual([{ k: 'a', v: 1 }, { k: 'b', v: 2 }, { k: 'c', v: 3 }]);
      // Within the second after a duplicate new batches tolerate them from the start; after it, plain again.
      expect(await add(1_700_000_000_003, 'd', 4)).toBe('ok');
      vi.setSystemTime(Date.now() + 1_001);
      expect(await add(1_700_000_000_004, 'e', 5)).toBe('ok');
      expect(statements).toEqual(['plain', 'plain', 'tolerant', 'tolerant', 'plain']);
      // A copy sent while the first is still being committed (PostgreSQL: another commit in flight) is stored once too.
      const first = add(1_700_000_000_005, 'f', 6);
      await new Promise((r) => setImmediate(r));
      expect(await Promise.all([first, add(1_700_000_000_005, 'f', 6)])).toEqual(['ok', 'ok']);
      expect(await db.query('select count(*)::int as n from d')).toEqual([{ n: 6 }]);
      await w.stop();
      await db.close();
    } finally {
      vi.useRealTimers();
    }
  });

  it('should still refuse a bad row for good in a batch that also met a duplicate, and store the rest once', async () => {
    const db = await openDb({ url: 'memory://', dataDir: '' });
    await db.exec('create table e (ts timestamptz not null, s text, primary key (ts))');
    const w = new BatchWriter(db, [{ name: 'e', columns: [['ts', 'ts'], ['s', 'text']] }], { batchSize: 1000, batchMs: 5, pendingMax: 1000 });
    const add = (i: number, s: string) => new Promise<string>((resolve) => w.add([{ table: 'e', values: [1_700_000_000_000 + i, s] }], (err) => resolve(err instanceof UnstorableError ? `refused ${err.sqlstate}` : err ? 'error' : 'ok')));
    expect(await add(0, 'first')).toBe('ok');
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => add(i, i === 6 ? 'x\u0000y' : `row ${i}`)));
    expect(results[6]).toBe('refused 22021');
    expect(results.filter((r) => r === 'ok')).toHaveLength(9);
    expect(await db.query('select s from e order by ts')).toEqual([{ s: 'first' }, ...[1, 2, 3, 4, 5, 7, 8, 9].map((i) => ({ s: `row ${i}` }))]);
    await w.stop();
    await db.close();
  });

  it.each(engines())('should find a U+0000 string among good rows, store the good rows and refuse only that one ($name)', async (engine) => {
    const db = await openDb({ url: engine.url.startsWith('postgres') ? await freshPostgresUrl(engine.url) : engine.url, dataDir: '' });
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
