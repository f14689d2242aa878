/**
 * Leases: the work that must happen once per cluster (retention, rule timers,
 * overdue checks) runs on the node that holds its lease.
 *
 * A lease is a row in `cluster_leases` (name, holder, token, expires_at),
 * taken and renewed with one conditional upsert on the database clock, so
 * nodes never compare their own clocks. The holder renews every ttl/3; a
 * node that dies stops renewing and the first node to find the row expired
 * takes it (the token goes up each time the lease changes hands).
 * A node believes it holds a lease only until `sent + ttl - margin` measured
 * on its own monotonic clock from the moment it sent the renewal, so it
 * stops before anybody else can start, even when its renewals hang.
 *
 * That belief is not trusted with the work: a holder stalled past the margin
 * (a GC pause, SIGSTOP, an overloaded machine) wakes up believing. So the
 * guarded jobs write through the lease's fence (`fence(name)`): one
 * transaction that first finds, on the database, this node's token still the
 * current one and still unexpired, and keeps the lease row `for key share`
 * until it commits. A node taking the lease over locks the row `for update
 * skip locked`, so it waits (a round) for such a transaction instead of
 * passing it; renewals by the holder itself change no key and never wait.
 * A stale holder's writes are refused (rolled back, logged, counted), not
 * doubled. A holder frozen inside a fenced transaction cannot keep the lease
 * hostage: the transaction sets `idle_in_transaction_session_timeout` to the
 * lease time, and the server ends it.
 *
 * Modules see only `Leases.holds(name)` and `Leases.fence(name)`: the single
 * process answers true for everything and its fence (token 0) runs the work
 * as it always did, without a transaction or a check.
 */
import type { Db, Queryable } from '../store/db.js';
import type { Logger } from '../core/logger.js';

/** Every singleton of the hub, by the lease that guards it (docs/cluster.md). */
export const LEASES = {
  retention: 'drops readings, events and positions past GRIDLINK_RETENTION_DAYS (store)',
  'rules.timers': 'absence (device offline), auto-clear and alarm escalation (rules tick)',
  'cases.overdue': '黄牌/红牌 overdue and 签收 checks of open cases (cases tick)',
  'dispatch.timers': 'accept timeouts of dispatches whose node is gone (dispatch adopts them from the workers table)',
  'devices.liveness': 'marks offline the devices whose node is gone (cluster presence)',
} as const;
export type LeaseName = keyof typeof LEASES;

export interface LeaseRole {
  /** Node holding the lease now (null: free or expired). */
  holder: string | null;
  /** This node holds it. */
  mine: boolean;
  /** Fencing number: goes up each time the lease changes hands. */
  token: number;
}

/** A stale holder's fenced write: the lease passed to another node (or expired) since this node took it with `token`. */
export class LeaseLostError extends Error {
  readonly code = 'LEASE_LOST';
  constructor(readonly lease: LeaseName, readonly token: number) {
    super(`lease ${lease} is no longer held with token ${token}: write refused`);
  }
}

/** SQLSTATE of a session the server ended for idling in a transaction (a fenced transaction whose node stalled). */
const IDLE_IN_TX_TIMEOUT = '25P03';

/**
 * The writes of one run of a guarded job, fenced by the lease's token as it
 * was when the run began (a run that began under an older token than the
 * current one is refused, even if this node holds the lease again).
 */
export interface Fence {
  readonly lease: LeaseName;
  /** The fencing token the writes are checked against; 0 on the single process. */
  readonly token: number;
  /**
   * Runs `fn` with the writes. Cluster: in one transaction on `db` that
   * checks the token first; a stale token throws LeaseLostError and nothing
   * of `fn` is written. Single process: `fn(db)`, as before fences existed.
   */
  run<T>(db: Db, fn: (q: Queryable) => Promise<T>): Promise<T>;
  /** The same check inside a transaction the caller opened (first statement). Single process: nothing. */
  check(q: Queryable): Promise<void>;
  /**
   * True when `err` is this fence refusing (LeaseLostError, or the server
   * ending the stalled transaction): the caller logs it as refused, not as a
   * failure. Counted once per refusal in `refused()`.
   */
  refused(err: unknown): boolean;
}

