/**
 * The supervision pass (黄牌, 红牌 with its automatic 督办, escalation up the
 * 四级网络, 签收 deadline) run twice at the same instant on PostgreSQL, as a
 * stalled `cases.overdue` holder and its successor would: each step happens
 * once, because each is a conditional update in one transaction
 * (docs/cluster.md, "Dispatch timeouts and 督办").
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemActor } from '../../src/cases/index.js';
import { PG_URL } from '../helpers.js';
import { AT, startCaseHub, type CaseHub } from '../cases/fixtures.js';

const MIN = 60_000;

describe.runIf(!!PG_URL)('supervision passes racing on PostgreSQL', () => {
  let h: CaseHub;
  beforeAll(async () => {
    h = await startCaseHub({ databaseUrl: PG_URL!, rules: false });
  }, 120_000);
  afterAll(async () => h?.stop());

  it('writes each warn, overdue, 督办, escalation and 签收-overdue entry once when two passes run at once', async () => {
    const t0 = h.clock.t;
    const sys = systemActor('test');
    const ids: string[] = [];
    // 火灾 (E0402): one calendar hour. Several cases, so the passes overlap on rows.
    for (let i = 0; i < 6; i++) {
      const { case: c } = await h.cases.create({ category: 'E0402', ...AT.A1, source: 'officer', actor: sys });
      await h.cases.act(c.id, 'register', sys);
      await h.cases.act(c.id, 'dispatch', sys, { workerId: 'w1' });
      ids.push(c.id);
    }
    const race = async () => {
      await Promise.all([h.cases.checkOverdue(), h.cases.checkOverdue(), h.cases.checkOverdue()]);
    };
    h.clock.t = t0 + 45 * MIN;
    await race();
    h.clock.t = t0 + 60 * MIN + 1000;
    await race();
    h.clock.t = t0 + 120 * MIN + 2000;
    await race();
    const rows = await h.hub.ctx.db.query<{ case_id: string; action: string; n: number }>(
      `select case_id, action, count(*)::int as n from case_history
        where case_id = any($1::text[]) and action in ('warn', 'overdue', 'supervise', 'escalate', 'ack_overdue')
        group by case_id, action order by case_id, action`,
      [ids],
    );
    for (const id of ids) {
      const mine = Object.fromEntries(rows.filter((r) => r.case_id === id).map((r) => [r.action, r.n]));
      // Two escalations (street, then district), everything else once.
      expect(mine, id).toMatchObject({ warn: 1, overdue: 1, supervise: 1, escalate: 2 });
      if (mine.ack_overdue !== undefined) expect(mine.ack_overdue, id).toBe(1);
    }
  }, 120_000);
});
