/**
 * Dispatch's SQL: the dispatch rows of a case (`case_dispatches`: who was
 * sent, when they accepted, arrived and finished) and the downlink outbox
 * (`dispatch_commands`: every command until the handheld has answered it).
 */
import type { Command } from '@gridlink/devices';
import type { Db, Queryable } from '../store/index.js';

export class DispatchRepo {
  constructor(private readonly db: Db) {}

  // ---- case_dispatches -------------------------------------------------------------------

  /**
   * The record of a dispatch, written in the case's transaction (`q`): the
   * attempt is counted there too (the case row is locked, so two dispatches
   * of one case cannot count alike) and the handheld is the worker's row's.
   * Null when the worker has no row.
   */
  async recordDispatch(q: Queryable, r: { id: string; caseId: string; workerId: string; actor: string; at: number }): Promise<{ deviceId: string; attempt: number } | null> {
    const rows = await q.query<{ device_id: string; attempt: number }>(
      `insert into case_dispatches (id, case_id, worker_id, device_id, attempt, actor, dispatched_at)
       select $1, $2, w.id, w.device_id, (select count(*) from case_dispatches where case_id = $2) + 1, $4, to_timestamp($5 / 1000.0)
         from workers w where w.id = $3
       returning device_id, attempt`,
      [r.id, r.caseId, r.workerId, r.actor, r.at],
    );
    return rows[0] ? { deviceId: rows[0].device_id, attempt: Number(rows[0].attempt) } : null;
  }

  /**
   * Ends every open dispatch of the case except `keep`'s (the worker it is
   * still open with), in the case action's transaction `q`: who they were.
   */
  async endOpenDispatches(q: Queryable, caseId: string, keep: string | null, at: number, outcome: string): Promise<Array<{ workerId: string; deviceId: string }>> {
    const rows = await q.query<{ worker_id: string; device_id: string }>(
      `update case_dispatches set ended_at = to_timestamp($3 / 1000.0), outcome = $4,
              resolved_at = case when $4 = 'resolved' then to_timestamp($3 / 1000.0) else resolved_at end
        where case_id = $1 and worker_id is distinct from $2 and ended_at is null
        returning worker_id, device_id`,
      [caseId, keep, at, outcome],
    );
    return rows.map((r) => ({ workerId: r.worker_id, deviceId: r.device_id }));
  }

  /** First accept / arrival of the open dispatch (later ones keep the first), in the case action's transaction `q`: the dispatch's handheld, if open. */
  async stamp(caseId: string, workerId: string, column: 'accepted_at' | 'arrived_at', ts: number, arrivedBy: string | undefined, q: Queryable): Promise<string | null> {
    const rows = await q.query<{ device_id: string }>(
      `update case_dispatches set ${column} = coalesce(${column}, to_timestamp($3 / 1000.0))${column === 'arrived_at' ? ', arrived_by = coalesce(arrived_by, $4)' : ''}
        where case_id = $1 and worker_id = $2 and ended_at is null returning device_id`,
      column === 'arrived_at' ? [caseId, workerId, ts, arrivedBy ?? null] : [caseId, workerId, ts],
    );
    return rows[0]?.device_id ?? null;
  }

  /** The case's latest record, when it is `workerId`'s, ended declined or timed out, and its re-dispatch is owed (not marked made). */
  async owedRecord(caseId: string, workerId: string): Promise<string | null> {
    const rows = await this.db.query<{ id: string; worker_id: string; owed: boolean }>(
      `select id, worker_id, escalated_at is null and outcome in ('declined', 'timeout') as owed from case_dispatches
        where case_id = $1 order by attempt desc limit 1`,
      [caseId],
    );
    const r = rows[0];
    return r && r.worker_id === workerId && r.owed ? r.id : null;
  }

  /** The re-dispatch the case's declined or timed-out records owe was decided (made, or found not needed). */
  async markEscalated(caseId: string): Promise<void> {
    await this.db.query("update case_dispatches set escalated_at = now() where case_id = $1 and escalated_at is null and outcome in ('declined', 'timeout')", [caseId]);
  }

  /** Workers a case was dispatched to so far, one entry per dispatch. */
  async dispatchedWorkers(caseId: string): Promise<string[]> {
    const rows = await this.db.query<{ worker_id: string }>('select worker_id from case_dispatches where case_id = $1', [caseId]);
    return rows.map((r) => r.worker_id);
  }

  // ---- dispatch_commands (the outbox) ------------------------------------------------------

  /** A new open command, not sent yet; `q` is the transaction it commits with (the case's, for a dispatch). */
  async insertCommand(deviceId: string, workerId: string, caseId: string, cmd: Command, q: Queryable = this.db): Promise<void> {
    await q.query(
      'insert into dispatch_commands (cmd_id, device_id, worker_id, case_id, type, body) values ($1, $2, $3, $4, $5, $6)',
      [cmd.cmdId, deviceId, workerId, caseId, cmd.type, JSON.stringify(cmd)],
    );
  }