export interface Leases {
  /** True while this node may do the work the lease guards. */
  holds(name: LeaseName): boolean;
  /** The fence for writes of the work `name` guards, with the token this node holds it by now. */
  fence(name: LeaseName): Fence;
  /** Fenced writes refused on this node since it started, by lease (/metrics). */
  refusals(): Record<LeaseName, number>;
  /** Role of this node for each lease (health and metrics). */
  roles(): Record<LeaseName, LeaseRole>;
  /** False on the single process: state other nodes change must be re-read before timed work. */
  readonly shared: boolean;
  /**
   * Claims one piece of timed work (`key`, e.g. the accept timeout of one
   * dispatch row) for this node: true for exactly one caller across the
   * cluster until the claim is settled, or until `holdMs` passes without it
   * being settled, or until its claimer's heartbeat in the nodes table runs
   * out (it died half-way; the work's own re-check decides what is left to
   * do). A live claimer's claim is honoured for `holdMs`. The single process
   * claims everything.
   */
  claim(key: string, holdMs?: number): Promise<boolean>;
  /** The claimed work is done: nobody claims `key` again. */
  settle(key: string): Promise<void>;
  /** This node gives up its unsettled claim on `key` (its work failed and is left for another try): anybody may claim it at once. */
  release(key: string): Promise<void>;
}

const zeroByLease = () => Object.fromEntries(Object.keys(LEASES).map((n) => [n, 0])) as Record<LeaseName, number>;

/** The single process: every lease is its own. */
export function soleLeases(nodeId = 'single'): Leases {
  const roles = Object.fromEntries(Object.keys(LEASES).map((n) => [n, { holder: nodeId, mine: true, token: 0 }])) as Record<LeaseName, LeaseRole>;
  // Nobody else can hold a lease: the work runs as it always did, token 0, no transaction, no check.
  const fences = Object.fromEntries(Object.keys(LEASES).map((n) => [n, {
    lease: n as LeaseName, token: 0, run: (db: Db, fn: (q: Queryable) => Promise<unknown>) => fn(db), check: async () => undefined, refused: () => false,
  }])) as unknown as Record<LeaseName, Fence>;
  const none = zeroByLease();
  return { holds: () => true, fence: (name) => fences[name], refusals: () => none, roles: () => roles, shared: false, claim: async () => true, settle: async () => undefined, release: async () => undefined };
}

const MIGRATION_LOCK = 7412;

/**
 * The nodes table: one row per node with its heartbeat (`alive_until`, on the
 * database clock), renewed by the node's lease round every ttl/3 from the
 * moment its leases start, and with its URL by the camera owners once it
 * listens (cameras.ts). A node whose row has run out is dead: the clip
 * recorder settles its clips (video/clips.ts) and its claims are free at
 * once (`claim`).
 */
export const NODES_DDL = 'create table if not exists video_nodes (node text primary key, url text not null, alive_until timestamptz not null)';

/**
 * SQL true when the claim row aliased `c` is held now: unsettled, its time
 * not run out, and its holder not known dead (a heartbeat in the nodes table
 * that has run out). A holder without a heartbeat row is taken for alive
 * until the claim's time runs out.
 */
export const claimHeldSql = (c: string): string =>
  `(not ${c}.done and ${c}.until > now() and not exists (select 1 from video_nodes n where n.node = ${c}.holder and n.alive_until < now()))`;

export class PgLeases implements Leases {
  readonly shared = true;
  private readonly until = new Map<LeaseName, number>();
  private readonly state = new Map<LeaseName, LeaseRole>();
  private timer: NodeJS.Timeout | null = null;
  private beating: Promise<void> | null = null;
  private stopped = false;
  private readonly refused = zeroByLease();
  /** Called when this node gains or loses a lease. */
  onChange: ((name: LeaseName, mine: boolean) => void) | null = null;

