/**
 * An automatic re-dispatch whose first choice is refused by the worker's row
 * (taken a moment before by another escalation on the same beat) goes to the
 * next candidate, until the row accepts one or none is left: one assignment
 * per worker, one dispatch command per handheld, no `dispatch_no_candidate`
 * alarm while a candidate is free, exactly one when none is. A dispatcher's
 * dispatch to a named worker who is taken still gets its 409.
 */
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Command } from '@gridlink/devices';
import type { DispatchAlarm } from '../../src/dispatch/index.js';
import { engines } from '../helpers.js';
import { AT, startDispatchHub, waitFor, type DispatchHub } from './fixtures.js';

const REFUSED = 'automatic dispatch refused, worker taken meanwhile: trying the next candidate';
/** Guards a hang on a busy machine; not a latency assertion. */
const WAIT = 30_000;

for (const engine of engines()) {
  describe(`automatic re-dispatch past a worker taken meanwhile (${engine.name})`, () => {
    let h: DispatchHub;
    const alarms: DispatchAlarm[] = [];
    const logs: Array<{ msg: string; caseId?: string; workerId?: string }> = [];

    beforeAll(async () => {
      const sink = new Writable({
        write(chunk: Buffer, _enc, done) {
          for (const line of chunk.toString().split('\n')) if (line) logs.push(JSON.parse(line) as { msg: string });
          done();
        },
      });
      h = await startDispatchHub({ databaseUrl: engine.url, logger: pino({ level: 'info' }, sink), config: { acceptTimeoutS: 60 } });
      h.hub.ctx.bus.on('dispatch.alarm', 'test', (a) => void alarms.push(a));
    }, 120_000);

    afterAll(async () => {
      await h?.stop();
    });

    const caseOf = async (id: string) => (await h.as('dispatcher')<{ status: string; workerId: string | null }>('GET', `/cases/${id}`)).body;
    const dispatch = (caseId: string, workerId: string) => h.as('dispatcher')<{ status: string; code?: string }>('POST', `/cases/${caseId}/actions`, { action: 'dispatch', workerId });
    const alarmsOf = (caseId: string, kind: DispatchAlarm['kind']) => alarms.filter((a) => a.caseId === caseId && a.kind === kind);
    const refusals = (caseIds: string[]) => logs.filter((l) => l.msg === REFUSED && caseIds.includes(l.caseId ?? ''));
    const dispatchCommands = (commands: Command[]) => commands.filter((c): c is Extract<Command, { type: 'dispatch' }> => c.type === 'dispatch');
    /** Open cases per worker, from the cases table. */
    async function openCases(workerIds: string[]): Promise<Record<string, string[]>> {
      const rows = await h.hub.ctx.db.query<{ id: string; worker_id: string }>(
        "select id, worker_id from cases where worker_id = any($1) and status in ('dispatched', 'accepted', 'on_scene')", [workerIds]);
      const out: Record<string, string[]> = Object.fromEntries(workerIds.map((w) => [w, []]));
      for (const r of rows) out[r.worker_id]!.push(r.id);
      return out;
    }
    async function rows(workerIds: string[]): Promise<Record<string, string | null>> {
      const r = await h.hub.ctx.db.query<{ id: string; case_id: string | null }>('select id, case_id from workers where id = any($1)', [workerIds]);
      return Object.fromEntries(r.map((x) => [x.id, x.case_id]));
    }
    /**
     * Holds the first `n` automatic dispatches until all `n` have been asked
     * for, so each escalation of the beat has ranked while every worker was
     * still free and the row, not the roster, has to turn the later ones
     * away (without it, an escalation that ranks after another's commit
     * simply skips the taken worker). Later attempts pass straight through.
     */
    function rankTogether(n: number): () => void {
      const act = h.cases.act;
      const held: Array<() => void> = [];
      h.cases.act = async function (this: unknown, id, action, actor, input) {
        if (action === 'dispatch' && actor.kind === 'system' && n > 0) {
          n--;
          const go = new Promise<void>((r) => held.push(r));
          if (n === 0) held.splice(0).forEach((r) => r());
          await go;
        }
        return act.call(this, id, action, actor, input);
      };
      return () => {
        h.cases.act = act;
      };
    }
    /** Withdraws the test's dispatches and takes its workers off the board. */
    async function tidy(caseIds: string[], workerIds: string[]): Promise<void> {
      for (const id of caseIds) {
        if ((await caseOf(id)).status === 'dispatched') expect((await h.as('dispatcher')('POST', `/cases/${id}/actions`, { action: 'cancel' })).status).toBe(200);
      }
      await h.dispatch.engine.idle();
      for (const id of workerIds) await h.dispatch.workers.setDuty(h.dispatch.workers.byId.get(id)!, false);
    }

    it('gives the case whose first choice another timeout on the same beat took to the second candidate', async () => {
      const near = (dLat: number) => ({ lat: AT.B1.lat + dLat, lon: AT.B1.lon });
      // The first workers have no fix: never candidates, so both escalations rank the same two spares.
      const [w1, w2] = [await h.addWorker({ id: 'w-one1', gridIds: ['G-B1'] }), await h.addWorker({ id: 'w-one2', gridIds: ['G-B1'] })];
      const spare = await h.addWorker({ id: 'w-spare', name: '甲', gridIds: ['G-B1'], at: near(0.0005) });
      const spare2 = await h.addWorker({ id: 'w-spare2', name: '乙', gridIds: ['G-B1'], at: near(0.0009) });
      const hs = await h.handheld(spare.deviceId, spare.secret);
      const hs2 = await h.handheld(spare2.deviceId, spare2.secret);
      const [c1, c2] = [await h.newCase(near(0)), await h.newCase(near(0.0001))];
      expect(h.dispatch.engine.candidates({ ...near(0), gridId: 'G-B1' }, 5).map((c) => c.workerId)).toEqual([spare.id, spare2.id]);
      expect((await dispatch(c1.id, w1.id)).status).toBe(200);
      expect((await dispatch(c2.id, w2.id)).status).toBe(200);
      await h.dispatch.engine.idle();

      // Both time out on one beat; each escalation ranks w-spare first while it is free, and the row gives it to one.
      const release = rankTogether(2);
      h.clock.advance(60_000);
      h.dispatch.flush();
      await waitFor(() => [c1, c2].every((c) => alarmsOf(c.id, 'dispatch_timeout').length === 1), WAIT);
      await h.dispatch.engine.idle();
      release();

      const cases = { [c1.id]: await caseOf(c1.id), [c2.id]: await caseOf(c2.id) };
      expect(Object.values(cases).map((c) => c.status)).toEqual(['dispatched', 'dispatched']);
      expect(Object.values(cases).map((c) => c.workerId).sort()).toEqual([spare.id, spare2.id]);
      const viaSpare = cases[c1.id]!.workerId === spare.id ? c1 : c2;
      const viaSpare2 = viaSpare === c1 ? c2 : c1;
      // The second was refused w-spare once (logged once) and went on to w-spare2; nobody was told there was no one.
      expect(refusals([c1.id, c2.id]).map((l) => [l.caseId, l.workerId])).toEqual([[viaSpare2.id, spare.id]]);
      expect(alarms.filter((a) => (a.caseId === c1.id || a.caseId === c2.id) && (a.kind === 'dispatch_no_candidate' || a.kind === 'dispatch_exhausted'))).toEqual([]);
      for (const c of [c1, c2]) expect(alarmsOf(c.id, 'dispatch_timeout')[0]!.nextWorkerId).toBe(cases[c.id]!.workerId);
      expect(alarmsOf(viaSpare2.id, 'dispatch_timeout')[0]!.message).toContain('已转派 乙');

      // One assignment per worker, in the rows and in the cases; the refused attempt is no dispatch of the case.
      expect(await rows([spare.id, spare2.id, w1.id, w2.id])).toEqual({ [spare.id]: viaSpare.id, [spare2.id]: viaSpare2.id, [w1.id]: null, [w2.id]: null });
      expect(await openCases([spare.id, spare2.id, w1.id, w2.id])).toEqual({ [spare.id]: [viaSpare.id], [spare2.id]: [viaSpare2.id], [w1.id]: [], [w2.id]: [] });
      const hist = await h.as('dispatcher')<{ items: Array<{ workerId: string; outcome: string | null; attempt: number }> }>('GET', `/cases/${viaSpare2.id}/dispatches?path=false`);
      expect(hist.body.items.map((i) => [i.workerId, i.outcome, i.attempt])).toEqual([[viaSpare2 === c1 ? w1.id : w2.id, 'timeout', 1], [spare2.id, null, 2]]);

      // Each handheld got the one dispatch it holds, over MQTT.
      await waitFor(() => dispatchCommands(hs.commands).length > 0 && dispatchCommands(hs2.commands).length > 0, WAIT);
      await h.dispatch.engine.idle();
      expect(dispatchCommands(hs.commands).map((c) => c.case.id)).toEqual([viaSpare.id]);
      expect(dispatchCommands(hs2.commands).map((c) => c.case.id)).toEqual([viaSpare2.id]);

      // A dispatcher who names the taken worker still gets the 409: no other worker is chosen for them.
      const c3 = await h.newCase(near(0.0002));
      const named = await dispatch(c3.id, spare.id);
      expect(named.status, JSON.stringify(named.body)).toBe(409);
      expect(named.body.code).toBe('WORKER_UNAVAILABLE');
      await h.dispatch.engine.idle();
      expect(await caseOf(c3.id)).toMatchObject({ status: 'registered', workerId: null });
      expect(refusals([c3.id])).toEqual([]);

      await tidy([c1.id, c2.id], [w1.id, w2.id, spare.id, spare2.id]);
    });

    it('leaves one case to the dispatcher with exactly one alarm when every candidate was taken', async () => {
      const near = (dLat: number) => ({ lat: AT.A2.lat + dLat, lon: AT.A2.lon });
      const firsts = [await h.addWorker({ id: 'w-two1', gridIds: ['G-A2'] }), await h.addWorker({ id: 'w-two2', gridIds: ['G-A2'] }), await h.addWorker({ id: 'w-two3', gridIds: ['G-A2'] })];
      const spare = await h.addWorker({ id: 'w-last', name: '丙', gridIds: ['G-A2'], at: near(0.0005) });
      const spare2 = await h.addWorker({ id: 'w-last2', name: '丁', gridIds: ['G-A2'], at: near(0.0009) });
      const cs = [await h.newCase(near(0)), await h.newCase(near(0.0001)), await h.newCase(near(0.0002))];
      for (let i = 0; i < 3; i++) expect((await dispatch(cs[i]!.id, firsts[i]!.id)).status).toBe(200);
      await h.dispatch.engine.idle();

      // Three time out on one beat for two free workers: two cases get one each, the third has no one left.
      const release = rankTogether(3);
      h.clock.advance(60_000);
      h.dispatch.flush();
      await waitFor(() => cs.every((c) => alarmsOf(c.id, 'dispatch_timeout').length === 1), WAIT);
      await h.dispatch.engine.idle();
      release();

      const after = await Promise.all(cs.map((c) => caseOf(c.id)));
      expect(after.filter((c) => c.status === 'dispatched').map((c) => c.workerId).sort()).toEqual([spare.id, spare2.id]);
      const leftIdx = after.findIndex((c) => c.status !== 'dispatched');
      const left = cs[leftIdx]!;
      expect(after[leftIdx]).toMatchObject({ status: 'registered', workerId: null });
      const ids = cs.map((c) => c.id);
      expect(alarms.filter((a) => ids.includes(a.caseId ?? '') && a.kind === 'dispatch_no_candidate').map((a) => a.caseId)).toEqual([left.id]);
      expect(alarms.filter((a) => ids.includes(a.caseId ?? '') && a.kind === 'dispatch_exhausted')).toEqual([]);
      // Its timeout alarm names no worker the case never went to.
      const timeout = alarmsOf(left.id, 'dispatch_timeout')[0]!;
      expect(timeout.nextWorkerId).toBeNull();
      expect(timeout.message).not.toContain('已转派');
      // Every refusal logged once: no worker refused twice to one case.
      const refused = refusals(ids).map((l) => `${l.caseId}:${l.workerId}`);
      expect(refused.length).toBeGreaterThanOrEqual(1);
      expect(new Set(refused).size).toBe(refused.length);
      expect(refusals([left.id]).length).toBeGreaterThanOrEqual(1);

      const workerIds = [spare.id, spare2.id, ...firsts.map((w) => w.id)];
      const open = await openCases(workerIds);
      expect(open[spare.id]).toHaveLength(1);
      expect(open[spare2.id]).toHaveLength(1);
      for (const w of firsts) expect(open[w.id]).toEqual([]);
      const r = await rows(workerIds);
      expect([r[spare.id], r[spare2.id]].sort()).toEqual([...open[spare.id]!, ...open[spare2.id]!].sort());
      expect(await h.hub.ctx.db.query('select 1 from case_dispatches where case_id = $1 and ended_at is null', [left.id])).toEqual([]);

      await tidy(ids, workerIds);
    });
  });
}
