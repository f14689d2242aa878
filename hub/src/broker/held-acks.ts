import type { Client } from 'aedes';

interface Held {
  at: number;
  client: Client;
  release: () => void;
}

/**
 * Acknowledgements of committed messages that are over their device's budget,
 * held until the budget's clock reaches the time the debt is paid off. While
 * one is held aedes does not read the next chunk from that socket (it reads
 * on once every packet of a chunk is handled), so this is the back-pressure:
 * the device's own TCP window fills and it waits, and nothing valid is
 * dropped. Released in arrival order per device; one timer for all devices.
 */
export class HeldAcks {
  private readonly queues = new Map<string, Held[]>();
  private timer: NodeJS.Timeout | null = null;
  private count = 0;

  constructor(private readonly now: () => number, private readonly tickMs = 20) {}

  /** Runs `release` once the clock reaches `at`, after every ack of the device held before it. */
  hold(deviceId: string, client: Client, at: number, release: () => void): void {
    let q = this.queues.get(deviceId);
    if (!q) {
      if (at <= this.now()) return release();
      this.queues.set(deviceId, (q = []));
    }
    q.push({ at, client, release });
    this.count++;
    this.timer ??= setInterval(() => this.tick(), this.tickMs);
  }

  tick(): void {
    const t = this.now();
    for (const [id, q] of this.queues) {
      let n = 0;
      while (n < q.length && q[n]!.at <= t) n++;
      if (n === 0) continue;
      const due = q.splice(0, n);
      this.count -= n;
      if (q.length === 0) this.queues.delete(id);
      for (const h of due) h.release();
    }
    if (this.queues.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = null;
    }
  }

  /** A closed connection's held messages are never acknowledged: the device keeps and re-sends them. */
  dropClient(deviceId: string, client: Client): void {
    const q = this.queues.get(deviceId);
    if (!q) return;
    const kept = q.filter((h) => h.client !== client);
    this.count -= q.length - kept.length;
    if (kept.length) this.queues.set(deviceId, kept);
    else this.queues.delete(deviceId);
  }

  /** Acknowledgements held right now. */
  get size(): number {
    return this.count;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.queues.clear();
    this.count = 0;
  }
}