  constructor(
    private readonly db: Db,
    readonly nodeId: string,
    private readonly ttlMs: number,
    private readonly logger: Logger,
    private readonly clock: () => number = () => performance.now(),
  ) {
    for (const n of Object.keys(LEASES) as LeaseName[]) this.state.set(n, { holder: null, mine: false, token: 0 });
  }

  holds(name: LeaseName): boolean {
    return !this.stopped && (this.until.get(name) ?? 0) > this.clock();
  }

  fence(name: LeaseName): Fence {
    const token = this.state.get(name)!.token;
    const check = async (q: Queryable) => {
      // `for key share`: a takeover (`for update`) waits for this transaction; the holder's own renewals do not.
      // A node frozen in here is ended by the server after the lease time, so it never holds the lease hostage.
      const rows = await q.query(
        `select set_config('idle_in_transaction_session_timeout', $4, true) from cluster_leases
          where name = $1 and holder = $2 and token = $3 and expires_at > now() for key share`,
        [name, this.nodeId, token, String(this.ttlMs)],
      );
      if (rows.length !== 1) throw new LeaseLostError(name, token);
    };
    const refused = (err: unknown) => {
      const lost = err instanceof LeaseLostError ? err.lease === name : (err as { code?: unknown } | null)?.code === IDLE_IN_TX_TIMEOUT;
      if (!lost) return false;
      this.refused[name]++;
      this.logger.warn({ lease: name, node: this.nodeId, token, err: (err as Error).message }, 'stale lease holder: its writes were refused');
      return true;
    };
    return {
      lease: name,
      token,
      check,
      refused,
      // Refused or failed, the transaction is rolled back: nothing of `fn` is written.
      run: (db, fn) => db.tx(async (q) => {
        await check(q);
        return fn(q);
      }),
    };
  }

  refusals(): Record<LeaseName, number> {
    return { ...this.refused };
  }

  roles(): Record<LeaseName, LeaseRole> {
    const out = {} as Record<LeaseName, LeaseRole>;
    for (const [n, r] of this.state) out[n] = { ...r, mine: this.holds(n) };
    return out;
  }

