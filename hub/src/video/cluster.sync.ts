/**
 * Cluster: the camera registry is in memory on every node, and a camera is
 * registered or edited through one of them. Each node compares a stamp of
 * the `cameras` table (row count and a sum of row hashes: one scan, a few ms
 * for ten thousand cameras) every few seconds and reloads when it moved, so
 * a camera added or changed on node A is watchable through node B within
 * one period. (A deleted camera device is announced at once by the device
 * bridge; this catches it too.)
 */
import type { Logger } from '../core/logger.js';
import type { Db } from '../store/index.js';

export function syncCameras(db: Db, reload: () => Promise<void>, logger: Logger, everyMs = 5_000): () => void {
  let last: string | null = null;
  let busy = false;
  const stamp = async () => {
    const [r] = await db.query<{ n: number; h: string }>('select count(*)::int as n, coalesce(sum(hashtext(c::text)::bigint), 0)::text as h from cameras c');
    return `${r?.n ?? 0}:${r?.h ?? '0'}`;
  };
  const round = async () => {
    if (busy) return;
    busy = true;
    try {
      const s = await stamp();
      if (last !== null && s !== last) await reload();
      last = s;
    } catch (err) {
      logger.warn({ err: (err as Error).message }, 'camera table not compared');
    } finally {
      busy = false;
    }
  };
  void round();
  const timer = setInterval(() => void round(), everyMs);
  timer.unref();
  return () => clearInterval(timer);
}
