/**
 * Versioned migrations. Every domain ships its own list (ids are globally
 * ordered: 0xx store, 1xx rules, 2xx cases, 3xx dispatch, 4xx video);
 * main collects them and applies the missing ones in id order, once.
 */
import type { Db } from './db.js';

export interface Migration {
  id: string;
  /** Receives the database so a step can branch on `db.timescale`. */
  up(db: Db): Promise<void>;
}

/** The advisory lock key that serialises migrations across hub nodes. */
export const MIGRATION_LOCK = 7411;

export async function migrate(db: Db, migrations: readonly Migration[]): Promise<string[]> {
  // Several hub nodes may start at once: one applies, the others wait and find nothing left.
  const run = <T>(fn: () => Promise<T>) => (db.exclusive ? db.exclusive(MIGRATION_LOCK, fn) : fn());
  return run(async () => {
    // Inside the lock: two sessions racing on `create table if not exists` can both try to create it.
    await db.exec('create table if not exists schema_migrations (id text primary key, applied_at timestamptz not null default now())');
    const done = new Set((await db.query<{ id: string }>('select id from schema_migrations')).map((r) => r.id));
    const applied: string[] = [];
    const sorted = [...migrations].sort((a, b) => a.id.localeCompare(b.id));
    const ids = new Set<string>();
    for (const m of sorted) {
      if (ids.has(m.id)) throw new Error(`duplicate migration id ${m.id}`);
      ids.add(m.id);
      if (done.has(m.id)) continue;
      await m.up(db);
      await db.query('insert into schema_migrations (id) values ($1)', [m.id]);
      applied.push(m.id);
    }
    return applied;
  });
}
