/**
 * Login throttling per account and per client address: after `free`
 * failures a key is locked for a delay that doubles with every further
 * failure (capped), and the attempt is refused before any password hashing.
 * Counters forget a key `windowMs` after its last failure. The map is
 * bounded: the oldest keys go first.
 */
export interface ThrottleOptions {
  /** Failures allowed before the first lock. */
  free: number;
  baseDelayMs: number;
  maxDelayMs: number;
  windowMs: number;
  maxKeys?: number;
}

interface Entry {
  failures: number;
  lastFailure: number;
  lockedUntil: number;
}

export class Throttle {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly o: ThrottleOptions, private readonly now: () => number) {}

  /** Milliseconds until `key` may try again (0 = now). */
  retryAfter(key: string): number {
    const e = this.live(key);
    return e ? Math.max(0, e.lockedUntil - this.now()) : 0;
  }

  fail(key: string): void {
    const now = this.now();
    const e = this.live(key) ?? { failures: 0, lastFailure: now, lockedUntil: 0 };
    e.failures += 1;
    e.lastFailure = now;
    if (e.failures >= this.o.free) {
      const delay = Math.min(this.o.maxDelayMs, this.o.baseDelayMs * 2 ** (e.failures - this.o.free));
      e.lockedUntil = now + delay;
    }
    this.entries.delete(key);
    this.entries.set(key, e);
    const max = this.o.maxKeys ?? 100_000;
    while (this.entries.size > max) this.entries.delete(this.entries.keys().next().value!);
  }

  reset(key: string): void {
    this.entries.delete(key);
  }

  private live(key: string): Entry | undefined {
    const e = this.entries.get(key);
    if (e && this.now() - e.lastFailure > this.o.windowMs && this.now() >= e.lockedUntil) {
      this.entries.delete(key);
      return undefined;
    }
    return e;
  }
}

/**
 * At most `max` jobs at once, at most `queue` waiting; past that `run`
 * rejects at once. Password hashing goes through one of these so a burst of
 * logins cannot take every thread of libuv's pool from device
 * authentication (which shares it).
 */
export class Limiter {
  private active = 0;
  private readonly waiting: Array<() => void> = [];
  /** Most jobs ever seen running at once (tests and metrics). */
  peak = 0;

  constructor(private readonly max: number, private readonly queue: number) {}

  get running(): number {
    return this.active;
  }

  async run<T>(job: () => Promise<T>, onFull: () => Error): Promise<T> {
    if (this.active >= this.max) {
      if (this.waiting.length >= this.queue) throw onFull();
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    } else {
      this.active += 1;
    }
    this.peak = Math.max(this.peak, this.active);
    try {
      return await job();
    } finally {
      const next = this.waiting.shift();
      // The slot passes straight to the next waiter; `active` stays the same.
      if (next) next();
      else this.active -= 1;
    }
  }
}
