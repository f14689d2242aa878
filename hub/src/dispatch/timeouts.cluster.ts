/**
 * Accept timeouts of dispatches when the hub is several nodes
 * (docs/cluster.md, "Dispatch timeouts").
 *
 * A dispatch lives in the memory of the node that made it (it follows that
 * node's event bus), and in the database: the worker's row (case_id, stage
 * 'dispatched', stage_since) and its case_dispatches row. Two rules make its
 * timeout fire exactly once:
 *
 * - Claim: before escalating, a node claims the dispatch, keyed by the
 *   worker's row (`cluster_claims`, one row per key, on the database clock). One node
 *   wins; a loser forgets its copy of the assignment. The claim is settled
 *   once the escalation has run; a claimer that dies half-way lets it run out
 *   and the next claimer's re-check of the case decides what is left.
 * - Adoption: the holder of the `dispatch.timers` lease reads the workers
 *   still 'dispatched' past the accept timeout plus a grace and takes into
 *   its memory those it does not know (their node died, or never told it);
 *   its own tick then times them out through the same claim.
 *
 * On the single process (leases not shared) neither applies.
 */
import type { Leases } from '../cluster/index.js';
import { claimHeldSql } from '../cluster/leases.js';
import type { Db } from '../store/index.js';

const lastScan = new WeakMap<object, number>();

interface Deps {
  db: Db;
  leases?: Leases;
}

/**
 * The claim on the timeout of the dispatch of `caseId` to `workerId`, keyed
 * by the worker's row (case, worker, stage_since: the same on every node,
 * and there even when its node died before writing case_dispatches): its key
 * when this node won it, false when another node has it or the worker is no
 * longer dispatched to the case, null on the single process.
 */
export async function claimTimeout(deps: Deps, caseId: string, workerId: string): Promise<string | false | null> {
  if (!deps.leases?.shared) return null;
  const rows = await deps.db.query<{ since: number | string }>(
    "select extract(epoch from stage_since) * 1000 as since from workers where id = $1 and case_id = $2 and stage = 'dispatched'",
    [workerId, caseId],
  );
  if (!rows[0]) return false;
  const key = `dispatch.timeout:${caseId}:${workerId}:${Math.round(Number(rows[0].since))}`;
  return (await deps.leases.claim(key)) ? key : false;
}

/**
 * On the `dispatch.timers` holder: hands every worker row still 'dispatched'
 * for longer than `afterMs` to `adopt` (which returns true when it was new to
 * this node). Also drops settled claims older than a week.
 */
export async function adoptOverdue(deps: Deps, afterMs: number, adopt: (workerId: string, caseId: string, since: number) => boolean, everyMs = 2_000): Promise<number> {
  if (!deps.leases?.shared || !deps.leases.holds('dispatch.timers')) return 0;
  const t = performance.now();
  if (t - (lastScan.get(deps) ?? -Infinity) < everyMs) return 0;
  lastScan.set(deps, t);
  const rows = await deps.db.query<{ id: string; case_id: string; since: number | string }>(
    `select id, case_id, extract(epoch from stage_since) * 1000 as since from workers
      where stage = 'dispatched' and case_id is not null and stage_since < now() - make_interval(secs => $1::float8 / 1000)`,
    [afterMs],
  );
  let n = 0;
  for (const r of rows) if (adopt(r.id, r.case_id, Number(r.since))) n++;
  await deps.db.query("delete from cluster_claims where done and claimed_at < now() - interval '7 days'");
  return n;
}

// ---- automatic dispatches owed by a dead node ------------------------------------------

const lastAutoScan = new WeakMap<object, number>();

/** The claim key of a case's automatic dispatch (one per case: auto-dispatch is tried once). */
export const autoDispatchKey = (caseId: string): string => `dispatch.auto:${caseId}`;

/**
 * The claim on deciding the automatic dispatch of `caseId`: `{ key }` when
 * this node won it (settle it once decided), 'settled' when a node decided
 * it earlier (a later event of the case may try again, as on one node),
 * false when another node is deciding it now, null on the single process.
 */
export async function claimAutoDispatch(deps: Deps, caseId: string): Promise<{ key: string } | 'settled' | false | null> {
  if (!deps.leases?.shared) return null;
  const key = autoDispatchKey(caseId);
  if (await deps.leases.claim(key)) return { key };
  const rows = await deps.db.query<{ done: boolean }>('select done from cluster_claims where key = $1', [key]);
  return rows[0]?.done ? 'settled' : false;
}

export interface OwedCase {
  id: string;
  code: string;
  name: string;
  nameEn: string;
  severity: string;
}

