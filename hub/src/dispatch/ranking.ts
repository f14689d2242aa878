/**
 * Ranking: the available workers nearest to a case, own-grid workers
 * promoted within `ownGridExtraM` (candidates.ts scores them), with road ETAs
 * from AMap when a key is configured.
 */
import { haversineM } from '@gridlink/devices/geo';
import type { Logger } from '../core/logger.js';
import type { CaseSummary, GridService } from '../core/services.js';
import type { DeviceRegistry } from '../registry/index.js';
import { amapLegs, type Fetch } from './amap.js';
import { rankCandidates, speedMps, toCandidate, type Candidate, type Scored } from './candidates.js';
import type { DispatchConfig } from './dispatch.config.js';
import { hasFix, type WorkerState } from './worker.model.js';
import type { Workers } from './workers.service.js';

export interface RankingDeps {
  workers: Workers;
  registry: Pick<DeviceRegistry, 'get'>;
  grids?: Pick<GridService, 'ancestors'>;
  cfg: DispatchConfig;
  now: () => number;
  log: Logger;
  /** AMap web service key (empty: offline ETAs only). */
  amapKey: string | undefined;
  /** fetch for the AMap distance API (tests inject one). */
  fetch: () => Fetch | undefined;
}

export class CandidateRanker {
  constructor(private readonly d: RankingDeps) {}

  /** Worker sets of the grid and its ancestors (a 网格长 responsible for the community counts as own). Not copied: hot path. */
  private ownSets(gridId: string | null): Array<Set<WorkerState>> {
    if (!gridId) return [];
    const chain = this.d.grids?.ancestors(gridId) ?? [gridId];
    const out: Array<Set<WorkerState>> = [];
    for (const g of chain.length ? chain : [gridId]) {
      const s = this.d.workers.byGrid.get(g);
      if (s && s.size) out.push(s);
    }
    return out;
  }

  candidates(c: Pick<CaseSummary, 'lat' | 'lon' | 'gridId'>, limit: number, exclude?: ReadonlySet<string>): Candidate[] {
    const { cfg, registry, workers } = this.d;
    const now = this.d.now();
    const maxAge = cfg.candidateMaxFixAgeS * 1000;
    const accept = (w: WorkerState): boolean =>
      w.onDuty && w.assignment === null && now - w.ts <= maxAge && !(exclude?.has(w.id) ?? false) && registry.get(w.deviceId)?.enabled !== false;
    const near = workers.index.nearest(c.lat, c.lon, limit, accept);
    const own = this.ownSets(c.gridId);
    const isOwn = (w: WorkerState) => own.some((s) => s.has(w));
    const pool: Scored[] = near.map((n) => ({ w: n.w, distanceM: n.distanceM, own: isOwn(n.w) }));
    // Own-grid workers outside the k nearest matter only when they would be promoted.
    const cutoff = (near[0]?.distanceM ?? Infinity) + cfg.ownGridExtraM;
    const seen = new Set<WorkerState>(near.map((n) => n.w));
    for (const s of own) {
      for (const w of s) {
        if (seen.has(w) || w.removed || !hasFix(w)) continue;
        const d = haversineM(c.lat, c.lon, w.lat, w.lon);
        if (d > cutoff || !accept(w)) continue;
        seen.add(w);
        pool.push({ w, distanceM: d, own: true });
      }
    }
    const ranked = rankCandidates(pool, cfg.ownGridExtraM);
    if (ranked.length > limit) ranked.length = limit;
    return ranked.map((s) => toCandidate(s, now, cfg));
  }

  /** Candidates with road ETAs from AMap when a key is configured (one batched call; offline ETAs on any failure). */
  async candidatesWithEta(c: CaseSummary, limit: number): Promise<Candidate[]> {
    const list = this.candidates(c, limit);
    const key = this.d.amapKey;
    if (!key || list.length === 0) return list;
    const { cfg, workers } = this.d;
    const fetch = this.d.fetch();
    try {
      const legs = await amapLegs({
        key,
        origins: list.map((x) => workers.byId.get(x.workerId)!).map((w) => ({ lat: w.lat, lon: w.lon })),
        dest: { lat: c.lat, lon: c.lon },
        timeoutMs: cfg.amapTimeoutMs,
        ...(fetch ? { fetch } : {}),
      });
      legs.forEach((leg, i) => {
        if (!leg) return;
        const x = list[i]!;
        x.etaS = cfg.travelMode === 'walking' ? leg.durationS : Math.round(leg.distanceM / speedMps(cfg));
        x.etaSource = 'amap';
      });
    } catch (err) {
      this.d.log.warn({ err: (err as Error).message }, 'AMap distance failed; offline ETAs');
    }
    return list;
  }
}