  async start(): Promise<void> {
    if (this.db.kind !== 'postgres') throw new Error('cluster mode needs PostgreSQL (DATABASE_URL=postgres://...): leases live in the shared database');
    // Several nodes may start at once on an empty database.
    await this.db.tx(async (q) => {
      await q.query('select pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
      await q.query(`create table if not exists cluster_leases (
        name text primary key, holder text not null, token bigint not null default 1,
        expires_at timestamptz not null, updated_at timestamptz not null default now())`);
      await q.query(`create table if not exists cluster_claims (
        key text primary key, holder text not null, until timestamptz not null, done boolean not null default false,
        claimed_at timestamptz not null default now())`);
      await q.query(NODES_DDL);
    });
    await this.beat();
    this.timer = setInterval(() => void this.beat(), Math.max(200, Math.floor(this.ttlMs / 3)));
    this.timer.unref();
  }

  /** One renewal round: renew what is held, take what expired, learn who holds the rest. */
  beat(): Promise<void> {
    if (this.beating || this.stopped) return this.beating ?? Promise.resolve();
    this.beating = this.round().finally(() => (this.beating = null));
    return this.beating;
  }

  private async round(): Promise<void> {
    const names = Object.keys(LEASES) as LeaseName[];
    const sent = this.clock();
    let rows: Array<{ name: LeaseName; holder: string; token: number; live: boolean }>;
    try {
      // Renew what is held, take what expired, create what is missing. A takeover locks the row
      // `for update skip locked`: a row a fenced transaction of the old holder still has (`for key share`)
      // is skipped this round, so the new holder never starts while the old one's writes may commit.
      await this.db.query(
        `with gate as (
           select name from cluster_leases where name = any($1::text[]) and holder <> $2 and expires_at < now() for update skip locked
         ), taken as (
           update cluster_leases l set holder = $2, token = l.token + 1, expires_at = now() + make_interval(secs => $3::float8 / 1000), updated_at = now()
             from gate where l.name = gate.name returning l.name
         ), renewed as (
           update cluster_leases set expires_at = now() + make_interval(secs => $3::float8 / 1000), updated_at = now()
            where name = any($1::text[]) and holder = $2 returning name
         )
         insert into cluster_leases (name, holder, token, expires_at)
         select n, $2, 1, now() + make_interval(secs => $3::float8 / 1000) from unnest($1::text[]) as n
         on conflict (name) do nothing`,
        [names, this.nodeId, this.ttlMs],
      );
      rows = await this.db.query('select name, holder, token, expires_at > now() as live from cluster_leases where name = any($1::text[])', [names]);
      // This node's heartbeat, from before it takes any claim (its URL is the camera owners' to write once it listens).
      await this.db.query(
        `insert into video_nodes (node, url, alive_until) values ($1, '', now() + make_interval(secs => $2::float8 / 1000))
         on conflict (node) do update set alive_until = greatest(video_nodes.alive_until, excluded.alive_until)`,
        [this.nodeId, this.ttlMs],
      );
    } catch (err) {
      // Not renewed: what is held runs out on its own deadline.
      this.logger.warn({ err: (err as Error).message }, 'lease renewal failed');
      return;
    }
    if (this.stopped) return;
    // Stop believing a little before the database lets anybody else in.
    const deadline = sent + this.ttlMs - Math.min(1_000, this.ttlMs / 5);
    for (const r of rows) {
      const had = this.holds(r.name);
      const mine = r.live && r.holder === this.nodeId;
      if (mine) this.until.set(r.name, deadline);
      else this.until.delete(r.name);
      this.state.set(r.name, { holder: r.live ? r.holder : null, mine, token: Number(r.token) });
      if (had !== mine) {
        this.logger.info({ lease: r.name, node: this.nodeId, token: Number(r.token) }, mine ? 'lease taken' : 'lease lost');
        this.onChange?.(r.name, mine);
      }
    }
  }

  async claim(key: string, holdMs = Math.max(30_000, this.ttlMs * 3)): Promise<boolean> {
    if (this.stopped) return false;
    // One statement on the database clock: a new key, or an unsettled one whose claimer let it run out or is dead
    // (its heartbeat in the nodes table ran out: no need to wait for the claim's own time).
    const rows = await this.db.query(
      `insert into cluster_claims as c (key, holder, until) values ($1, $2, now() + make_interval(secs => $3::float8 / 1000))
       on conflict (key) do update set holder = excluded.holder, until = excluded.until, claimed_at = now()
       where not ${claimHeldSql('c')} and not c.done
       returning key`,
      [key, this.nodeId, holdMs],
    );
    return rows.length === 1;
  }

  async settle(key: string): Promise<void> {
    await this.db.query('update cluster_claims set done = true where key = $1 and holder = $2', [key, this.nodeId]);
  }

  async release(key: string): Promise<void> {
    await this.db.query('delete from cluster_claims where key = $1 and holder = $2 and not done', [key, this.nodeId]);
  }

  /** Gives every held lease back so another node takes over at once. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.beating?.catch(() => undefined);
    this.stopped = true;
    const mine = [...this.until.keys()];
    this.until.clear();
    if (mine.length) {
      await this.db.query('update cluster_leases set expires_at = now() - interval \'1 second\' where holder = $1 and name = any($2::text[])', [this.nodeId, mine])
        .catch((err) => this.logger.warn({ err: (err as Error).message }, 'leases not released; they expire on their own'));
    }
  }
}
