/**
 * Which node pulls a camera. In a cluster each camera is pulled by one node,
 * its owner: a row of `video_owners (camera_id, node, url, expires_at)`,
 * taken by the first node a viewer asks and renewed by it every ttl/3 on the
 * database clock, like the singleton leases. A node that dies stops renewing;
 * the next viewer's node takes the camera over once the row has expired. The
 * other nodes proxy their viewers to the owner's `url` (video.routes.ts), so
 * a viewer on any node gets the stream and the camera sees one RTSP client.
 *
 * The same timer keeps this node's row of `video_nodes (node, url,
 * alive_until)` fresh: the clip recorder (video/clips.ts) reads it to tell
 * a recorder that is gone (its clips still `recording`, its clip files on its
 * disk) from one that is alive.
 *
 * The single process owns every camera.
 */
import type { Logger } from '../core/logger.js';
import type { Db } from '../store/index.js';
import { NODES_DDL } from './leases.js';

export interface CameraOwner {
  /** This node pulls the camera. */
  mine: boolean;
  node: string;
  /** Base HTTP URL of the owner, as the other nodes reach it. */
  url: string;
}

export interface CameraOwners {
  /** False on the single process (it owns every camera). */
  readonly shared: boolean;
  /** The camera's owner; a free or expired camera becomes this node's. */
  owner(cameraId: string): Promise<CameraOwner>;
  /** Cameras this node pulls as their owner (health and metrics). */
  owned(): number;
  /** This node's id and the URL the other nodes reach it at ('' until it listens). */
  self(): { node: string; url: string };
  /** False until the node listens, and once it stops: it must not take cameras (a rolling buffer waits). */
  readonly ready: boolean;
  /** How long a node's rows outlive its last renewal, ms (0 on the single process). */
  readonly leaseMs: number;
}

export const soleCameraOwners = (nodeId = 'single'): CameraOwners => ({
  shared: false, ready: true, leaseMs: 0, owner: async () => ({ mine: true, node: nodeId, url: '' }), owned: () => 0, self: () => ({ node: nodeId, url: '' }),
});

/** An answer about another node is kept this long, so a viewer's segment requests do not each ask the database. */
const CACHE_MS = 1_000;

export class PgCameraOwners implements CameraOwners {
  readonly shared = true;
  private url = '';
  private timer: NodeJS.Timeout | null = null;
  private readonly cache = new Map<string, { o: CameraOwner; at: number }>();
  /** Cameras this node owns, until (monotonic ms) its last renewal runs out. */
  private readonly mine = new Map<string, number>();
  private stopped = false;

  constructor(
    private readonly db: Db,
    private readonly nodeId: string,
    private readonly ttlMs: number,
    private readonly logger: Logger,
    private readonly clock: () => number = () => performance.now(),
  ) {}

  get leaseMs(): number {
    return this.ttlMs;
  }

  async start(url: string): Promise<void> {
    this.url = url;
    // Several nodes may start at once: the same lock as the lease table's creation.
    await this.db.tx(async (q) => {
      await q.query('select pg_advisory_xact_lock($1)', [7412]);
      await q.query(`create table if not exists video_owners (
        camera_id text primary key, node text not null, url text not null, expires_at timestamptz not null)`);
      await q.query(NODES_DDL);
    });
    await this.beat();
    this.timer = setInterval(() => void this.renew().catch((err: Error) => this.logger.warn({ err: err.message }, 'camera ownership not renewed')), Math.max(200, Math.floor(this.ttlMs / 3)));
    this.timer.unref();
  }

  get ready(): boolean {
    return !!this.url && !this.stopped;
  }

  self(): { node: string; url: string } {
    return { node: this.nodeId, url: this.url };
  }

  async owner(cameraId: string): Promise<CameraOwner> {
    const t = this.clock();
    if ((this.mine.get(cameraId) ?? 0) > t) return { mine: true, node: this.nodeId, url: this.url };
    const hit = this.cache.get(cameraId);
    if (hit && t - hit.at < CACHE_MS) return hit.o;
    if (this.stopped || !this.url) return { mine: true, node: this.nodeId, url: this.url };
    const sent = this.clock();
    const rows = await this.db.query<{ node: string; url: string }>(
      `insert into video_owners as o (camera_id, node, url, expires_at) values ($1, $2, $3, now() + make_interval(secs => $4::float8 / 1000))
       on conflict (camera_id) do update set node = excluded.node, url = excluded.url, expires_at = excluded.expires_at
       where o.node = excluded.node or o.expires_at < now()
       returning node, url`,
      [cameraId, this.nodeId, this.url, this.ttlMs],
    );
    if (rows[0]) {
      this.mine.set(cameraId, sent + this.ttlMs - Math.min(1_000, this.ttlMs / 5));
      this.cache.delete(cameraId);
      return { mine: true, node: this.nodeId, url: this.url };
    }
    const [cur] = await this.db.query<{ node: string; url: string }>('select node, url from video_owners where camera_id = $1', [cameraId]);
    const o = cur ? { mine: false, node: cur.node, url: cur.url } : { mine: true, node: this.nodeId, url: this.url };
    this.cache.set(cameraId, { o, at: t });
    return o;
  }

  owned(): number {
    const t = this.clock();
    let n = 0;
    for (const until of this.mine.values()) if (until > t) n++;
    return n;
  }

  /** This node is alive for another lease time (its clip files can be asked of it). */
  private async beat(): Promise<void> {
    await this.db.query(
      `insert into video_nodes (node, url, alive_until) values ($1, $2, now() + make_interval(secs => $3::float8 / 1000))
       on conflict (node) do update set url = excluded.url, alive_until = excluded.alive_until`,
      [this.nodeId, this.url, this.ttlMs],
    );
  }

  /** Renews this node's heartbeat and every camera it owns. */
  private async renew(): Promise<void> {
    if (this.stopped) return;
    await this.beat();
    if (this.mine.size === 0) return;
    const sent = this.clock();
    const rows = await this.db.query<{ camera_id: string }>(
      `update video_owners set expires_at = now() + make_interval(secs => $2::float8 / 1000) where node = $1 returning camera_id`,
      [this.nodeId, this.ttlMs],
    );
    const kept = new Set(rows.map((r) => r.camera_id));
    for (const id of [...this.mine.keys()]) if (!kept.has(id)) this.mine.delete(id);
    for (const id of kept) this.mine.set(id, sent + this.ttlMs - Math.min(1_000, this.ttlMs / 5));
  }

  /**
   * Gives the cameras back, so the next viewer's node takes them at once. The
   * heartbeat row is left to run out: clips this node finishes while it stops
   * are not taken from it meanwhile.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.mine.clear();
    await this.db.query('delete from video_owners where node = $1', [this.nodeId]).catch(() => undefined);
  }
}
