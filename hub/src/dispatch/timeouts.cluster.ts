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