  /**
   * One more send of a command; `done` closes it (a cancel handed to a live
   * session needs no answer). The first send is stamped `first_sent_at` with
   * `at` (the hub's clock, as the engine's timers count).
   */
  async markSent(cmdId: string, done: boolean, at: number): Promise<void> {
    await this.db.query(
      `update dispatch_commands set sent_at = now(), sends = sends + 1, first_sent_at = coalesce(first_sent_at, to_timestamp($2 / 1000.0))${done ? `, done_at = now(), done_reason = 'sent'` : ''} where cmd_id = $1`,
      [cmdId, at],
    );
  }

  /**
   * When the `dispatch` command of the dispatch of `caseId` to `workerId` (the
   * newest) was first sent, epoch ms: null while it is open and not sent yet
   * (it will be), undefined when there is no such command, when it was sent
   * before first sends were stamped, or when it was closed without ever
   * being sent (its timeout then counts from the dispatch, as it used to:
   * nothing will be sent to wait for).
   */
  async dispatchFirstSent(caseId: string, workerId: string): Promise<number | null | undefined> {
    const [r] = await this.db.query<{ first: number | string | null; sent: boolean; open: boolean }>(
      `select extract(epoch from first_sent_at) * 1000 as first, sent_at is not null as sent, done_at is null as open from dispatch_commands
        where case_id = $1 and worker_id = $2 and type = 'dispatch' order by created_at desc limit 1`,
      [caseId, workerId],
    );
    if (!r) return undefined;
    if (r.first !== null) return Number(r.first);
    return !r.sent && r.open ? null : undefined;
  }

  /**
   * Open commands committed and never sent: those of one case (for one
   * handheld, of one type, when given; just committed with the case), or, without `only`, every one
   * created more than `olderThanMs` ago on the database clock (what a process
   * that died after the commit owes), oldest first.
   */
  async unsentCommands(o: { only?: { caseId: string; deviceId?: string; type?: Command['type'] }; olderThanMs?: number; limit?: number }): Promise<Array<{ deviceId: string; caseId: string; command: Command }>> {
    const rows = o.only
      ? await this.db.query<{ device_id: string; case_id: string; body: Command | string }>(
        `select device_id, case_id, body from dispatch_commands
          where case_id = $1 and ($2::text is null or device_id = $2) and ($3::text is null or type = $3)
            and done_at is null and sent_at is null order by created_at`,
        [o.only.caseId, o.only.deviceId ?? null, o.only.type ?? null])
      : await this.db.query<{ device_id: string; case_id: string; body: Command | string }>(
        `select device_id, case_id, body from dispatch_commands
          where done_at is null and sent_at is null and created_at < now() - make_interval(secs => $1::float8 / 1000)
          order by created_at limit $2`,
        [o.olderThanMs ?? 0, o.limit ?? 500]);
    return rows.map((r) => ({ deviceId: r.device_id, caseId: r.case_id, command: typeof r.body === 'string' ? (JSON.parse(r.body) as Command) : r.body }));
  }

  /**
   * Open commands never sent, or sent between `since` and `until` (epoch
   * ms, compared with the database's sent_at): what a routing outage in
   * that span may have kept from their handhelds, oldest first.
   */
  async commandsSentIn(since: number, until: number, limit = 5_000): Promise<Array<{ deviceId: string; caseId: string; command: Command; sent: boolean }>> {
    const rows = await this.db.query<{ device_id: string; case_id: string; body: Command | string; sent: boolean }>(
      `select device_id, case_id, body, sent_at is not null as sent from dispatch_commands
        where done_at is null and (sent_at is null or (sent_at >= to_timestamp($1 / 1000.0) and sent_at < to_timestamp($2 / 1000.0)))
        order by created_at limit $3`,
      [since, until, limit],
    );
    return rows.map((r) => ({ deviceId: r.device_id, caseId: r.case_id, command: typeof r.body === 'string' ? (JSON.parse(r.body) as Command) : r.body, sent: r.sent }));
  }

  /** Closes the open commands of one type for a case on a handheld; `q` is the transaction it commits with (the case's, for a cancel). */
  async completeCommands(caseId: string, deviceId: string, type: Command['type'], reason: string, q: Queryable = this.db): Promise<void> {
    await q.query(
      `update dispatch_commands set done_at = now(), done_reason = $4 where case_id = $1 and device_id = $2 and type = $3 and done_at is null`,
      [caseId, deviceId, type, reason],
    );
  }

  /** Open commands of a handheld not published since `onlineAt` (epoch ms, compared with the database's sent_at), oldest first. */
  async pendingCommands(deviceId: string, onlineAt: number): Promise<Array<{ caseId: string; command: Command; sent: boolean }>> {
    const rows = await this.db.query<{ case_id: string; body: Command | string; sent: boolean }>(
      `select case_id, body, sent_at is not null as sent from dispatch_commands
        where device_id = $1 and done_at is null and (sent_at is null or sent_at < to_timestamp($2 / 1000.0))
        order by created_at`,
      [deviceId, onlineAt],
    );
    return rows.map((r) => ({ caseId: r.case_id, command: typeof r.body === 'string' ? (JSON.parse(r.body) as Command) : r.body, sent: r.sent }));
  }
}
