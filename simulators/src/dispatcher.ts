/**
 * The demo's dispatcher: a scripted duty officer working the hub through
 * REST like a person at the console would. It registers reported cases
 * (立案), dispatches each to the nearest available candidate (派遣), sends a
 * declined case to the next candidate, and verifies resolved cases (核查结案).
 *
 * It waits a grace period before touching a case, so a hub with its own
 * auto-dispatch does the work first; this is the demo standing in for the
 * people in the command centre, not part of the hub.
 */
import { haversineM } from './district/geo.js';
import type { CaseSummary } from '@gridlink/devices/contract';
import { HubError, type HubClient } from './hub-client.js';

export interface DispatcherOptions {
  hub: HubClient;
  /** Wall ms between polls. */
  pollMs?: number;
  /** Wall ms a case must sit in a status before the dispatcher acts on it. */
  graceMs?: number;
  log?: (msg: string) => void;
}

export interface DispatcherStats {
  registered: number;
  dispatched: number;
  redispatched: number;
  verified: number;
  errors: number;
}

const TAG = '[demo dispatcher]';

export class DemoDispatcher {
  readonly stats: DispatcherStats = { registered: 0, dispatched: 0, redispatched: 0, verified: 0, errors: 0 };
  private timer: ReturnType<typeof setTimeout> | null = null;
  private running = false;
  private polling: Promise<void> | null = null;
  /** case id + status -> wall ms first seen in it */
  private readonly seen = new Map<string, number>();
  /** case id -> workers it was sent to (a case back in `registered` was declined by the last one) */
  private readonly sentTo = new Map<string, string[]>();
  private missingSince = 0;

  constructor(readonly o: DispatcherOptions) {}

  start(): void {
    if (this.running) return;
    this.running = true;
    const loop = () => {
      if (!this.running) return;
      this.polling = this.poll().finally(() => {
        this.polling = null;
        if (this.running) this.timer = setTimeout(loop, this.o.pollMs ?? 1000);
      });
    };
    loop();
  }

  async stop(): Promise<void> {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    await this.polling;
  }

  private log(msg: string): void {
    this.o.log?.(`${TAG} ${msg}`);
  }

  private due(c: CaseSummary): boolean {
    const key = `${c.id}:${c.status}`;
    const now = Date.now();
    if (!this.seen.has(key)) this.seen.set(key, now);
    return now - this.seen.get(key)! >= (this.o.graceMs ?? 1500);
  }

  /** One pass over open cases; exported for tests. */
  async poll(): Promise<void> {
    const { hub } = this.o;
    if (this.missingSince && Date.now() - this.missingSince < 10_000) return;
    let cases: CaseSummary[];
    try {
      // Every page: oldest waiting cases are past the first (newest-first) page once more than a page wait.
      cases = await hub.allCases({ status: 'reported,registered,resolved' });
      this.missingSince = 0;
    } catch (err) {
      if (err instanceof HubError && err.routeMissing) {
        if (!this.missingSince) this.log('the hub has no /cases yet (cases module not loaded); waiting for it');
        this.missingSince = Date.now();
        return;
      }
      this.stats.errors++;
      this.log(`cannot list cases: ${(err as Error).message}`);
      return;
    }
    for (const c of cases) {
      if (!this.running) return;
      if (!this.due(c)) continue;
      try {
        if (c.status === 'reported') {
          await hub.caseAction(c.id, 'register', { note: `${TAG} 立案` });
          this.stats.registered++;
          this.log(`registered ${c.code} (${catName(c)})`);
        } else if (c.status === 'registered') {
          await this.dispatch(c);
        } else if (c.status === 'resolved') {
          await hub.caseAction(c.id, 'verify', { note: `${TAG} 核查通过，结案` });
          this.stats.verified++;
          this.log(`verified and closed ${c.code}`);
        }
      } catch (err) {
        this.stats.errors++;
        // Someone else (the hub, an officer) moved the case first: fine.
        if (!(err instanceof HubError && (err.status === 409 || err.code.includes('TRANSITION') || err.code.includes('STATE')))) {
          this.log(`${c.code}: ${(err as Error).message}`);
        }
      }
    }
  }

  private async dispatch(c: CaseSummary): Promise<void> {
    const { hub } = this.o;
    const tried = this.sentTo.get(c.id) ?? [];
    let ids: string[];
    try {
      ids = (await hub.candidates(c.id, 10)).items.filter((x) => !x.status || x.status === 'available').map((x) => x.workerId);
    } catch (err) {
      if (!(err instanceof HubError && err.routeMissing)) throw err;
      // No candidates route: nearest available worker by straight-line distance.
      const workers = (await hub.listWorkers()).items.filter((w) => w.status === 'available' && w.position);
      workers.sort((a, b) => haversineM(c.lat, c.lon, a.position!.lat, a.position!.lon) - haversineM(c.lat, c.lon, b.position!.lat, b.position!.lon));
      ids = workers.map((w) => w.id);
    }
    const pick = ids.find((id) => !tried.includes(id)) ?? ids[0];
    if (!pick) {
      this.log(`${c.code}: no available worker; will retry`);
      this.seen.delete(`${c.id}:${c.status}`);
      return;
    }
    await hub.caseAction(c.id, 'dispatch', { workerId: pick, note: `${TAG} 派遣最近的在岗网格员` });
    this.sentTo.set(c.id, [...tried, pick]);
    if (tried.length) this.stats.redispatched++;
    else this.stats.dispatched++;
    this.log(`dispatched ${c.code} to ${pick}${tried.length ? ` (after a decline by ${tried[tried.length - 1]})` : ''}`);
  }
}

function catName(c: CaseSummary): string {
  return c.category.name;
}
