/**
 * A dispatch is one commit: the case's status, the worker's row, the
 * dispatch's record (`case_dispatches`) and its command in the outbox
 * (`dispatch_commands`) are written in the case's transaction, all or none,
 * and the command is published from the outbox after the commit with the
 * cmdId it was stored under. The database itself refuses the command row in
 * one test (a check constraint the test adds): the dispatch must then leave
 * nothing behind. Attacks on the write path: a field the action does not take,
 * a dispatcher of another street, values the database cannot store.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { engines } from '../helpers.js';
import { AT, startDispatchHub, waitFor, type DispatchHub } from './fixtures.js';

for (const engine of engines()) {
  describe(`a dispatch's record and command commit with its case (${engine.name})`, () => {
    let h: DispatchHub;
    const q = <T>(sql: string, params: unknown[] = []) => h.hub.ctx.db.query<T>(sql, params);
    const written = async (caseId: string) => ({
      dispatches: await q<{ worker_id: string; attempt: number; actor: string }>('select worker_id, attempt, actor from case_dispatches where case_id = $1 order by dispatched_at', [caseId]),
      commands: await q<{ cmd_id: string; device_id: string; type: string; sends: number; body: unknown }>('select cmd_id, device_id, type, sends, body from dispatch_commands where case_id = $1 order by created_at', [caseId]),
    });
    const workerRow = async (id: string) => (await q<{ case_id: string | null; stage: string | null }>('select case_id, stage from workers where id = $1', [id]))[0];
    const caseOf = async (id: string) => (await h.as('dispatcher')<{ status: string; workerId: string | null }>('GET', `/cases/${id}`)).body;

    beforeAll(async () => {
      h = await startDispatchHub({ databaseUrl: engine.url, config: { acceptTimeoutS: 600 } });
    }, 120_000);
    afterAll(async () => {
      await h?.stop();
    });

    it('writes the record and the command before the commit and publishes the stored command after it', async () => {
      const w = await h.addWorker({ id: 'w-one', gridIds: ['G-A1'], at: AT.A1 });
      const { commands } = await h.handheld(w.deviceId, w.secret);
      const c = await h.newCase(AT.A1);
      const r = await h.as('dispatcher')('POST', `/cases/${c.id}/actions`, { action: 'dispatch', workerId: w.id });
      expect(r.status).toBe(200);
      // The answer comes after the commit and before the engine has heard of it: record and command are there already.
      const rows = await written(c.id);
      expect(rows.dispatches).toEqual([{ worker_id: w.id, attempt: 1, actor: 'user:u-dispatcher' }]);
      expect(rows.commands).toMatchObject([{ device_id: w.deviceId, type: 'dispatch' }]);
      const cmd = await waitFor(() => commands.find((x) => x.type === 'dispatch' && x.case.id === c.id));
      // What the handheld got is the stored body: the same cmdId, the same payload.
      expect(cmd).toEqual(rows.commands[0]!.body);
      await h.dispatch.engine.idle();
      expect((await written(c.id)).commands[0]!.sends).toBe(1);
      // A second look for unsent commands (what a restart runs) finds nothing: it was sent once.
      expect(await h.dispatch.engine.sendUnsent(0)).toBe(0);
      expect((await written(c.id)).commands[0]!.sends).toBe(1);
      expect((await h.as('dispatcher')('POST', `/cases/${c.id}/actions`, { action: 'cancel' })).status).toBe(200);
      await h.dispatch.engine.idle();
    });

    it('leaves the case, the worker and the outbox untouched when the database refuses the command', async () => {
      const w = await h.addWorker({ id: 'w-refused', gridIds: ['G-A2'], at: AT.A2 });
      const { commands } = await h.handheld(w.deviceId, w.secret);
      const c = await h.newCase(AT.A2);
      // The database, not the hub, refuses this case's command row.
      await q(`alter table dispatch_commands add constraint test_refuse check (case_id <> '${c.id}')`);
      try {
        const r = await h.as('dispatcher')<{ code: string; message: string }>('POST', `/cases/${c.id}/actions`, { action: 'dispatch', workerId: w.id });
        expect(r.status).toBe(500);
        expect(r.body.message).not.toMatch(/test_refuse|dispatch_commands/);
      } finally {
        await q('alter table dispatch_commands drop constraint test_refuse');
      }
      await h.dispatch.engine.idle();
      expect(await caseOf(c.id)).toMatchObject({ status: 'registered', workerId: null });
      expect(await workerRow(w.id)).toEqual({ case_id: null, stage: null });
      expect(await written(c.id)).toEqual({ dispatches: [], commands: [] });
      const hist = await h.as('dispatcher')<{ history: Array<{ action: string }> }>('GET', `/cases/${c.id}`);
      expect(hist.body.history.map((x) => x.action)).not.toContain('dispatch');
      expect((await h.as('dispatcher')<{ status: string }>('GET', `/workers/${w.id}`)).body.status).toBe('available');
      // And the worker is free for it once the database takes the row again.
      expect((await h.as('dispatcher')('POST', `/cases/${c.id}/actions`, { action: 'dispatch', workerId: w.id })).status).toBe(200);
      await waitFor(() => commands.find((x) => x.type === 'dispatch' && x.case.id === c.id));
      expect((await written(c.id)).dispatches).toEqual([{ worker_id: w.id, attempt: 1, actor: 'user:u-dispatcher' }]);
      expect((await h.as('dispatcher')('POST', `/cases/${c.id}/actions`, { action: 'cancel' })).status).toBe(200);
      await h.dispatch.engine.idle();
    });

    it('refuses a field the action does not take, a dispatcher of another street and values the database cannot store, writing nothing', async () => {
      const w = await h.addWorker({ id: 'w-b1', gridIds: ['G-B1'], at: AT.B1 });
      const c = await h.newCase(AT.B1);
      const act = (who: 'dispatcher' | 'dispatcherA', body: Record<string, unknown>) => h.as(who)<{ code: string }>('POST', `/cases/${c.id}/actions`, { action: 'dispatch', ...body });
      // The command's id, its attempt or its payload are the hub's: not fields of the action.
      for (const extra of [{ cmdId: 'cmd-forged' }, { attempt: 7 }, { command: { type: 'cancel' } }]) {
        const r = await act('dispatcher', { workerId: w.id, ...extra });
        expect(r.status, JSON.stringify(extra)).toBe(400);
      }
      // `data` annotates the history; it may not name the worker.
      expect((await act('dispatcher', { workerId: w.id, data: { workerId: 'w-other' } })).body.code).toBe('DATA_FIELD_RESERVED');
      // A dispatcher of street S-A neither sees the S-B case nor may send the S-B worker to a case of S-A.
      expect((await act('dispatcherA', { workerId: w.id })).status).toBe(404);
      const own = await h.newCase(AT.A2);
      const cross = await h.as('dispatcherA')<{ code: string }>('POST', `/cases/${own.id}/actions`, { action: 'dispatch', workerId: w.id });
      expect(cross.status).toBe(404);
      expect(cross.body.code).toBe('WORKER_NOT_FOUND');
      expect(await written(own.id)).toEqual({ dispatches: [], commands: [] });
      // Values PostgreSQL cannot store (a NUL) or the schema bounds.
      for (const bad of [{ workerId: 'w-b1\u0000' }, { workerId: w.id, note: 'bad\u0000note' }, { workerId: w.id, data: { remark: 'bad\u0000' } }]) {
        const r = await act('dispatcher', bad);
        expect(r.status, JSON.stringify(bad)).toBe(400);
        expect(r.body.code).toBe('NUL_BYTE');
      }
      expect((await act('dispatcher', { workerId: 'w'.repeat(65) })).status).toBe(400);
      await h.dispatch.engine.idle();
      expect(await caseOf(c.id)).toMatchObject({ status: 'registered', workerId: null });
      expect(await workerRow(w.id)).toEqual({ case_id: null, stage: null });
      expect(await written(c.id)).toEqual({ dispatches: [], commands: [] });
    });
  });
}