/**
 * On the `dispatch.timers` holder (or, once at start, on the single process,
 * which writes no claims): the cases an automatic dispatch is owed
 * to and no node decided. Owed is read from the case row, the same on every
 * node with the same GRIDLINK_DISPATCH_AUTO: a case of an auto-dispatched
 * category (`categories`, lower case: code, name or English name), still
 * `reported` or `registered`, with no worker, no department and no
 * `case_dispatches` row (nobody dispatched it, by hand or automatically),
 * created more than `graceMs` ago (its own node goes first) and less than
 * `windowMs` ago (an old case is the dispatcher's), whose claim
 * (`dispatch.auto:<case>`) was never settled and is not held now. Oldest
 * first. Severity is left to the caller (the rule's minimum).
 */
export async function owedAutoDispatches(deps: Deps, categories: readonly string[], graceMs: number, windowMs: number, everyMs = 2_000): Promise<OwedCase[]> {
  const shared = !!deps.leases?.shared;
  if ((shared && !deps.leases!.holds('dispatch.timers')) || categories.length === 0) return [];
  const t = performance.now();
  if (t - (lastAutoScan.get(deps) ?? -Infinity) < everyMs) return [];
  lastAutoScan.set(deps, t);
  // Not settled, and not held now (a claim whose holder's heartbeat ran out is free at once).
  const claims = shared ? `and not exists (select 1 from cluster_claims x where x.key = 'dispatch.auto:' || c.id and (x.done or ${claimHeldSql('x')}))` : '';
  return deps.db.query<OwedCase>(
    `select c.id, k.code, k.name, k.name_en as "nameEn", c.severity
       from cases c join case_categories k on k.code = c.category_code
      where c.created_at < now() - make_interval(secs => $1::float8 / 1000)
        and c.created_at > now() - make_interval(secs => $2::float8 / 1000)
        and c.status in ('reported', 'registered') and c.worker_id is null and c.department_id is null
        and (lower(k.code) = any($3::text[]) or lower(k.name) = any($3::text[]) or lower(k.name_en) = any($3::text[]))
        and not exists (select 1 from case_dispatches d where d.case_id = c.id)
        ${claims}
      order by c.created_at, c.id`,
    [graceMs, windowMs, categories.map((s) => s.toLowerCase())],
  );
}

// ---- re-dispatches owed by a dead node -------------------------------------------------

const lastEscalationScan = new WeakMap<object, number>();

/** The claim key of the re-dispatch a dispatch record's decline or timeout owes its case (one per record). */
export const escalationKey = (recordId: string): string => `dispatch.escalate:${recordId}`;

export interface OwedEscalation {
  recordId: string;
  caseId: string;
  workerId: string;
  outcome: 'declined' | 'timeout';
}

/**
 * On the `dispatch.timers` holder (or, once at start, on the single
 * process, which writes no claims): the dispatch records that ended
 * `declined` or `timeout` more than `graceMs` ago (their own node goes
 * first) and less than `windowMs` ago (an old case is the dispatcher's),
 * whose re-dispatch was never made (`escalated_at` null: the node that
 * committed the decline died first), that are still their case's latest
 * attempt, and whose claim (`dispatch.escalate:<record>`) was never settled
 * and is not held now. Oldest first.
 */
export async function owedEscalations(deps: Deps, graceMs: number, windowMs: number, everyMs = 2_000): Promise<OwedEscalation[]> {
  const shared = !!deps.leases?.shared;
  if (shared && !deps.leases!.holds('dispatch.timers')) return [];
  const t = performance.now();
  if (shared && t - (lastEscalationScan.get(deps) ?? -Infinity) < everyMs) return [];
  lastEscalationScan.set(deps, t);
  const claims = shared ? `and not exists (select 1 from cluster_claims x where x.key = 'dispatch.escalate:' || d.id and (x.done or ${claimHeldSql('x')}))` : '';
  return deps.db.query<OwedEscalation>(
    `select d.id as "recordId", d.case_id as "caseId", d.worker_id as "workerId", d.outcome
       from case_dispatches d
      where d.escalated_at is null and d.outcome in ('declined', 'timeout')
        and d.ended_at < now() - make_interval(secs => $1::float8 / 1000)
        and d.ended_at > now() - make_interval(secs => $2::float8 / 1000)
        and not exists (select 1 from case_dispatches n where n.case_id = d.case_id and n.attempt > d.attempt)
        ${claims}
      order by d.ended_at, d.id limit 100`,
    [graceMs, windowMs],
  );
}
