/**
 * Dispatch's SQL: the dispatch rows of a case (`case_dispatches`: who was
 * sent, when they accepted, arrived and finished) and the downlink outbox
 * (`dispatch_commands`: every command until the handheld has answered it).
 */
import type { Command } from '@gridlink/devices';
import type { Db } from '../store/index.js';

export class DispatchRepo {
  constructor(private readonly db: Db) {}

  // ---- case_dispatches -------------------------------------------------------------------

  async recordDispatch(r: { id: string; caseId: string; workerId: string; deviceId: string; attempt: number; actor: string; at: number }): Promise<void> {
    await this.db.query(
      `insert into case_dispatches (id, case_id, worker_id, device_id, attempt, actor, dispatched_at) values ($1, $2, $3, $4, $5, $6, to_timestamp($7 / 1000.0))`,
      [r.id, r.caseId, r.workerId, r.deviceId, r.attempt, r.actor, r.at],
    );
  }

  /** Ends the open dispatch of this worker to this case (`resolved` also stamps resolved_at). */
  async endDispatch(caseId: string, workerId: string, at: number, outcome: string): Promise<void> {
    await this.db.query(
      `update case_dispatches set ended_at = to_timestamp($3 / 1000.0), outcome = $4,
              resolved_at = case when $4 = 'resolved' then to_timestamp($3 / 1000.0) else resolved_at end
        where case_id = $1 and worker_id = $2 and ended_at is null`,
      [caseId, workerId, at, outcome],
    );
  }

  /** First accept / arrival of the open dispatch (later ones keep the first). */
  async stamp(caseId: string, workerId: string, column: 'accepted_at' | 'arrived_at', ts: number, arrivedBy?: string): Promise<void> {
    await this.db.query(
      `update case_dispatches set ${column} = coalesce(${column}, to_timestamp($3 / 1000.0))${column === 'arrived_at' ? ', arrived_by = coalesce(arrived_by, $4)' : ''}
        where case_id = $1 and worker_id = $2 and ended_at is null`,
      column === 'arrived_at' ? [caseId, workerId, ts, arrivedBy ?? null] : [caseId, workerId, ts],
    );
  }

  /** Workers a case was dispatched to so far, one entry per dispatch. */
  async dispatchedWorkers(caseId: string): Promise<string[]> {
    const rows = await this.db.query<{ worker_id: string }>('select worker_id from case_dispatches where case_id = $1', [caseId]);
    return rows.map((r) => r.worker_id);
  }

  // ---- dispatch_commands (the outbox) ------------------------------------------------------

  async insertCommand(deviceId: string, workerId: string, caseId: string, cmd: Command): Promise<void> {
    await this.db.query(
      'insert into dispatch_commands (cmd_id, device_id, worker_id, case_id, type, body) values ($1, $2, $3, $4, $5, $6)',
      [cmd.cmdId, deviceId, workerId, caseId, cmd.type, JSON.stringify(cmd)],
    );
  }

  /** One more send of a command; `done` closes it (a cancel handed to a live session needs no answer). */
  async markSent(cmdId: string, done: boolean): Promise<void> {
    await this.db.query(
      `update dispatch_commands set sent_at = now(), sends = sends + 1${done ? `, done_at = now(), done_reason = 'sent'` : ''} where cmd_id = $1`,
      [cmdId],
    );
  }

  async completeCommands(caseId: string, deviceId: string, type: Command['type'], reason: string): Promise<void> {
    await this.db.query(
      `update dispatch_commands set done_at = now(), done_reason = $4 where case_id = $1 and device_id = $2 and type = $3 and done_at is null`,
      [caseId, deviceId, type, reason],
    );
  }

  /** Open commands of a handheld not published since `onlineAt` (epoch ms, compared with the database's sent_at), oldest first. */
  async pendingCommands(deviceId: string, onlineAt: number): Promise<Array<{ caseId: string; command: Command }>> {
    const rows = await this.db.query<{ case_id: string; body: Command | string }>(
      `select case_id, body from dispatch_commands
        where device_id = $1 and done_at is null and (sent_at is null or sent_at < to_timestamp($2 / 1000.0))
        order by created_at`,
      [deviceId, onlineAt],
    );
    return rows.map((r) => ({ caseId: r.case_id, command: typeof r.body === 'string' ? (JSON.parse(r.body) as Command) : r.body }));
  }
}
