/**
 * The cluster alarm book and replayed triggers: a node taking a device over
 * reads the alarm rows, then replays a message above their last trigger; the
 * old owner, still evaluating the device for a moment (a node joining), may
 * count the same message in between. The replayed trigger repeats an active
 * alarm only if its row still holds no trigger at or after it when written,
 * whether the replaying node knew the row (a repeat) or not (a raise that
 * finds it): one count per message. The old owner's raise of a message the
 * new owner replayed first finds that alarm and, at the same message time,
 * counts nothing either. A replayed trigger above the row's last counts, and
 * a live one counts as it always did. PGlite, and PostgreSQL when
 * TEST_DATABASE_URL is set.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventBus } from '../../src/core/bus.js';
import { createLogger } from '../../src/core/logger.js';
import { AlarmService } from '../../src/rules/alarms.js';
import { RuleEvaluator, type RaiseEffect } from '../../src/rules/evaluator.js';
import type { Rule } from '../../src/rules/rule.schema.js';
import { ruleMigrations } from '../../src/rules/schema.js';
import { openDb, type Db } from '../../src/store/index.js';
import { migrate } from '../../src/store/migrate.js';
import { engines, freshPostgresUrl } from '../helpers.js';

const RULE: Rule = { id: 'smoke-book', name: 'smoke', enabled: true, kind: 'match', channel: 'event', types: ['smoke_alarm'], severity: 'critical' } as Rule;
const D = 'smoke-book-1';
const T = Date.parse('2026-12-01T06:00:00Z');

describe.each(engines())('alarm book: a replayed trigger another node counted meanwhile ($name)', ({ url }) => {
  let db: Db;

  beforeAll(async () => {
    db = await openDb({ url: url.startsWith('memory://') ? url : await freshPostgresUrl(url), dataDir: '' });
    await migrate(db, ruleMigrations);
  });

  afterAll(async () => {
    await db?.close();
  });

  /** One node's alarm service over the shared book. */
  function node(): AlarmService {
    const evaluator = new RuleEvaluator({ contains: () => true, devices: () => [] });
    evaluator.setRules([RULE]);
    return new AlarmService(
      { db, bus: new EventBus(), logger: createLogger('silent'), auth: { canSee: () => true }, registry: { get: () => undefined }, now: () => T + 60_000, shared: true },
      evaluator, () => new Map([[RULE.id, RULE]]),
    );
  }
  const trigger = (ts: number, replayed = false): RaiseEffect => ({
    kind: 'raise', rule: RULE, deviceId: D, ts, severity: 'critical', type: 'smoke_alarm', message: 'smoke_alarm', ...(replayed ? { replayed: true as const } : {}),
  });
  const rows = async () => (await db.query<{ status: string; count: number; last: number }>(
    "select status, count, (extract(epoch from last_ts) * 1000)::float8 as last from alarms where rule_id = $1 and device_id = $2 order by created_at", [RULE.id, D]))
    .map((r) => [r.status, r.count, Number(r.last) - T]);

  it('counts each message once, whichever node wrote it first', async () => {
    const old = node();
    await old.applyAll([trigger(T + 1_000)]);
    expect(await rows()).toEqual([['active', 1, 1_000]]);

    // The new owner read the book before the old owner's row, knows the row now and repeats the same message: nothing.
    const fresh = node();
    await fresh.sync();
    await fresh.applyAll([trigger(T + 1_000, true)]);
    // The code before counted it again: 2.
    expect(await rows()).toEqual([['active', 1, 1_000]]);

    // A node whose book does not hold the row yet raises the same message: the insert finds the row, the repeat does not count.
    const stale = node();
    await stale.applyAll([trigger(T + 1_000, true)]);
    expect(await rows()).toEqual([['active', 1, 1_000]]);
    expect(stale.activeFor(RULE.id, D)).toMatchObject({ count: 1 });

    // A replayed message the row does not hold yet counts; a live one counts as it always did.
    await fresh.applyAll([trigger(T + 2_000, true)]);
    expect(await rows()).toEqual([['active', 2, 2_000]]);
    await old.applyAll([trigger(T + 3_000)]);
    expect(await rows()).toEqual([['active', 3, 3_000]]);
  });

  it('counts a message once when the old owner\'s raise of it lands after the new owner replayed it', async () => {
    const d = `${D}-late`;
    const at = (ts: number, replayed = false): RaiseEffect => ({ ...trigger(ts, replayed), deviceId: d });
    const of = async () => (await db.query<{ count: number; last: number }>(
      'select count, (extract(epoch from last_ts) * 1000)::float8 as last from alarms where rule_id = $1 and device_id = $2', [RULE.id, d])).map((r) => [r.count, Number(r.last) - T]);
    // The new owner replays the message first: a new alarm.
    await node().applyAll([at(T + 1_000, true)]);
    expect(await of()).toEqual([[1, 1_000]]);
    // The old owner's own raise of it finds that alarm: the same message time, counted already (the code before: 2).
    const old = node();
    await old.applyAll([at(T + 1_000)]);
    expect(await of()).toEqual([[1, 1_000]]);
    expect(old.activeFor(RULE.id, d)).toMatchObject({ count: 1 });
    // Another message it raises on another node's alarm counts.
    await node().applyAll([at(T + 1_500)]);
    expect(await of()).toEqual([[2, 1_500]]);
  });
});
