/**
 * The per-device message budget: one token bucket per device, shared by MQTT
 * (every connection and clientId takeover of that device), HTTP ingest and
 * OsmAnd, so reconnecting or switching transport never refills it.
 *
 * Over budget nothing valid is thrown away: an MQTT QoS 1 message takes a
 * token on credit (the bucket goes into debt) and its PUBACK waits until the
 * debt is paid off, which also stops aedes reading the socket; HTTP gets 429
 * with the time until the next token. Only a device whose debt passes
 * `floodLimit` (or that keeps sending what is dropped) is cut off.
 */
interface Bucket {
  tokens: number;
  last: number;
  dropWindowStart: number;
  dropsInWindow: number;
}

export class DeviceBudgets {
  private readonly buckets = new Map<string, Bucket>();

  constructor(
    private readonly ratePerS: number,
    private readonly burst: number,
    /** Messages of debt (held acknowledgements) after which a device is disconnected. */
    readonly floodLimit: number,
    readonly now: () => number = Date.now,
  ) {}

  private bucket(deviceId: string, t: number): Bucket {
    let b = this.buckets.get(deviceId);
    if (!b) {
      b = { tokens: this.burst, last: t, dropWindowStart: t, dropsInWindow: 0 };
      this.buckets.set(deviceId, b);
    } else if (t > b.last) {
      b.tokens = Math.min(this.burst, b.tokens + ((t - b.last) * this.ratePerS) / 1000);
      b.last = t;
    }
    return b;
  }

  /**
   * Takes a token, on credit if need be. Returns the time (on this budget's
   * clock) from which the message is within budget, or -1 when the debt would
   * pass the flood limit (nothing is taken then).
   */
  reserve(deviceId: string): number {
    const t = this.now();
    const b = this.bucket(deviceId, t);
    if (b.tokens - 1 < -this.floodLimit) return -1;
    b.tokens -= 1;
    return b.tokens >= 0 ? t : t + (-b.tokens * 1000) / this.ratePerS;
  }

  /** Takes a token only if there is one: 0, or the milliseconds until there will be (HTTP Retry-After). */
  tryTake(deviceId: string): number {
    const b = this.bucket(deviceId, this.now());
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil(((1 - b.tokens) * 1000) / this.ratePerS));
  }

  /** Records a dropped message (QoS 0 over budget, a forbidden topic); returns the drops within the last minute. */
  drop(deviceId: string): number {
    const t = this.now();
    const b = this.bucket(deviceId, t);
    if (t - b.dropWindowStart > 60_000) {
      b.dropWindowStart = t;
      b.dropsInWindow = 0;
    }
    return ++b.dropsInWindow;
  }

  /** Tokens left (negative: debt); for tests and metrics. */
  tokens(deviceId: string): number {
    return this.bucket(deviceId, this.now()).tokens;
  }

  /** Forgets buckets that have refilled and have no recent drops: a new bucket would be the same. */
  prune(): void {
    const t = this.now();
    for (const [id, b] of this.buckets) {
      const tokens = b.tokens + ((t - b.last) * this.ratePerS) / 1000;
      if (tokens >= this.burst && t - b.dropWindowStart > 60_000) this.buckets.delete(id);
    }
  }

  get size(): number {
    return this.buckets.size;
  }
}
